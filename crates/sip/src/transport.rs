//! The tokio driver for SIP over UDP and TCP on one address (RFC 3261 §18).
//!
//! It only moves bytes: datagrams and stream bytes are framed and parsed
//! ([`crate::message`]) on the task that read them and handed to whoever
//! holds the [`Inbound`] receiver; what it is given to send goes out on
//! the UDP socket or on the right connection. It decides nothing about
//! SIP, except answering CRLF keep-alive pings on streams (RFC 5626 §4.4.1).
//!
//! Streams are guarded: a limit on open connections, an idle timeout, and a
//! deadline for a started message to complete, so half-open or trickling
//! connections cannot exhaust the daemon.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::message::{Frame, KeepAlive, Limits, Message, ParseError, StreamFramer, parse_datagram};
use crate::peer::{ConnectionId, Peer, TransportKind};

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
    /// The UDP socket's receive buffer, in bytes (`SO_RCVBUF`; Linux caps
    /// it at `net.core.rmem_max`); 0 keeps the system's default. A burst
    /// of datagrams that finds the buffer full is dropped by the kernel
    /// and costs the peers a retransmission (500 ms).
    pub udp_receive_buffer: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            limits: Limits::default(),
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
            message_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            udp_receive_buffer: 4 * 1024 * 1024,
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
    /// Too many connections are open.
    #[error("connection limit reached")]
    ConnectionLimit,
    /// The connection is gone.
    #[error("connection closed")]
    Closed,
}

#[derive(Debug)]
struct Connection {
    remote: SocketAddr,
    writer: mpsc::Sender<Bytes>,
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
    by_address: DashMap<SocketAddr, ConnectionId>,
    next_connection: AtomicU64,
    permits: Arc<Semaphore>,
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
    let inner = Arc::new(Inner {
        udp,
        local,
        permits: Arc::new(Semaphore::new(config.max_connections)),
        config,
        inbound,
        connections: DashMap::new(),
        by_address: DashMap::new(),
        next_connection: AtomicU64::new(1),
        shutdown,
    });
    let handle = TransportHandle { inner };
    tokio::spawn(receive_datagrams(handle.clone()));
    tokio::spawn(accept_connections(handle.clone(), tcp));
    Ok(handle)
}

impl TransportHandle {
    /// The address SIP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// How many stream connections are open.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.len()
    }

    /// Sends at once when no waiting is needed: always for UDP, and for a
    /// stream with an open connection. Returns the bytes back when the
    /// caller must use [`TransportHandle::send`] (to connect first).
    pub fn try_send(&self, peer: Peer, bytes: Bytes) -> Result<(), TrySend> {
        match peer.transport {
            TransportKind::Udp => match self.inner.udp.try_send_to(&bytes, peer.address) {
                Ok(_) => Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    Err(TrySend::Wait(bytes))
                }
                Err(error) => Err(TrySend::Failed(SendError::Io(error))),
            },
            TransportKind::Tcp | TransportKind::Tls => {
                let Some(writer) = self.writer_for(peer) else {
                    return Err(TrySend::Wait(bytes));
                };
                match writer.try_send(bytes) {
                    Ok(()) => Ok(()),
                    Err(mpsc::error::TrySendError::Full(bytes)) => Err(TrySend::Wait(bytes)),
                    Err(mpsc::error::TrySendError::Closed(bytes)) => Err(TrySend::Wait(bytes)),
                }
            }
        }
    }

    /// Sends `bytes` to `peer`, opening a TCP connection when none is open
    /// (RFC 3261 §18.2.2: to the same address the request came from).
    pub async fn send(&self, peer: Peer, bytes: Bytes) -> Result<(), SendError> {
        match peer.transport {
            TransportKind::Udp => {
                self.inner.udp.send_to(&bytes, peer.address).await?;
                Ok(())
            }
            TransportKind::Tcp => {
                if let Some(writer) = self.writer_for(peer)
                    && writer.send(bytes.clone()).await.is_ok()
                {
                    return Ok(());
                }
                let writer = self.connect(peer.address).await?;
                writer.send(bytes).await.map_err(|_| SendError::Closed)
            }
            TransportKind::Tls => Err(SendError::Closed),
        }
    }

    fn writer_for(&self, peer: Peer) -> Option<mpsc::Sender<Bytes>> {
        let by_id = peer
            .connection
            .and_then(|id| self.inner.connections.get(&id).map(|c| c.writer.clone()));
        by_id.or_else(|| {
            let id = self.inner.by_address.get(&peer.address).map(|id| *id)?;
            self.inner.connections.get(&id).map(|c| c.writer.clone())
        })
    }

    async fn connect(&self, address: SocketAddr) -> Result<mpsc::Sender<Bytes>, SendError> {
        let permit = self
            .inner
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| SendError::ConnectionLimit)?;
        let stream = tokio::time::timeout(
            self.inner.config.connect_timeout,
            TcpStream::connect(address),
        )
        .await
        .map_err(|_| SendError::ConnectTimeout(address))??;
        let (_, writer) = self.serve_connection(stream, address, permit);
        Ok(writer)
    }

    fn serve_connection(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> (ConnectionId, mpsc::Sender<Bytes>) {
        let _ = stream.set_nodelay(true);
        let id = ConnectionId(self.inner.next_connection.fetch_add(1, Ordering::Relaxed));
        let (writer, outgoing) = mpsc::channel::<Bytes>(256);
        self.inner.connections.insert(
            id,
            Connection {
                remote,
                writer: writer.clone(),
            },
        );
        self.inner.by_address.insert(remote, id);
        tokio::spawn(run_connection(
            self.clone(),
            id,
            remote,
            stream,
            outgoing,
            writer.clone(),
            permit,
        ));
        (id, writer)
    }

    fn forget(&self, id: ConnectionId) {
        if let Some((_, connection)) = self.inner.connections.remove(&id) {
            self.inner
                .by_address
                .remove_if(&connection.remote, |_, current| *current == id);
        }
    }
}

