//! The call's two times: the monotonic instant every input comes with, and
//! the wall time derived from it (business hours, the record's timestamps).

use std::time::{Duration, Instant};

use ivr::jiff::{SignedDuration, Timestamp};

/// A monotonic instant paired with the wall time it was at; the wall time
/// of a later instant is that time plus the elapsed monotonic time (so a
/// wall-clock step during a call does not reorder its record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    origin: Instant,
    wall: Timestamp,
}

impl Clock {
    /// The clock at `origin`, when the wall time was `wall`.
    pub fn new(origin: Instant, wall: Timestamp) -> Clock {
        Clock { origin, wall }
    }

    /// The wall time at `now`.
    pub fn wall(&self, now: Instant) -> Timestamp {
        let elapsed = now.saturating_duration_since(self.origin);
        self.wall
            .checked_add(SignedDuration::try_from(elapsed).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX)
    }

    /// The instant at which the wall time is `at` (the origin for a time
    /// before it).
    pub fn instant_at(&self, at: Timestamp) -> Instant {
        let since = at.duration_since(self.wall);
        self.origin + Duration::try_from(since).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_follows_the_instants() {
        // The virtual clock's origin: any instant will do, and nothing
        // reads the clock after it.
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let wall: Timestamp = "2026-12-07T15:00:00Z".parse().unwrap();
        let clock = Clock::new(t0, wall);
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(clock.wall(later).to_string(), "2026-12-07T15:00:01.5Z");
        let deadline: Timestamp = "2026-12-07T15:00:05Z".parse().unwrap();
        assert_eq!(clock.instant_at(deadline), t0 + Duration::from_secs(5));
        // Before the origin is the origin.
        let before: Timestamp = "2026-12-07T14:00:00Z".parse().unwrap();
        assert_eq!(clock.instant_at(before), t0);
    }
}
