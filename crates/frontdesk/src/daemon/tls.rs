//! TLS for the daemon (`--sips ADDR --cert PATH --key PATH`): the
//! certificate loaded before anything binds, reloaded on SIGHUP, and the
//! admin listener served over HTTPS with the same certificate.
//!
//! One [`ServerIdentity`] is shared by SIP over TLS and HTTPS: a reload
//! swaps it for both. Each listener has its own `TlsGate`, so a flood of
//! handshakes on one cannot take the other's slots (the HTTPS one is made
//! in the daemon and driven by `http::server`).
//!
//! A reload reads both files again and builds a new config; if that fails
//! (a missing file, a key that does not fit, a half-written file) the
//! certificate in force stays and the error is logged. Connections already
//! up keep the session they have: calls are never dropped by a reload.

use std::path::PathBuf;

use sip::transport::tls::{self, ServerIdentity, TlsError};
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