/// What [`TransportHandle::try_send`] could not do at once.
#[derive(Debug)]
pub enum TrySend {
    /// Use [`TransportHandle::send`] with these bytes.
    Wait(Bytes),
    /// Sending failed.
    Failed(SendError),
}

async fn receive_datagrams(handle: TransportHandle) {
    let inner = &handle.inner;
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
        let datagram = Bytes::copy_from_slice(&buffer[..length]);
        let message = match parse_datagram(datagram, &inner.config.limits) {
            Ok(Frame::KeepAlive(_)) => continue,
            Ok(Frame::Message(message)) => Ok(message),
            Err(error) => Err(error),
        };
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
    let inner = &handle.inner;
    loop {
        let accepted = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off a little instead of spinning.
                tracing::warn!(%error, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match inner.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                handle.serve_connection(stream, remote, permit);
            }
            Err(_) => {
                tracing::warn!(%remote, "tcp connection refused: connection limit reached");
                drop(stream);
            }
        }
    }
}

async fn run_connection(
    handle: TransportHandle,
    id: ConnectionId,
    remote: SocketAddr,
    stream: TcpStream,
    mut outgoing: mpsc::Receiver<Bytes>,
    writer: mpsc::Sender<Bytes>,
    permit: OwnedSemaphorePermit,
) {
    let config = handle.inner.config.clone();
    let shutdown = handle.inner.shutdown.clone();
    let (mut reader, mut write_half) = stream.into_split();
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = outgoing.recv().await {
            if write_half.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = write_half.shutdown().await;
    });
    let peer = Peer {
        transport: TransportKind::Tcp,
        address: remote,
        connection: Some(id),
    };
    let mut framer = StreamFramer::new(config.limits);
    let mut last_activity = Instant::now();
    let mut message_started: Option<Instant> = None;
    let mut failed = false;
    'read: loop {
        let mut deadline = last_activity + config.idle_timeout;
        if let Some(started) = message_started {
            deadline = deadline.min(started + config.message_timeout);
        }
        let read = tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%remote, "closing stream: idle or message too slow");
                break;
            }
            read = reader.read_buf(framer.buffer_mut()) => read,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => last_activity = Instant::now(),
        }
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(message))) => {
                    let inbound = Inbound {
                        peer,
                        message: Ok(message),
                    };
                    if handle.inner.inbound.send(inbound).await.is_err() {
                        break 'read;
                    }
                }
                Ok(Some(Frame::KeepAlive(KeepAlive::Ping))) => {
                    let _ = writer.try_send(Bytes::from_static(b"\r\n"));
                }
                Ok(Some(Frame::KeepAlive(KeepAlive::Pong))) => {}
                Ok(None) => break,
                Err(error) => {
                    // Framing is lost: let the receiver answer, then close.
                    let _ = handle
                        .inner
                        .inbound
                        .send(Inbound {
                            peer,
                            message: Err(error),
                        })
                        .await;
                    failed = true;
                    break 'read;
                }
            }
        }
        message_started = if framer.buffered() == 0 {
            None
        } else {
            message_started.or(Some(last_activity))
        };
    }
    if failed {
        // The response to the broken message goes out on this connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    handle.forget(id);
    drop(writer);
    let _ = write_task.await;
    drop(permit);
}
