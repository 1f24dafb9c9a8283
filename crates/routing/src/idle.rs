//! The idle lines of one skill: its available agents in a strategy's order
//! (a rank such as calls today, then the moment they became idle), so that
//! a decision is a look at the head instead of a scan of every agent with
//! the skill.
//!
//! The line is a hint, the state word is the truth. An agent is pushed
//! each time they become available (with the `since` of that moment) and
//! an entry is valid only while the agent's word is still `available` with
//! that same `since`; entries of agents claimed meanwhile (through another
//! skill, or by another strategy) go stale and are dropped when reached.
//! A claim through the line is the same compare-and-swap as any other.
//!
//! Capacity is reserved when the skill's index is built (twice the members,
//! plus a margin); a push into a full line first drops stale and duplicate
//! entries, which leaves at most one entry per member, so the line never
//! grows past its reservation and deciding never allocates.

use std::collections::VecDeque;

use crate::time::Millis;

/// One agent's turn: ranked `rank` (smaller first), idle since `since`, at
/// `position` in the skill index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IdleEntry {
    pub(crate) rank: u64,
    pub(crate) since: Millis,
    pub(crate) position: u32,
}

#[derive(Debug, Default)]
pub(crate) struct IdleLine {
    entries: VecDeque<IdleEntry>,
}

impl IdleLine {
    /// A line for `members` agents holding `available`, sorted.
    pub(crate) fn new(members: usize, available: impl IntoIterator<Item = IdleEntry>) -> Self {
        let mut entries = Vec::with_capacity(2 * members + 16);
        entries.extend(available);
        entries.sort_unstable();
        Self {
            entries: VecDeque::from(entries),
        }
    }

    pub(crate) fn get(&self, at: usize) -> Option<IdleEntry> {
        self.entries.get(at).copied()
    }

    /// Drops the entry at `at` (cheap at the head).
    pub(crate) fn remove(&mut self, at: usize) {
        if at == 0 {
            self.entries.pop_front();
        } else {
            self.entries.remove(at);
        }
    }

    /// Adds an agent's turn in order; `valid` tells live entries from stale
    /// ones when room must be made.
    pub(crate) fn push(&mut self, entry: IdleEntry, valid: impl Fn(IdleEntry) -> bool) {
        if self.entries.len() == self.entries.capacity() {
            let mut last = None;
            self.entries.retain(|e| {
                let keep = Some(*e) != last && valid(*e);
                if keep {
                    last = Some(*e);
                }
                keep
            });
        }
        match self.entries.back() {
            Some(back) if *back > entry => {
                let at = self.entries.partition_point(|e| *e < entry);
                self.entries.insert(at, entry);
            }
            _ => self.entries.push_back(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(since: u64, position: u32) -> IdleEntry {
        IdleEntry {
            rank: 0,
            since: Millis::new(since),
            position,
        }
    }

    #[test]
    fn keeps_order_and_makes_room_without_growing() {
        let mut line = IdleLine::new(2, [entry(5, 1), entry(3, 0)]);
        assert_eq!(line.get(0), Some(entry(3, 0)));
        let capacity = line.entries.capacity();
        // Fill it with stale entries of agent 0, then push: the stale ones go.
        for since in 10..(10 + 3 * capacity as u64) {
            line.push(entry(since, 0), |e| e.position == 1);
        }
        line.push(entry(4, 1), |e| e.position == 1);
        assert_eq!(line.entries.capacity(), capacity, "never grows");
        assert_eq!(line.get(0), Some(entry(4, 1)));
        assert_eq!(line.get(1), Some(entry(5, 1)));
        let all: Vec<_> = line.entries.iter().copied().collect();
        assert!(all.windows(2).all(|w| w[0] <= w[1]), "sorted: {all:?}");
        let before = line.entries.len();
        line.remove(1);
        line.remove(0);
        assert_eq!(line.entries.len(), before - 2);
        assert_ne!(line.get(0), Some(entry(4, 1)));
    }
}
