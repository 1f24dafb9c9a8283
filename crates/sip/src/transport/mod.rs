//! The tokio driver for SIP over UDP and TCP on one address (RFC 3261 §18),
//! and over TLS on another ([`TransportHandle::serve_tls`], [`tls`]).
//!
//! It only moves bytes: datagrams and stream bytes are framed and parsed
//! ([`crate::message`]) on the task that read them and handed to whoever
//! holds the [`Inbound`] receiver; what it is given to send goes out on
//! the UDP socket or on the right connection. It decides nothing about
//! SIP, except answering CRLF keep-alive pings on streams, TCP and TLS
//! alike (RFC 5626 §4.4.1).
//!
//! Streams are guarded: a limit on open connections (TCP and TLS
//! together), an idle timeout, and a deadline for a started message to
//! complete, so half-open or trickling connections cannot exhaust the
//! daemon. TLS connections pass a [`tls::TlsGate`] first (a bounded number
//! of handshakes at once, each with a timeout).
//!
//! Untrusted sources meet the [`door::FrontDoor`] first: a rate limit
//! with bans checked on every datagram before it is parsed, scanners
//! dropped, and a few connection slots per source taken before any TLS
//! handshake (so one address cannot hold the slots everyone shares).
//!
//! Sending never waits ([`TransportHandle::enqueue`]): a datagram goes
//! out at once when the socket takes it, and otherwise, like everything
//! for a stream, waits in an ordered queue ([`queue`]) that one writer per
//! connection (and one for the UDP socket) drains. A TCP peer with no
//! connection gets one connection attempt at a time: what is sent to it
//! meanwhile queues behind the attempt, in order. A message the transport
//! took but could not deliver is reported, by the [`SendTag`] it was sent
//! with, to the sink given to [`TransportHandle::report_undelivered`].
//!
//! Connection reuse (RFC 3261 §18.2.2, §18.1.1): a response goes back on
//! the connection its request came on, and a request to a peer with an
//! open connection of the same transport goes on that connection. A TLS
//! connection is only ever one a peer opened to us: frontdesk opens no
//! outbound TLS connections, so an agent registered over TLS is reached
//! over the connection it registered on (its flow, as in RFC 5626), and is
//! unreachable once that connection is gone, until it registers again.
//! The `alias` Via parameter of RFC 5923 is not honoured: without client
//! certificates, anyone could claim another address's traffic with it
//! (RFC 5923 §10 asks for mutual authentication).

pub mod door;
mod queue;
mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::message::{Frame, Limits, Message, ParseError, parse_datagram};
use crate::peer::{ConnectionId, Peer, TransportKind};
use door::FrontDoor;
use guard::SourceSlot;
pub use queue::SendTag;
use queue::{Outgoing, QueueReceiver, Refused, SendQueue};
use tls::{RefusalLog, TlsGate};

/// Limits and timeouts of the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Message size limits.
    pub limits: Limits,
    /// The most stream connections open at once (both directions).
    pub max_connections: usize,
    /// A connection with no bytes for this long is closed.
    pub idle_timeout: Duration,
    /// A message started on a stream must complete within this.
    pub message_timeout: Duration,
    /// How long to wait for an outbound connection.
    pub connect_timeout: Duration,
    /// The most bytes waiting to be written on one connection (or on the
    /// UDP socket) before sends to it are refused; a stream connection
    /// that reaches it is closed (its peer reads nothing).
    pub max_write_queue: usize,
    /// The UDP socket's receive buffer, in bytes (`SO_RCVBUF`; Linux caps
    /// it at `net.core.rmem_max`); 0 keeps the system's default. A burst
    /// of datagrams that finds the buffer full is dropped by the kernel
    /// and costs the peers a retransmission (500 ms).
    pub udp_receive_buffer: usize,
    /// Per-source limits for untrusted sources (swap its policy on reload).
    pub front_door: Arc<FrontDoor>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            limits: Limits::default(),
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
            message_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_write_queue: 256 * 1024,
            udp_receive_buffer: 4 * 1024 * 1024,
            front_door: Arc::new(FrontDoor::default()),
        }
    }
}

