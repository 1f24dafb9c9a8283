//! Admission of new calls under load, sans-IO.
//!
//! A server that accepts more calls than it can set up does not slow down
//! gracefully: set-up times pass the callers' timers, their INVITEs are
//! retransmitted, every retransmission and every abandoned call is more
//! work, and the goodput collapses to a fraction of the capacity (measured
//! in BENCHMARKS.md: 1,500 calls/s clean, ~700 at 2,000 offered, ~280 at
//! 3,000). The way out is to refuse the excess early and cheaply: before
//! a new INVITE costs a transaction, a port or an IVR, it is admitted or
//! answered `503 Service Unavailable` with `Retry-After` (RFC 3261
//! §21.5.4), statelessly.
//!
//! [`AdmissionControl`] decides, from what it measures:
//!
//! - **Event-loop lag**, the lateness of a timer that should fire every few
//!   milliseconds ([`AdmissionControl::observe_lag`]): it rises as soon as
//!   the cores are short, well before callers' timers expire. It drives an
//!   adaptive **admission rate** (a token bucket): every
//!   [`AdmissionConfig::interval`], a smoothed lag above
//!   [`AdmissionConfig::target_lag`] for two intervals running, while calls
//!   are being admitted, cuts the rate to 80 % of what was admitted in the
//!   interval (multiplicative decrease); a lag below it, while the rate
//!   refused calls, raises it by 10 % (and one call); after a second of
//!   calm with no refusal the bucket is back at
//!   [`AdmissionConfig::max_rate`]. The rate follows the capacity of the
//!   machine as it is now, whatever else runs on it, and a hiccup with no
//!   calls behind it (a slow disk, a pause) does not throttle anything.
//! - **Calls in set-up**: new INVITEs admitted that the application has
//!   not taken up yet (no ring, answer or refusal sent): the backlog of new
//!   calls. Healthy, it is a handful; when the cores fall behind it grows
//!   at once, so [`AdmissionConfig::max_in_setup`] is the first line: it
//!   holds the admitted rate to what the daemon actually gets through
//!   (Little's law), whatever the machine. Each admitted call's
//!   [`SetupPermit`] is dropped when its INVITE is first answered (or,
//!   whatever happens, after a bound), so no path can leak one.
//!
//! Calls to urgent numbers (the dialplan's urgent lines: an emergency, a
//! nurse line) are admitted ahead of routine ones: they may take the bucket
//! below empty by one more burst, and use [`AdmissionConfig::urgent_reserve`]
//! places of set-up beyond the limit.
//!
//! A refused INVITE is remembered for a few seconds (its branch), so that
//! a retransmission of it is refused again even if the load has fallen in
//! between: the caller already holds our 503. Retransmissions of admitted
//! INVITEs never come here: the transaction layer absorbs them.
#![warn(clippy::disallowed_methods)]

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How a new call is admitted: urgent numbers first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallClass {
    /// An ordinary line.
    Routine,
    /// An urgent line: admitted while routine calls are refused.
    Urgent,
}

/// The thresholds of admission control.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdmissionConfig {
    /// Calls in set-up at most (routine calls; urgent ones may use
    /// [`AdmissionConfig::urgent_reserve`] more).
    pub max_in_setup: u32,
    /// Places in set-up beyond the limit that only urgent calls may take.
    pub urgent_reserve: u32,
    /// The event-loop lag the daemon is held under.
    pub target_lag: Duration,
    /// The admission rate's ceiling, calls per second (and its start).
    pub max_rate: f64,
    /// The admission rate's floor, calls per second.
    pub min_rate: f64,
    /// How often the rate is adjusted.
    pub interval: Duration,
    /// `Retry-After` in a refusal, seconds.
    pub retry_after: u32,
}

impl Default for AdmissionConfig {
    fn default() -> AdmissionConfig {
        AdmissionConfig {
            max_in_setup: 200,
            urgent_reserve: 50,
            target_lag: Duration::from_millis(50),
            max_rate: 10_000.0,
            min_rate: 5.0,
            interval: Duration::from_millis(100),
            retry_after: 5,
        }
    }
}

/// A new INVITE refused: answer 503 with `Retry-After: retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Seconds for `Retry-After`.
    pub retry_after: u32,
    /// Why, for logs and metrics.
    pub reason: RefusalReason,
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// Too many calls in set-up.
    InSetup,
    /// Above the admission rate the lag allows.
    Rate,
    /// A retransmission of an INVITE already refused.
    Refused,
    /// The daemon is draining.
    Draining,
}

impl RefusalReason {
    /// A label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::InSetup => "in_setup",
            RefusalReason::Rate => "rate",
            RefusalReason::Refused => "retransmission",
            RefusalReason::Draining => "draining",
        }
    }
}

