//! The abandonment window of the overload alerts, kept up to date as the
//! calls record their steps, so that evaluating the alerts every couple of
//! seconds reads no journal.
//!
//! [`Reader::abandonment_window`](crate::Reader::abandonment_window) reads
//! every event of every call of the window and folds them: at 1,000 calls
//! in the window that is ~10 ms of CPU, every 2 s, and it grows with the
//! window. On a busy machine that burst delayed the RTP relay's packets by
//! up to 12 ms (BENCHMARKS.md, "RTP relay"). [`AbandonmentTracker`] follows
//! the same rules incrementally: a department visit starts at `queued` and
//! is resolved by the next `queued` (left), `connected`, `overflowed`
//! (left) or `ended` (abandoned when the call's outcome is, otherwise
//! left), exactly as the journal's fold (`timeline::fold`) resolves
//! visits; a test holds the two to the same counts.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

use crate::entry::{CallEvent, JournalEntry, Outcome};
use crate::report::{AbandonmentWindow, TimeRange, share};

/// One resolved visit: when, where (an index into the departments), and
/// whether the caller hung up.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    at: i64,
    department: u16,
    abandoned: bool,
}

/// Resolved department visits over a sliding window, from the calls' own
/// events. Memory: 16 bytes per visit resolved in the window (a department
/// index, not its name), and the department each waiting call is in.
#[derive(Debug)]
pub struct AbandonmentTracker {
    window: Duration,
    departments: Vec<String>,
    /// The department each call is waiting in, while it is.
    waiting: HashMap<String, u16>,
    /// In the order recorded (times are nearly ordered; [`Self::window`]
    /// filters by time, so a late entry only stays a little longer).
    resolved: VecDeque<Resolved>,
}

impl AbandonmentTracker {
    /// An empty tracker that keeps what [`Self::window`] may ask about: the
    /// visits resolved during the last `window`.
    pub fn new(window: Duration) -> Self {
        AbandonmentTracker {
            window,
            departments: Vec::new(),
            waiting: HashMap::new(),
            resolved: VecDeque::new(),
        }
    }

    /// Takes one step of a call, as it is journaled.
    pub fn record(&mut self, entry: &JournalEntry) {
        let at = entry.at.as_millisecond();
        let call = entry.call.as_str();
        match &entry.event {
            CallEvent::Queued { department, .. } => {
                self.resolve(call, at, false);
                let index = self.department(department);
                self.waiting.insert(call.to_string(), index);
            }
            CallEvent::Connected { .. } | CallEvent::Overflowed { .. } => {
                self.resolve(call, at, false);
            }
            CallEvent::Ended {
                outcome: Outcome::Interrupted,
            } => {
                // Not a resolved wait (see `AbandonmentWindow`).
                self.waiting.remove(call);
            }
            CallEvent::Ended { outcome } => {
                self.resolve(call, at, *outcome == Outcome::Abandoned);
            }
            _ => {}
        }
    }

    /// Adds visits resolved before this process started (from the
    /// journal): `(department, at in ms since the epoch, abandoned)`.
    pub fn seed(&mut self, visits: impl IntoIterator<Item = (String, i64, bool)>) {
        for (department, at, abandoned) in visits {
            let department = self.department(&department);
            self.resolved.push_back(Resolved {
                at,
                department,
                abandoned,
            });
        }
    }

    /// Per department with a visit resolved in the window that ends at
    /// `now`: the counts [`Reader::abandonment_window`](crate::Reader::abandonment_window)
    /// gives for `TimeRange::last(window, now)`, sorted by department.
    /// Forgets what has left the window.
    pub fn window(&mut self, now: Timestamp) -> Vec<AbandonmentWindow> {
        let range = TimeRange::last(self.window, now);
        let (from, _) = range.millis();
        while self.resolved.front().is_some_and(|first| first.at < from) {
            self.resolved.pop_front();
        }
        let mut sums = vec![(0u64, 0u64); self.departments.len()];
        for visit in &self.resolved {
            if range.contains_millis(visit.at) {
                let (resolved, abandoned) = &mut sums[usize::from(visit.department)];
                *resolved += 1;
                *abandoned += u64::from(visit.abandoned);
            }
        }
        let mut windows: Vec<AbandonmentWindow> = self
            .departments
            .iter()
            .zip(sums)
            .filter(|(_, (resolved, _))| *resolved > 0)
            .map(|(department, (resolved, abandoned))| AbandonmentWindow {
                department: department.clone(),
                resolved,
                abandoned,
                abandonment_rate: share(abandoned, resolved),
            })
            .collect();
        windows.sort_by(|a, b| a.department.cmp(&b.department));
        windows
    }

