//! Ordered send queues: one per stream connection, one for the UDP socket.
//!
//! Whoever sends (the endpoint, on its own task) never waits: a message is
//! pushed on the queue of its connection and one writer per connection
//! drains it in order. No task is spawned per message, so a burst to a
//! slow peer costs one queue entry per message, not a task each, and two
//! messages to one peer can never overtake each other (a request queued
//! behind the connection attempt it caused goes out first, in order, once
//! the connection is up).
//!
//! Each queue is bounded in bytes. A peer that reads nothing while that
//! much waits for it is gone or hostile: the push that would pass the bound
//! is refused and the queue is marked overflowed, which closes a stream
//! connection (as Kamailio closes one whose write queue passes
//! `tcp_conn_wq_max`). The first message always fits an empty queue, so
//! the bound never refuses a single large message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A sender's name for a message, handed back in an
/// [`super::Undelivered`] when the transport took the message but could
/// not deliver it (the endpoint tags a client transaction's requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendTag(pub u64);

/// One message waiting to be written.
#[derive(Debug)]
pub(super) struct Outgoing {
    /// Where to (a datagram's destination; a stream's remote address).
    pub(super) destination: SocketAddr,
    /// The encoded message.
    pub(super) bytes: Bytes,
    /// Reported back if it cannot be delivered.
    pub(super) tag: Option<SendTag>,
}

/// Why a push was refused; the message is handed back.
#[derive(Debug)]
pub(super) enum Refused {
    /// The queue holds its bound already (it is now marked overflowed);
    /// the message is dropped.
    Full,
    /// The writer is gone (the connection is closing).
    Closed(Outgoing),
}

#[derive(Debug)]
struct Shared {
    /// Bytes pushed and not yet written (a message being written counts).
    queued: AtomicUsize,
    limit: usize,
    overflowed: CancellationToken,
}

/// The sending side of a queue; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct SendQueue {
    // Unbounded in messages, bounded in bytes by `Shared::limit`: a tokio
    // channel gives the writer its wake-up without a lock per message.
    sender: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
}

/// The writer's side of a queue.
#[derive(Debug)]
pub(super) struct QueueReceiver {
    receiver: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
}

impl SendQueue {
    /// A queue holding at most about `limit` bytes.
    pub(super) fn new(limit: usize) -> (SendQueue, QueueReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            limit,
            overflowed: CancellationToken::new(),
        });
        (
            SendQueue {
                sender,
                shared: Arc::clone(&shared),
            },
            QueueReceiver { receiver, shared },
        )
    }

    /// Queues `outgoing` behind what is already queued.
    pub(super) fn push(&self, outgoing: Outgoing) -> Result<(), Refused> {
        let length = outgoing.bytes.len();
        let before = self.shared.queued.fetch_add(length, Ordering::Relaxed);
        if before > 0 && before + length > self.shared.limit {
            self.shared.queued.fetch_sub(length, Ordering::Relaxed);
            self.shared.overflowed.cancel();
            return Err(Refused::Full);
        }
        self.sender.send(outgoing).map_err(|returned| {
            self.shared.queued.fetch_sub(length, Ordering::Relaxed);
            Refused::Closed(returned.0)
        })
    }

    /// Nothing is queued or being written: a datagram may go out directly
    /// without overtaking one queued before it.
    pub(super) fn is_idle(&self) -> bool {
        self.shared.queued.load(Ordering::Relaxed) == 0
    }

    /// The writer is gone.
    pub(super) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Cancelled once a push found the queue at its bound.
    pub(super) fn overflowed(&self) -> &CancellationToken {
        &self.shared.overflowed
    }
}

impl QueueReceiver {
    /// The next message, once one is queued; `None` when every sender is
    /// gone and the queue is empty.
    pub(super) async fn recv(&mut self) -> Option<Outgoing> {
        self.receiver.recv().await
    }

    /// The next message if one is queued now.
    pub(super) fn try_recv(&mut self) -> Option<Outgoing> {
        self.receiver.try_recv().ok()
    }

    /// `length` bytes taken from the queue were written (or given up).
    pub(super) fn done(&self, length: usize) {
        self.shared.queued.fetch_sub(length, Ordering::Relaxed);
    }

    /// Closes the queue (pushes fail from now on) and hands back what it
    /// still holds, in order.
    pub(super) fn close(&mut self) -> Vec<Outgoing> {
        self.receiver.close();
        let mut left = Vec::new();
        while let Ok(outgoing) = self.receiver.try_recv() {
            self.done(outgoing.bytes.len());
            left.push(outgoing);
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(length: usize, tag: u64) -> Outgoing {
        Outgoing {
            destination: "127.0.0.1:5060".parse().expect("an address"),
            bytes: Bytes::from(vec![b'x'; length]),
            tag: Some(SendTag(tag)),
        }
    }

    #[test]
    fn messages_come_out_in_order_and_the_bound_is_in_bytes() {
        let (queue, mut receiver) = SendQueue::new(100);
        assert!(queue.is_idle());
        for tag in 0..3 {
            assert!(queue.push(message(30, tag)).is_ok());
        }
        assert!(!queue.is_idle());
        // 90 queued: 30 more would pass 100.
        assert!(matches!(queue.push(message(30, 9)), Err(Refused::Full)));
        assert!(queue.overflowed().is_cancelled());
        let mut order = Vec::new();
        while let Some(outgoing) = receiver.try_recv() {
            receiver.done(outgoing.bytes.len());
            order.extend(outgoing.tag.map(|tag| tag.0));
        }
        assert_eq!(order, [0, 1, 2]);
        assert!(queue.is_idle());
    }

    #[test]
    fn a_single_message_larger_than_the_bound_fits_an_empty_queue() {
        let (queue, mut receiver) = SendQueue::new(10);
        assert!(queue.push(message(64, 1)).is_ok());
        assert!(matches!(queue.push(message(1, 2)), Err(Refused::Full)));
        let left = receiver.close();
        assert_eq!(left.len(), 1);
        assert!(queue.is_idle());
        assert!(queue.is_closed());
        assert!(matches!(queue.push(message(1, 3)), Err(Refused::Closed(_))));
    }
}
