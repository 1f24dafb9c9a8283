//! One source cannot take the clinic down: the limits frontdesk puts on
//! the sources it does not trust, sans-IO.
//!
//! # The model
//!
//! A *source* is an IP address ([`SourceKey`]: IPv4 as is, IPv6 by its
//! /64). Sources are either trusted ([`TrustedSources`]: loopback, the
//! trunks' networks, the clinic's agent networks, minus the networks
//! listed as untrusted; real CIDR ranges, [`IpNetwork`]) or not. Trusted
//! sources skip every per-source limit; the question is asked first, so
//! their traffic pays a few nanoseconds for it. For the others:
//!
//! | what | kept by | when over |
//! |---|---|---|
//! | SIP messages per second | [`SourceLimiter`] (token bucket) | banned: every message dropped unanswered until the ban ends |
//! | known scanners' User-Agent | [`Scanners`] | dropped, and the source banned |
//! | calls at once | [`SourceSlots`] | 503 with Retry-After |
//! | TCP/TLS and HTTP connections at once | [`SourceSlots`] | closed at once, before any TLS handshake |
//! | failed sign-ins | [`FailureLimiter`] | slowed, then banned |
//!
//! Sign-in is also limited per account, for every source, trusted or not
//! ([`AccountLockout`]): failures count per account and per source, a
//! success clears only its own account, and an account's own sources stay
//! exempt from its lock so that nobody can lock a real agent out; the
//! module explains the choice.
//!
//! # The run loop
//!
//! Nothing here reads a clock, opens a socket or spawns a task: every
//! method that depends on time takes `now`, so each limit, ban and lockout
//! is unit-tested on an injected clock (`clippy.toml` bans
//! `Instant::now`). The drivers own the state and ask before they work:
//!
//! - the SIP transport (`sip::transport`) asks [`TrustedSources`], then
//!   [`SourceLimiter::check`] for every datagram *before it is parsed*,
//!   and for every message framed on a stream; it checks the User-Agent
//!   of what it parsed against [`Scanners`]; it takes a [`SourceSlot`]
//!   per accepted connection, before a TLS handshake starts;
//! - the registrar (`sip::registrar`) keeps a [`FailureLimiter`] and an
//!   [`AccountLockout`] for REGISTER digest;
//! - the daemon (`frontdesk`) takes a [`SourceSlot`] per call and per
//!   HTTP connection, and keeps its own [`FailureLimiter`] and
//!   [`AccountLockout`] for the agent page's sign-in;
//! - the dialplan (`ivr`) reads `[trust]` and `[limits]` into
//!   [`TrustedSources`] and [`Limits`];
//! - behind a trusted proxy (Kamailio, `[trust] proxies`) the transport
//!   sees only the proxy, which is exempt; the daemon reads the real source
//!   from the proxy's [`SOURCE_HEADER`] ([`ForwardedSource`]) once the
//!   request is parsed, and the registrar, the call slots and the feature
//!   codes judge that source instead.
//!
//! Drivers log what is refused at debug, and warn at most once per period
//! with a count ([`WarnEvery`]): a flood must not flood the log.
//!
//! State shared by several tasks is behind a plain mutex in the driver
//! (or in [`SourceSlots`]), held for one map operation.

mod failures;
mod forwarded;
mod limits;
mod lockout;
mod network;
mod rate;
mod scanner;
mod slots;
mod source;
mod trust;
mod warn;

pub use failures::{Admission, FailureLimiter, FailureLimits};
pub use forwarded::{ForwardedError, ForwardedSource, ForwardedTransport, SOURCE_HEADER};
pub use limits::{HttpLimits, LeadLimits, Limits, SignInLimits, SipLimits};
pub use lockout::{AccountLockout, LockoutLimits};
pub use network::{IpNetwork, NetworkError};
pub use rate::{RateLimits, SourceLimiter, Verdict};
pub use scanner::{DEFAULT_SCANNERS, Scanners};
pub use slots::{SourceSlot, SourceSlots};
pub use source::SourceKey;
pub use trust::TrustedSources;
pub use warn::WarnEvery;

/// The tests' clock starts anywhere: one read of the real clock, then
/// only offsets from it.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn epoch() -> std::time::Instant {
    std::time::Instant::now()
}
