//! The relay: one thread polling every socket, and a queue of packets to
//! send when their delay is over.
//!
//! ```text
//!   client ──SIP──▶ listen ─┐                 ┌─ upstream(client) ──SIP──▶ daemon
//!   client ◀──SIP── listen ◀┴── (impaired) ◀──┴─ upstream(client) ◀──SIP── daemon
//!   client ◀──RTP── media B ◀── (impaired) ◀── media A ◀──RTP── daemon
//!   client ──RTP──▶ media B ──▶ (impaired) ──▶ media A ──RTP──▶ daemon
//! ```
//!
//! Each client address gets an upstream socket of its own, so the daemon
//! sees one source per client and answers it there. Each SDP media line of
//! a call (by Call-ID and index) gets a pair of sockets: A faces the
//! daemon and stands in the SDP the daemon receives for the client's
//! address, B faces the client and stands in the SDP the client receives
//! for the daemon's. See the README for why.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::impair::{Impairment, Rng};
use crate::sip::{self, Rewrite};

/// How the relay is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where clients send SIP.
    pub listen: SocketAddr,
    /// The daemon's SIP address.
    pub server: SocketAddr,
    /// What happens to SIP datagrams, both ways.
    pub signalling: Impairment,
    /// What happens to RTP (and anything else on a media socket), both ways.
    pub media: Impairment,
    /// The seed of the random draws.
    pub seed: u64,
    /// A call's media sockets go when nothing used them for this long.
    pub idle: Duration,
    /// Counters to standard error this often (zero: never).
    pub stats_every: Duration,
}

const LISTEN: Token = Token(0);
/// How long a call's media sockets stay after its end, for late packets.
const LINGER: Duration = Duration::from_secs(3);
/// How often idle sockets are looked for.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// What a socket is for.
#[derive(Debug, Clone)]
enum Role {
    Listen,
    /// Talks to the daemon for one client.
    Upstream {
        client: SocketAddr,
    },
    /// A media socket facing the daemon (`daemon_side`) or the client.
    Media {
        call: MediaKey,
        daemon_side: bool,
    },
}

type MediaKey = (String, usize);

#[derive(Debug)]
struct Pair {
    /// Faces the daemon.
    a: Token,
    /// Faces the client.
    b: Token,
    /// Where the client wants media (its SDP, else learned).
    client: Option<SocketAddr>,
    /// Where the daemon wants media.
    daemon: Option<SocketAddr>,
    last_used: Instant,
    ends_at: Option<Instant>,
}

/// A packet waiting for its delay.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: Instant,
    sequence: u64,
    from: Token,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// Packets and what became of them, per kind.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    received: u64,
    sent: u64,
    lost: u64,
    /// Media with nowhere to go yet, or a socket that refused a send.
    unrouted: u64,
}

/// See the module docs.
pub struct Relay {
    config: Config,
    poll: Poll,
    sockets: HashMap<Token, (UdpSocket, Role, Instant)>,
    upstreams: HashMap<SocketAddr, Token>,
    pairs: HashMap<MediaKey, Pair>,
    next_token: usize,
    queue: BinaryHeap<Reverse<Pending>>,
    sequence: u64,
    rng: Rng,
    sip: Counters,
    rtp: Counters,
    listen_addr: SocketAddr,
}

