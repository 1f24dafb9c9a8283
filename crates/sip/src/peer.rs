//! Who a message came from or goes to: transport, address and connection.

use std::fmt;
use std::net::SocketAddr;

use crate::message::Transport;

/// The transports frontdesk speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// UDP: unreliable, so transactions retransmit (RFC 3261 §17).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl TransportKind {
    /// `true` for stream transports, which need no retransmissions.
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// The name in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }

    /// The Via transport token for this kind.
    pub fn via_transport(self) -> Transport {
        match self {
            TransportKind::Udp => Transport::Udp,
            TransportKind::Tcp => Transport::Tcp,
            TransportKind::Tls => Transport::Tls,
        }
    }

    /// The value of a URI's `transport` parameter for this kind.
    pub fn uri_param(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
        }
    }
}

/// A stream connection, as numbered by the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// The other end of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport.
    pub transport: TransportKind,
    /// The remote address.
    pub address: SocketAddr,
    /// The connection a stream message came on (or should go on).
    pub connection: Option<ConnectionId>,
}

impl Peer {
    /// A UDP peer.
    pub fn udp(address: SocketAddr) -> Self {
        Peer {
            transport: TransportKind::Udp,
            address,
            connection: None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.uri_param(), self.address)
    }
}
