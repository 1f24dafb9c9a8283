//! RTP (RFC 3550) for G.711 audio and RFC 4733 telephone-events, sans-IO:
//! [`OutboundStream`] writes the packets we originate, [`InboundStream`]
//! validates what a peer sends and finds its digits. Packets are read and
//! built with rtp-rs.

pub mod inbound;
pub mod outbound;
pub mod telephone_event;

pub use inbound::{InboundStats, InboundStream, ReceivedPacket, RtpPayload, parse_packet};
pub use outbound::{HEADER_LEN, OutboundStream};
pub use telephone_event::{
    TelephoneEvent, TelephoneEventGenerator, TelephoneEventPacket, TelephoneEventReceiver,
};

/// A receive buffer size that fits any RTP packet we accept (Ethernet MTU).
pub const MAX_PACKET_LEN: usize = 1500;
