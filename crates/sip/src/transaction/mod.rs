//! RFC 3261 §17 transactions, sans-IO.
//!
//! A [`TransactionLayer`] holds every client and server transaction of one
//! SIP endpoint. It reads no clock and owns no socket. The run loop:
//!
//! 1. feed it what arrived ([`TransactionLayer::handle_request`],
//!    [`TransactionLayer::handle_response`]) and what the transaction user
//!    decided ([`TransactionLayer::send_request`],
//!    [`TransactionLayer::respond`], [`TransactionLayer::cancel`]), each
//!    with the current `now`;
//! 2. drain [`TransactionLayer::poll_transmit`] (bytes for the transport)
//!    and [`TransactionLayer::poll_event`] (news for the transaction user)
//!    until both return `None`;
//! 3. sleep until [`TransactionLayer::poll_timeout`], then call
//!    [`TransactionLayer::handle_timeout`].
//!
//! Retransmissions happen over UDP only; retransmitted requests are
//! absorbed (a completed non-INVITE server transaction keeps only what
//! answers them, see `completed`); the ACK for a non-2xx final response is built inside the
//! client INVITE transaction; a 2xx to INVITE is retransmitted until its
//! ACK arrives (§13.3.1.4) and RFC 6026's Accepted state absorbs late
//! copies. CANCEL (§9.2) gets 200 and its INVITE 487.
#![warn(clippy::disallowed_methods)]

mod client;
mod completed;
mod delta;
mod server;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;
use rand::SeedableRng;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::SmallRng;

use crate::message::Method;
use crate::message::uri::Host;
use crate::message::validate::{ValidRequest, ValidResponse};
use crate::peer::{Peer, TransportKind};

pub use timer::{Timer, TimerValues};

use client::ClientTransaction;
use completed::{CompletedRequests, FingerprintHasher};
use server::ServerTransaction;
use timer::TimerHeap;

/// Names one server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTransactionId(u64);

/// Names one client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTransactionId(u64);

impl ServerTransactionId {
    /// An id with this number: for a transaction user's tests, which play
    /// the transaction layer (the layer numbers its own).
    pub const fn from_raw(number: u64) -> Self {
        ServerTransactionId(number)
    }
}

impl ClientTransactionId {
    /// An id with this number: for a transaction user's tests, which play
    /// the transaction layer (the layer numbers its own). The endpoint's
    /// driver also gets an id back this way from the number it tagged a
    /// request with, when the transport could not deliver it.
    pub const fn from_raw(number: u64) -> Self {
        ClientTransactionId(number)
    }

    /// The id as a number, to tag a message with (the transport hands it
    /// back when it cannot deliver the message).
    #[cfg(feature = "runtime")]
    pub(crate) fn tag(self) -> u64 {
        self.0
    }
}

/// Either kind of transaction, for timers and transmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionId {
    /// A server transaction.
    Server(ServerTransactionId),
    /// A client transaction.
    Client(ClientTransactionId),
}

/// Our own address as we put it in Via, per transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentBy {
    /// The transport.
    pub transport: TransportKind,
    /// The host (the advertised address).
    pub host: Host,
    /// The port.
    pub port: u16,
}

/// How a [`TransactionLayer`] is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// T1, T2, T4.
    pub timers: TimerValues,
    /// Our sent-by for each transport we send on.
    pub sent_by: Vec<SentBy>,
    /// Seed for branches and tags (tests pass a fixed one).
    pub seed: u64,
}

/// Bytes for the transport to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub peer: Peer,
    /// The encoded message.
    pub bytes: Bytes,
    /// The client transaction that sent it, so a transport failure can be
    /// reported with [`TransactionLayer::handle_transport_error`].
    pub transaction: Option<ClientTransactionId>,
}

