//! The calls the API lists (`GET /api/calls`), kept in memory: each call's
//! task publishes its core's [`CallRecord`] here at every change; readers
//! take copies. The book keeps the most recent [`CALLS_KEPT`] calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use call::CallRecord;
use dashmap::DashMap;

/// How many calls the book remembers.
pub const CALLS_KEPT: u64 = 10_000;

/// Every recent call, newest first on reading.
#[derive(Debug, Clone, Default)]
pub struct CallBook {
    // Sequence number → record. Written by each call's task (its own key
    // only), read by the API; no guard leaves these methods. Boxed: a
    // record is a few hundred bytes and a hash table keeps its values in
    // its buckets, live or not; with the book full, each shard's table
    // doubles once at a random moment (when its tombstones run out while
    // it is over half full), which the soak saw as RSS creeping up for
    // minutes after the book filled (BENCHMARKS.md). Boxed, a bucket is
    // 16 bytes.
    calls: Arc<DashMap<u64, Box<CallRecord>>>,
    next: Arc<AtomicU64>,
}

impl CallBook {
    /// A key for a new call.
    pub fn next_sequence(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Publishes the current state of call `sequence`.
    pub fn publish(&self, sequence: u64, record: &CallRecord) {
        // A call publishes at every change: its box is kept and refilled.
        match self.calls.get_mut(&sequence) {
            Some(mut kept) => **kept = record.clone(),
            None => {
                self.calls.insert(sequence, Box::new(record.clone()));
            }
        }
        if sequence > CALLS_KEPT {
            self.calls.remove(&(sequence - CALLS_KEPT));
        }
    }

    /// The `limit` most recent calls, newest first.
    pub fn recent(&self, limit: usize) -> Vec<CallRecord> {
        let mut calls: Vec<(u64, CallRecord)> = self
            .calls
            .iter()
            .map(|entry| (*entry.key(), CallRecord::clone(entry.value())))
            .collect();
        calls.sort_by_key(|call| std::cmp::Reverse(call.0));
        calls
            .into_iter()
            .take(limit)
            .map(|(_, call)| call)
            .collect()
    }

    /// Calls not over yet.
    pub fn active(&self) -> usize {
        self.calls
            .iter()
            .filter(|entry| entry.value().outcome.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_bounded() {
        let book = CallBook::default();
        for n in 0..3 {
            let sequence = book.next_sequence();
            book.publish(
                sequence,
                &CallRecord::new(
                    format!("c-{n}"),
                    "+1312",
                    "+15550100",
                    ivr::jiff::Timestamp::UNIX_EPOCH,
                ),
            );
        }
        let ids: Vec<String> = book.recent(2).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, vec!["c-2", "c-1"]);
        assert_eq!(book.active(), 3);
        let json = book.recent(1)[0].to_json();
        assert_eq!(json["outcome"], "in_progress");
        assert_eq!(json["agent"], serde_json::Value::Null);
        assert!(json["started_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(json["transfers"], serde_json::json!([]));
    }
}
