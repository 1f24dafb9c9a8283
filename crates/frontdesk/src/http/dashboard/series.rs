//! The dashboard's chart data: how many callers waited, over the last hour.
//!
//! A bounded ring of slots of [`SLOT`] each, [`SLOTS`] of them (one hour).
//! Each slot keeps the most callers seen waiting at once during it (the
//! dashboard's task samples every second, so a short peak is not lost
//! between two slots). No clock inside: the caller passes the time.

use std::collections::VecDeque;
use std::time::Duration;

use ivr::jiff::Timestamp;
use serde_json::{Value, json};

/// One point of the chart.
pub const SLOT: Duration = Duration::from_secs(5);
/// Points kept: one hour of [`SLOT`]s.
pub const SLOTS: usize = 720;

/// Callers waiting (all queues together), per slot, for the last hour.
#[derive(Debug, Clone)]
pub struct WaitingSeries {
    slot_ms: i64,
    capacity: usize,
    /// (slot number since the Unix epoch, most callers waiting in it),
    /// oldest first, slot numbers increasing.
    points: VecDeque<(i64, u32)>,
}

impl Default for WaitingSeries {
    fn default() -> Self {
        Self::new(SLOT, SLOTS)
    }
}

impl WaitingSeries {
    /// `capacity` slots of `slot` each.
    pub fn new(slot: Duration, capacity: usize) -> Self {
        WaitingSeries {
            slot_ms: i64::try_from(slot.as_millis()).unwrap_or(i64::MAX).max(1),
            capacity: capacity.max(1),
            points: VecDeque::with_capacity(capacity.max(1)),
        }
    }

    fn slot_of(&self, at: Timestamp) -> i64 {
        at.as_millisecond().div_euclid(self.slot_ms)
    }

    /// `waiting` callers were waiting at `at`. A sample older than the
    /// newest slot is ignored (time does not go back).
    pub fn record(&mut self, at: Timestamp, waiting: u32) {
        let slot = self.slot_of(at);
        match self.points.back_mut() {
            Some((last, most)) if *last == slot => *most = (*most).max(waiting),
            Some((last, _)) if *last > slot => return,
            _ => self.points.push_back((slot, waiting)),
        }
        let oldest_kept = slot - (self.capacity as i64 - 1);
        while self
            .points
            .front()
            .is_some_and(|(first, _)| *first < oldest_kept)
        {
            self.points.pop_front();
        }
    }

    /// The chart ending at `now`'s slot: `capacity` values, oldest first,
    /// `null` for a slot with no sample (before the daemon started):
    /// `{"slot_ms":5000,"from":"<RFC 3339 start of the first slot>",
    /// "waiting":[null,…,0,2,1]}`.
    pub fn to_json(&self, now: Timestamp) -> Value {
        let last = self.slot_of(now);
        let first = last - (self.capacity as i64 - 1);
        let mut waiting = vec![Value::Null; self.capacity];
        for (slot, most) in &self.points {
            if let Some(index) = slot
                .checked_sub(first)
                .and_then(|index| usize::try_from(index).ok())
                && let Some(value) = waiting.get_mut(index)
            {
                *value = json!(most);
            }
        }
        let from = Timestamp::from_millisecond(first.saturating_mul(self.slot_ms))
            .map(|t| t.to_string())
            .unwrap_or_default();
        json!({ "slot_ms": self.slot_ms, "from": from, "waiting": waiting })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn each_slot_keeps_its_peak_and_the_chart_ends_now() {
        let mut series = WaitingSeries::new(Duration::from_secs(5), 4);
        series.record(at(0), 1);
        series.record(at(1), 3);
        series.record(at(2), 0);
        series.record(at(5), 2);
        let chart = series.to_json(at(10));
        assert_eq!(chart["slot_ms"], 5000);
        assert_eq!(chart["waiting"], json!([null, 3, 2, null]));
        assert_eq!(
            chart["from"],
            Timestamp::from_second(1_800_000_000 - 5)
                .unwrap()
                .to_string()
        );
    }

    #[test]
    fn it_is_bounded_and_forgets_the_oldest() {
        let mut series = WaitingSeries::new(Duration::from_secs(5), 3);
        for n in 0..100u32 {
            series.record(at(i64::from(n) * 5), n);
        }
        assert_eq!(series.points.len(), 3);
        assert_eq!(series.to_json(at(99 * 5))["waiting"], json!([97, 98, 99]));
        // An hour later with no samples, nothing is left to draw.
        assert_eq!(
            series.to_json(at(99 * 5 + 3600))["waiting"],
            json!([null, null, null])
        );
    }

    #[test]
    fn a_sample_from_the_past_is_ignored() {
        let mut series = WaitingSeries::new(Duration::from_secs(5), 3);
        series.record(at(10), 1);
        series.record(at(0), 9);
        assert_eq!(series.to_json(at(10))["waiting"], json!([null, null, 1]));
    }

    #[test]
    fn the_default_is_one_hour_of_five_second_slots() {
        let series = WaitingSeries::default();
        let chart = series.to_json(at(0));
        assert_eq!(chart["waiting"].as_array().unwrap().len(), 720);
        assert_eq!(SLOT * SLOTS as u32, Duration::from_secs(3600));
    }
}
