//! One stream connection (TCP or TLS): a reading loop that frames and
//! parses, answers keep-alive pings and enforces the idle and message
//! deadlines, and a writing task that drains the connection's ordered
//! queue ([`super::queue`]).

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::{Outgoing, QueueReceiver, SendQueue};
use super::{ConnectionPermit, Inbound, SendError, TransportHandle};
use crate::message::{Frame, KeepAlive, StreamFramer};
use crate::peer::Peer;

/// How many queued messages one write takes at most before it flushes.
const WRITE_BATCH: usize = 32;

/// Runs the connection `peer` (its id in `peer.connection`) until the peer
/// closes it, it is idle or too slow, framing is lost, its source goes
/// over its rate or sends as a scanner (an untrusted source: see
/// [`super::door`]), its send queue overflows (it reads nothing), or
/// shutdown; then forgets it, lets what is queued out (bounded by the
/// message timeout) and gives its permit back.
pub(super) async fn run<R, W>(
    handle: TransportHandle,
    peer: Peer,
    mut reader: R,
    write_half: W,
    queue: SendQueue,
    outgoing: QueueReceiver,
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
    let stop_writing = CancellationToken::new();
    let mut write_task = tokio::spawn(write_queue(
        handle.clone(),
        peer,
        write_half,
        outgoing,
        stop_writing.clone(),
    ));
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
            () = queue.overflowed().cancelled() => {
                tracing::debug!(%remote, "closing stream: the peer reads nothing");
                stop_writing.cancel();
                break;
            }
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
                    let _ = queue.push(Outgoing {
                        destination: remote,
                        bytes: Bytes::from_static(b"\r\n"),
                        tag: None,
                    });
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
    drop(queue);
    // What is queued goes out, unless the peer takes too long to read it.
    let written = tokio::select! {
        _ = &mut write_task => true,
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(config.message_timeout) => false,
    };
    if !written {
        // The writer reports what it still holds and ends; a finished
        // task's handle is not polled again (tokio panics if it is).
        stop_writing.cancel();
        let _ = write_task.await;
    }
    drop(permit);
}

/// Writes what is queued for the connection, a batch at a time with one
/// flush per batch (for TLS, a flush sends what rustls still holds), until
/// the queue ends or `stop`; then reports what it could not write.
async fn write_queue<W: AsyncWrite + Unpin>(
    handle: TransportHandle,
    peer: Peer,
    mut write_half: W,
    mut outgoing: QueueReceiver,
    stop: CancellationToken,
) {
    'write: loop {
        let first = tokio::select! {
            () = stop.cancelled() => break,
            next = outgoing.recv() => match next {
                Some(first) => first,
                None => break,
            },
        };
        let mut next = Some(first);
        let mut written = 0;
        while let Some(message) = next.take() {
            let result = tokio::select! {
                () = stop.cancelled() => Err(()),
                result = write_half.write_all(&message.bytes) => result.map_err(drop),
            };
            outgoing.done(message.bytes.len());
            if result.is_err() {
                handle.undelivered(peer, [message], || SendError::Closed);
                break 'write;
            }
            written += 1;
            if written < WRITE_BATCH {
                next = outgoing.try_recv();
            }
        }
        let flushed = tokio::select! {
            () = stop.cancelled() => false,
            result = write_half.flush() => result.is_ok(),
        };
        if !flushed {
            break;
        }
    }
    let left = outgoing.close();
    handle.undelivered(peer, left, || SendError::Closed);
    tokio::select! {
        () = stop.cancelled() => {}
        _ = write_half.shutdown() => {}
    }
}
