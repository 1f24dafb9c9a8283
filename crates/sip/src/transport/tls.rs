//! The server side of SIP over TLS (RFC 3261 §26.2.1, §18): the
//! certificate in force, and the gate every accepted TCP connection passes
//! before it is a stream of SIP.
//!
//! - [`ServerIdentity`] holds the rustls [`ServerConfig`] in an
//!   [`ArcSwap`]: a reload ([`ServerIdentity::replace`], on SIGHUP in the
//!   daemon) is one pointer swap. A handshake takes the config in force when
//!   it starts; a connection keeps its own for its whole life, so a reload
//!   never drops a call.
//! - [`TlsGate`] bounds the cost of handshakes, which are the expensive,
//!   unauthenticated part of TLS: at most [`HandshakeLimits::max_concurrent`]
//!   at once (a new TCP connection beyond that is closed at once), each
//!   within [`HandshakeLimits::timeout`]. A flood of connections that never
//!   finish their handshake therefore holds a bounded number of slots for a
//!   bounded time, and never touches the UDP socket's task.
//! - Failed handshakes (plain text on the TLS port, a client that does not
//!   trust our certificate, a connection closed half-way) are logged at
//!   debug each, and at warn at most once per [`WARN_EVERY`] with the count
//!   since the last warning: a peer misbehaving must not flood the log.
//!
//! Only the server side exists: frontdesk opens no outbound TLS connection.
//! Agents registered over TLS are reached over the connection they
//! registered on (see [`super::TransportHandle::send`]).
//!
//! Certificates and keys are read from PEM with `rustls-pki-types`; the
//! crypto provider is *ring*, TLS 1.3 and 1.2.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
pub use tokio_rustls::server::TlsStream;

/// How often, at most, failed handshakes are logged at warn.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Why a certificate chain and key could not be turned into a server
/// config.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or is not PEM.
    #[error("cannot read the certificate chain {}: {source}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file could not be read, is not PEM, or holds no key.
    #[error("cannot read the private key {}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused the pair (a key that does not match the certificate,
    /// an unsupported key type).
    #[error("the certificate and key cannot be used: {0}")]
    Rejected(#[from] rustls::Error),
}

/// Reads a certificate chain (the server's certificate first) and a private
/// key (PKCS#8, PKCS#1 or SEC1) from PEM files.
pub fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certificate_error = |source| TlsError::Certificate {
        path: cert.to_path_buf(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(certificate_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(certificate_error)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_path_buf(),
        source,
    })?;
    Ok((chain, key))
}

/// A server config for SIP (and the admin listener): TLS 1.3 and 1.2 with
/// *ring*, no client certificates, the given chain and key (checked to fit
/// together).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// [`read_pem`] then [`server_config`].
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = read_pem(cert, key)?;
    server_config(chain, key)
}

/// The server config in force, shared by every listener that serves the
/// same certificate, and swapped whole on reload.
#[derive(Clone)]
pub struct ServerIdentity {
    current: Arc<ArcSwap<ServerConfig>>,
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity").finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// Serves `config` until replaced.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        ServerIdentity {
            current: Arc::new(ArcSwap::new(config)),
        }
    }

    /// The config new handshakes use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// From now on, new handshakes use `config`; connections already up
    /// keep theirs.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        self.current.store(config);
    }
}

/// Bounds on TLS handshakes.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    /// A handshake not done within this is abandoned and its connection
    /// closed.
    pub timeout: Duration,
    /// The most handshakes in progress at once; a connection accepted
    /// beyond that is closed at once.
    pub max_concurrent: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            timeout: Duration::from_secs(5),
            max_concurrent: 128,
        }
    }
}

/// Turns accepted TCP connections into TLS streams, within
/// [`HandshakeLimits`]. Cheap to clone; clones share the slots.
#[derive(Debug, Clone)]
pub struct TlsGate {
    identity: ServerIdentity,
    limits: HandshakeLimits,
    slots: Arc<Semaphore>,
    log: Arc<RefusalLog>,
    /// What the log calls this listener (`sip`, `https`).
    name: &'static str,
}