/// News for the transaction user.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new request (never ACK or CANCEL: see `Ack` and `Cancelled`).
    Request {
        /// Answer through this transaction.
        transaction: ServerTransactionId,
        /// The request, with `received`/`rport` filled in its top Via.
        request: Box<ValidRequest>,
        /// Where it came from.
        source: Peer,
    },
    /// A CANCEL matched this INVITE while it was unanswered: 200 went to
    /// the CANCEL and 487 to the INVITE (RFC 3261 §9.2).
    Cancelled {
        /// The INVITE's transaction.
        transaction: ServerTransactionId,
        /// The INVITE's Call-ID.
        call_id: ByteString,
    },
    /// The ACK for a 2xx we sent on this INVITE transaction.
    Ack {
        /// The INVITE's transaction.
        transaction: ServerTransactionId,
        /// The ACK.
        ack: Box<ValidRequest>,
        /// Where it came from.
        source: Peer,
    },
    /// No ACK came for the 2xx within 64 × T1 (§13.3.1.4): the UAS core
    /// should end the dialog with BYE.
    AckTimeout {
        /// The INVITE's transaction.
        transaction: ServerTransactionId,
        /// The INVITE's Call-ID.
        call_id: ByteString,
    },
    /// An ACK that matches no transaction (e.g. a late one).
    StrayAck {
        /// The ACK.
        ack: Box<ValidRequest>,
        /// Where it came from.
        source: Peer,
    },
    /// A response to one of our requests. 2xx responses to INVITE are
    /// passed up every time they arrive so the caller can ACK each copy.
    Response {
        /// The transaction.
        transaction: ClientTransactionId,
        /// The response.
        response: Box<ValidResponse>,
        /// Where it came from.
        source: Peer,
    },
    /// A 2xx to INVITE that matches no transaction (a fork, or the one
    /// that crossed our CANCEL): ACK it, then end that dialog.
    Stray2xx {
        /// The response.
        response: Box<ValidResponse>,
        /// Where it came from.
        source: Peer,
    },
    /// Timer B or F fired: no final response (treat as 408, §8.1.3.1).
    Timeout {
        /// The transaction.
        transaction: ClientTransactionId,
        /// The request's Call-ID.
        call_id: ByteString,
    },
    /// The transport could not deliver the request (§8.1.3.1: as 503).
    TransportError {
        /// The transaction.
        transaction: ClientTransactionId,
        /// The request's Call-ID.
        call_id: ByteString,
    },
}

impl Event {
    /// The Call-ID this event is about: every event names one, so a
    /// dispatcher can route it to whoever owns that call.
    pub fn call_id(&self) -> &ByteString {
        match self {
            Event::Request { request, .. } => &request.call_id,
            Event::Ack { ack, .. } | Event::StrayAck { ack, .. } => &ack.call_id,
            Event::Response { response, .. } | Event::Stray2xx { response, .. } => {
                &response.call_id
            }
            Event::Cancelled { call_id, .. }
            | Event::AckTimeout { call_id, .. }
            | Event::Timeout { call_id, .. }
            | Event::TransportError { call_id, .. } => call_id,
        }
    }
}

/// What the transaction user asked for that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// The transaction does not exist (any more).
    #[error("no such transaction")]
    UnknownTransaction,
    /// A final response was already sent.
    #[error("the transaction already has a final response")]
    AlreadyAnswered,
    /// CANCEL is only possible before a final response.
    #[error("the INVITE already has a final response")]
    TooLateToCancel,
    /// ACK and CANCEL are not sent with `send_request`.
    #[error("{0} is not sent as a new client transaction")]
    NotATransactionMethod(&'static str),
}

/// Server transactions are matched by branch, sent-by and method (§17.2.3),
/// or by the RFC 2543 fields when the branch lacks the magic cookie.
///
/// An RFC 3261 request is also matched by its Call-ID and CSeq number,
/// which every retransmission, ACK for a non-2xx and CANCEL shares with
/// the request it belongs to (§17.1.1.3, §9.1). A branch must be unique
/// across space and time (§8.1.1.7), but not every client makes it so:
/// RFC 4475's REGISTERs `cparam01` and `cparam02` (and `escnull` and
/// `regescrt`) share a branch and a sent-by. Matched on those alone, the
/// second request was taken for a retransmission of the first and got the
/// first one's response, which its sender could not match to anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerKey {
    Rfc3261 {
        branch: ByteString,
        sent_by: String,
        method: Method,
        call_id: ByteString,
        seq: u32,
    },
    Rfc2543 {
        call_id: ByteString,
        seq: u32,
        from_tag: Option<ByteString>,
        sent_by: String,
        request_uri: String,
        method: Method,
    },
}

