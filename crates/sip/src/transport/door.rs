//! The transport's front door: per-source limits for untrusted sources
//! (DESIGN.md "Trusted sources"), applied before anything else works on
//! what they send. The limits themselves are the `guard` crate's; this is
//! where the transport asks them and counts what they refused.
//!
//! - Every datagram: is its source trusted ([`TrustedSources`], a few
//!   nanoseconds)? If not, [`SourceLimiter::check`] — *before the datagram
//!   is copied or parsed*. An over-limit source is banned and everything
//!   it sends is dropped unanswered until the ban ends: answering would
//!   make frontdesk a reflector for floods sent from spoofed addresses.
//! - Every message framed on a stream from an untrusted source: the same
//!   check; a source over the limit has its connection closed.
//! - A parsed request whose User-Agent is a known scanner's
//!   ([`guard::Scanners`]) is dropped and its source banned for
//!   `scanner_ban`.
//! - Every accepted TCP or TLS connection from an untrusted source takes a
//!   [`SourceSlot`] (at most `connections` per source), before any TLS
//!   handshake starts; a banned source's connections are closed at once.
//!   So one address holding idle connections, or starting handshakes it
//!   never finishes, holds its own few slots and not everyone's.
//! - Others ban too ([`FrontDoor::ban`]): the registrar's digest-failure
//!   bans become source bans here.
//!
//! The policy (trust and limits) is swapped whole on a dialplan reload;
//! the datagram loop reads it through an [`arc_swap::Cache`], so a trusted
//! datagram pays no atomic read-modify-write for it. The limiter's state
//! sits behind a plain mutex taken for one bucket update per untrusted
//! message, never across an `.await`. Refusals are counted in atomics
//! ([`FrontDoor::stats`], published as metrics by the daemon) and logged:
//! each at debug, and a warning at most every [`WARN_EVERY`] per kind,
//! with the count since the last.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use guard::{
    SipLimits, SourceLimiter, SourceSlot, SourceSlots, TrustedSources, Verdict, WarnEvery,
};

use crate::message::{HeaderName, Message};

/// How often, at most, each kind of refusal is logged at warn.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Who is trusted and the limits for the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoorPolicy {
    /// Trusted sources skip every limit here.
    pub trusted: TrustedSources,
    /// The limits for the others.
    pub limits: SipLimits,
}

/// What the front door has refused so far, and its state now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoorStats {
    /// Messages dropped because their source was over the rate or banned.
    pub dropped: u64,
    /// Requests dropped for a scanner's User-Agent.
    pub scanners: u64,
    /// Bans started (over the rate, scanners, and bans from elsewhere).
    pub bans: u64,
    /// Connections closed at once: over the source's slots, or banned.
    pub connections_refused: u64,
    /// Sources banned now.
    pub banned_now: usize,
    /// Sources the rate limiter tracks now.
    pub sources_tracked: usize,
    /// Messages let through untracked because the table was full.
    pub untracked: u64,
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    scanners: AtomicU64,
    bans: AtomicU64,
    connections_refused: AtomicU64,
}

#[derive(Debug)]
struct State {
    limiter: SourceLimiter,
    warn_ban: WarnEvery,
    warn_scanner: WarnEvery,
    warn_connection: WarnEvery,
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source is banned.
    Banned,
    /// The source holds all the connections it may.
    SourceSlots,
}

/// The per-source limits of one transport. Shared (`Arc`) by its tasks.
#[derive(Debug)]
pub struct FrontDoor {
    policy: Arc<ArcSwap<DoorPolicy>>,
    state: Mutex<State>,
    slots: SourceSlots,
    counters: Counters,
}

impl Default for FrontDoor {
    /// Loopback trusted, the default limits.
    fn default() -> Self {
        FrontDoor::new(DoorPolicy::default())
    }
}