/// A call's place among the calls in set-up; dropping it gives it back.
#[derive(Debug)]
pub struct SetupPermit {
    in_setup: Arc<AtomicU32>,
}

impl SetupPermit {
    /// Set-up is over (bridged, queued or ended): the place goes back now.
    pub fn release(self) {}
}

impl Drop for SetupPermit {
    fn drop(&mut self) {
        self.in_setup.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counters of admission control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Calls admitted.
    pub admitted: u64,
    /// Urgent calls admitted while routine calls would have been refused.
    pub admitted_urgent_over: u64,
    /// Calls refused, by reason.
    pub refused_in_setup: u64,
    /// Refused above the rate.
    pub refused_rate: u64,
    /// Retransmissions of refused INVITEs refused again.
    pub refused_retransmission: u64,
}

/// Intervals of calm (no refusal, a low lag) after which the rate is
/// back at its maximum: a second at the default interval.
const CALM_INTERVALS: u32 = 10;

/// Refused branches remembered at most.
const REMEMBERED: usize = 65_536;
/// How long a refused branch is remembered (Timer B: 64 × T1).
const REMEMBER_FOR: Duration = Duration::from_secs(32);

/// See the module docs.
#[derive(Debug)]
pub struct AdmissionControl {
    config: AdmissionConfig,
    in_setup: Arc<AtomicU32>,
    rate: f64,
    tokens: f64,
    refilled: Instant,
    /// Smoothed event-loop lag.
    lag: Duration,
    next_adjust: Instant,
    admitted_in_interval: u32,
    refused_in_interval: u32,
    /// Intervals in a row with the lag above its target.
    late_intervals: u32,
    /// Intervals in a row with the lag under half its target and no refusal.
    calm_intervals: u32,
    refused: VecDeque<(Instant, u64)>,
    refused_set: HashSet<u64>,
    stats: AdmissionStats,
}

impl AdmissionControl {
    /// A controller starting at the maximum rate.
    pub fn new(config: AdmissionConfig, now: Instant) -> AdmissionControl {
        AdmissionControl {
            config,
            in_setup: Arc::new(AtomicU32::new(0)),
            rate: config.max_rate,
            tokens: burst(config.max_rate),
            refilled: now,
            lag: Duration::ZERO,
            next_adjust: now + config.interval,
            admitted_in_interval: 0,
            refused_in_interval: 0,
            late_intervals: 0,
            calm_intervals: 0,
            refused: VecDeque::new(),
            refused_set: HashSet::new(),
            stats: AdmissionStats::default(),
        }
    }

    /// New thresholds (a reload); the rate and the calls in set-up stay.
    pub fn reconfigure(&mut self, config: AdmissionConfig) {
        self.config = config;
        self.rate = self.rate.clamp(config.min_rate, config.max_rate);
    }

    /// Decides about a new INVITE (not a retransmission of an admitted
    /// one) identified by `branch_key` (a hash of what identifies it):
    /// admitted, the call holds the permit until its set-up is over.
    pub fn admit(
        &mut self,
        now: Instant,
        class: CallClass,
        branch_key: u64,
    ) -> Result<SetupPermit, Refusal> {
        self.forget_old(now);
        let retry_after = self.config.retry_after;
        if self.refused_set.contains(&branch_key) {
            self.stats.refused_retransmission += 1;
            return Err(Refusal {
                retry_after,
                reason: RefusalReason::Refused,
            });
        }
        self.refill(now);
        let in_setup = self.in_setup.load(Ordering::Relaxed);
        let burst = burst(self.rate);
        let (setup_limit, token_floor) = match class {
            CallClass::Routine => (self.config.max_in_setup, 1.0),
            CallClass::Urgent => (
                self.config.max_in_setup + self.config.urgent_reserve,
                1.0 - burst,
            ),
        };
        let reason = if in_setup >= setup_limit {
            Some(RefusalReason::InSetup)
        } else if self.tokens < token_floor {
            Some(RefusalReason::Rate)
        } else {
            None
        };
        if let Some(reason) = reason {
            match reason {
                RefusalReason::InSetup => self.stats.refused_in_setup += 1,
                _ => self.stats.refused_rate += 1,
            }
            self.refused_in_interval += 1;
            self.remember(now, branch_key);
            return Err(Refusal {
                retry_after,
                reason,
            });
        }
        if class == CallClass::Urgent && (in_setup >= self.config.max_in_setup || self.tokens < 1.0)
        {
            self.stats.admitted_urgent_over += 1;
        }
        self.tokens -= 1.0;
        self.admitted_in_interval += 1;
        self.stats.admitted += 1;
        self.in_setup.fetch_add(1, Ordering::Relaxed);
        Ok(SetupPermit {
            in_setup: Arc::clone(&self.in_setup),
        })
    }

