//! Every limit, as the dialplan's `[limits]` section sets it
//! (`dialplans/README.md`); the defaults are what a clinic gets without
//! one.

use std::time::Duration;

use crate::failures::FailureLimits;
use crate::lockout::LockoutLimits;
use crate::rate::RateLimits;
use crate::scanner::Scanners;

/// All the limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// SIP, per untrusted source.
    pub sip: SipLimits,
    /// Sign-in: REGISTER digest and the agent page.
    pub sign_in: SignInLimits,
    /// The admin and agent HTTP listener.
    pub http: HttpLimits,
    /// Web-form leads' intake (`POST /api/leads`).
    pub leads: LeadLimits,
}

/// SIP limits per untrusted source (`[limits.sip]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipLimits {
    /// Messages per second, burst, ban.
    pub rate: RateLimits,
    /// Calls at once; beyond, a new INVITE gets 503 with Retry-After.
    pub calls: u32,
    /// TCP and TLS connections at once (TLS handshakes included); beyond,
    /// a new connection is closed at once.
    pub connections: u32,
    /// User-Agents dropped and banned on sight.
    pub scanners: Scanners,
    /// How long a scanner is banned.
    pub scanner_ban: Duration,
    /// A TLS handshake not done within this is abandoned (every source;
    /// read at start).
    pub handshake_timeout: Duration,
}

impl Default for SipLimits {
    fn default() -> Self {
        SipLimits {
            rate: RateLimits::default(),
            calls: 8,
            connections: 8,
            scanners: Scanners::default(),
            scanner_ban: Duration::from_secs(3600),
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// Sign-in limits (`[limits.sign_in]`): per untrusted source
/// ([`crate::failures`]) and per account ([`crate::lockout`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignInLimits {
    /// Per untrusted source: slowed, then banned.
    pub source: FailureLimits,
    /// Per account, every source.
    pub account: LockoutLimits,
}

/// The HTTP listener's limits (`[limits.http]`; read at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections at once, all sources (TLS handshakes included).
    pub connections: u32,
    /// Connections at once per untrusted source.
    pub connections_per_source: u32,
    /// A request's headers must arrive within this (and the next
    /// request's on a kept-alive connection).
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed.
    pub idle_timeout: Duration,
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// The largest `POST /agent/login` body, in bytes.
    pub max_login_body: usize,
    /// The largest `POST /api/leads` body, in bytes (DESIGN.md: 64 KiB).
    pub max_lead_body: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connections: 256,
            connections_per_source: 16,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_body: 64 * 1024,
            max_login_body: 1024,
            max_lead_body: 64 * 1024,
        }
    }
}

/// The intake of web-form leads (`[limits.leads]`; read at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadLimits {
    /// How far a signature's timestamp may be from now, either way
    /// (DESIGN.md: 5 minutes). A signature is remembered this long after
    /// its timestamp, so that it is accepted once.
    pub signature_tolerance: Duration,
    /// The most signatures remembered at once. Only signatures of stored
    /// leads are kept, so this bounds the signed leads accepted within one
    /// tolerance; past it, signed posts get 503 until the oldest expire
    /// (never an eviction, which would let a replay through).
    pub replay_cache: usize,
    /// How long an `Idempotency-Key` answers with the lead it made.
    pub idempotency_window: Duration,
}

impl Default for LeadLimits {
    fn default() -> Self {
        LeadLimits {
            signature_tolerance: Duration::from_secs(5 * 60),
            replay_cache: 100_000,
            idempotency_window: Duration::from_secs(24 * 3600),
        }
    }
}