/// A message (or a message that failed to parse) and who sent it.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it; for streams, the connection it came on.
    pub peer: Peer,
    /// The parsed message, or why it was refused. After a stream error the
    /// connection is closed once a short grace period has let a response
    /// out.
    pub message: Result<Message, ParseError>,
}

/// Why bytes could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The socket refused them.
    #[error("send failed: {0}")]
    Io(#[from] std::io::Error),
    /// No connection could be opened in time.
    #[error("connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// The connection could not be opened.
    #[error("connect to {address} failed: {kind}")]
    ConnectFailed {
        /// Where to.
        address: SocketAddr,
        /// Why.
        kind: std::io::ErrorKind,
    },
    /// Too much is already waiting to be written to this peer.
    #[error("send queue full")]
    QueueFull,
    /// Too many connections are open.
    #[error("connection limit reached")]
    ConnectionLimit,
    /// The connection is gone.
    #[error("connection closed")]
    Closed,
    /// No TLS connection from this peer is open, and frontdesk opens none:
    /// the peer is reachable again once it connects (registers) again.
    #[error("no TLS connection from {0} is open (frontdesk opens no outbound TLS connections)")]
    NoTlsConnection(SocketAddr),
}

/// A message the transport took but could not deliver, reported by its
/// tag (see [`TransportHandle::report_undelivered`]).
#[derive(Debug)]
pub struct Undelivered {
    /// Where it was going.
    pub peer: Peer,
    /// The tag it was sent with.
    pub tag: SendTag,
    /// Why it was not delivered.
    pub error: SendError,
}

#[derive(Debug)]
struct Connection {
    transport: TransportKind,
    remote: SocketAddr,
    queue: SendQueue,
}

#[derive(Debug)]
struct Inner {
    udp: UdpSocket,
    local: SocketAddr,
    config: TransportConfig,
    inbound: mpsc::Sender<Inbound>,
    // The connection tables are read and written from many tasks; dashmap
    // gives per-shard locks. Guards are never held across `.await`: values
    // are cloned out at once.
    connections: DashMap<ConnectionId, Connection>,
    /// The latest connection to each address, per transport: a TCP and a
    /// TLS connection from the same address are never taken for each other.
    by_address: DashMap<(TransportKind, SocketAddr), ConnectionId>,
    next_connection: AtomicU64,
    permits: Arc<Semaphore>,
    /// Datagrams the socket could not take at once, in order.
    udp_queue: SendQueue,
    /// Where undelivered tagged messages are reported.
    undelivered: OnceLock<mpsc::UnboundedSender<Undelivered>>,
    /// Connections refused for the connection limit, rate-limited.
    refusals: RefusalLog,
    tls_local: std::sync::OnceLock<SocketAddr>,
    shutdown: CancellationToken,
}

/// A cheap handle to the running transport.
#[derive(Debug, Clone)]
pub struct TransportHandle {
    inner: Arc<Inner>,
}