impl Relay {
    /// Binds the listening socket.
    pub fn bind(config: Config) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listen = UdpSocket::bind(config.listen)?;
        poll.registry()
            .register(&mut listen, LISTEN, Interest::READABLE)?;
        let listen_addr = listen.local_addr()?;
        let mut sockets = HashMap::new();
        sockets.insert(LISTEN, (listen, Role::Listen, Instant::now()));
        Ok(Relay {
            rng: Rng::new(config.seed),
            config,
            poll,
            sockets,
            upstreams: HashMap::new(),
            pairs: HashMap::new(),
            next_token: 1,
            queue: BinaryHeap::new(),
            sequence: 0,
            sip: Counters::default(),
            rtp: Counters::default(),
            listen_addr,
        })
    }

    /// Where clients send SIP.
    pub fn local_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Relays until an I/O error of the poll itself.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut buffer = vec![0u8; 65_536];
        let mut housekeeping = Instant::now() + HOUSEKEEPING;
        let mut stats_at = Instant::now() + self.config.stats_every;
        loop {
            let now = Instant::now();
            let next = self
                .queue
                .peek()
                .map_or(housekeeping, |Reverse(first)| first.at.min(housekeeping));
            let timeout = next.saturating_duration_since(now);
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            for event in &events {
                self.drain(event.token(), &mut buffer);
            }
            let now = Instant::now();
            self.send_due(now);
            if now >= housekeeping {
                self.close_idle(now);
                housekeeping = now + HOUSEKEEPING;
                if !self.config.stats_every.is_zero() && now >= stats_at {
                    self.print_stats();
                    stats_at = now + self.config.stats_every;
                }
            }
        }
    }

    fn print_stats(&self) {
        let line = |c: Counters| {
            format!(
                "received={} sent={} lost={} unrouted={}",
                c.received, c.sent, c.lost, c.unrouted
            )
        };
        eprintln!(
            "stats sip {} rtp {} calls={} clients={}",
            line(self.sip),
            line(self.rtp),
            self.pairs.len(),
            self.upstreams.len()
        );
    }

    /// Reads every datagram waiting on `token` (mio is edge-triggered).
    fn drain(&mut self, token: Token, buffer: &mut [u8]) {
        loop {
            let Some((socket, role, _)) = self.sockets.get(&token) else {
                return;
            };
            let role = role.clone();
            let (length, source) = match socket.recv_from(buffer) {
                Ok(received) => received,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                // An ICMP error from an earlier send, and the like.
                Err(_) => continue,
            };
            let datagram = buffer[..length].to_vec();
            if let Some((_, _, used)) = self.sockets.get_mut(&token) {
                *used = Instant::now();
            }
            match role {
                Role::Listen => self.signalling_from_client(source, datagram),
                Role::Upstream { client } => self.signalling_from_daemon(client, datagram),
                Role::Media { call, daemon_side } => {
                    self.media(&call, daemon_side, source, datagram)
                }
            }
        }
    }

    fn signalling_from_client(&mut self, client: SocketAddr, datagram: Vec<u8>) {
        self.sip.received += 1;
        let Ok(upstream) = self.upstream(client) else {
            self.sip.unrouted += 1;
            return;
        };
        let contact = self
            .sockets
            .get(&upstream)
            .and_then(|(s, _, _)| s.local_addr().ok());
        let bytes = self.rewrite(&datagram, true, contact);
        let server = self.config.server;
        self.schedule(upstream, server, bytes, true);
    }

    fn signalling_from_daemon(&mut self, client: SocketAddr, datagram: Vec<u8>) {
        self.sip.received += 1;
        let contact = Some(self.listen_addr);
        let bytes = self.rewrite(&datagram, false, contact);
        self.schedule(LISTEN, client, bytes, true);
    }

    /// Rewrites a SIP message going to the daemon (`to_daemon`) or to a
    /// client, making the call's media sockets as its SDP asks.
    fn rewrite(
        &mut self,
        datagram: &[u8],
        to_daemon: bool,
        contact: Option<SocketAddr>,
    ) -> Vec<u8> {
        let summary = sip::summary(datagram);
        let Some(call_id) = summary.call_id else {
            return datagram.to_vec();
        };
        let now = Instant::now();
        let mut media = |index: usize, original: SocketAddr| {
            let Ok(pair) = self.pair(&(call_id.clone(), index)) else {
                self.rtp.unrouted += 1;
                return None;
            };
            pair.last_used = now;
            let facing = if to_daemon {
                pair.client = Some(original);
                pair.a
            } else {
                pair.daemon = Some(original);
                pair.b
            };
            self.sockets.get(&facing)?.0.local_addr().ok()
        };
        let rewritten = sip::rewrite(
            datagram,
            &mut Rewrite {
                add_rport: to_daemon,
                contact,
                media: &mut media,
            },
        );
        if summary.ends_call {
            for (key, pair) in self.pairs.iter_mut() {
                if key.0 == call_id {
                    pair.ends_at.get_or_insert(now + LINGER);
                }
            }
        }
        rewritten.unwrap_or_else(|| datagram.to_vec())
    }

    fn media(&mut self, call: &MediaKey, daemon_side: bool, source: SocketAddr, datagram: Vec<u8>) {
        self.rtp.received += 1;
        let now = Instant::now();
        let Some(pair) = self.pairs.get_mut(call) else {
            return;
        };
        pair.last_used = now;
        // From the daemon to the client (learning either side's address
        // from the first packet if its SDP did not say it).
        let (from, to) = if daemon_side {
            pair.daemon.get_or_insert(source);
            (pair.b, pair.client)
        } else {
            pair.client.get_or_insert(source);
            (pair.a, pair.daemon)
        };
        match to {
            Some(to) => self.schedule(from, to, datagram, false),
            None => self.rtp.unrouted += 1,
        }
    }

    fn schedule(&mut self, from: Token, to: SocketAddr, bytes: Vec<u8>, signalling: bool) {
        let impairment = if signalling {
            self.config.signalling
        } else {
            self.config.media
        };
        let counters = if signalling {
            &mut self.sip
        } else {
            &mut self.rtp
        };
        let Some(delay) = impairment.decide(&mut self.rng) else {
            counters.lost += 1;
            return;
        };
        self.sequence += 1;
        let pending = Pending {
            at: Instant::now() + delay,
            sequence: self.sequence,
            from,
            to,
            bytes,
        };
        if delay.is_zero() {
            self.send(pending, signalling);
        } else {
            self.queue.push(Reverse(pending));
        }
    }

    fn send_due(&mut self, now: Instant) {
        while self
            .queue
            .peek()
            .is_some_and(|Reverse(first)| first.at <= now)
        {
            if let Some(Reverse(pending)) = self.queue.pop() {
                let signalling = matches!(
                    self.sockets.get(&pending.from),
                    Some((_, Role::Listen | Role::Upstream { .. }, _))
                );
                self.send(pending, signalling);
            }
        }
    }

    fn send(&mut self, pending: Pending, signalling: bool) {
        let counters = if signalling {
            &mut self.sip
        } else {
            &mut self.rtp
        };
        match self.sockets.get(&pending.from) {
            Some((socket, _, _)) if socket.send_to(&pending.bytes, pending.to).is_ok() => {
                counters.sent += 1;
            }
            _ => counters.unrouted += 1,
        }
    }

    fn open(&mut self, role: Role) -> io::Result<Token> {
        let mut socket = UdpSocket::bind(SocketAddr::new(self.ip(), 0))?;
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)?;
        self.sockets.insert(token, (socket, role, Instant::now()));
        Ok(token)
    }

    fn ip(&self) -> IpAddr {
        self.listen_addr.ip()
    }

    fn upstream(&mut self, client: SocketAddr) -> io::Result<Token> {
        if let Some(&token) = self.upstreams.get(&client) {
            return Ok(token);
        }
        let token = self.open(Role::Upstream { client })?;
        self.upstreams.insert(client, token);
        Ok(token)
    }

    fn pair(&mut self, key: &MediaKey) -> io::Result<&mut Pair> {
        if !self.pairs.contains_key(key) {
            let a = self.open(Role::Media {
                call: key.clone(),
                daemon_side: true,
            })?;
            let b = match self.open(Role::Media {
                call: key.clone(),
                daemon_side: false,
            }) {
                Ok(b) => b,
                Err(error) => {
                    self.close(a);
                    return Err(error);
                }
            };
            self.pairs.insert(
                key.clone(),
                Pair {
                    a,
                    b,
                    client: None,
                    daemon: None,
                    last_used: Instant::now(),
                    ends_at: None,
                },
            );
        }
        self.pairs
            .get_mut(key)
            .ok_or_else(|| io::Error::other("the pair just made"))
    }

    fn close(&mut self, token: Token) {
        if let Some((mut socket, _, _)) = self.sockets.remove(&token) {
            let _ = self.poll.registry().deregister(&mut socket);
        }
    }

    /// Lets go of the media sockets of ended or idle calls, and of clients
    /// gone quiet.
    fn close_idle(&mut self, now: Instant) {
        let idle = self.config.idle;
        let done: Vec<MediaKey> = self
            .pairs
            .iter()
            .filter(|(_, pair)| {
                pair.ends_at.is_some_and(|at| at <= now)
                    || now.saturating_duration_since(pair.last_used) > idle
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in done {
            if let Some(pair) = self.pairs.remove(&key) {
                self.close(pair.a);
                self.close(pair.b);
            }
        }
        let quiet: Vec<(SocketAddr, Token)> = self
            .upstreams
            .iter()
            .filter(|(_, token)| {
                self.sockets
                    .get(token)
                    .is_some_and(|(_, _, used)| now.saturating_duration_since(*used) > idle * 4)
            })
            .map(|(client, token)| (*client, *token))
            .collect();
        for (client, token) in quiet {
            self.upstreams.remove(&client);
            self.close(token);
        }
    }
}
