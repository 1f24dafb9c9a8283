//! Requests per second per untrusted source, with temporary bans (what
//! Kamailio's `pike` and an `htable` of banned addresses do together).
//!
//! Each source has a token bucket: [`RateLimits::burst`] tokens, refilled
//! at [`RateLimits::per_second`]; every message takes one. A message that
//! finds the bucket empty bans the source for [`RateLimits::ban`]: until
//! then [`SourceLimiter::check`] says [`Verdict::Banned`] for everything
//! it sends, and the driver drops it unanswered (answering an over-limit
//! source would make frontdesk a reflector for floods sent with a spoofed
//! source address). Traffic during a ban does not lengthen it, so a ban
//! always ends on time; a source that goes on flooding is banned again by
//! its next burst. After a ban the source starts with a full bucket.
//!
//! Other parts ban too ([`SourceLimiter::ban`]): a known scanner's
//! User-Agent, a source the registrar banned for digest failures.
//!
//! The table is bounded ([`RateLimits::max_sources`]). When it is full, a
//! sweep drops the sources that are neither banned nor short of tokens
//! (they are as good as new); the sweep runs at most once per eighth of
//! the table's size of new sources, so a flood from ever-new spoofed
//! addresses costs O(1) per message. A new source that still finds no
//! room is let through untracked ([`SourceLimiter::untracked`] counts
//! them): per-source limits cannot stop a flood from more sources than
//! the table holds, and refusing unknown sources would lock out every new
//! caller instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::source::SourceKey;

/// Tokens are counted in millionths, so that slow rates refill smoothly.
const UNIT: u64 = 1_000_000;

/// The rate limit and the bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Messages per second, sustained; 0 switches the rate limit off
    /// (bans from elsewhere still hold).
    pub per_second: u32,
    /// Messages at once after a quiet spell (at least 1).
    pub burst: u32,
    /// How long a source over the rate is dropped.
    pub ban: Duration,
    /// How many sources are tracked at most.
    pub max_sources: usize,
}

