//! The RTP port pool for `--rtp-ports LO-HI`: even ports for RTP, the odd
//! port above each kept free for RTCP (RFC 3550 §11). Allocating binds a
//! UDP socket; the port goes back to the pool when the [`PortLease`] is
//! dropped (at the end of the call's media task).
//!
//! Ports are unpredictable: each lease is drawn at random (from the
//! thread's cryptographic RNG) among the free ports, so one call's port
//! tells nothing of the next patient's. A port freed by a call waits in
//! quarantine for [`PortPool::with_quarantine`]'s time before it can be
//! leased again, so the ended call's last packets (its phone has not seen
//! the BYE yet) cannot reach the next call; only when no other port is
//! free is the longest-quarantined one taken early. A port that another
//! program holds is skipped and retried later.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use socket2::{SockAddr, SockRef};
use tokio::net::UdpSocket;

use crate::error::PortPoolError;

/// An inclusive port range with at least one RTP/RTCP pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    low: u16,
    high: u16,
}

impl PortRange {
    /// The default of `frontdesk run` (DESIGN.md).
    pub const DEFAULT: PortRange = PortRange {
        low: 20_000,
        high: 29_999,
    };

    /// A range; 1024 ≤ `low`, and it must hold an even port and the odd one after it.
    pub fn new(low: u16, high: u16) -> Result<PortRange, PortPoolError> {
        let range = PortRange { low, high };
        if low < 1024 || low > high || range.rtp_ports().next().is_none() {
            return Err(PortPoolError::InvalidRange(format!("{low}-{high}")));
        }
        Ok(range)
    }

    /// Lowest port.
    pub fn low(&self) -> u16 {
        self.low
    }

    /// Highest port.
    pub fn high(&self) -> u16 {
        self.high
    }

    /// The RTP ports: even, with their RTCP port inside the range.
    pub fn rtp_ports(&self) -> impl Iterator<Item = u16> + use<> {
        let first = u32::from(self.low) + u32::from(self.low % 2);
        let high = u32::from(self.high);
        (first..high).step_by(2).map(|port| port as u16)
    }
}

impl Default for PortRange {
    fn default() -> PortRange {
        PortRange::DEFAULT
    }
}

impl FromStr for PortRange {
    type Err = PortPoolError;

    /// Parses `LO-HI`, e.g. `20000-29999`.
    fn from_str(text: &str) -> Result<PortRange, PortPoolError> {
        let invalid = || PortPoolError::InvalidRange(text.to_owned());
        let (low, high) = text.trim().split_once('-').ok_or_else(invalid)?;
        let low = low.trim().parse().map_err(|_| invalid())?;
        let high = high.trim().parse().map_err(|_| invalid())?;
        PortRange::new(low, high).map_err(|_| invalid())
    }
}

/// The pool; cheap to clone and share between calls.
#[derive(Clone, Debug)]
pub struct PortPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    ip: IpAddr,
    range: PortRange,
    quarantine: Duration,
    // A std Mutex: held to draw or return one port, never across `.await`
    // or a bind, so contention is a few instructions per call set-up.
    ports: Mutex<Ports>,
    leased: AtomicUsize,
}

/// The ports not leased: free ones in no order (drawn at random), and
/// freed ones in the order they were freed, each with the time it may be
/// leased again.
#[derive(Debug, Default)]
struct Ports {
    free: Vec<u16>,
    quarantined: VecDeque<(Instant, u16)>,
}

impl Ports {
    /// Moves the ports whose quarantine is over to the free ones.
    fn release(&mut self, now: Instant) {
        while let Some(&(until, port)) = self.quarantined.front() {
            if until > now {
                break;
            }
            self.quarantined.pop_front();
            self.free.push(port);
        }
    }

    /// A random free port; else the port quarantined longest.
    fn draw(&mut self, now: Instant, rng: &mut impl Rng) -> Option<u16> {
        self.release(now);
        if self.free.is_empty() {
            return self.quarantined.pop_front().map(|(_, port)| port);
        }
        let at = rng.random_range(0..self.free.len());
        Some(self.free.swap_remove(at))
    }

    fn len(&self) -> usize {
        self.free.len() + self.quarantined.len()
    }
}

impl PoolInner {
    fn ports(&self) -> std::sync::MutexGuard<'_, Ports> {
        // A panic while holding the lock cannot leave the lists inconsistent.
        self.ports.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Draws per allocation before giving up: a port another program holds is
/// rare, and each failed draw costs a system call.
const MAX_ATTEMPTS: usize = 64;

/// One leased port with its bound socket; dropping it returns the port.
///
/// One file descriptor per leg. Sending goes straight to the system call
/// through `socket2`'s borrowed view of the socket (non-blocking: a full
/// buffer drops the packet, as RTP allows): tokio's own `try_send_to`
/// reports `WouldBlock` until its reactor has seen the socket writable,
/// which would drop a call's first packets, and a second descriptor for
/// sending, as before, doubled the descriptors per call and ran a loaded
/// daemon out of them.
#[derive(Debug)]
pub struct PortLease {
    socket: UdpSocket,
    port: u16,
    pool: Arc<PoolInner>,
}

impl PortPool {
    /// How long a freed port waits before it is leased again, by default.
    pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(10);

