//! RFC 3261 transaction timers (§17, Table 4) as an enum plus a table of
//! deadlines, and the heap that orders them across transactions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The base timer values (RFC 3261 §17.1.1.1 and Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerValues {
    /// T1: the round-trip estimate, 500 ms by default.
    pub t1: Duration,
    /// T2: the longest retransmit interval for non-INVITE requests and
    /// INVITE responses, 4 s by default.
    pub t2: Duration,
    /// T4: the longest time a message stays in the network, 5 s by default.
    pub t4: Duration,
}

impl Default for TimerValues {
    fn default() -> Self {
        TimerValues {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerValues {
    /// 64 × T1: how long a transaction waits before giving up.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// The timers of RFC 3261 §17 (A–K), RFC 6026 (L, M) and the UAS core's
/// 2xx retransmission (§13.3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// INVITE request retransmit (client, UDP).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait for response retransmissions (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, UDP).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, UDP).
    G,
    /// Wait for ACK (server INVITE, Completed).
    H,
    /// Wait for ACK retransmissions (server INVITE, Confirmed).
    I,
    /// Wait for request retransmissions (server non-INVITE, Completed).
    /// Over UDP a completed non-INVITE transaction leaves the heap: its
    /// Timer J is a deadline in the queue of completed requests
    /// (`transaction::completed`), the same duration for all of them.
    J,
    /// Wait for response retransmissions (client non-INVITE, Completed).
    K,
    /// Wait for INVITE retransmissions and ACK (server INVITE, Accepted).
    L,
    /// Wait for 2xx retransmissions (client INVITE, Accepted).
    M,
    /// 2xx retransmit until ACK (server INVITE, Accepted).
    Retransmit2xx,
}

const TIMERS: usize = 13;

impl Timer {
    fn index(self) -> usize {
        self as usize
    }
}

/// The armed deadlines of one transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deadlines([Option<Instant>; TIMERS]);

impl Deadlines {
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer.index()]
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer.index()] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.0[timer.index()] = None;
    }

    pub(crate) fn clear_all(&mut self) {
        self.0 = [None; TIMERS];
    }
}

/// Deadlines of every transaction, earliest first. Entries are not removed
/// when a timer is cleared; a popped entry counts only if it still matches
/// the transaction's [`Deadlines`].
#[derive(Debug)]
pub(crate) struct TimerHeap<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K, Timer)>>,
}

impl<K: Ord + Copy> TimerHeap<K> {
    pub(crate) fn new() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
        }
    }

    pub(crate) fn push(&mut self, at: Instant, key: K, timer: Timer) {
        self.heap.push(Reverse((at, key, timer)));
    }

    /// The earliest entry, without removing it.
    pub(crate) fn peek(&self) -> Option<(Instant, K, Timer)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<(Instant, K, Timer)> {
        self.heap.pop().map(|Reverse(entry)| entry)
    }
}
