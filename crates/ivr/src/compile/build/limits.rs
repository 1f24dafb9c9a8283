//! Pass 3a, continued: `[limits]` into [`guard::Limits`]. Every key is
//! optional; a missing one keeps guard's default. Values out of range are
//! errors at their position, never clamped.

use std::time::Duration;

use guard::{Limits, Scanners};

use super::Builder;
use crate::compile::RawPlan;
use crate::diagnostic::ErrorKind;
use crate::raw::{RawHttpLimits, RawLeadLimits, RawSignInLimits, RawSipLimits, S};

/// RFC 3261 Timer F is 32 s: a REGISTER answer held longer than this
/// reaches a UDP client that has given up.
const LONGEST_DELAY: Duration = Duration::from_secs(30);

/// The widest `signature_tolerance`.
const LONGEST_TOLERANCE: Duration = Duration::from_secs(3600);

impl Builder<'_, '_> {
    pub(super) fn limits(&mut self, raw: &RawPlan) -> Limits {
        let mut limits = Limits::default();
        let Some(raw) = &raw.limits else {
            return limits;
        };
        if let Some(sip) = &raw.sip {
            self.sip_limits(sip, &mut limits);
        }
        if let Some(sign_in) = &raw.sign_in {
            self.sign_in_limits(sign_in, &mut limits);
        }
        if let Some(http) = &raw.http {
            self.http_limits(http, &mut limits);
        }
        if let Some(leads) = &raw.leads {
            self.lead_limits(leads, &mut limits);
        }
        limits
    }

    fn lead_limits(&mut self, raw: &RawLeadLimits, limits: &mut Limits) {
        let leads = &mut limits.leads;
        set(
            &mut leads.signature_tolerance,
            self.positive(&raw.signature_tolerance, "signature_tolerance"),
        );
        if leads.signature_tolerance > LONGEST_TOLERANCE
            && let Some(value) = &raw.signature_tolerance
        {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                "`signature_tolerance` must be at most 1h: a captured post stays replayable this long (once)",
            );
        }
        set(
            &mut leads.replay_cache,
            self.count(&raw.replay_cache, 100, 10_000_000, "replay_cache"),
        );
        set(
            &mut leads.idempotency_window,
            self.positive(&raw.idempotency_window, "idempotency_window"),
        );
    }

    fn sip_limits(&mut self, raw: &RawSipLimits, limits: &mut Limits) {
        let sip = &mut limits.sip;
        set(
            &mut sip.rate.per_second,
            self.count(&raw.rate, 0, 1_000_000, "rate"),
        );
        set(
            &mut sip.rate.burst,
            self.count(&raw.burst, 1, 1_000_000, "burst"),
        );
        set(&mut sip.rate.ban, self.positive(&raw.ban, "ban"));
        set(
            &mut sip.rate.max_sources,
            self.count(&raw.sources, 1, 10_000_000, "sources"),
        );
        set(&mut sip.calls, self.count(&raw.calls, 0, 100_000, "calls"));
        set(
            &mut sip.connections,
            self.count(&raw.connections, 0, 100_000, "connections"),
        );
        if let Some(list) = &raw.scanners {
            for entry in list {
                if entry.get_ref().trim().is_empty() {
                    self.error(
                        ErrorKind::InvalidValue,
                        entry.span(),
                        "`scanners`: an empty pattern would match every User-Agent",
                    );
                }
            }
            sip.scanners = Scanners::new(list.iter().map(|entry| entry.get_ref().as_str()));
        }
        set(
            &mut sip.scanner_ban,
            self.positive(&raw.scanner_ban, "scanner_ban"),
        );
        set(
            &mut sip.handshake_timeout,
            self.positive(&raw.handshake_timeout, "handshake_timeout"),
        );
    }

    fn sign_in_limits(&mut self, raw: &RawSignInLimits, limits: &mut Limits) {
        let source = &mut limits.sign_in.source;
        set(
            &mut source.slow_after,
            self.count(&raw.slow_after, 1, 1_000_000, "slow_after"),
        );
        set(
            &mut source.ban_after,
            self.count(&raw.ban_after, 1, 1_000_000, "ban_after"),
        );
        set(
            &mut source.decay,
            self.positive(&raw.forget_every, "forget_every"),
        );
        set(
            &mut source.first_delay,
            self.positive(&raw.first_delay, "first_delay"),
        );
        set(
            &mut source.max_delay,
            self.positive(&raw.max_delay, "max_delay"),
        );
        set(&mut source.ban, self.positive(&raw.ban, "ban"));
        if source.first_delay > source.max_delay
            && let Some(value) = raw.first_delay.as_ref().or(raw.max_delay.as_ref())
        {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                "`first_delay` must not be longer than `max_delay`",
            );
        }
        if source.max_delay > LONGEST_DELAY
            && let Some(value) = &raw.max_delay
        {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                "`max_delay` must be at most 30s: a UDP phone gives up on its REGISTER after 32 s (RFC 3261 Timer F)",
            );
        }
        if source.slow_after > source.ban_after
            && let Some(value) = raw.slow_after.as_ref().or(raw.ban_after.as_ref())
        {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                "`slow_after` must not be above `ban_after`",
            );
        }
        let account = &mut limits.sign_in.account;
        set(
            &mut account.lock_after,
            self.count(&raw.lock_after, 1, 1_000_000, "lock_after"),
        );
        set(
            &mut account.window,
            self.positive(&raw.lock_window, "lock_window"),
        );
        set(
            &mut account.known_for,
            self.positive(&raw.known_for, "known_for"),
        );
    }

    fn http_limits(&mut self, raw: &RawHttpLimits, limits: &mut Limits) {
        let http = &mut limits.http;
        set(
            &mut http.connections,
            self.count(&raw.connections, 1, 1_000_000, "connections"),
        );
        set(
            &mut http.connections_per_source,
            self.count(
                &raw.connections_per_source,
                1,
                1_000_000,
                "connections_per_source",
            ),
        );
        set(
            &mut http.header_timeout,
            self.positive(&raw.header_timeout, "header_timeout"),
        );
        set(
            &mut http.body_timeout,
            self.positive(&raw.body_timeout, "body_timeout"),
        );
        set(
            &mut http.idle_timeout,
            self.positive(&raw.idle_timeout, "idle_timeout"),
        );
        set(
            &mut http.max_body,
            self.count(&raw.max_body, 64, 16 * 1024 * 1024, "max_body"),
        );
        set(
            &mut http.max_login_body,
            self.count(&raw.max_login_body, 64, 64 * 1024, "max_login_body"),
        );
        set(
            &mut http.max_lead_body,
            self.count(&raw.max_lead_body, 1024, 64 * 1024, "max_lead_body"),
        );
    }

    /// An integer key within `low..=high`, converted to what it sets.
    fn count<T: TryFrom<i64>>(
        &mut self,
        value: &Option<S<i64>>,
        low: i64,
        high: i64,
        key: &str,
    ) -> Option<T> {
        let n = self.int_in(value.as_ref()?, low, high, key)?;
        T::try_from(n).ok()
    }

    /// A duration key that must be more than zero.
    pub(super) fn positive(&mut self, value: &Option<S<String>>, key: &str) -> Option<Duration> {
        let value = value.as_ref()?;
        let duration = self.duration(value, key)?;
        if duration.is_zero() {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                format!("`{key}` must be longer than zero"),
            );
            return None;
        }
        Some(duration)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}