    /// A pool of `range` on `ip` (the address RTP sockets bind to), with
    /// the default quarantine.
    pub fn new(ip: IpAddr, range: PortRange) -> PortPool {
        PortPool::with_quarantine(ip, range, PortPool::DEFAULT_QUARANTINE)
    }

    /// A pool whose freed ports wait `quarantine` before they are leased
    /// again (unless no other port is free).
    pub fn with_quarantine(ip: IpAddr, range: PortRange, quarantine: Duration) -> PortPool {
        PortPool {
            inner: Arc::new(PoolInner {
                ip,
                range,
                quarantine,
                ports: Mutex::new(Ports {
                    free: range.rtp_ports().collect(),
                    quarantined: VecDeque::new(),
                }),
                leased: AtomicUsize::new(0),
            }),
        }
    }

    /// Leases a random free port and binds its socket. Must be called
    /// inside a tokio runtime (the socket registers with its reactor).
    ///
    /// A port another program holds is skipped (and stays in the pool); an
    /// error that is not about the port (no file descriptor left) ends the
    /// attempt at once: retrying other ports would only spin.
    pub fn allocate(&self) -> Result<PortLease, PortPoolError> {
        let attempts = self.inner.ports().len().min(MAX_ATTEMPTS);
        let mut rng = rand::rng();
        let mut busy = Vec::new();
        let mut outcome = None;
        for _ in 0..attempts {
            let now = Instant::now();
            let Some(port) = self.inner.ports().draw(now, &mut rng) else {
                break;
            };
            match bind(SocketAddr::new(self.inner.ip, port)) {
                Ok(socket) => {
                    self.inner.leased.fetch_add(1, Ordering::Relaxed);
                    outcome = Some(Ok(PortLease {
                        socket,
                        port,
                        pool: Arc::clone(&self.inner),
                    }));
                    break;
                }
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::debug!(port, %error, "RTP port busy, skipped");
                    busy.push(port);
                }
                Err(error) => {
                    busy.push(port);
                    outcome = Some(Err(PortPoolError::Socket(error.to_string())));
                    break;
                }
            }
        }
        self.inner.ports().free.extend(busy);
        if let Some(outcome) = outcome {
            return outcome;
        }
        Err(PortPoolError::Exhausted {
            low: self.inner.range.low,
            high: self.inner.range.high,
            leased: self.leased(),
        })
    }

    /// Ports leased right now.
    pub fn leased(&self) -> usize {
        self.inner.leased.load(Ordering::Relaxed)
    }

    /// Ports not leased right now (free or in quarantine).
    pub fn available(&self) -> usize {
        self.inner.ports().len()
    }

    /// The address sockets bind to.
    pub fn ip(&self) -> IpAddr {
        self.inner.ip
    }

    /// The range.
    pub fn range(&self) -> PortRange {
        self.inner.range
    }
}

