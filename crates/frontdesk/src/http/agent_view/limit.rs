//! Failed agent sign-ins, limited per client address: after
//! [`MAX_FAILURES`] failures within [`WINDOW`], an address is refused (even
//! with the right password) until the oldest of them is [`WINDOW`] old.
//! IPv6 clients are counted per /64, the block one subscriber usually has.
//!
//! The table is bounded ([`MAX_TRACKED`] addresses): when it is full,
//! addresses with no failure left in the window go first, then the one
//! whose last failure is oldest. Its lock is held only to read or update
//! one entry, never across an `.await` (the handlers call it between
//! awaits), so a plain mutex fits.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Addresses tracked at most.
pub const MAX_TRACKED: usize = 4096;

/// The per-address failure table.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    max_tracked: usize,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW, MAX_TRACKED)
    }
}

/// The address a limit applies to: IPv4 as is, IPv6 by its /64 (an
/// IPv4-mapped IPv6 address as the IPv4 one).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

impl LoginLimiter {
    /// `max_failures` within `window`, for at most `max_tracked` addresses.
    pub fn new(max_failures: usize, window: Duration, max_tracked: usize) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window,
            max_tracked: max_tracked.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` while `ip` may not try to sign in.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let table = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(times) = table.get(&key(ip)) else {
            return Ok(());
        };
        let recent: Vec<&Instant> = times
            .iter()
            .filter(|at| now.saturating_duration_since(**at) < self.window)
            .collect();
        if recent.len() < self.max_failures {
            return Ok(());
        }
        // Open again once enough of them have aged out of the window.
        let unlocking = recent[recent.len() - self.max_failures];
        let retry = (*unlocking + self.window).saturating_duration_since(now);
        Err(retry.max(Duration::from_secs(1)))
    }

    /// A failed sign-in from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut table = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.window;
        let address = key(ip);
        if !table.contains_key(&address) && table.len() >= self.max_tracked {
            table.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|last| now.saturating_duration_since(*last) < window)
            });
            if table.len() >= self.max_tracked {
                let oldest = table
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(address, _)| *address);
                if let Some(oldest) = oldest {
                    table.remove(&oldest);
                }
            }
        }
        let times = table.entry(address).or_default();
        while times
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= window)
        {
            times.pop_front();
        }
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// A successful sign-in from `ip`: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(ip));
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn the_sixth_attempt_within_the_window_is_refused_until_the_first_ages_out() {
        let limiter = LoginLimiter::new(5, Duration::from_secs(300), 100);
        let start = Instant::now();
        for n in 0..5 {
            let at = start + Duration::from_secs(n);
            assert_eq!(limiter.check(A, at), Ok(()));
            limiter.failed(A, at);
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(limiter.check(A, later), Err(Duration::from_secs(290)));
        assert_eq!(
            limiter.check(B, later),
            Ok(()),
            "other addresses are not affected"
        );
        assert_eq!(limiter.check(A, start + Duration::from_secs(300)), Ok(()));
    }

    #[test]
    fn success_forgets_the_failures() {
        let limiter = LoginLimiter::new(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        limiter.failed(A, now);
        limiter.succeeded(A);
        limiter.failed(A, now);
        assert_eq!(limiter.check(A, now), Ok(()));
        limiter.failed(A, now);
        assert!(limiter.check(A, now).is_err());
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = LoginLimiter::new(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        limiter.failed("2001:db8:1:2::1".parse().unwrap(), now);
        limiter.failed("2001:db8:1:2::ffff".parse().unwrap(), now);
        assert!(
            limiter
                .check("2001:db8:1:2:abcd::9".parse().unwrap(), now)
                .is_err()
        );
        assert_eq!(
            limiter.check("2001:db8:1:3::1".parse().unwrap(), now),
            Ok(())
        );
        limiter.failed("::ffff:192.0.2.1".parse().unwrap(), now);
        limiter.failed(A, now);
        assert!(limiter.check(A, now).is_err());
    }

    #[test]
    fn the_table_is_bounded() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60), 10);
        let start = Instant::now();
        for n in 0..1000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            limiter.failed(ip, start + Duration::from_millis(u64::from(n)));
        }
        assert!(limiter.tracked() <= 10);
        // The newest are the ones kept.
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 999));
        limiter.failed(newest, start + Duration::from_secs(1));
        limiter.failed(newest, start + Duration::from_secs(1));
        assert!(
            limiter
                .check(newest, start + Duration::from_secs(1))
                .is_err()
        );
    }
}