/// Starts the transport on sockets bound by the caller (UDP and TCP on the
/// same address). Receiving tasks stop when `shutdown` is cancelled.
pub fn start(
    udp: UdpSocket,
    tcp: TcpListener,
    config: TransportConfig,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> std::io::Result<TransportHandle> {
    let local = udp.local_addr()?;
    if config.udp_receive_buffer > 0 {
        // Best effort: a smaller buffer than asked only means more drops
        // in bursts, not a reason to refuse to start.
        let socket = socket2::SockRef::from(&udp);
        if let Err(error) = socket.set_recv_buffer_size(config.udp_receive_buffer) {
            tracing::warn!(%error, "cannot set the UDP receive buffer size");
        }
    }
    let (udp_queue, udp_outgoing) = SendQueue::new(config.max_write_queue);
    let inner = Arc::new(Inner {
        udp,
        local,
        permits: Arc::new(Semaphore::new(config.max_connections)),
        udp_queue,
        undelivered: OnceLock::new(),
        config,
        inbound,
        connections: DashMap::new(),
        by_address: DashMap::new(),
        next_connection: AtomicU64::new(1),
        refusals: RefusalLog::default(),
        tls_local: std::sync::OnceLock::new(),
        shutdown,
    });
    let handle = TransportHandle { inner };
    tokio::spawn(receive_datagrams(handle.clone()));
    tokio::spawn(write_datagrams(handle.clone(), udp_outgoing));
    tokio::spawn(accept_connections(handle.clone(), tcp));
    Ok(handle)
}

impl TransportHandle {
    /// The address SIP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// Where SIP over TLS listens, once [`TransportHandle::serve_tls`] was
    /// called.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.inner.tls_local.get().copied()
    }

    /// How many stream connections are open.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.len()
    }

    /// The per-source limits.
    pub fn front_door(&self) -> &Arc<FrontDoor> {
        &self.inner.config.front_door
    }

    /// How many connections of `transport` are open.
    pub fn connection_count_of(&self, transport: TransportKind) -> usize {
        self.inner
            .connections
            .iter()
            .filter(|connection| connection.transport == transport)
            .count()
    }

    /// Serves SIP over TLS on `listener` (bound by the caller), each
    /// accepted connection through `gate`, until shutdown. Returns the
    /// listener's address. Call it once.
    pub fn serve_tls(&self, listener: TcpListener, gate: TlsGate) -> std::io::Result<SocketAddr> {
        let local = listener.local_addr()?;
        if self.inner.tls_local.set(local).is_err() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "SIP over TLS is already served",
            ));
        }
        tokio::spawn(accept_tls(self.clone(), listener, gate));
        Ok(local)
    }

    /// Where the transport reports messages sent with a [`SendTag`] that
    /// it took but could not deliver (a connection that could not be
    /// opened, or closed before they were written). One sink per
    /// transport: `false` if one was given already.
    pub fn report_undelivered(&self, sink: mpsc::UnboundedSender<Undelivered>) -> bool {
        self.inner.undelivered.set(sink).is_ok()
    }

    /// Sends `bytes` to `peer` without waiting: at once on the UDP socket
    /// when it takes them, otherwise in order on the queue of the socket
    /// or of the peer's connection. Over TCP with no connection open, one
    /// is opened (RFC 3261 §18.2.2: to the address the request came from),
    /// one attempt at a time per address: what is sent meanwhile waits
    /// behind it. Over TLS, only on a connection the peer opened: its own
    /// (`peer.connection`) or the latest from its address; with none,
    /// [`SendError::NoTlsConnection`].
    ///
    /// An error here means the bytes were not taken. Taken bytes that
    /// cannot be delivered later are reported with `tag`, when given, to
    /// the sink of [`TransportHandle::report_undelivered`].
    pub fn enqueue(&self, peer: Peer, bytes: Bytes, tag: Option<SendTag>) -> Result<(), SendError> {
        let outgoing = Outgoing {
            destination: peer.address,
            bytes,
            tag,
        };
        match peer.transport {
            TransportKind::Udp => self.enqueue_datagram(outgoing),
            TransportKind::Tcp | TransportKind::Tls => self.enqueue_stream(peer, outgoing),
        }
    }

    fn enqueue_datagram(&self, outgoing: Outgoing) -> Result<(), SendError> {
        let queue = &self.inner.udp_queue;
        if queue.is_idle() {
            match self
                .inner
                .udp
                .try_send_to(&outgoing.bytes, outgoing.destination)
            {
                Ok(_) => return Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(SendError::Io(error)),
            }
        }
        match queue.push(outgoing) {
            Ok(()) => Ok(()),
            Err(Refused::Full) => Err(SendError::QueueFull),
            Err(Refused::Closed(_)) => Err(SendError::Closed),
        }
    }

    fn enqueue_stream(&self, peer: Peer, outgoing: Outgoing) -> Result<(), SendError> {
        let outgoing = match self.queue_for(peer) {
            Some(queue) => match queue.push(outgoing) {
                Ok(()) => return Ok(()),
                Err(Refused::Full) => return Err(SendError::QueueFull),
                // The connection is closing: a new one, as if it were gone.
                Err(Refused::Closed(outgoing)) => outgoing,
            },
            None => outgoing,
        };
        match peer.transport {
            TransportKind::Tcp => self.connect(peer.address, outgoing),
            _ => Err(SendError::NoTlsConnection(peer.address)),
        }
    }

    /// The queue of `peer`'s connection: the one it names, else the latest
    /// from its address; always of `peer`'s transport (bytes meant for TLS
    /// never leave in clear on a TCP connection).
    fn queue_for(&self, peer: Peer) -> Option<SendQueue> {
        let queue_of = |id: ConnectionId| {
            self.inner
                .connections
                .get(&id)
                .filter(|c| c.transport == peer.transport)
                .map(|c| c.queue.clone())
        };
        peer.connection.and_then(queue_of).or_else(|| {
            let id = self
                .inner
                .by_address
                .get(&(peer.transport, peer.address))
                .map(|id| *id)?;
            queue_of(id)
        })
    }

    /// Queues `outgoing` on the TCP connection to `address`, starting one
    /// attempt to open it unless one is open or under way. The address's
    /// entry stays locked while this decides, so two senders at once
    /// cannot start two attempts.
    fn connect(&self, address: SocketAddr, outgoing: Outgoing) -> Result<(), SendError> {
        let inner = &self.inner;
        let key = (TransportKind::Tcp, address);
        let entry = inner.by_address.entry(key);
        if let dashmap::Entry::Occupied(current) = &entry {
            // Taken after a queue refused as closing, or in a race with a
            // new attempt: use it unless it is the closing one.
            let queue = inner
                .connections
                .get(current.get())
                .map(|c| c.queue.clone())
                .filter(|queue| !queue.is_closed());
            if let Some(queue) = queue {
                return match queue.push(outgoing) {
                    Ok(()) => Ok(()),
                    Err(Refused::Full) => Err(SendError::QueueFull),
                    Err(Refused::Closed(_)) => Err(SendError::Closed),
                };
            }
        }
        let permit = ConnectionPermit {
            _shared: inner
                .permits
                .clone()
                .try_acquire_owned()
                .map_err(|_| SendError::ConnectionLimit)?,
            _source: None,
        };
        let (id, queue, receiver) = self.register(TransportKind::Tcp, address);
        drop(entry.insert(id));
        // A fresh queue is empty: the first message always fits.
        let _ = queue.push(outgoing);
        tokio::spawn(connect_and_serve(
            self.clone(),
            id,
            address,
            queue,
            receiver,
            permit,
        ));
        Ok(())
    }

    /// A new connection's id and queue, in the connection table (not yet
    /// in `by_address`).
    fn register(
        &self,
        transport: TransportKind,
        remote: SocketAddr,
    ) -> (ConnectionId, SendQueue, QueueReceiver) {
        let id = ConnectionId(self.inner.next_connection.fetch_add(1, Ordering::Relaxed));
        let (queue, receiver) = SendQueue::new(self.inner.config.max_write_queue);
        self.inner.connections.insert(
            id,
            Connection {
                transport,
                remote,
                queue: queue.clone(),
            },
        );
        (id, queue, receiver)
    }

    /// Registers an accepted connection and starts its task; `reader` and
    /// `writer` are its two halves (a TCP stream's, or a TLS stream's).
    fn serve_stream<R, W>(
        &self,
        transport: TransportKind,
        remote: SocketAddr,
        reader: R,
        writer: W,
        permit: ConnectionPermit,
    ) where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (id, queue, receiver) = self.register(transport, remote);
        self.inner.by_address.insert((transport, remote), id);
        let peer = Peer {
            transport,
            address: remote,
            connection: Some(id),
        };
        tokio::spawn(stream::run(
            self.clone(),
            peer,
            reader,
            writer,
            queue,
            receiver,
            permit,
        ));
    }

    /// Reports messages taken but not delivered, those with a tag.
    fn undelivered(
        &self,
        peer: Peer,
        left: impl IntoIterator<Item = Outgoing>,
        error: impl Fn() -> SendError,
    ) {
        let sink = self.inner.undelivered.get();
        for outgoing in left {
            if let (Some(tag), Some(sink)) = (outgoing.tag, sink) {
                let _ = sink.send(Undelivered {
                    peer,
                    tag,
                    error: error(),
                });
            }
        }
    }

    fn forget(&self, id: ConnectionId) {
        if let Some((_, connection)) = self.inner.connections.remove(&id) {
            self.inner
                .by_address
                .remove_if(&(connection.transport, connection.remote), |_, current| {
                    *current == id
                });
        }
    }
}