fn bind(address: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(address)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

impl PortLease {
    /// The RTP port (put it in the SDP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.pool.ip, self.port)
    }

    /// Waits for a datagram.
    pub async fn recv_from(&self, buffer: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buffer).await
    }

    /// A datagram if one is waiting; `WouldBlock` otherwise.
    pub fn try_recv_from(&self, buffer: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.socket.try_recv_from(buffer)
    }

    /// Sends a datagram now, without waiting: a full socket buffer is
    /// `WouldBlock` and the packet is the caller's to drop (RTP tolerates loss).
    pub fn try_send_to(&self, datagram: &[u8], destination: SocketAddr) -> std::io::Result<usize> {
        SockRef::from(&self.socket).send_to(datagram, &SockAddr::from(destination))
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.leased.fetch_sub(1, Ordering::Relaxed);
        let until = Instant::now() + self.pool.quarantine;
        self.pool.ports().quarantined.push_back((until, self.port));
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn parses_ranges() {
        let range: PortRange = "20000-29999".parse().unwrap();
        assert_eq!((range.low(), range.high()), (20_000, 29_999));
        assert_eq!(range.rtp_ports().count(), 5000);
        assert_eq!(range, PortRange::default());
        let odd: PortRange = " 30001 - 30006 ".parse().unwrap();
        assert_eq!(odd.rtp_ports().collect::<Vec<_>>(), [30_002, 30_004]);
        assert_eq!(
            "65534-65535"
                .parse::<PortRange>()
                .unwrap()
                .rtp_ports()
                .collect::<Vec<_>>(),
            [65_534]
        );
        for bad in [
            "",
            "20000",
            "abc-def",
            "30000-20000",
            "20000-20000",
            "20001-20002",
            "100-200",
            "20000-70000",
        ] {
            let error = bad.parse::<PortRange>().unwrap_err();
            assert!(
                matches!(&error, PortPoolError::InvalidRange(text) if text == bad),
                "{bad}: {error}"
            );
            assert!(error.to_string().contains("expected LO-HI"));
        }
    }

    #[tokio::test]
    async fn many_calls_leak_no_port() {
        let pool = PortPool::new(LOOPBACK, PortRange::new(42_000, 42_019).unwrap());
        assert_eq!(pool.available(), 10);
        let mut ports = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let caller = pool.allocate().unwrap();
            let agent = pool.allocate().unwrap();
            assert_eq!(caller.port() % 2, 0);
            assert_ne!(caller.port(), agent.port());
            assert_eq!(caller.socket.local_addr().unwrap(), caller.local_addr());
            assert_eq!(pool.leased(), 2);
            ports.insert(caller.port());
            ports.insert(agent.port());
        }
        assert_eq!(pool.leased(), 0);
        assert_eq!(pool.available(), 10);
        // Random draws and the quarantine spread the calls over every port.
        assert_eq!(ports.len(), 10);
    }

    #[tokio::test]
    async fn exhaustion_is_a_clear_error_and_freeing_recovers() {
        let pool = PortPool::new(LOOPBACK, PortRange::new(42_100, 42_105).unwrap());
        let mut leases: Vec<PortLease> = std::iter::from_fn(|| pool.allocate().ok()).collect();
        assert!(!leases.is_empty());
        let error = pool.allocate().unwrap_err();
        assert!(
            matches!(error, PortPoolError::Exhausted { low: 42_100, high: 42_105, leased } if leased == leases.len())
        );
        assert!(
            error
                .to_string()
                .starts_with("no free RTP port in 42100-42105")
        );
        let freed = leases.pop().unwrap().port();
        assert_eq!(pool.allocate().unwrap().port(), freed);
    }

    #[test]
    fn leases_are_drawn_at_random_and_freed_ports_wait_in_quarantine() {
        use rand::SeedableRng;
        let t0 = Instant::now();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut ports = Ports {
            free: PortRange::new(40_000, 40_199)
                .unwrap()
                .rtp_ports()
                .collect(),
            quarantined: VecDeque::new(),
        };
        let drawn: Vec<u16> = (0..20).map(|_| ports.draw(t0, &mut rng).unwrap()).collect();
        // Not in order: consecutive leases are not neighbours.
        let in_order = drawn
            .windows(2)
            .filter(|pair| pair[1] == pair[0] + 2)
            .count();
        assert!(in_order <= 2, "{drawn:?}");
        // A freed port is not drawn again before its quarantine ends, while
        // other ports are free.
        let freed = drawn[0];
        ports
            .quarantined
            .push_back((t0 + Duration::from_secs(10), freed));
        for _ in 0..80 {
            assert_ne!(
                ports.draw(t0 + Duration::from_secs(9), &mut rng),
                Some(freed)
            );
        }
        assert!(ports.free.is_empty());
        // With nothing else free, the longest-quarantined port is taken early.
        assert_eq!(
            ports.draw(t0 + Duration::from_secs(9), &mut rng),
            Some(freed)
        );
        assert_eq!(ports.draw(t0, &mut rng), None);
        // Once its time is over it is free again.
        ports
            .quarantined
            .push_back((t0 + Duration::from_secs(10), freed));
        ports.release(t0 + Duration::from_secs(10));
        assert_eq!(ports.free, [freed]);
    }

    #[tokio::test]
    async fn consecutive_leases_do_not_predict_each_other() {
        let pool = PortPool::new(LOOPBACK, PortRange::new(42_300, 42_499).unwrap());
        let ports: Vec<u16> = (0..10).map(|_| pool.allocate().unwrap().port()).collect();
        // Each lease is dropped at once; the quarantine keeps it from the next.
        assert!(ports.windows(2).all(|pair| pair[0] != pair[1]), "{ports:?}");
        let in_order = ports
            .windows(2)
            .filter(|pair| pair[1] == pair[0] + 2)
            .count();
        assert!(in_order <= 2, "{ports:?}");
    }

    #[tokio::test]
    async fn a_socket_that_cannot_be_made_is_not_retried_on_every_port() {
        // Not an address of this host: every bind would fail the same way.
        let elsewhere = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let pool = PortPool::new(elsewhere, PortRange::new(42_400, 42_599).unwrap());
        let error = pool.allocate().unwrap_err();
        assert!(matches!(error, PortPoolError::Socket(_)), "{error}");
        assert_eq!((pool.available(), pool.leased()), (100, 0), "no port lost");
    }

    #[tokio::test]
    async fn a_port_held_elsewhere_is_skipped() {
        let squatter = std::net::UdpSocket::bind((LOOPBACK, 42_200)).unwrap();
        let pool = PortPool::new(LOOPBACK, PortRange::new(42_200, 42_203).unwrap());
        let lease = pool.allocate().unwrap();
        assert_eq!(lease.port(), 42_202);
        assert!(pool.allocate().is_err());
        drop(squatter);
        assert_eq!(pool.allocate().unwrap().port(), 42_200);
    }
}
