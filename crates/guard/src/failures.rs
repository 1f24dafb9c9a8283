//! Authentication failures per untrusted source: slowed down, then banned
//! (DESIGN.md "Trusted sources").
//!
//! Each source has a score: one point per failed authentication, one
//! point forgotten every [`FailureLimits::decay`]. From
//! [`FailureLimits::slow_after`] points on, every answer to the source is
//! held back ([`FailureLimiter::delay`]), doubling per point up to
//! [`FailureLimits::max_delay`]; at [`FailureLimits::ban_after`] points
//! the source is banned for [`FailureLimits::ban`]: it can try no password
//! at all. The score keeps decaying during a ban: with the defaults (10
//! points, one forgotten every 6 s, a 60 s ban) a source comes out of its
//! ban with a clean slate, while one that keeps failing is slowed and
//! banned again quickly.
//!
//! A success does not lower the score: a guesser who knows one password
//! (their own) must not buy more guesses at the others with it. Per-account
//! counting, and what a success clears, is [`crate::lockout`].
//!
//! Sources are counted by [`SourceKey`] (IPv6 per /64). At most
//! [`FailureLimits::max_sources`] sources are tracked: when full, sources
//! whose score has decayed to nothing go first, then the least recently
//! seen source that is not banned.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::source::SourceKey;

/// The thresholds and periods of the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureLimits {
    /// From this many points on, answers are delayed.
    pub slow_after: u32,
    /// At this many points, the source is banned.
    pub ban_after: u32,
    /// One point is forgotten per this period.
    pub decay: Duration,
    /// The delay at `slow_after` points; it doubles with each point more.
    pub first_delay: Duration,
    /// The longest delay (keep it well under 32 s, RFC 3261 Timer F, or
    /// UDP clients give up before the answer).
    pub max_delay: Duration,
    /// How long a ban lasts.
    pub ban: Duration,
    /// How many sources are tracked at most.
    pub max_sources: usize,
}

impl Default for FailureLimits {
    fn default() -> Self {
        FailureLimits {
            slow_after: 5,
            ban_after: 10,
            decay: Duration::from_secs(6),
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            ban: Duration::from_secs(60),
            max_sources: 4096,
        }
    }
}

/// Whether a source may be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go on (perhaps with a [`FailureLimiter::delay`]).
    Allowed,
    /// Banned: refuse without looking at the credentials.
    Banned {
        /// When the ban lifts.
        until: Instant,
    },
}

#[derive(Debug, Clone)]
struct Source {
    score: u32,
    /// The time from which decay is counted.
    mark: Instant,
    banned_until: Option<Instant>,
    last_seen: Instant,
}

