//! Monotonic time as the router sees it.
//!
//! The routing core never reads a clock: the driver passes `now` into every
//! call. [`Millis`] is a point on the driver's monotonic clock, counted in
//! milliseconds from an origin the driver picks (its start, typically), the
//! way `std::time::Instant` is a point with no meaning of its own.

use std::fmt;
use std::time::Duration;

/// A point in monotonic time, in milliseconds since the driver's origin.
///
/// Only differences between two `Millis` mean anything. The value fits in
/// 56 bits in the agent table's state word ([`Millis::MAX`], about two
/// million years), so any realistic origin is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(u64);

impl Millis {
    /// The origin of the driver's clock.
    pub const ZERO: Millis = Millis(0);
    /// The latest representable point (2^56 − 1 ms); later values saturate.
    pub const MAX: Millis = Millis((1 << 56) - 1);

    /// A point `ms` milliseconds after the origin (saturating at [`Millis::MAX`]).
    pub const fn new(ms: u64) -> Millis {
        if ms > Self::MAX.0 {
            Self::MAX
        } else {
            Millis(ms)
        }
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at [`Millis::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Millis {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Millis::new(self.0.saturating_add(ms))
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Millis::new(1_000);
        assert_eq!(
            t.saturating_add(Duration::from_millis(500)),
            Millis::new(1_500)
        );
        assert_eq!(
            Millis::MAX.saturating_add(Duration::from_secs(1)),
            Millis::MAX
        );
        assert_eq!(Millis::new(u64::MAX), Millis::MAX);
        assert_eq!(
            t.saturating_duration_since(Millis::new(400)),
            Duration::from_millis(600)
        );
        assert_eq!(
            Millis::new(400).saturating_duration_since(t),
            Duration::ZERO
        );
    }
}
