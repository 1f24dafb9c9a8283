//! Sign-in lockout per account: failures are counted per account and per
//! source, and a success clears only its own account's failures from its
//! own source.
//!
//! # The rule
//!
//! [`LockoutLimits::lock_after`] failed sign-ins to one account within
//! [`LockoutLimits::window`], from any sources, lock the account — but
//! only for sources that have not signed in to it successfully within
//! [`LockoutLimits::known_for`]. The lock lifts when the oldest of those
//! failures leaves the window; attempts refused during the lock are not
//! failures (their password is never looked at), so a lock always ends.
//!
//! # Why this rule
//!
//! A lockout that refuses everyone lets an attacker lock a real agent out
//! of their phone and their page by guessing badly on purpose. A lockout
//! that only slows guesses down does not bound them: guesses run in
//! parallel, and a queue of them delays the real agent just as much. So
//! the account's own sources are exempt: the phone that registers every
//! few minutes and the browser the agent signs in from keep working,
//! while a guesser who never had the password meets the lock after
//! `lock_after` tries per window, from however many sources.
//!
//! A success from a source clears the failures that source made against
//! that account (the agent's own typos), nothing else: a colleague's
//! success, or the guesser's own sign-in to their own account, clears
//! nothing of another account's count. (frontdesk used to clear a whole
//! address on success, which let an agent guess colleagues' passwords
//! without limit.)
//!
//! The limit of the rule: a source shared with the account's owner — the
//! same NAT address — is that owner's source, so it is exempt from the
//! lock. What bounds guessing from a shared untrusted address is the
//! per-source limit ([`crate::failures`]); staff networks listed as
//! trusted should be ones where the staff are known.
//!
//! Known sources live in memory: after a restart, an account locked
//! before its owner signs in again is locked for the owner too, for at
//! most one window.
//!
//! Unknown user names are counted like accounts (a lock must not tell
//! which names exist); the table is bounded
//! ([`LockoutLimits::max_accounts`]): accounts with nothing left to
//! remember go first, then the least recently seen.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::source::SourceKey;

/// Known sources remembered per account.
const KNOWN_PER_ACCOUNT: usize = 8;

/// The lockout's thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutLimits {
    /// Failures within `window` that lock the account.
    pub lock_after: u32,
    /// The window failures are counted over; also the longest lock.
    pub window: Duration,
    /// How long a source that signed in stays exempt from the lock.
    pub known_for: Duration,
    /// Accounts tracked at most.
    pub max_accounts: usize,
}