/// What an open connection holds, given back when it closes: one of the
/// permits every connection shares, and for an untrusted source one of
/// its own slots.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    _shared: OwnedSemaphorePermit,
    _source: Option<SourceSlot>,
}

/// Opens the TCP connection `id` to `address`, then serves it; what was
/// queued meanwhile goes out first, in order. If it cannot be opened in
/// time (or its queue overflows first, or shutdown), the connection is
/// forgotten and every tagged message it held is reported undelivered.
async fn connect_and_serve(
    handle: TransportHandle,
    id: ConnectionId,
    address: SocketAddr,
    queue: SendQueue,
    mut receiver: QueueReceiver,
    permit: ConnectionPermit,
) {
    let peer = Peer {
        transport: TransportKind::Tcp,
        address,
        connection: Some(id),
    };
    let timeout = handle.inner.config.connect_timeout;
    let connected = tokio::select! {
        () = handle.inner.shutdown.cancelled() => Err(SendError::Closed),
        () = queue.overflowed().cancelled() => Err(SendError::QueueFull),
        connected = tokio::time::timeout(timeout, TcpStream::connect(address)) => match connected {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(SendError::ConnectFailed { address, kind: error.kind() }),
            Err(_) => Err(SendError::ConnectTimeout(address)),
        },
    };
    match connected {
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            let (reader, writer) = stream.into_split();
            stream::run(handle, peer, reader, writer, queue, receiver, permit).await;
        }
        Err(error) => {
            tracing::debug!(%peer, %error, "connection not opened");
            handle.forget(id);
            let left = receiver.close();
            handle.undelivered(peer, left, || match &error {
                SendError::ConnectFailed { address, kind } => SendError::ConnectFailed {
                    address: *address,
                    kind: *kind,
                },
                SendError::ConnectTimeout(address) => SendError::ConnectTimeout(*address),
                SendError::QueueFull => SendError::QueueFull,
                _ => SendError::Closed,
            });
        }
    }
}