impl ServerKey {
    /// The key of `request`; ACK maps to its INVITE (§17.2.3).
    fn of(request: &ValidRequest) -> Self {
        let method = match request.request.method {
            Method::Ack => Method::Invite,
            ref other => other.clone(),
        };
        ServerKey::with_method(request, method)
    }

    fn with_method(request: &ValidRequest, method: Method) -> Self {
        let sent_by = request.via.sent_by().to_ascii_lowercase();
        if request.via.has_rfc3261_branch() {
            ServerKey::Rfc3261 {
                branch: ByteString::from(request.via.branch().unwrap_or_default()),
                sent_by,
                method,
                call_id: request.call_id.clone(),
                seq: request.cseq.seq,
            }
        } else {
            ServerKey::Rfc2543 {
                call_id: request.call_id.clone(),
                seq: request.cseq.seq,
                from_tag: request.from.tag().map(ByteString::from),
                sent_by,
                request_uri: request.request.uri.to_string(),
                method,
            }
        }
    }
}

/// What a server transaction is found by: a keyed 128-bit hash of its
/// [`ServerKey`]. It holds none of the request's bytes (a `ServerKey`'s
/// strings would keep the whole datagram alive) and is 16 bytes whatever
/// the branch and Call-ID; the key is secret, so no peer can make two
/// requests collide.
///
/// Four `u32`s rather than two `u64`s: an index slot of the completed
/// requests is then 28 bytes, not 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint([u32; 4]);

impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a keyed hash: half of it is enough for a map.
        state.write_u64(u64::from(self.0[0]) << 32 | u64::from(self.0[1]));
    }
}

/// The secret of [`Fingerprint`]s, drawn from the layer's seed.
#[derive(Debug, Clone, Copy)]
struct FingerprintKey([u64; 4]);

impl FingerprintKey {
    fn new(seed: u64) -> Self {
        // A generator of its own, so that the layer's tags and branches
        // stay what they were for a given seed.
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_f1a9_e4b1_7a11);
        FingerprintKey(std::array::from_fn(|_| rand::Rng::random(&mut rng)))
    }

    fn of(&self, key: &ServerKey) -> Fingerprint {
        let half = |k0: u64, k1: u64| {
            let mut hasher = DefaultHasher::new();
            hasher.write_u64(k0);
            hasher.write_u64(k1);
            key.hash(&mut hasher);
            hasher.finish()
        };
        let [a, b, c, d] = self.0;
        let (low, high) = (half(a, b), half(c, d));
        // Each u64 in two u32 halves.
        Fingerprint([
            low as u32,
            (low >> 32) as u32,
            high as u32,
            (high >> 32) as u32,
        ])
    }
}

/// The ACK for a 2xx has its own branch; it is matched to the INVITE by
/// Call-ID, CSeq number and From tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AckKey {
    call_id: ByteString,
    seq: u32,
    from_tag: Option<ByteString>,
}

impl AckKey {
    fn of(request: &ValidRequest) -> Self {
        AckKey {
            call_id: request.call_id.clone(),
            seq: request.cseq.seq,
            from_tag: request.from.tag().map(ByteString::from),
        }
    }
}

/// Client transactions are matched by branch and CSeq method (§17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: ByteString,
    method: Method,
}