    /// A new measure of the event-loop lag; adjusts the rate once per
    /// interval.
    pub fn observe_lag(&mut self, now: Instant, lag: Duration) {
        // Smoothed over a few samples: one late timer is not overload.
        self.lag = (self.lag * 3 + lag) / 4;
        if now < self.next_adjust {
            return;
        }
        let elapsed = now.saturating_duration_since(self.next_adjust) + self.config.interval;
        self.next_adjust = now + self.config.interval;
        let admitted_rate = f64::from(self.admitted_in_interval) / elapsed.as_secs_f64();
        let late = self.lag > self.config.target_lag;
        self.late_intervals = if late { self.late_intervals + 1 } else { 0 };
        let calm = self.lag < self.config.target_lag / 2 && self.refused_in_interval == 0;
        self.calm_intervals = if calm { self.calm_intervals + 1 } else { 0 };
        if self.late_intervals >= 2 && self.admitted_in_interval > 0 {
            // Cut below what was admitted: the cores could not take it.
            self.rate = (self.rate.min(admitted_rate) * 0.8).max(self.config.min_rate);
            self.tokens = self.tokens.min(burst(self.rate));
        } else if !late && self.refused_in_interval > 0 {
            self.rate = (self.rate * 1.1 + 1.0).min(self.config.max_rate);
        } else if self.calm_intervals >= CALM_INTERVALS {
            self.rate = self.config.max_rate;
        }
        self.admitted_in_interval = 0;
        self.refused_in_interval = 0;
    }

    /// Calls in set-up now.
    pub fn in_setup(&self) -> u32 {
        self.in_setup.load(Ordering::Relaxed)
    }

    /// The admission rate now, calls per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The smoothed lag.
    pub fn lag(&self) -> Duration {
        self.lag
    }

    /// Counters so far.
    pub fn stats(&self) -> AdmissionStats {
        self.stats
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(burst(self.rate));
    }