/// Writes the datagrams the socket could not take at once, in order.
async fn write_datagrams(handle: TransportHandle, mut outgoing: QueueReceiver) {
    let inner = &handle.inner;
    loop {
        let next = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            next = outgoing.recv() => next,
        };
        let Some(datagram) = next else { return };
        let sent = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            sent = inner.udp.send_to(&datagram.bytes, datagram.destination) => sent,
        };
        outgoing.done(datagram.bytes.len());
        if let Err(error) = sent {
            let peer = Peer::udp(datagram.destination);
            tracing::debug!(%peer, %error, "send failed");
            let kind = error.kind();
            handle.undelivered(peer, [datagram], || {
                SendError::Io(std::io::Error::from(kind))
            });
        }
    }
}

async fn receive_datagrams(handle: TransportHandle) {
    let inner = &handle.inner;
    let door = &inner.config.front_door;
    let mut policy = door.policy_cache();
    let mut buffer = vec![0u8; inner.config.limits.max_message + 1];
    loop {
        let received = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            received = inner.udp.recv_from(&mut buffer) => received,
        };
        let (length, source) = match received {
            Ok(received) => received,
            // ICMP errors from earlier sends surface here on some systems.
            Err(error) => {
                tracing::debug!(%error, "udp receive error");
                continue;
            }
        };
        // Trusted first (a few ns); an untrusted source's datagram is
        // counted, and dropped when over its rate, before it is copied or
        // parsed.
        let ip = source.ip();
        let untrusted = !policy.load().trusted.is_trusted(ip);
        let now = untrusted.then(std::time::Instant::now);
        if let Some(now) = now
            && !door.admit(now, ip)
        {
            continue;
        }
        let datagram = Bytes::copy_from_slice(&buffer[..length]);
        let message = match parse_datagram(datagram, &inner.config.limits) {
            Ok(Frame::KeepAlive(_)) => continue,
            Ok(Frame::Message(message)) => Ok(message),
            Err(error) => Err(error),
        };
        if let (Some(now), Ok(message)) = (now, &message)
            && !door.screen(now, ip, message)
        {
            continue;
        }
        let inbound = Inbound {
            peer: Peer::udp(source),
            message,
        };
        if inner.inbound.send(inbound).await.is_err() {
            return;
        }
    }
}

