//! TLS for the daemon (`--sips ADDR --cert PATH --key PATH`): the
//! certificate loaded before anything binds, reloaded on SIGHUP, and the
//! admin listener served over HTTPS with the same certificate.
//!
//! One [`ServerIdentity`] is shared by SIP over TLS and HTTPS: a reload
//! swaps it for both. Each listener has its own [`TlsGate`], so a flood of
//! handshakes on one cannot take the other's slots.
//!
//! A reload reads both files again and builds a new config; if that fails
//! (a missing file, a key that does not fit, a half-written file) the
//! certificate in force stays and the error is logged. Connections already
//! up keep the session they have: calls are never dropped by a reload.

use std::net::SocketAddr;
use std::path::PathBuf;

use sip::transport::tls::{self, HandshakeLimits, ServerIdentity, TlsError, TlsGate, TlsStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::SipsConfig;

/// The certificate files and the identity built from them.
#[derive(Debug, Clone)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    identity: ServerIdentity,
}

impl Certificates {
    /// Reads `--cert` and `--key` (both PEM).
    pub fn load(sips: &SipsConfig) -> Result<Self, TlsError> {
        let config = tls::load_server_config(&sips.cert, &sips.key)?;
        Ok(Certificates {
            cert: sips.cert.clone(),
            key: sips.key.clone(),
            identity: ServerIdentity::new(config),
        })
    }

    /// The certificate in force, for the listeners' gates.
    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &std::path::Path {
        &self.cert
    }

    /// SIGHUP: reads both files again; on success new handshakes (SIP and
    /// HTTPS) use them, on failure the running certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        match tls::load_server_config(&self.cert, &self.key) {
            Ok(config) => {
                self.identity.replace(config);
                metrics::counter!("frontdesk_tls_reloads_total", "result" => "ok").increment(1);
                info!(
                    "tls certificate {} reloaded: new connections use it",
                    self.cert.display()
                );
                Ok(())
            }
            Err(failure) => {
                metrics::counter!("frontdesk_tls_reloads_total", "result" => "refused")
                    .increment(1);
                error!("{failure}; the running tls certificate stays");
                Err(failure)
            }
        }
    }
}

/// The admin listener over HTTPS: accepts on its own task, runs each
/// handshake on a task of its own through a [`TlsGate`], and hands axum
/// the streams whose handshake succeeded.
#[derive(Debug)]
pub struct HttpsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl HttpsListener {
    /// Serves TLS on `listener` with `identity` until `shutdown`.
    pub fn new(
        listener: TcpListener,
        identity: ServerIdentity,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let gate = TlsGate::new(identity, HandshakeLimits::default(), "https");
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(accept(listener, gate, sender, shutdown));
        Ok(HttpsListener { local, ready })
    }
}

async fn accept(
    listener: TcpListener,
    gate: TlsGate,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            () = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "https accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(handshake) = gate.admit(stream, remote) else {
            continue;
        };
        let ready = ready.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                stream = handshake => stream,
            };
            if let Some(stream) = stream {
                let _ = ready.send((stream, remote)).await;
            }
        });
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task stopped (shutdown): no more connections;
            // axum's graceful shutdown ends the serve loop.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