    fn remember(&mut self, now: Instant, branch_key: u64) {
        if self.refused.len() >= REMEMBERED
            && let Some((_, oldest)) = self.refused.pop_front()
        {
            self.refused_set.remove(&oldest);
        }
        if self.refused_set.insert(branch_key) {
            self.refused.push_back((now + REMEMBER_FOR, branch_key));
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some(&(until, key)) = self.refused.front() {
            if until > now {
                break;
            }
            self.refused.pop_front();
            self.refused_set.remove(&key);
        }
    }
}

/// The bucket holds a tenth of a second of calls (at least two).
fn burst(rate: f64) -> f64 {
    (rate / 10.0).max(2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdmissionConfig {
        AdmissionConfig {
            max_in_setup: 4,
            urgent_reserve: 2,
            target_lag: Duration::from_millis(20),
            max_rate: 1_000.0,
            min_rate: 5.0,
            interval: Duration::from_millis(100),
            retry_after: 7,
        }
    }

    fn refused(result: Result<SetupPermit, Refusal>) -> RefusalReason {
        match result {
            Err(Refusal {
                retry_after: 7,
                reason,
            }) => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn calls_in_setup_are_bounded_and_a_permit_gives_its_place_back() {
        let t0 = crate::epoch();
        let mut control = AdmissionControl::new(config(), t0);
        let mut permits: Vec<SetupPermit> = (0..4)
            .map(|n| control.admit(t0, CallClass::Routine, n).unwrap())
            .collect();
        assert_eq!(control.in_setup(), 4);
        assert_eq!(
            refused(control.admit(t0, CallClass::Routine, 10)),
            RefusalReason::InSetup
        );
        // Urgent lines still get through, up to the reserve.
        let urgent: Vec<SetupPermit> = (20..22)
            .map(|n| control.admit(t0, CallClass::Urgent, n).unwrap())
            .collect();
        assert_eq!(
            refused(control.admit(t0, CallClass::Urgent, 30)),
            RefusalReason::InSetup
        );
        assert_eq!(control.stats().admitted_urgent_over, 2);
        // One call is bridged: its place is free again.
        permits.pop().unwrap().release();
        drop(urgent);
        assert_eq!(control.in_setup(), 3);
        assert!(control.admit(t0, CallClass::Routine, 11).is_ok());
    }

    #[test]
    fn a_refused_invite_retransmitted_is_refused_again_until_forgotten() {
        let t0 = crate::epoch();
        let mut control = AdmissionControl::new(config(), t0);
        let held: Vec<SetupPermit> = (0..4)
            .map(|n| control.admit(t0, CallClass::Routine, n).unwrap())
            .collect();
        assert_eq!(
            refused(control.admit(t0, CallClass::Routine, 99)),
            RefusalReason::InSetup
        );
        drop(held);
        // Room now, but the caller holds our 503 for this INVITE.
        let later = t0 + Duration::from_millis(500);
        assert_eq!(
            refused(control.admit(later, CallClass::Routine, 99)),
            RefusalReason::Refused
        );
        assert!(control.admit(later, CallClass::Routine, 100).is_ok());
        let much_later = t0 + REMEMBER_FOR + Duration::from_secs(1);
        assert!(control.admit(much_later, CallClass::Routine, 99).is_ok());
        assert_eq!(control.stats().refused_retransmission, 1);
    }

    #[test]
    fn lag_cuts_the_rate_below_what_was_admitted_and_calm_lets_it_grow() {
        let t0 = crate::epoch();
        let mut control = AdmissionControl::new(
            AdmissionConfig {
                max_in_setup: 100_000,
                ..config()
            },
            t0,
        );
        let mut now = t0;
        let mut permits = Vec::new();
        let mut key = 0;
        // 3,000 calls/s offered for 250 ms while the loop runs late: two
        // late intervals, then the first cut.
        for _ in 0..750 {
            now += Duration::from_micros(333);
            key += 1;
            if let Ok(permit) = control.admit(now, CallClass::Routine, key) {
                permits.push(permit);
            }
            control.observe_lag(now, Duration::from_millis(80));
        }
        let first_cut = control.rate();
        assert!(first_cut < 1_000.0, "{first_cut}");
        // Lag stays high: the rate keeps falling, interval after interval.
        for _ in 0..10 {
            for _ in 0..300 {
                now += Duration::from_micros(333);
                key += 1;
                let _ = control.admit(now, CallClass::Routine, key);
                control.observe_lag(now, Duration::from_millis(80));
            }
        }
        let low = control.rate();
        assert!(low < first_cut / 4.0, "{low} after {first_cut}");
        assert!(low >= 5.0);
        // The lag falls; refusals show demand above the rate: it grows back.
        for _ in 0..40 {
            for _ in 0..300 {
                now += Duration::from_micros(333);
                key += 1;
                let _ = control.admit(now, CallClass::Routine, key);
                control.observe_lag(now, Duration::from_millis(1));
            }
        }
        assert!(control.rate() > low * 2.0, "{} after {low}", control.rate());
        assert!(control.stats().refused_rate > 0);
    }

    #[test]
    fn a_hiccup_with_no_calls_behind_it_throttles_nothing_and_calm_restores_the_rate() {
        let t0 = crate::epoch();
        let mut control = AdmissionControl::new(config(), t0);
        let mut now = t0;
        // The loop is late for a second while no call comes: nothing to cut.
        for _ in 0..100 {
            now += Duration::from_millis(10);
            control.observe_lag(now, Duration::from_millis(200));
        }
        assert_eq!(control.rate(), 1_000.0);
        // Late while calls come: cut.
        let mut key = 0;
        for _ in 0..50 {
            now += Duration::from_millis(10);
            key += 1;
            let _ = control.admit(now, CallClass::Routine, key);
            control.observe_lag(now, Duration::from_millis(200));
        }
        let cut = control.rate();
        assert!(cut < 200.0, "{cut}");
        // One late interval alone does not cut again.
        let before = control.rate();
        now += Duration::from_millis(100);
        control.observe_lag(now, Duration::ZERO);
        assert!(control.rate() >= before);
        // A second of calm with no refusal: back at the maximum.
        for _ in 0..120 {
            now += Duration::from_millis(10);
            control.observe_lag(now, Duration::ZERO);
        }
        assert_eq!(control.rate(), 1_000.0);
    }

    #[test]
    fn urgent_calls_pass_a_rate_that_refuses_routine_ones() {
        let t0 = crate::epoch();
        let mut control = AdmissionControl::new(
            AdmissionConfig {
                max_in_setup: 200,
                max_rate: 20.0,
                ..config()
            },
            t0,
        );
        // The burst (2 calls at 20/s) goes at once.
        let mut permits = Vec::new();
        let mut key = 0;
        while let Ok(permit) = control.admit(t0, CallClass::Routine, key) {
            permits.push(permit);
            key += 1;
        }
        assert_eq!(permits.len(), 2);
        assert_eq!(
            refused(control.admit(t0, CallClass::Routine, 100)),
            RefusalReason::Rate
        );
        // An urgent call may take the bucket one burst below empty.
        assert!(control.admit(t0, CallClass::Urgent, 101).is_ok());
        assert!(control.admit(t0, CallClass::Urgent, 102).is_ok());
        assert_eq!(
            refused(control.admit(t0, CallClass::Urgent, 103)),
            RefusalReason::Rate
        );
        // The bucket is at -2: 100 ms later (two tokens at 20/s) it is at 0,
        // still short of a routine call; 100 ms more and one fits.
        let later = t0 + Duration::from_millis(100);
        assert!(control.admit(later, CallClass::Routine, 104).is_err());
        let later = t0 + Duration::from_millis(200);
        assert!(control.admit(later, CallClass::Routine, 105).is_ok());
    }
}