async fn accept_connections(handle: TransportHandle, listener: TcpListener) {
    while let Some((stream, remote, permit)) =
        next_connection(&handle.inner, &listener, "tcp").await
    {
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        handle.serve_stream(TransportKind::Tcp, remote, reader, writer, permit);
    }
}

/// The next connection of `listener` that gets a connection permit (and,
/// from an untrusted source, one of its slots: see [`door`]), or `None`
/// once shutting down. An accept error (EMFILE and friends) backs off a
/// little instead of spinning; a connection past a limit is closed at
/// once, and the refusal logged under `label`.
async fn next_connection(
    inner: &Inner,
    listener: &TcpListener,
    label: &'static str,
) -> Option<(TcpStream, SocketAddr, ConnectionPermit)> {
    loop {
        let accepted = tokio::select! {
            () = inner.shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "{label} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // The source's own slot first: a source at its limit must not
        // take one of the permits everyone shares.
        let Ok(slot) = inner
            .config
            .front_door
            .connection(std::time::Instant::now(), remote.ip())
        else {
            continue;
        };
        match inner.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let permit = ConnectionPermit {
                    _shared: permit,
                    _source: slot,
                };
                return Some((stream, remote, permit));
            }
            Err(_) => inner.refusals.refused(
                label,
                remote,
                &"connection refused: connection limit reached",
            ),
        }
    }
}

/// Accepts TLS connections: each takes a connection permit, then a
/// handshake slot of `gate`, and is served as a stream once its handshake
/// is done (on a task of its own, so a slow handshake never holds up the
/// next accept).
async fn accept_tls(handle: TransportHandle, listener: TcpListener, gate: TlsGate) {
    let inner = &handle.inner;
    while let Some((stream, remote, permit)) = next_connection(inner, &listener, "tls").await {
        let _ = stream.set_nodelay(true);
        let Some(handshake) = gate.admit(stream, remote) else {
            continue;
        };
        let handle = handle.clone();
        let shutdown = inner.shutdown.clone();
        tokio::spawn(async move {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                stream = handshake => stream,
            };
            if let Some(stream) = stream {
                let (reader, writer) = tokio::io::split(stream);
                handle.serve_stream(TransportKind::Tls, remote, reader, writer, permit);
            }
        });
    }
}
