//! The patients' side of the media: one UDP socket whose address every
//! SIPp caller puts in its SDP offer. Each call's relay port shows itself
//! by the first packets of the emergency notice it sends here (strict RTP
//! sends an unconfirmed peer at most `--rtp-unconfirmed-budget` packets,
//! README "Who is heard"), so this task starts sending to a new source at
//! once, as a phone would: a 20 ms PCMU packet every 20 ms
//! ([`PATIENT_MARK`], and a second byte saying whether it left inside the
//! window). It counts the pages' frames ([`PAGE_MARK`]) coming back.
//!
//! Packets to a call still in the IVR or the queue reach no page, so only
//! the streams of bridged calls count: when every page is in its call the
//! driver freezes them ([`Command::Freeze`]: the sources that delivered a
//! page's frame); only their packets carry the window's mark.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::page::{Control, PAGE_MARK, PATIENT_MARK};

/// What the driver asks.
pub enum Command {
    /// Counts from now on only the streams to sources that sent a page's
    /// frame (bridged calls); answers how many.
    Freeze(oneshot::Sender<usize>),
    /// Answers the counts.
    Counts(oneshot::Sender<Counts>),
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Packets sent inside the window.
    pub sent_window: u64,
    /// Page frames sent inside the window and received here.
    pub received_window: u64,
    /// Every page frame received.
    pub received_total: u64,
    /// Relay ports heard from at all.
    pub sources: usize,
}

/// Binds the socket (4 MiB receive buffer, loopback only).
pub fn bind(address: SocketAddr) -> std::io::Result<UdpSocket> {
    if !address.ip().is_loopback() {
        return Err(std::io::Error::other("phoneload: loopback addresses only"));
    }
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, None)?;
    socket.set_recv_buffer_size(4 << 20)?;
    socket.set_send_buffer_size(4 << 20)?;
    socket.bind(&address.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

struct Stream {
    /// A page's frame came from there: the call is bridged.
    page_heard: bool,
    /// Its packets sent inside the window count.
    counted: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
}

/// The RTP payload of a datagram (RFC 3550 §5.1: fixed header, CSRCs,
/// extension), or None if it is not RTP version 2.
fn payload(packet: &[u8]) -> Option<&[u8]> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let mut at = 12 + 4 * usize::from(packet[0] & 0x0F);
    if packet[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*packet.get(at + 2)?, *packet.get(at + 3)?]);
        at += 4 + 4 * usize::from(words);
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    packet.get(at..end)
}

pub async fn run(
    socket: UdpSocket,
    control: Arc<Control>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut streams: HashMap<SocketAddr, Stream> = HashMap::new();
    let mut counts = Counts::default();
    let mut buffer = vec![0u8; 2048];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let Ok((length, source)) = received else { continue };
                let index = streams.len() as u32;
                let stream = streams.entry(source).or_insert_with(|| Stream {
                    page_heard: false,
                    counted: false,
                    sequence: (index as u16).wrapping_mul(7919),
                    timestamp: index.wrapping_mul(104_729),
                    ssrc: 0x5000_0000 + index,
                });
                if let Some(body) = payload(&buffer[..length])
                    && body.first() == Some(&PAGE_MARK)
                {
                    stream.page_heard = true;
                    counts.received_total += 1;
                    if body.get(1) == Some(&1) {
                        counts.received_window += 1;
                    }
                }
            }
            _ = tick.tick(), if !streams.is_empty() => {
                let in_window = control.window.load(Ordering::Relaxed);
                let mut packet = [0xFFu8; 172];
                packet[0] = 0x80;
                packet[1] = 0; // PCMU
                packet[12] = PATIENT_MARK;
                for (to, stream) in streams.iter_mut() {
                    packet[13] = u8::from(in_window && stream.counted);
                    packet[2..4].copy_from_slice(&stream.sequence.to_be_bytes());
                    packet[4..8].copy_from_slice(&stream.timestamp.to_be_bytes());
                    packet[8..12].copy_from_slice(&stream.ssrc.to_be_bytes());
                    if socket.send_to(&packet, *to).await.is_ok() && in_window && stream.counted {
                        counts.sent_window += 1;
                    }
                    stream.sequence = stream.sequence.wrapping_add(1);
                    stream.timestamp = stream.timestamp.wrapping_add(160);
                }
            }
            command = commands.recv() => match command {
                None => return,
                Some(Command::Freeze(reply)) => {
                    for stream in streams.values_mut() {
                        stream.counted = stream.page_heard;
                    }
                    let _ = reply.send(streams.values().filter(|s| s.counted).count());
                }
                Some(Command::Counts(reply)) => {
                    counts.sources = streams.len();
                    let _ = reply.send(counts);
                }
            }
        }
    }
}