impl FrontDoor {
    /// A front door with `policy` and no history.
    pub fn new(policy: DoorPolicy) -> Self {
        FrontDoor {
            state: Mutex::new(State {
                limiter: SourceLimiter::new(policy.limits.rate),
                warn_ban: WarnEvery::new(WARN_EVERY),
                warn_scanner: WarnEvery::new(WARN_EVERY),
                warn_connection: WarnEvery::new(WARN_EVERY),
            }),
            policy: Arc::new(ArcSwap::from_pointee(policy)),
            slots: SourceSlots::new(),
            counters: Counters::default(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<DoorPolicy> {
        self.policy.load_full()
    }

    /// A new policy (a dialplan reload): bans in progress keep their end,
    /// connections already open keep their slots.
    pub fn set_policy(&self, policy: DoorPolicy) {
        self.lock().limiter.set_limits(policy.limits.rate);
        self.policy.store(Arc::new(policy));
    }

    /// A cache of the policy for a task that reads it per message.
    pub(super) fn policy_cache(
        &self,
    ) -> arc_swap::Cache<Arc<ArcSwap<DoorPolicy>>, Arc<DoorPolicy>> {
        arc_swap::Cache::new(Arc::clone(&self.policy))
    }

    /// Whether `ip` is trusted now.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.policy.load().trusted.is_trusted(ip)
    }

    /// Bans `ip` (unless trusted) until `until`; `why` is for the log.
    pub fn ban(&self, now: Instant, ip: IpAddr, until: Instant, why: &str) {
        if self.is_trusted(ip) {
            return;
        }
        let mut state = self.lock();
        let fresh = state.limiter.banned_until(now, ip).is_none();
        let until = state
            .limiter
            .ban(now, ip, until.saturating_duration_since(now));
        if fresh {
            self.counters.bans.fetch_add(1, Ordering::Relaxed);
            let warn = state.warn_ban.hit(now);
            drop(state);
            log_ban(ip, now, until, why, warn);
        }
    }

    /// Whether `ip` is banned at `now`.
    pub fn is_banned(&self, now: Instant, ip: IpAddr) -> bool {
        self.lock().limiter.banned_until(now, ip).is_some()
    }

    /// The counters, and the bans and sources now.
    pub fn stats(&self, now: Instant) -> DoorStats {
        let state = self.lock();
        DoorStats {
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            scanners: self.counters.scanners.load(Ordering::Relaxed),
            bans: self.counters.bans.load(Ordering::Relaxed),
            connections_refused: self.counters.connections_refused.load(Ordering::Relaxed),
            banned_now: state.limiter.bans(now),
            sources_tracked: state.limiter.tracked(),
            untracked: state.limiter.untracked(),
        }
    }

    /// One message (or datagram) from the untrusted `ip`: `false` to drop
    /// it unanswered.
    pub(super) fn admit(&self, now: Instant, ip: IpAddr) -> bool {
        let mut state = self.lock();
        match state.limiter.check(now, ip) {
            Verdict::Pass => true,
            Verdict::Banned { new: false, .. } => {
                drop(state);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Verdict::Banned { until, new: true } => {
                let warn = state.warn_ban.hit(now);
                let rate = state.limiter.limits().per_second;
                drop(state);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.counters.bans.fetch_add(1, Ordering::Relaxed);
                log_ban(
                    ip,
                    now,
                    until,
                    &format!("over {rate} messages a second"),
                    warn,
                );
                false
            }
        }
    }

    /// A parsed message from the untrusted `ip`: `false` (and a ban) for a
    /// request with a scanner's User-Agent.
    pub(super) fn screen(&self, now: Instant, ip: IpAddr, message: &Message) -> bool {
        let Message::Request(request) = message else {
            return true;
        };
        let Some(agent) = request.headers.get(&HeaderName::UserAgent) else {
            return true;
        };
        let policy = self.policy.load();
        if !policy.limits.scanners.matches(agent) {
            return true;
        }
        self.counters.scanners.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let fresh = state.limiter.banned_until(now, ip).is_none();
        let until = state.limiter.ban(now, ip, policy.limits.scanner_ban);
        let warn = state.warn_scanner.hit(now);
        drop(state);
        if fresh {
            self.counters.bans.fetch_add(1, Ordering::Relaxed);
        }
        let agent = String::from_utf8_lossy(agent);
        tracing::debug!(%ip, user_agent = %agent, "scanner dropped");
        if let Some(count) = warn {
            tracing::warn!(
                %ip,
                user_agent = %agent,
                dropped = count,
                "a scanner's request dropped and its source banned for {} s ({count} scanner requests since the last such warning)",
                until.saturating_duration_since(now).as_secs()
            );
        }
        false
    }

    /// A connection accepted from `ip`: the slot it holds while open
    /// (`None` for a trusted source), or why it must be closed at once.
    pub(super) fn connection(
        &self,
        now: Instant,
        ip: IpAddr,
    ) -> Result<Option<SourceSlot>, Refusal> {
        let policy = self.policy.load();
        if policy.trusted.is_trusted(ip) {
            return Ok(None);
        }
        let refusal = if self.is_banned(now, ip) {
            Refusal::Banned
        } else {
            match self.slots.try_take(ip, policy.limits.connections) {
                Some(slot) => return Ok(Some(slot)),
                None => Refusal::SourceSlots,
            }
        };
        self.counters
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        let warn = self.lock().warn_connection.hit(now);
        let why = match refusal {
            Refusal::Banned => "the source is banned".to_string(),
            Refusal::SourceSlots => format!(
                "the source holds {} connections, its most",
                policy.limits.connections
            ),
        };
        tracing::debug!(%ip, "connection closed at once: {why}");
        if let Some(count) = warn {
            tracing::warn!(
                %ip,
                refused = count,
                "connection closed at once: {why} ({count} refused since the last such warning)"
            );
        }
        Err(refusal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn log_ban(ip: IpAddr, now: Instant, until: Instant, why: &str, warn: Option<u64>) {
    let seconds = until.saturating_duration_since(now).as_secs();
    tracing::debug!(%ip, seconds, "source banned: {why}");
    if let Some(count) = warn {
        tracing::warn!(
            %ip,
            seconds,
            bans = count,
            "source banned for {seconds} s, its messages dropped unanswered: {why} ({count} bans since the last such warning)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guard::RateLimits;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn door(connections: u32) -> FrontDoor {
        FrontDoor::new(DoorPolicy {
            trusted: TrustedSources::default().with_untrusted(vec!["127.0.0.2".parse().unwrap()]),
            limits: SipLimits {
                rate: RateLimits {
                    per_second: 1,
                    burst: 2,
                    ban: Duration::from_secs(5),
                    max_sources: 100,
                },
                connections,
                ..SipLimits::default()
            },
        })
    }

    #[test]
    fn a_flooding_source_is_banned_and_counted_and_its_connections_refused() {
        let door = door(2);
        let now = Instant::now();
        let flooder = ip("127.0.0.2");
        assert!(door.admit(now, flooder));
        assert!(door.admit(now, flooder));
        assert!(!door.admit(now, flooder));
        assert!(!door.admit(now, flooder));
        assert_eq!(door.connection(now, flooder).unwrap_err(), Refusal::Banned);
        assert!(
            door.connection(now, ip("127.0.0.1")).unwrap().is_none(),
            "trusted"
        );
        let stats = door.stats(now);
        assert_eq!((stats.dropped, stats.bans, stats.banned_now), (2, 1, 1));
        assert_eq!(stats.connections_refused, 1);
        let later = now + Duration::from_secs(5);
        assert!(door.admit(later, flooder), "the ban expired");
    }

    #[test]
    fn connections_take_slots_per_source() {
        let door = door(2);
        let now = Instant::now();
        let hog = ip("198.51.100.1");
        let first = door.connection(now, hog).unwrap();
        let _second = door.connection(now, hog).unwrap();
        assert_eq!(door.connection(now, hog).unwrap_err(), Refusal::SourceSlots);
        assert!(door.connection(now, ip("198.51.100.2")).unwrap().is_some());
        drop(first);
        assert!(door.connection(now, hog).unwrap().is_some());
    }

    #[test]
    fn bans_from_elsewhere_skip_trusted_sources() {
        let door = door(2);
        let now = Instant::now();
        door.ban(now, ip("127.0.0.1"), now + Duration::from_secs(60), "test");
        assert!(!door.is_banned(now, ip("127.0.0.1")));
        door.ban(now, ip("192.0.2.1"), now + Duration::from_secs(60), "test");
        assert!(door.is_banned(now, ip("192.0.2.1")));
        assert_eq!(door.stats(now).bans, 1);
    }
}
