//! Rate-limited warnings: a peer that misbehaves a thousand times a
//! second gets one warning per period, with the count since the last.

use std::time::{Duration, Instant};

/// When to warn about one kind of event.
#[derive(Debug, Clone)]
pub struct WarnEvery {
    every: Duration,
    last: Option<Instant>,
    since: u64,
}

impl WarnEvery {
    /// At most one warning per `every`.
    pub fn new(every: Duration) -> Self {
        WarnEvery {
            every,
            last: None,
            since: 0,
        }
    }

    /// One event at `now`: `Some(count)` when a warning is due, `count`
    /// being the events since the last warning (this one included).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.since += 1;
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_period_with_the_count() {
        let start = crate::epoch();
        let mut warn = WarnEvery::new(Duration::from_secs(10));
        assert_eq!(warn.hit(start), Some(1));
        for n in 1..100 {
            assert_eq!(warn.hit(start + Duration::from_millis(n)), None);
        }
        assert_eq!(warn.hit(start + Duration::from_secs(10)), Some(100));
        assert_eq!(warn.hit(start + Duration::from_secs(11)), None);
    }
}
