//! When a failed delivery is tried again: exponential backoff with
//! jitter, bounded. Pure (the jitter's random draw is an input), so it is
//! tested without a clock.
//!
//! The delay after the `n`th failed try is drawn uniformly from
//! `[d/2, d]` where `d = min(retry_max, retry_initial · 2ⁿ⁻¹)` ("equal
//! jitter"): it grows geometrically, never passes `retry_max`, never falls
//! below half of the schedule (a receiver coming back is not hit by a
//! thundering herd, nor left waiting long), and deliveries that failed
//! together spread out.

use std::time::Duration;

/// The delay before the next try after `failures` failed tries (at least
/// 1). `jitter` is a uniform draw from `[0, 1)`.
pub fn retry_delay(failures: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(40);
    let full = initial
        .checked_mul(1u32 << exponent.min(31))
        .and_then(|d| d.checked_mul(1u32 << exponent.saturating_sub(31)))
        .unwrap_or(max)
        .min(max);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    full / 2 + (full / 2).mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn it_doubles_from_the_initial_delay_and_stops_at_the_maximum() {
        let max = Duration::from_secs(600);
        let top: Vec<Duration> = (1..=12).map(|n| retry_delay(n, S, max, 1.0)).collect();
        assert_eq!(top[0], S);
        assert_eq!(top[1], 2 * S);
        assert_eq!(top[2], 4 * S);
        assert_eq!(top[9], 512 * S);
        assert_eq!(top[10], max);
        assert_eq!(top[11], max);
        assert_eq!(retry_delay(3, S, max, 0.0), 2 * S, "half of 4 s");
        assert_eq!(retry_delay(u32::MAX, S, max, 0.5), max * 3 / 4);
        assert_eq!(retry_delay(0, S, max, 1.0), S, "as the first");
        assert_eq!(retry_delay(2, S, max, f64::NAN), S);
    }

    proptest! {
        #[test]
        fn a_delay_is_within_half_and_all_of_its_step_and_never_past_the_maximum(
            failures in 0u32..200,
            initial_ms in 1u64..100_000,
            extra_ms in 0u64..10_000_000,
            jitter in 0.0f64..1.0,
        ) {
            let initial = Duration::from_millis(initial_ms);
            let max = initial + Duration::from_millis(extra_ms);
            let delay = retry_delay(failures, initial, max, jitter);
            prop_assert!(delay <= max);
            prop_assert!(delay >= initial / 2);
            let next = retry_delay(failures + 1, initial, max, 1.0);
            prop_assert!(retry_delay(failures, initial, max, 1.0) <= next);
        }
    }
}