impl Default for RateLimits {
    /// 20 messages a second, bursts of 40, a 60 s ban, 65,536 sources: a
    /// phone sends a handful of messages per call and one REGISTER or
    /// keep-alive every few seconds at most.
    fn default() -> Self {
        RateLimits {
            per_second: 20,
            burst: 40,
            ban: Duration::from_secs(60),
            max_sources: 65_536,
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Pass,
    /// Drop it silently: the source is banned until `until`. `new` when
    /// this message started the ban (worth a log line).
    Banned {
        /// When the ban lifts.
        until: Instant,
        /// This message went over the rate and started the ban.
        new: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    last: Instant,
    banned_until: Option<Instant>,
}

impl Bucket {
    fn full(limits: &RateLimits, now: Instant) -> Self {
        Bucket {
            tokens: capacity(limits),
            last: now,
            banned_until: None,
        }
    }

    /// Lifts an ended ban (with a full bucket) and refills for the time
    /// since the last message.
    fn settle(&mut self, limits: &RateLimits, now: Instant) {
        if let Some(until) = self.banned_until {
            if until > now {
                return;
            }
            *self = Bucket::full(limits, now);
            return;
        }
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        // per_second tokens a second = per_second * UNIT / 1e9 units a ns.
        let refill = elapsed.saturating_mul(u128::from(limits.per_second)) * u128::from(UNIT)
            / 1_000_000_000;
        let tokens = u128::from(self.tokens).saturating_add(refill);
        self.tokens = u64::try_from(tokens)
            .unwrap_or(u64::MAX)
            .min(capacity(limits));
        self.last = now;
    }

    fn is_fresh(&self, limits: &RateLimits) -> bool {
        self.banned_until.is_none() && self.tokens >= capacity(limits)
    }
}

fn capacity(limits: &RateLimits) -> u64 {
    u64::from(limits.burst.max(1)) * UNIT
}

/// The per-source buckets and bans.
#[derive(Debug, Clone)]
pub struct SourceLimiter {
    limits: RateLimits,
    sources: HashMap<SourceKey, Bucket>,
    /// New sources since the last sweep.
    inserted: usize,
    untracked: u64,
}

impl SourceLimiter {
    /// A limiter with no history.
    pub fn new(limits: RateLimits) -> Self {
        SourceLimiter {
            limits,
            sources: HashMap::new(),
            inserted: 0,
            untracked: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// New limits (a dialplan reload); bans in progress keep their end.
    pub fn set_limits(&mut self, limits: RateLimits) {
        self.limits = limits;
    }

    /// One message from `ip` at `now`.
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> Verdict {
        let limits = self.limits;
        let key = SourceKey::from(ip);
        let bucket = match self.sources.get_mut(&key) {
            Some(bucket) => bucket,
            None => {
                if limits.per_second == 0 {
                    return Verdict::Pass;
                }
                if !self.make_room(now) {
                    self.untracked += 1;
                    return Verdict::Pass;
                }
                self.inserted += 1;
                self.sources
                    .entry(key)
                    .or_insert(Bucket::full(&limits, now))
            }
        };
        bucket.settle(&limits, now);
        if let Some(until) = bucket.banned_until {
            return Verdict::Banned { until, new: false };
        }
        if limits.per_second == 0 {
            return Verdict::Pass;
        }
        if bucket.tokens >= UNIT {
            bucket.tokens -= UNIT;
            return Verdict::Pass;
        }
        let until = now + limits.ban;
        bucket.banned_until = Some(until);
        Verdict::Banned { until, new: true }
    }

    /// Bans `ip` until `now + duration` (or longer, when it already is).
    /// Returns when the ban lifts.
    pub fn ban(&mut self, now: Instant, ip: IpAddr, duration: Duration) -> Instant {
        let key = SourceKey::from(ip);
        let limits = self.limits;
        if !self.sources.contains_key(&key) {
            // A ban is worth a place even in a full table: evict a
            // source that is not banned, if sweeping made no room.
            if !self.make_room(now) {
                let victim = self
                    .sources
                    .iter()
                    .filter(|(_, bucket)| bucket.banned_until.is_none())
                    .min_by_key(|(_, bucket)| bucket.last)
                    .map(|(key, _)| *key);
                if let Some(victim) = victim {
                    self.sources.remove(&victim);
                }
            }
        }
        let bucket = self
            .sources
            .entry(key)
            .or_insert(Bucket::full(&limits, now));
        bucket.settle(&limits, now);
        let until = now + duration;
        let until = bucket
            .banned_until
            .map_or(until, |current| current.max(until));
        bucket.banned_until = Some(until);
        until
    }

    /// When `ip`'s ban lifts, if it is banned at `now`.
    pub fn banned_until(&self, now: Instant, ip: IpAddr) -> Option<Instant> {
        self.sources
            .get(&SourceKey::from(ip))
            .and_then(|bucket| bucket.banned_until)
            .filter(|until| *until > now)
    }

    /// How many sources are banned at `now`.
    pub fn bans(&self, now: Instant) -> usize {
        self.sources
            .values()
            .filter(|bucket| bucket.banned_until.is_some_and(|until| until > now))
            .count()
    }

    /// How many sources are tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Messages let through because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Whether a new source fits; sweeps when the table is full and
    /// enough sources came since the last sweep.
    fn make_room(&mut self, now: Instant) -> bool {
        let max = self.limits.max_sources.max(1);
        if self.sources.len() < max {
            return true;
        }
        if self.inserted < (max / 8).max(1) {
            return false;
        }
        self.inserted = 0;
        let limits = self.limits;
        self.sources.retain(|_, bucket| {
            bucket.settle(&limits, now);
            !bucket.is_fresh(&limits)
        });
        self.sources.len() < max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limits(per_second: u32, burst: u32) -> RateLimits {
        RateLimits {
            per_second,
            burst,
            ban: Duration::from_secs(10),
            max_sources: 1000,
        }
    }

    #[test]
    fn a_burst_passes_then_the_source_is_banned_until_the_ban_ends() {
        let start = crate::epoch();
        let mut limiter = SourceLimiter::new(limits(10, 5));
        let flooder = ip("192.0.2.1");
        for _ in 0..5 {
            assert_eq!(limiter.check(start, flooder), Verdict::Pass);
        }
        let until = start + Duration::from_secs(10);
        assert_eq!(
            limiter.check(start, flooder),
            Verdict::Banned { until, new: true }
        );
        // Traffic during the ban does not lengthen it.
        let during = start + Duration::from_secs(9);
        for _ in 0..100 {
            assert_eq!(
                limiter.check(during, flooder),
                Verdict::Banned { until, new: false }
            );
        }
        assert_eq!(limiter.bans(during), 1);
        assert_eq!(limiter.banned_until(during, flooder), Some(until));
        // Another source is not affected.
        assert_eq!(limiter.check(during, ip("192.0.2.2")), Verdict::Pass);
        // The ban expires: a full bucket again.
        for _ in 0..5 {
            assert_eq!(limiter.check(until, flooder), Verdict::Pass);
        }
        assert_eq!(limiter.bans(until), 0);
        assert!(matches!(
            limiter.check(until, flooder),
            Verdict::Banned { new: true, .. }
        ));
    }

    #[test]
    fn the_sustained_rate_passes_forever() {
        let start = crate::epoch();
        let mut limiter = SourceLimiter::new(limits(10, 1));
        let phone = ip("192.0.2.1");
        for n in 0..1000u64 {
            let at = start + Duration::from_millis(100 * n);
            assert_eq!(limiter.check(at, phone), Verdict::Pass, "message {n}");
        }
        // Twice the rate does not.
        let later = start + Duration::from_secs(200);
        assert_eq!(limiter.check(later, phone), Verdict::Pass);
        assert!(matches!(
            limiter.check(later + Duration::from_millis(50), phone),
            Verdict::Banned { .. }
        ));
    }

    #[test]
    fn bans_from_elsewhere_hold_and_only_lengthen() {
        let start = crate::epoch();
        let mut limiter = SourceLimiter::new(limits(0, 1));
        let scanner = ip("2001:db8:1:2::1");
        assert_eq!(
            limiter.check(start, scanner),
            Verdict::Pass,
            "no rate limit"
        );
        let until = limiter.ban(start, scanner, Duration::from_secs(60));
        assert_eq!(until, start + Duration::from_secs(60));
        assert_eq!(
            limiter.ban(start, scanner, Duration::from_secs(5)),
            until,
            "a shorter ban does not shorten it"
        );
        // The whole /64 is banned.
        assert_eq!(
            limiter.check(start, ip("2001:db8:1:2::99")),
            Verdict::Banned { until, new: false }
        );
        assert_eq!(limiter.check(until, scanner), Verdict::Pass);
    }

    #[test]
    fn the_table_is_bounded_and_fresh_sources_are_swept_first() {
        let start = crate::epoch();
        let mut limiter = SourceLimiter::new(RateLimits {
            max_sources: 16,
            ..limits(10, 2)
        });
        let banned = ip("10.0.0.1");
        limiter.ban(start, banned, Duration::from_secs(60));
        for n in 0..10_000u32 {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + n));
            let at = start + Duration::from_millis(u64::from(n));
            assert_eq!(limiter.check(at, source), Verdict::Pass);
            assert!(limiter.tracked() <= 16);
        }
        assert!(limiter.untracked() > 0);
        let now = start + Duration::from_secs(20);
        assert!(
            limiter.banned_until(now, banned).is_some(),
            "the ban stayed"
        );
    }
}