impl Default for LockoutLimits {
    /// 10 failures in 15 minutes; a source that signed in is exempt for
    /// 30 days; 4,096 accounts.
    fn default() -> Self {
        LockoutLimits {
            lock_after: 10,
            window: Duration::from_secs(15 * 60),
            known_for: Duration::from_secs(30 * 24 * 3600),
            max_accounts: 4096,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Account {
    /// The latest failures, oldest first, at most `lock_after`.
    failures: VecDeque<(Instant, SourceKey)>,
    /// Sources that signed in, with their last success, newest last.
    known: Vec<(SourceKey, Instant)>,
    last_seen: Option<Instant>,
}

impl Account {
    fn prune(&mut self, now: Instant, limits: &LockoutLimits) {
        while self
            .failures
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= limits.window)
        {
            self.failures.pop_front();
        }
        self.known
            .retain(|(_, at)| now.saturating_duration_since(*at) < limits.known_for);
    }

    fn is_idle(&self) -> bool {
        self.failures.is_empty() && self.known.is_empty()
    }
}

/// The accounts' failures and known sources.
#[derive(Debug, Clone)]
pub struct AccountLockout {
    limits: LockoutLimits,
    accounts: HashMap<String, Account>,
}

impl AccountLockout {
    /// No history.
    pub fn new(limits: LockoutLimits) -> Self {
        AccountLockout {
            limits,
            accounts: HashMap::new(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &LockoutLimits {
        &self.limits
    }

    /// New limits (a dialplan reload); history is kept.
    pub fn set_limits(&mut self, limits: LockoutLimits) {
        self.limits = limits;
    }

    /// `Err(retry_after)` while `account` is locked for `ip`.
    pub fn check(&mut self, now: Instant, account: &str, ip: IpAddr) -> Result<(), Duration> {
        let limits = &self.limits;
        let Some(entry) = self.accounts.get_mut(account) else {
            return Ok(());
        };
        entry.prune(now, limits);
        let key = SourceKey::from(ip);
        let lock_after = limits.lock_after.max(1) as usize;
        if entry.known.iter().any(|(known, _)| *known == key) || entry.failures.len() < lock_after {
            return Ok(());
        }
        // Open again once the oldest of the last `lock_after` leaves.
        let oldest = entry.failures[entry.failures.len() - lock_after].0;
        let retry = (oldest + limits.window).saturating_duration_since(now);
        Err(retry.max(Duration::from_secs(1)))
    }

    /// A failed sign-in to `account` from `ip`.
    pub fn failed(&mut self, now: Instant, account: &str, ip: IpAddr) {
        let lock_after = self.limits.lock_after.max(1) as usize;
        let entry = self.entry(now, account);
        entry.failures.push_back((now, SourceKey::from(ip)));
        while entry.failures.len() > lock_after {
            entry.failures.pop_front();
        }
        entry.last_seen = Some(now);
    }

    /// A successful sign-in to `account` from `ip`: `ip`'s source becomes
    /// a known source of the account, and the failures it made against
    /// the account are forgotten. Nothing else changes.
    pub fn succeeded(&mut self, now: Instant, account: &str, ip: IpAddr) {
        let key = SourceKey::from(ip);
        let entry = self.entry(now, account);
        entry.failures.retain(|(_, source)| *source != key);
        entry.known.retain(|(known, _)| *known != key);
        if entry.known.len() >= KNOWN_PER_ACCOUNT {
            entry.known.remove(0);
        }
        entry.known.push((key, now));
        entry.last_seen = Some(now);
    }

    /// How many accounts are tracked.
    pub fn tracked(&self) -> usize {
        self.accounts.len()
    }

    fn entry(&mut self, now: Instant, account: &str) -> &mut Account {
        if !self.accounts.contains_key(account) {
            self.make_room(now);
        }
        let limits = self.limits.clone();
        let entry = self.accounts.entry(account.to_string()).or_default();
        entry.prune(now, &limits);
        entry
    }

    fn make_room(&mut self, now: Instant) {
        let max = self.limits.max_accounts.max(1);
        if self.accounts.len() < max {
            return;
        }
        let limits = self.limits.clone();
        self.accounts.retain(|_, account| {
            account.prune(now, &limits);
            !account.is_idle()
        });
        while self.accounts.len() >= max {
            let oldest = self
                .accounts
                .iter()
                .min_by_key(|(_, account)| account.last_seen)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => self.accounts.remove(&name),
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

    fn limits() -> LockoutLimits {
        LockoutLimits {
            lock_after: 3,
            window: Duration::from_secs(60),
            known_for: Duration::from_secs(3600),
            max_accounts: 100,
        }
    }

    #[test]
    fn failures_from_several_sources_lock_the_account_for_strangers_only() {
        let start = crate::epoch();
        let mut lockout = AccountLockout::new(limits());
        let owner = ip("198.51.100.1");
        let attackers = [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")];
        lockout.succeeded(start, "1003", owner);
        for (n, attacker) in attackers.iter().enumerate() {
            let at = start + Duration::from_secs(n as u64);
            assert_eq!(lockout.check(at, "1003", *attacker), Ok(()));
            lockout.failed(at, "1003", *attacker);
        }
        let now = start + Duration::from_secs(10);
        assert_eq!(
            lockout.check(now, "1003", ip("192.0.2.9")),
            Err(Duration::from_secs(50)),
            "locked for a fresh source too"
        );
        assert_eq!(
            lockout.check(now, "1003", owner),
            Ok(()),
            "the owner is exempt"
        );
        assert_eq!(
            lockout.check(now, "1004", attackers[0]),
            Ok(()),
            "other accounts open"
        );
        // The lock ends with the window of its oldest failure.
        assert_eq!(
            lockout.check(start + Duration::from_secs(60), "1003", attackers[0]),
            Ok(())
        );
    }

    #[test]
    fn a_colleagues_success_does_not_reset_an_accounts_lockout() {
        let start = crate::epoch();
        let mut lockout = AccountLockout::new(limits());
        let office = ip("203.0.113.5");
        for _ in 0..3 {
            lockout.failed(start, "1004", office);
        }
        assert!(lockout.check(start, "1004", office).is_err());
        // A colleague (or the guesser, with their own password) signs in
        // from the same address: 1004 stays locked for it.
        lockout.succeeded(start, "1003", office);
        assert!(lockout.check(start, "1004", office).is_err());
        assert_eq!(lockout.check(start, "1003", office), Ok(()));
    }

    #[test]
    fn a_success_clears_only_its_own_sources_failures() {
        let start = crate::epoch();
        let mut lockout = AccountLockout::new(limits());
        let owner = ip("198.51.100.1");
        let attacker = ip("192.0.2.1");
        lockout.failed(start, "1003", owner); // a typo
        lockout.failed(start, "1003", attacker);
        lockout.failed(start, "1003", attacker);
        lockout.succeeded(start, "1003", owner);
        // The typo is forgotten, the attacker's two failures are not:
        // one more locks the account.
        assert_eq!(lockout.check(start, "1003", attacker), Ok(()));
        lockout.failed(start, "1003", attacker);
        assert!(lockout.check(start, "1003", attacker).is_err());
        assert_eq!(lockout.check(start, "1003", owner), Ok(()));
    }

    #[test]
    fn known_sources_are_forgotten_after_known_for() {
        let start = crate::epoch();
        let mut lockout = AccountLockout::new(limits());
        let owner = ip("2001:db8:1:2::1");
        lockout.succeeded(start, "1003", owner);
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            lockout.failed(later, "1003", ip("192.0.2.1"));
        }
        assert!(
            lockout
                .check(later, "1003", ip("2001:db8:1:2::99"))
                .is_err(),
            "no longer known"
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let start = crate::epoch();
        let mut lockout = AccountLockout::new(LockoutLimits {
            max_accounts: 10,
            ..limits()
        });
        for n in 0..1000u64 {
            let at = start + Duration::from_millis(n);
            lockout.failed(at, &format!("user{n}"), ip("192.0.2.1"));
            assert!(lockout.tracked() <= 10);
        }
    }
}
