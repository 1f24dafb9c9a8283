//! One stream connection (TCP or TLS): a reading loop that frames and
//! parses, answers keep-alive pings and enforces the idle and message
//! deadlines, and a writing task that drains the connection's queue.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ConnectionPermit, Inbound, TransportHandle};
use crate::message::{Frame, KeepAlive, StreamFramer};
use crate::peer::Peer;

/// How many queued messages one write takes at most before it flushes.
const WRITE_BATCH: usize = 32;

/// Runs the connection `peer` (its id in `peer.connection`) until the peer
/// closes it, it is idle or too slow, framing is lost, its source goes
/// over its rate or sends as a scanner (an untrusted source: see
/// [`super::door`]), or shutdown; then forgets it and gives its permit
/// back.
pub(super) async fn run<R, W>(
    handle: TransportHandle,
    peer: Peer,
    mut reader: R,
    write_half: W,
    outgoing: mpsc::Receiver<Bytes>,
    writer: mpsc::Sender<Bytes>,
    permit: ConnectionPermit,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let config = handle.inner.config.clone();
    let shutdown = handle.inner.shutdown.clone();
    let remote = peer.address;
    let door = std::sync::Arc::clone(&config.front_door);
    // Decided once per connection: a reload's new trust applies to new
    // connections.
    let untrusted = !door.is_trusted(remote.ip());
    let write_task = tokio::spawn(write_queue(write_half, outgoing));
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
            let frame = framer.next_frame();
            if untrusted && matches!(frame, Ok(Some(_))) {
                let now = std::time::Instant::now();
                let admitted = door.admit(now, remote.ip())
                    && match &frame {
                        Ok(Some(Frame::Message(message))) => door.screen(now, remote.ip(), message),
                        _ => true,
                    };
                if !admitted {
                    tracing::debug!(%remote, "closing stream: source over its limits");
                    // The answers to what was admitted still go out.
                    failed = true;
                    break 'read;
                }
            }
            match frame {
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
        // The response to the broken message (or to the messages admitted
        // before a source went over its limits) goes out on this
        // connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(id) = peer.connection {
        handle.forget(id);
    }
    drop(writer);
    let _ = write_task.await;
    drop(permit);
}

/// Writes what is queued for the connection, a batch at a time with one
/// flush per batch (for TLS, a flush sends what rustls still holds).
async fn write_queue<W: AsyncWrite + Unpin>(
    mut write_half: W,
    mut outgoing: mpsc::Receiver<Bytes>,
) {
    'write: while let Some(bytes) = outgoing.recv().await {
        if write_half.write_all(&bytes).await.is_err() {
            break;
        }
        for _ in 1..WRITE_BATCH {
            match outgoing.try_recv() {
                Ok(bytes) => {
                    if write_half.write_all(&bytes).await.is_err() {
                        break 'write;
                    }
                }
                Err(_) => break,
            }
        }
        if write_half.flush().await.is_err() {
            break;
        }
    }
    let _ = write_half.shutdown().await;
}
