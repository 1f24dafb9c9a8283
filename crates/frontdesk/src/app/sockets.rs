//! The SIP sockets: bound here, before anything else serves, and handed to
//! the SIP services in [`crate::app::start`]. With `--sips`, a TCP listener
//! for TLS too, with the gate its handshakes pass.

use std::io;
use std::net::SocketAddr;

use sip::transport::tls::{HandshakeLimits, ServerIdentity, TlsGate};
use tokio::net::{TcpListener, UdpSocket};
use tracing::debug;

/// How many times port 0 is tried when the port UDP got is taken for TCP.
const PORT_ZERO_ATTEMPTS: usize = 8;

/// SIP's bound sockets: UDP and TCP on the same address (RFC 3261 §18:
/// a server listens on both).
#[derive(Debug)]
pub struct SipSockets {
    /// Datagrams.
    pub udp: UdpSocket,
    /// Streams.
    pub tcp: TcpListener,
    /// The address both are bound to, with the real port when 0 was asked for.
    pub local: SocketAddr,
    /// SIP over TLS, once [`SipSockets::bind_tls`] bound it.
    pub tls: Option<TlsSocket>,
}

/// The listener for SIP over TLS and the gate its connections pass.
#[derive(Debug)]
pub struct TlsSocket {
    /// Accepts TCP connections that must speak TLS.
    pub listener: TcpListener,
    /// Handshake limits and the certificate in force.
    pub gate: TlsGate,
}

/// Why the SIP sockets could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum SipBindError {
    /// The UDP socket.
    #[error("cannot listen for SIP on udp {addr}: {source}")]
    Udp {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The TCP listener (UDP was bound).
    #[error("cannot listen for SIP on tcp {addr}: {source}")]
    Tcp {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The TLS listener (`--sips`).
    #[error("cannot listen for SIP on tls {addr}: {source}")]
    Tls {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

impl SipSockets {
    /// Binds UDP and TCP on `addr`. With port 0, UDP picks a free port and
    /// TCP takes the same one; if that TCP port is taken, this tries again
    /// with another port, a few times.
    pub async fn bind(addr: SocketAddr) -> Result<Self, SipBindError> {
        let attempts = if addr.port() == 0 {
            PORT_ZERO_ATTEMPTS
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let udp = UdpSocket::bind(addr)
                .await
                .map_err(|source| SipBindError::Udp { addr, source })?;
            let local = udp
                .local_addr()
                .map_err(|source| SipBindError::Udp { addr, source })?;
            match TcpListener::bind(local).await {
                Ok(tcp) => {
                    return Ok(Self {
                        udp,
                        tcp,
                        local,
                        tls: None,
                    });
                }
                Err(source) if source.kind() == io::ErrorKind::AddrInUse && attempt < attempts => {
                    debug!(%local, attempt, "tcp port taken, trying another port");
                    attempt += 1;
                }
                Err(source) => {
                    return Err(SipBindError::Tcp {
                        addr: local,
                        source,
                    });
                }
            }
        }
    }
}

impl SipSockets {
    /// Binds the TLS listener on `addr` (port 0 picks a free port), serving
    /// `identity` through a gate with `handshake` limits (the timeout is
    /// the dialplan's `[limits.sip] handshake_timeout`).
    pub async fn bind_tls(
        &mut self,
        addr: SocketAddr,
        identity: &ServerIdentity,
        handshake: HandshakeLimits,
    ) -> Result<SocketAddr, SipBindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SipBindError::Tls { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SipBindError::Tls { addr, source })?;
        let gate = TlsGate::new(identity.clone(), handshake, "sip");
        self.tls = Some(TlsSocket { listener, gate });
        Ok(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_zero_binds_udp_and_tcp_on_the_same_free_port() {
        let sockets = SipSockets::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        assert_ne!(sockets.local.port(), 0);
        assert_eq!(sockets.udp.local_addr().unwrap(), sockets.local);
        assert_eq!(sockets.tcp.local_addr().unwrap(), sockets.local);
    }

    #[tokio::test]
    async fn a_taken_tcp_port_is_an_error_naming_tcp() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = SipSockets::bind(addr).await.unwrap_err();
        assert!(matches!(error, SipBindError::Tcp { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot listen for SIP on tcp {addr}: ")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_taken_udp_port_is_an_error_naming_udp() {
        let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = SipSockets::bind(addr).await.unwrap_err();
        assert!(matches!(error, SipBindError::Udp { .. }), "{error}");
    }
}