/// Every transaction of one endpoint. See the module docs for the run loop.
#[derive(Debug)]
pub struct TransactionLayer {
    config: Config,
    rng: SmallRng,
    next_id: u64,
    // Boxed, here and in `clients`: a transaction is hundreds of bytes
    // (a client one 688, a server one 464) and a hash table keeps its
    // values in its buckets, live or not, and doubles. In the soak at 100
    // calls/s (BENCHMARKS.md) about 3,600 client transactions are alive,
    // just over half of 8,192 buckets; the table's doubling to 16,384 put
    // 11 MiB on the heap at once, the whole of the soak's RSS step. Boxed,
    // each bucket is 16 bytes and the memory follows the live count.
    servers: HashMap<ServerTransactionId, Box<ServerTransaction>>,
    server_keys: HashMap<Fingerprint, ServerTransactionId, BuildHasherDefault<FingerprintHasher>>,
    fingerprints: FingerprintKey,
    /// Non-INVITE server transactions completed over UDP, waiting out
    /// Timer J.
    completed: CompletedRequests,
    ack_keys: HashMap<AckKey, ServerTransactionId>,
    clients: HashMap<ClientTransactionId, Box<ClientTransaction>>,
    client_keys: HashMap<ClientKey, ClientTransactionId>,
    timers: TimerHeap<TransactionId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(config: Config) -> Self {
        TransactionLayer {
            rng: SmallRng::seed_from_u64(config.seed),
            fingerprints: FingerprintKey::new(config.seed),
            config,
            next_id: 1,
            servers: HashMap::new(),
            server_keys: HashMap::default(),
            completed: CompletedRequests::default(),
            ack_keys: HashMap::new(),
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            timers: TimerHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The timer values in use.
    pub fn timer_values(&self) -> TimerValues {
        self.config.timers
    }

    /// A random token of `len` letters and digits, for tags and Call-IDs.
    pub fn random_token(&mut self, len: usize) -> String {
        Alphanumeric.sample_string(&mut self.rng, len)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest moment a timer needs [`TransactionLayer::handle_timeout`].
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let completed = self.completed.next_deadline();
        while let Some((at, id, timer)) = self.timers.peek() {
            if self.deadline(id, timer) == Some(at) {
                return Some(completed.map_or(at, |completed| completed.min(at)));
            }
            self.timers.pop();
        }
        completed
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.completed.expire(now);
        while let Some((at, id, timer)) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.deadline(id, timer) != Some(at) {
                continue;
            }
            match id {
                TransactionId::Server(id) => self.fire_server_timer(now, id, timer),
                TransactionId::Client(id) => self.fire_client_timer(now, id, timer),
            }
        }
    }

    /// Whether the INVITE `request` belongs to a server transaction that
    /// already exists (a retransmission, which the layer absorbs).
    pub fn has_server_transaction(&self, request: &ValidRequest) -> bool {
        // INVITE transactions stay in the table until they terminate (the
        // compact completed state is for non-INVITE ones only).
        self.server_keys
            .contains_key(&self.fingerprints.of(&ServerKey::of(request)))
    }

    /// How many transactions are alive (server, client).
    pub fn len(&self) -> (usize, usize) {
        (
            self.servers.len() + self.completed.len(),
            self.clients.len(),
        )
    }

    /// `true` when no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    fn deadline(&self, id: TransactionId, timer: Timer) -> Option<Instant> {
        match id {
            TransactionId::Server(id) => self.servers.get(&id)?.deadlines.get(timer),
            TransactionId::Client(id) => self.clients.get(&id)?.deadlines.get(timer),
        }
    }

    fn arm(&mut self, id: TransactionId, timer: Timer, at: Instant) {
        let deadlines = match id {
            TransactionId::Server(id) => self.servers.get_mut(&id).map(|t| &mut t.deadlines),
            TransactionId::Client(id) => self.clients.get_mut(&id).map(|t| &mut t.deadlines),
        };
        if let Some(deadlines) = deadlines {
            deadlines.set(timer, at);
            self.timers.push(at, id, timer);
        }
    }

    fn sent_by(&self, transport: TransportKind) -> (Host, u16) {
        self.config
            .sent_by
            .iter()
            .find(|s| s.transport == transport)
            .or_else(|| self.config.sent_by.first())
            .map_or((Host::V4(std::net::Ipv4Addr::LOCALHOST), 5060), |s| {
                (s.host.clone(), s.port)
            })
    }
}
