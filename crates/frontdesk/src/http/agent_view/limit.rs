//! The agent page's sign-in limits: the same rules as REGISTER digest
//! (the passwords are the same), from the dialplan's `[limits.sign_in]`,
//! for untrusted sources (DESIGN.md "Trusted sources").
//!
//! - Per source ([`guard::FailureLimiter`]): failures slow the source's
//!   answers down, then ban it for a while; a banned source gets 429 with
//!   `Retry-After` before its body is looked at.
//! - Per account ([`guard::AccountLockout`]): too many failures against one
//!   account lock it for every source that never signed in to it, the
//!   right password included (429 with `Retry-After`); the sources the
//!   agent signed in from stay exempt, so nobody can lock a real agent out
//!   of their page by guessing badly on purpose. A success clears only the
//!   failures its source made against its own account: an agent who knows
//!   their own password buys no guesses at a colleague's with it.
//!
//! The tables sit behind one plain mutex, held for a lookup or an update
//! between the handler's awaits, never across one.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use guard::{AccountLockout, Admission, FailureLimiter, SignInLimits};

/// The sign-in failure tables.
#[derive(Debug)]
pub struct SignInGuard {
    tables: Mutex<Tables>,
}

#[derive(Debug)]
struct Tables {
    sources: FailureLimiter,
    accounts: AccountLockout,
}

/// Why a sign-in is refused before its password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source failed too often: banned for this long.
    Source(Duration),
    /// The account is locked for this source for at most this long.
    Account(Duration),
}

impl Default for SignInGuard {
    fn default() -> Self {
        SignInGuard::new(&SignInLimits::default())
    }
}

impl SignInGuard {
    /// No history, `limits`.
    pub fn new(limits: &SignInLimits) -> Self {
        SignInGuard {
            tables: Mutex::new(Tables {
                sources: FailureLimiter::new(limits.source.clone()),
                accounts: AccountLockout::new(limits.account.clone()),
            }),
        }
    }

    fn tables(&self, limits: &SignInLimits) -> std::sync::MutexGuard<'_, Tables> {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        // The dialplan in force (a reload may have changed them).
        if tables.sources.limits() != &limits.source {
            tables.sources.set_limits(limits.source.clone());
        }
        if tables.accounts.limits() != &limits.account {
            tables.accounts.set_limits(limits.account.clone());
        }
        tables
    }

    /// Whether the untrusted `ip` may try at all (before the body).
    pub fn check_source(
        &self,
        limits: &SignInLimits,
        now: Instant,
        ip: IpAddr,
    ) -> Result<(), Refusal> {
        match self.tables(limits).sources.admission(now, ip) {
            Admission::Allowed => Ok(()),
            Admission::Banned { until } => Err(Refusal::Source(
                until
                    .saturating_duration_since(now)
                    .max(Duration::from_secs(1)),
            )),
        }
    }

    /// Whether the untrusted `ip` may try `account`.
    pub fn check_account(
        &self,
        limits: &SignInLimits,
        now: Instant,
        account: &str,
        ip: IpAddr,
    ) -> Result<(), Refusal> {
        self.tables(limits)
            .accounts
            .check(now, account, ip)
            .map_err(Refusal::Account)
    }

    /// A failed sign-in to `account` from the untrusted `ip`; returns how
    /// long to hold the answer back.
    pub fn failed(
        &self,
        limits: &SignInLimits,
        now: Instant,
        account: &str,
        ip: IpAddr,
    ) -> Option<Duration> {
        let mut tables = self.tables(limits);
        tables.sources.record_failure(now, ip);
        tables.accounts.failed(now, account, ip);
        tables.sources.delay(now, ip)
    }

    /// A successful sign-in to `account` from the untrusted `ip`.
    pub fn succeeded(&self, limits: &SignInLimits, now: Instant, account: &str, ip: IpAddr) {
        self.tables(limits).accounts.succeeded(now, account, ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SignInLimits {
        let mut limits = SignInLimits::default();
        limits.source.slow_after = 2;
        limits.source.ban_after = 4;
        limits.account.lock_after = 3;
        limits
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_agent_who_knows_their_own_password_gains_no_guesses_at_a_colleagues() {
        let guard = SignInGuard::default();
        let limits = limits();
        let now = Instant::now();
        for _ in 0..3 {
            guard.failed(&limits, now, "1004", A);
            guard.succeeded(&limits, now, "1003", A);
        }
        assert!(matches!(
            guard.check_account(&limits, now, "1004", A),
            Err(Refusal::Account(_))
        ));
        assert_eq!(guard.check_account(&limits, now, "1003", A), Ok(()));
    }

    #[test]
    fn a_source_that_keeps_failing_is_slowed_then_banned() {
        let guard = SignInGuard::default();
        let limits = limits();
        let now = Instant::now();
        assert_eq!(guard.failed(&limits, now, "x1", B), None);
        assert_eq!(
            guard.failed(&limits, now, "x2", B),
            Some(limits.source.first_delay)
        );
        guard.failed(&limits, now, "x3", B);
        assert_eq!(guard.check_source(&limits, now, B), Ok(()));
        guard.failed(&limits, now, "x4", B);
        assert!(matches!(
            guard.check_source(&limits, now, B),
            Err(Refusal::Source(_))
        ));
        assert_eq!(guard.check_source(&limits, now, A), Ok(()));
    }
}