impl Source {
    fn settle(&mut self, now: Instant, decay: Duration) {
        if self.banned_until.is_some_and(|until| until <= now) {
            self.banned_until = None;
        }
        if self.score == 0 || decay.is_zero() {
            self.score = if decay.is_zero() { 0 } else { self.score };
            self.mark = now;
            return;
        }
        let elapsed = now.saturating_duration_since(self.mark);
        let steps = elapsed.as_nanos() / decay.as_nanos();
        match u32::try_from(steps) {
            Ok(steps) if steps < self.score => {
                self.score -= steps;
                self.mark += decay * steps;
            }
            _ => {
                self.score = 0;
                self.mark = now;
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.score == 0 && self.banned_until.is_none()
    }
}

/// Counts authentication failures per untrusted source.
#[derive(Debug, Clone)]
pub struct FailureLimiter {
    limits: FailureLimits,
    sources: HashMap<SourceKey, Source>,
}

impl FailureLimiter {
    /// A limiter with no history.
    pub fn new(limits: FailureLimits) -> Self {
        FailureLimiter {
            limits,
            sources: HashMap::new(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &FailureLimits {
        &self.limits
    }

    /// New limits (a dialplan reload); scores and bans are kept.
    pub fn set_limits(&mut self, limits: FailureLimits) {
        self.limits = limits;
    }

    /// Whether `ip` is banned at `now`.
    pub fn admission(&mut self, now: Instant, ip: IpAddr) -> Admission {
        let decay = self.limits.decay;
        let Some(source) = self.sources.get_mut(&SourceKey::from(ip)) else {
            return Admission::Allowed;
        };
        source.settle(now, decay);
        match source.banned_until {
            Some(until) => Admission::Banned { until },
            None => Admission::Allowed,
        }
    }

    /// Counts one failed authentication from `ip`. Returns when its ban
    /// lifts if this failure banned it.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr) -> Option<Instant> {
        let key = SourceKey::from(ip);
        if !self.sources.contains_key(&key) {
            self.make_room(now);
        }
        let limits = &self.limits;
        let source = self.sources.entry(key).or_insert(Source {
            score: 0,
            mark: now,
            banned_until: None,
            last_seen: now,
        });
        source.settle(now, limits.decay);
        source.score = source.score.saturating_add(1);
        source.last_seen = now;
        if source.score >= limits.ban_after && source.banned_until.is_none() {
            let until = now + limits.ban;
            source.banned_until = Some(until);
            return Some(until);
        }
        None
    }

    /// How long to hold back an answer to `ip` (`None`: send at once).
    pub fn delay(&mut self, now: Instant, ip: IpAddr) -> Option<Duration> {
        let limits = &self.limits;
        let source = self.sources.get_mut(&SourceKey::from(ip))?;
        source.settle(now, limits.decay);
        let over = source.score.checked_sub(limits.slow_after)?;
        let factor = 1u32 << over.min(16);
        Some(
            limits
                .first_delay
                .saturating_mul(factor)
                .min(limits.max_delay),
        )
    }

    /// How many sources are tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Whether `ip`'s source is tracked (tests).
    #[cfg(test)]
    fn tracks(&self, ip: IpAddr) -> bool {
        self.sources.contains_key(&SourceKey::from(ip))
    }

    fn make_room(&mut self, now: Instant) {
        if self.sources.len() < self.limits.max_sources.max(1) {
            return;
        }
        let decay = self.limits.decay;
        self.sources.retain(|_, source| {
            source.settle(now, decay);
            !source.is_idle()
        });
        while self.sources.len() >= self.limits.max_sources.max(1) {
            let oldest = self
                .sources
                .iter()
                .min_by_key(|(_, s)| (s.banned_until.is_some(), s.last_seen))
                .map(|(key, _)| *key);
            match oldest {
                Some(key) => self.sources.remove(&key),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn slowed_then_banned_then_lifted() {
        let start = crate::epoch();
        let mut limiter = FailureLimiter::new(FailureLimits::default());
        let attacker = ip("198.51.100.9");
        let mut delays = Vec::new();
        for _ in 0..9 {
            assert_eq!(limiter.record_failure(start, attacker), None);
            delays.push(limiter.delay(start, attacker).map(|d| d.as_millis()));
        }
        assert_eq!(
            delays,
            [
                None,
                None,
                None,
                None,
                Some(500),
                Some(1000),
                Some(2000),
                Some(4000),
                Some(8000)
            ]
        );
        assert_eq!(limiter.admission(start, attacker), Admission::Allowed);
        let until = start + Duration::from_secs(60);
        assert_eq!(limiter.record_failure(start, attacker), Some(until));
        assert_eq!(
            limiter.admission(start, attacker),
            Admission::Banned { until }
        );
        assert_eq!(
            limiter.admission(until - Duration::from_millis(1), attacker),
            Admission::Banned { until }
        );
        assert_eq!(
            limiter.admission(start, ip("198.51.100.10")),
            Admission::Allowed,
            "another source is not affected"
        );
        assert_eq!(limiter.admission(until, attacker), Admission::Allowed);
        assert_eq!(
            limiter.delay(until, attacker),
            None,
            "decayed during the ban"
        );
    }

    #[test]
    fn points_decay_one_per_period() {
        let start = crate::epoch();
        let mut limiter = FailureLimiter::new(FailureLimits::default());
        let source = ip("192.0.2.1");
        for _ in 0..6 {
            limiter.record_failure(start, source);
        }
        assert_eq!(limiter.delay(start, source), Some(Duration::from_secs(1)));
        let after = start + Duration::from_secs(6);
        assert_eq!(
            limiter.delay(after, source),
            Some(Duration::from_millis(500))
        );
        assert_eq!(limiter.delay(after + Duration::from_secs(6), source), None);
        // Decay is counted from whole periods: 5.9 s more is not one more.
        limiter.record_failure(after + Duration::from_secs(6), source);
        assert_eq!(
            limiter.delay(after + Duration::from_millis(11_900), source),
            Some(Duration::from_millis(500))
        );
        assert_eq!(limiter.delay(after + Duration::from_secs(12), source), None);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let start = crate::epoch();
        let mut limiter = FailureLimiter::new(FailureLimits::default());
        for host in 1..=10 {
            limiter.record_failure(start, ip(&format!("2001:db8:1:2::{host:x}")));
        }
        assert!(matches!(
            limiter.admission(start, ip("2001:db8:1:2:ffff::1")),
            Admission::Banned { .. }
        ));
        assert_eq!(
            limiter.admission(start, ip("2001:db8:1:3::1")),
            Admission::Allowed
        );
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn bounded_and_banned_sources_are_kept_longest() {
        let start = crate::epoch();
        let limits = FailureLimits {
            max_sources: 3,
            ..FailureLimits::default()
        };
        let mut limiter = FailureLimiter::new(limits);
        let banned = ip("192.0.2.100");
        for _ in 0..10 {
            limiter.record_failure(start, banned);
        }
        for host in 1..=20 {
            let at = start + Duration::from_millis(host);
            limiter.record_failure(at, ip(&format!("192.0.2.{host}")));
            assert!(limiter.tracked() <= 3);
        }
        let now = start + Duration::from_secs(1);
        assert!(matches!(
            limiter.admission(now, banned),
            Admission::Banned { .. }
        ));
        assert!(!limiter.tracks(ip("192.0.2.1")), "oldest evicted");
        assert!(limiter.tracks(ip("192.0.2.20")));
        // Sources whose score decayed away are dropped before anyone else.
        let later = start + Duration::from_secs(30);
        limiter.record_failure(later, ip("192.0.2.200"));
        assert!(matches!(
            limiter.admission(later, banned),
            Admission::Banned { .. }
        ));
        assert_eq!(
            limiter.tracked(),
            2,
            "the idle ones went, the banned one stayed"
        );
    }
}