    /// Ends the visit `call` is waiting in, if any.
    fn resolve(&mut self, call: &str, at: i64, abandoned: bool) {
        if let Some(department) = self.waiting.remove(call) {
            self.resolved.push_back(Resolved {
                at,
                department,
                abandoned,
            });
        }
    }

    fn department(&mut self, name: &str) -> u16 {
        if let Some(index) = self.departments.iter().position(|known| known == name) {
            return u16::try_from(index).unwrap_or(u16::MAX);
        }
        // A dialplan has tens of departments; past u16's range (never) they
        // would share the last index rather than grow without bound.
        if self.departments.len() < usize::from(u16::MAX) {
            self.departments.push(name.to_string());
        }
        u16::try_from(self.departments.len() - 1).unwrap_or(u16::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Priority;
    use crate::report;
    use crate::timeline;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    fn queued(department: &str) -> CallEvent {
        CallEvent::Queued {
            department: department.into(),
            priority: Priority::Routine,
            sla_ms: 60_000,
        }
    }

    fn ended(outcome: Outcome) -> CallEvent {
        CallEvent::Ended { outcome }
    }

    /// Calls whose steps cover every way a visit ends, interleaved as
    /// calls run, some still in progress.
    fn calls() -> Vec<JournalEntry> {
        let connected = || CallEvent::Connected {
            agent: "1003".into(),
            branch: None,
        };
        let overflowed = || CallEvent::Overflowed {
            from: "cardiology".into(),
            to: Some("front-desk".into()),
        };
        let steps: Vec<(&str, i64, CallEvent)> = vec![
            ("a", 1_000, queued("pediatrics")),
            ("b", 2_000, queued("cardiology")),
            ("a", 3_000, connected()),
            ("c", 4_000, queued("pediatrics")),
            ("b", 5_000, overflowed()),
            ("b", 5_000, queued("front-desk")),
            ("c", 6_000, ended(Outcome::Abandoned)),
            ("a", 9_000, ended(Outcome::Connected)),
            ("d", 10_000, queued("cardiology")),
            ("d", 11_000, queued("dermatology")),
            ("b", 12_000, ended(Outcome::Abandoned)),
            ("e", 13_000, queued("pediatrics")),
            ("d", 14_000, connected()),
            ("f", 15_000, queued("cardiology")),
            ("f", 16_000, ended(Outcome::Overflowed)),
        ];
        steps
            .into_iter()
            .map(|(call, ms, event)| JournalEntry::new(call, at(ms), event))
            .collect()
    }

    /// What the journal's fold says for `range`.
    fn from_the_fold(entries: &[JournalEntry], range: &TimeRange) -> Vec<AbandonmentWindow> {
        let mut by_call: Vec<(&str, Vec<(i64, &CallEvent)>)> = Vec::new();
        for entry in entries {
            let call = entry.call.as_str();
            let event = (entry.at.as_millisecond(), &entry.event);
            match by_call.iter_mut().find(|(id, _)| *id == call) {
                Some((_, events)) => events.push(event),
                None => by_call.push((call, vec![event])),
            }
        }
        let facts: Vec<_> = by_call
            .into_iter()
            .map(|(_, events)| timeline::fold(events))
            .collect();
        report::abandonment(&facts, range)
    }

    #[test]
    fn counts_what_the_journal_fold_counts_for_every_window() {
        let entries = calls();
        for (window_ms, now_ms) in [
            (60_000, 20_000),
            (8_000, 20_000),
            (5_000, 12_000),
            (3_000, 6_001),
            (1_000, 5_500),
            (60_000, 3_000),
        ] {
            let window = Duration::from_millis(window_ms);
            let mut tracker = AbandonmentTracker::new(window);
            for entry in &entries {
                tracker.record(entry);
            }
            let range = TimeRange::last(window, at(now_ms));
            assert_eq!(
                tracker.window(at(now_ms)),
                from_the_fold(&entries, &range),
                "window {window_ms} ms ending at {now_ms}"
            );
        }
    }

    #[test]
    fn forgets_what_leaves_the_window_and_keeps_seeded_visits() {
        let mut tracker = AbandonmentTracker::new(Duration::from_secs(10));
        tracker.seed([
            ("pediatrics".to_string(), 1_000, true),
            ("pediatrics".to_string(), 8_000, false),
        ]);
        for entry in calls().iter().take(3) {
            tracker.record(entry);
        }
        let windows = tracker.window(at(11_500));
        assert_eq!(windows.len(), 1);
        assert_eq!((windows[0].resolved, windows[0].abandoned), (2, 0));
        assert_eq!(tracker.resolved.len(), 2, "the visit at 1 s is gone");
        assert!(tracker.window(at(60_000)).is_empty());
        assert!(tracker.resolved.is_empty());
    }
}
