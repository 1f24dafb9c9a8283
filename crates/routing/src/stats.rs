//! Live statistics per queue and the wait estimate.

use std::time::Duration;

use crate::id::{Priority, QueueId};
use crate::offer::OfferFailure;
use crate::table::AgentCounts;

/// The recent waits of one queue and priority, in a bounded ring buffer:
/// time from entering routing to an agent answering. Abandoned calls are
/// not samples (their wait is unknown: they would have waited longer).
#[derive(Debug, Clone)]
pub(crate) struct WaitSamples {
    samples: Vec<u64>,
    next: usize,
    capacity: usize,
}

impl WaitSamples {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            samples: Vec::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn record(&mut self, wait: Duration) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        if self.samples.len() < self.capacity {
            self.samples.push(ms);
        } else if let Some(slot) = self.samples.get_mut(self.next) {
            *slot = ms;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    /// The `percentile` (nearest rank) of the samples, or `None` with fewer
    /// than `min_samples` of them.
    pub(crate) fn percentile(&self, percentile: u8, min_samples: usize) -> Option<Duration> {
        let count = self.samples.len();
        if count == 0 || count < min_samples {
            return None;
        }
        let mut sorted = self.samples.clone();
        let rank = (usize::from(percentile.clamp(1, 100)) * count).div_ceil(100);
        let (_, value, _) = sorted.select_nth_unstable(rank.saturating_sub(1));
        Some(Duration::from_millis(*value))
    }
}

/// Counters of what happened in a queue since the router started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounters {
    /// Callers who entered the queue (enqueued or overflowed into it).
    pub entered: u64,
    /// Callers an agent answered.
    pub answered: u64,
    /// Of those, answered within the SLA (counted from their first enqueue).
    pub answered_within_sla: u64,
    /// Callers who hung up before an agent answered.
    pub abandoned: u64,
    /// Callers sent on to another queue (max wait, or a full queue).
    pub overflowed: u64,
    /// Callers given the max-wait message and hung up on.
    pub given_up: u64,
    /// Callers refused at the door: the queue and its overflow chain full.
    pub refused: u64,
    /// Offers of this queue's calls that an agent did not take, by reason.
    pub missed: MissedOffers,
}

/// Offers an agent did not take, counted by [`OfferFailure`]: a queue whose
/// agents' phones are unreachable needs a technician, one whose agents
/// decline needs a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissedOffers {
    /// The ring timeout passed.
    pub no_answer: u64,
    /// The phone was busy (486, 600).
    pub busy: u64,
    /// The agent declined (603, another refusal).
    pub rejected: u64,
    /// The phone could not be reached (408, transport error, silence).
    pub unreachable: u64,
}

impl MissedOffers {
    /// The misses for `reason`.
    pub fn of(&self, reason: OfferFailure) -> u64 {
        match reason {
            OfferFailure::NoAnswer => self.no_answer,
            OfferFailure::Busy => self.busy,
            OfferFailure::Rejected => self.rejected,
            OfferFailure::Unreachable => self.unreachable,
            // Not a miss: the agent was never rung.
            OfferFailure::ClaimedElsewhere => 0,
        }
    }

    /// Every miss, whatever the reason.
    pub fn total(&self) -> u64 {
        self.no_answer + self.busy + self.rejected + self.unreachable
    }

    pub(crate) fn count(&mut self, reason: OfferFailure) {
        let counter = match reason {
            OfferFailure::NoAnswer => &mut self.no_answer,
            OfferFailure::Busy => &mut self.busy,
            OfferFailure::Rejected => &mut self.rejected,
            OfferFailure::Unreachable => &mut self.unreachable,
            // Not a miss: the agent was never rung.
            OfferFailure::ClaimedElsewhere => return,
        };
        *counter = counter.saturating_add(1);
    }
}

/// A queue's live figures, as `GET /api/queues` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's dialplan id.
    pub id: QueueId,
    /// Patients not yet connected: callers in line or being offered to an
    /// agent, and callback entries keeping their place (in line, waiting
    /// for a retry, or dialing). A callback is a patient still waiting for
    /// the department, ahead of later callers, so it counts like one.
    pub waiting: usize,
    /// Of those, how many are being offered right now (a callback: its
    /// agent rings or dials the patient).
    pub offering: usize,
    /// Of those in line, how many are urgent (callbacks included).
    pub urgent_waiting: usize,
    /// Of `waiting`, how many are callback entries (the caller hung up;
    /// the rest hold live and count against `max_length`).
    pub callbacks: usize,
    /// The longest current wait (from first enqueue), zero with nobody
    /// waiting: the API's `longest_wait_ms`. A callback entry's wait runs
    /// from the live call's enqueue to its connection, retries included,
    /// so a patient kept waiting by callbacks still breaches the SLA.
    pub longest_wait: Duration,
    /// The queue's SLA.
    pub sla: Duration,
    /// Qualified agents by state.
    pub agents: AgentCounts,
    /// The API's `agents_available`.
    pub agents_available: u32,
    /// The API's `agents_signed_in`: qualified agents registered.
    pub agents_signed_in: u32,
    /// Wait estimates for a new caller, per priority (see
    /// [`crate::Router::estimate_wait`]).
    pub estimated_wait: [(Priority, Option<Duration>); 2],
    /// Counters since start.
    pub counters: QueueCounters,
    /// True for a queue removed by a reload that still has callers.
    pub retired: bool,
}

impl QueueStats {
    /// True when someone has waited longer than the SLA (an `sla` alert).
    pub fn over_sla(&self) -> bool {
        self.longest_wait > self.sla
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_is_withheld_until_enough_samples() {
        let mut samples = WaitSamples::new(100);
        for ms in 1..=9 {
            samples.record(Duration::from_millis(ms * 1_000));
        }
        assert_eq!(samples.percentile(80, 10), None);
        samples.record(Duration::from_millis(10_000));
        // 1..=10 s: the 80th percentile by nearest rank is the 8th value.
        assert_eq!(samples.percentile(80, 10), Some(Duration::from_secs(8)));
        assert_eq!(samples.percentile(100, 10), Some(Duration::from_secs(10)));
        assert_eq!(samples.percentile(1, 10), Some(Duration::from_secs(1)));
    }

    #[test]
    fn ring_buffer_forgets_the_oldest() {
        let mut samples = WaitSamples::new(10);
        for _ in 0..10 {
            samples.record(Duration::from_secs(100));
        }
        for _ in 0..10 {
            samples.record(Duration::from_secs(1));
        }
        assert_eq!(samples.len(), 10);
        assert_eq!(samples.percentile(80, 10), Some(Duration::from_secs(1)));
        let mut empty = WaitSamples::new(0);
        assert_eq!(empty.percentile(80, 0), None);
        empty.record(Duration::from_secs(3));
        assert_eq!(empty.percentile(80, 0), Some(Duration::from_secs(3)));
    }
}