impl TlsGate {
    /// A gate serving `identity`; `name` labels its log lines.
    pub fn new(identity: ServerIdentity, limits: HandshakeLimits, name: &'static str) -> Self {
        TlsGate {
            identity,
            slots: Arc::new(Semaphore::new(limits.max_concurrent)),
            limits,
            log: Arc::new(RefusalLog::default()),
            name,
        }
    }

    /// The certificate this gate serves.
    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// How many handshakes are in progress.
    pub fn handshakes_in_progress(&self) -> usize {
        self.limits.max_concurrent - self.slots.available_permits()
    }

    /// Takes a handshake slot for `stream` and returns the handshake to run
    /// (on a task of its own): it yields the TLS stream, or `None` when the
    /// handshake failed or timed out (logged; the connection is closed).
    /// `None` at once when every slot is taken: the caller drops `stream`.
    pub fn admit(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
    ) -> Option<impl Future<Output = Option<TlsStream<TcpStream>>> + Send + 'static> {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.log.refused(
                self.name,
                remote,
                &"too many TLS handshakes in progress; connection closed",
            );
            return None;
        };
        let acceptor = TlsAcceptor::from(self.identity.current());
        let timeout = self.limits.timeout;
        let log = Arc::clone(&self.log);
        let name = self.name;
        Some(async move {
            let outcome = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
            drop(slot);
            match outcome {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(error)) => {
                    log.refused(name, remote, &HandshakeFailure(&error));
                    None
                }
                Err(_) => {
                    log.refused(name, remote, &"TLS handshake timed out");
                    None
                }
            }
        })
    }
}

/// Names the common causes of a failed handshake in words an operator
/// can act on.
struct HandshakeFailure<'a>(&'a std::io::Error);

impl fmt::Display for HandshakeFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let error = self.0;
        match error.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                f.write_str("TLS handshake aborted: the peer closed the connection")
            }
            std::io::ErrorKind::ConnectionReset => {
                f.write_str("TLS handshake aborted: connection reset")
            }
            _ => write!(f, "TLS handshake failed: {error}"),
        }
    }
}

/// Failed handshakes: each at debug, and at most one warning per
/// [`WARN_EVERY`] with how many there were since the last.
#[derive(Debug, Default)]
pub struct RefusalLog {
    // A plain mutex: held for a comparison and two writes, never across
    // `.await`.
    state: Mutex<RefusalState>,
}

#[derive(Debug, Default)]
struct RefusalState {
    last_warning: Option<Instant>,
    since: u64,
}

impl RefusalLog {
    /// Records one refusal.
    pub fn refused(&self, listener: &str, remote: SocketAddr, what: &dyn fmt::Display) {
        tracing::debug!(listener, %remote, "{what}");
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.since += 1;
        if state
            .last_warning
            .is_none_or(|last| now.duration_since(last) >= WARN_EVERY)
        {
            let count = std::mem::take(&mut state.since);
            state.last_warning = Some(now);
            drop(state);
            tracing::warn!(
                listener,
                %remote,
                refused = count,
                "{what} ({count} refused since the last such warning; next warning in {} s at the earliest)",
                WARN_EVERY.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_the_file() {
        let error = read_pem(
            Path::new("/nonexistent/c.pem"),
            Path::new("/nonexistent/k.pem"),
        )
        .unwrap_err();
        assert!(matches!(error, TlsError::Certificate { .. }), "{error}");
        assert!(error.to_string().contains("/nonexistent/c.pem"), "{error}");
    }

    #[test]
    fn a_file_without_pem_sections_has_no_certificate() {
        let dir = std::env::temp_dir().join(format!("sip-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("empty.crt");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        let error = read_pem(&cert, &cert).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
