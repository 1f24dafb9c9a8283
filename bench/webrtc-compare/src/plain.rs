//! The two baselines: a plain RTP leg, and an SDES-SRTP leg with
//! frontdesk's own `media::srtp` (AES_CM_128_HMAC_SHA1_80, the suite our
//! SDES legs use). The server side of each does what `media`'s relay does
//! per packet on one leg: receive, check (unprotect), rewrite the SSRC,
//! (protect), send. No ICE and no handshake: the "offer" is the client's
//! address, the "answer" the server's.

use std::net::SocketAddr;
use std::sync::Arc;

use media::srtp::{CryptoSuite, MasterKey, SrtpReceiver, SrtpSender};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::{ClientShared, FRAME, PAYLOAD_LEN, Signal, stats};

const HEADER_LEN: usize = 12;
const SUITE: CryptoSuite = CryptoSuite::AesCm128HmacSha1_80;

/// The key of the browser → server direction, and of the way back.
fn client_key() -> MasterKey {
    MasterKey::new([1; 16], [2; 14])
}
fn server_key() -> MasterKey {
    MasterKey::new([3; 16], [4; 14])
}

pub async fn server_leg(
    srtp: bool,
    offer: String,
    answer: oneshot::Sender<String>,
) -> Result<(), String> {
    let peer: SocketAddr = offer.trim().parse().map_err(|e| format!("offer: {e}"))?;
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let _ = answer.send(local.to_string());
    stats::server_connected();
    let mut receiver = SrtpReceiver::new(SUITE, &client_key());
    let mut sender = SrtpSender::new(SUITE, &server_key());
    let ssrc = 0x5e_17_e5_01u32.to_be_bytes();
    let mut wire = [0u8; 1500];
    let mut packet = [0u8; 1500];
    loop {
        let (n, from) = socket
            .recv_from(&mut wire)
            .await
            .map_err(|e| e.to_string())?;
        if from != peer {
            continue;
        }
        let len = if srtp {
            match receiver.unprotect(&wire[..n], &mut packet) {
                Ok(len) => len,
                Err(_) => continue,
            }
        } else {
            packet[..n].copy_from_slice(&wire[..n]);
            n
        };
        if len < HEADER_LEN {
            continue;
        }
        stats::server_received();
        packet[8..12].copy_from_slice(&ssrc);
        let len = if srtp {
            sender
                .protect(&mut packet, len)
                .map_err(|e| format!("{e:?}"))?
        } else {
            len
        };
        socket
            .send_to(&packet[..len], peer)
            .await
            .map_err(|e| e.to_string())?;
        stats::server_sent();
    }
}

pub async fn client_leg(
    srtp: bool,
    signal: Signal,
    shared: Arc<ClientShared>,
) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let answer = signal(local.to_string()).await.map_err(|e| e.to_string())?;
    let server: SocketAddr = answer.trim().parse().map_err(|e| format!("answer: {e}"))?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    shared.counters.connected_one();

    let mut start = shared.start.clone();
    start.wait_for(|s| *s).await.map_err(|e| e.to_string())?;
    let mut sender = SrtpSender::new(SUITE, &client_key());
    let mut receiver = SrtpReceiver::new(SUITE, &server_key());
    let mut ticks = tokio::time::interval(FRAME);
    let mut sequence: u16 = 0;
    let mut wire = [0u8; 1500];
    let mut out = [0u8; 1500];
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = ticks.tick(), if sent < shared.frames => {
                let mut packet = [0x55u8; 1500];
                packet[..HEADER_LEN].fill(0);
                packet[0] = 0x80;
                packet[2..4].copy_from_slice(&sequence.to_be_bytes());
                packet[4..8].copy_from_slice(&(160 * u32::from(sequence)).to_be_bytes());
                packet[8..12].copy_from_slice(&local.port().to_be_bytes().repeat(2));
                let len = HEADER_LEN + PAYLOAD_LEN;
                let len = if srtp { sender.protect(&mut packet, len).map_err(|e| format!("{e:?}"))? } else { len };
                socket.send(&packet[..len]).await.map_err(|e| e.to_string())?;
                sequence = sequence.wrapping_add(1);
                sent += 1;
                shared.counters.sent_one();
            }
            r = socket.recv(&mut wire) => {
                let n = r.map_err(|e| e.to_string())?;
                let ok = if srtp { receiver.unprotect(&wire[..n], &mut out).is_ok() } else { n >= HEADER_LEN };
                if ok {
                    shared.counters.received_one();
                }
            }
        }
    }
}
