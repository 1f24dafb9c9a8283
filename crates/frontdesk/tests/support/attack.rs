//! An attacker on another loopback address who knows nothing of the calls:
//! a blind spray of valid RTP packets at every even port of the daemon's
//! RTP range, from several sockets of its own, recording anything that
//! comes back to it.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The payload byte of the attacker's packets (160 of them): no prompt and
/// no test phone sends a packet made of it alone.
pub const MARK: u8 = 0xA7;

/// Where the spray comes from: not trusted, not the patient's, not the agent's.
pub const ATTACKER: &str = "127.0.0.2";

/// A running spray; it stops when dropped or after a bound.
#[derive(Debug)]
pub struct Spray {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Spray {
    /// Every `every`, one packet to each even port of `low..=high`, taking
    /// the attacker's `sockets` in turn (each a source of its own), with
    /// random-looking SSRCs and sequence numbers, as a scanner would.
    pub fn start(ports: (u16, u16), sockets: usize, every: Duration) -> Spray {
        let sockets: Vec<UdpSocket> = (0..sockets.max(1))
            .map(|_| {
                let socket = UdpSocket::bind((ATTACKER, 0)).expect("bind on 127.0.0.2");
                socket.set_nonblocking(true).expect("a non-blocking socket");
                socket
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, sent, received) =
                (Arc::clone(&stop), Arc::clone(&sent), Arc::clone(&received));
            std::thread::spawn(move || {
                let mut state: u32 = 0x9E37_79B9;
                let mut next = Instant::now();
                let mut buffer = [0u8; 2048];
                let mut turn = 0usize;
                // Bounded: ends with the test at the latest.
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    for socket in &sockets {
                        while socket.recv_from(&mut buffer).is_ok() {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if Instant::now() < next {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    next += every;
                    let first = ports.0 + ports.0 % 2;
                    for port in (first..ports.1).step_by(2) {
                        // xorshift: a different SSRC and sequence each time.
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        let mut packet = vec![0x80, 0];
                        packet.extend_from_slice(&(state as u16).to_be_bytes());
                        packet.extend_from_slice(&state.rotate_left(7).to_be_bytes());
                        packet.extend_from_slice(&state.to_be_bytes());
                        packet.extend_from_slice(&[MARK; 160]);
                        let socket = &sockets[turn % sockets.len()];
                        turn += 1;
                        if socket.send_to(&packet, ("127.0.0.1", port)).is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        Spray {
            stop,
            sent,
            received,
            thread: Some(thread),
        }
    }

    /// Packets sprayed so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Packets that reached the attacker so far.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// Stops the spray; returns the packets sent and those that reached
    /// the attacker.
    pub fn stop(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        (self.sent(), self.received())
    }
}

impl Drop for Spray {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
