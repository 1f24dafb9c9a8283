//! The registrar for the clinic's agents (RFC 3261 §10), sans-IO, with
//! digest authentication (RFC 7616, RFC 8760), failure limits per source
//! and the location table the daemon rings agents from.
//!
//! # Run loop
//!
//! A [`Registrar`] reads no clock and owns no socket. The daemon:
//!
//! 1. hands it each REGISTER that the transaction layer delivers, with
//!    `now` (monotonic) and the wall clock in Unix seconds:
//!    [`Registrar::handle_register`] returns an [`Outcome`]: the response
//!    to send through that server transaction, after
//!    [`Outcome::send_after`] when the source is being slowed down;
//! 2. drains [`Registrar::poll_event`] until `None`: presence changes
//!    ([`RegistrarEvent::Registered`] with `first`,
//!    [`RegistrarEvent::Refreshed`], [`RegistrarEvent::Unregistered`]) and
//!    [`RegistrarEvent::BindingsChanged`], the cue to write the
//!    persistence file from [`Registrar::export`];
//! 3. sleeps until [`Registrar::poll_timeout`] (the next binding expiry),
//!    then calls [`Registrar::handle_timeout`] and drains events again.
//!
//! At start, [`Registrar::restore`] puts back the bindings read from the
//! persistence file with their remaining lifetime. To ring an agent, the
//! daemon asks [`Registrar::bindings`]: each [`Binding`] has the contact
//! URI (the Request-URI) and the [`Peer`] the REGISTER came from (where to
//! send, through the agent's NAT).
//!
//! # What a REGISTER gets, in order
//!
//! 1. A banned source (see [`FailureLimits`]): 403, no challenge, no work.
//!    An account locked for this source (see [`AccountLockout`]: too many
//!    failures against it from sources that never registered it): 403,
//!    no challenge, whatever the credentials. Both apply to untrusted
//!    sources only.
//! 2. A To that is not a SIP or SIPS URI with a user part: 400 (RFC 4475
//!    §3.3.4). Any host is accepted: agents register as
//!    `sip:1003@<daemon address>` and are known by their user part.
//!    Malformed Contact, Expires or `q`, a `*` beside other contacts or
//!    without `Expires: 0`, a contact that is not SIP or SIPS: 400.
//! 3. No Digest credentials for our realm (none, another scheme as in RFC
//!    4475 §3.3.7, another realm, an algorithm or nonce that is not ours):
//!    401 with one challenge per configured algorithm, in order.
//!    Credentials whose response is right but whose nonce has expired:
//!    401 with `stale=true`; so is a nonce count already used (a replay).
//! 4. A wrong response, or a user we do not know: 403, counted against
//!    the source and against the account (unknown names too, so that a
//!    lock tells nothing about which names exist). A success forgets the
//!    failures its source made against its own account, nothing else,
//!    and makes the source one the account's lock exempts. Both take the same path and the same work (an unknown
//!    user is checked against a random HA1), so the two cannot be told
//!    apart. Right credentials for another AOR than To's: 403, not counted.
//! 5. An expiry below `min_expires` (and not 0): 423 with `Min-Expires`.
//!    Above `max_expires`: shortened to it.
//! 6. Same Call-ID as a stored binding and a CSeq not above its CSeq: 500,
//!    nothing changes (§10.3 step 7).
//! 7. Otherwise the bindings are updated and 200 lists every binding of
//!    the AOR with its `expires`, and a `Date`. No Contact is a query.
//!
//! Every response gets a To tag; nothing else of the request's content is
//! echoed beyond what RFC 3261 §8.2.6.2 copies.
//!
//! # Wiring it into the daemon
//!
//! - Users: the dialplan's agents, `(id, Secret::Password(..))` (the demo
//!   passwords are `demo-<id>`), or HA1s; [`Registrar::set_users`] on
//!   reload. The RNG: `&mut rand::rng()` (tests pass a seeded `StdRng`).
//! - Trust: [`TrustedSources`] (the `guard` crate's, from the dialplan's
//!   `[trust]`) defaults to loopback; trunks and agent networks are
//!   trusted too. Flood tests put 127.0.0.2 in `untrusted`
//!   ([`Registrar::set_trusted`]). The limits come from `[limits.sign_in]`
//!   ([`Registrar::set_limits`]).
//! - [`Outcome::banned_until`]: the source is banned for failing too
//!   often; the daemon drops all its SIP traffic until then (a digest
//!   ban is a source ban).
//! - [`Outcome::send_after`]: keep the REGISTER's server transaction open
//!   and respond when the delay has passed (a timer in the registrar's
//!   task, e.g. a `DelayQueue`, never a sleep inside the core). A banned
//!   source's 403 is never delayed.
//! - Presence (DESIGN.md "Agent states"): `Registered { first: true }` →
//!   `available`; `Registered { first: false }` and `Refreshed` change
//!   nothing; `Unregistered` → `offline`.
//! - Persistence: on [`RegistrarEvent::BindingsChanged`], write
//!   [`Registrar::export`] (plain serde data, e.g. JSON) to a temporary
//!   file and rename it over the old one; at start, read it and call
//!   [`Registrar::restore`] before serving.
//! - Ringing an agent: for each [`Binding`] from [`Registrar::bindings`],
//!   an INVITE with Request-URI [`Binding::uri`] sent to
//!   [`Binding::source`] (for TCP/TLS, over its connection; after a
//!   restore there is none and a new one must be opened). A binding
//!   registered through a proxy has a [`Binding::path`] (RFC 3327): the
//!   INVITE then carries it as `Route` headers and goes to its first URI.
//!
//! [`Registrar::handle_register`] first expires the bindings due at `now`,
//! so their events come before the REGISTER's.

mod date;
mod location;
mod nonce;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use rand::rngs::StdRng;
use rand::{CryptoRng, RngCore, SeedableRng};

use crate::digest::{self, Algorithm, Challenge, Credentials, DigestError};
use crate::message::typed::parse_delta_seconds;
use crate::message::validate::ValidRequest;
use crate::message::{
    AuthParams, Contact, HeaderName, Method, NameAddr, Response, StatusCode, Uri,
};
use crate::peer::Peer;

pub use date::http_date;
pub use guard::{
    AccountLockout, Admission, FailureLimiter, FailureLimits, LockoutLimits, TrustedSources,
};
pub use location::{Binding, RestoreSummary, StoredBinding, StoredTransport};
pub use nonce::{NonceKeeper, NonceStatus};

use location::{Location, Origin, Requested, Update, contact_key, parse_q};

/// How a [`Registrar`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The digest realm, e.g. `frontdesk`.
    pub realm: String,
    /// Algorithms challenged with, in this order. MD5 first by default:
    /// SIPp 3.6 and baresip 1.0 only speak MD5 and take the first
    /// challenge. Credentials with an algorithm not listed are challenged
    /// again.
    pub algorithms: Vec<Algorithm>,
    /// Shortest registration accepted, seconds (423 below it).
    pub min_expires: u32,
    /// Longest registration granted, seconds (longer ones are shortened).
    pub max_expires: u32,
    /// Granted when the REGISTER names no expiry.
    pub default_expires: u32,
    /// How long a nonce is good for.
    pub nonce_lifetime: Duration,
    /// How many nonce counts are remembered at most: at least the peak
    /// rate of authenticated REGISTERs times 32 s (RFC 3261 Timer F), or
    /// a client slow to answer its challenge while others register is
    /// told its fresh nonce is stale (see [`NonceKeeper`]). About 60 bytes
    /// each, allocated only as nonces are used.
    pub max_nonce_records: usize,
    /// Contacts kept per agent; beyond it the least recently set go.
    pub max_contacts: usize,
    /// Auth-failure limits per untrusted source.
    pub limits: FailureLimits,
    /// The per-account lockout for untrusted sources.
    pub lockout: LockoutLimits,
    /// Sources the limits do not apply to.
    pub trusted: TrustedSources,
}

impl RegistrarConfig {
    /// The defaults for `realm`: MD5 then SHA-256, expiries 60 / 3600 /
    /// 3600 s, nonces good for 300 s, 262,144 nonce counts remembered
    /// (8,000 registrations/s for Timer F), 10 contacts per agent, the default
    /// [`FailureLimits`], [`LockoutLimits`] and [`TrustedSources`].
    pub fn new(realm: &str) -> Self {
        RegistrarConfig {
            realm: realm.to_owned(),
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            nonce_lifetime: Duration::from_secs(300),
            max_nonce_records: 262_144,
            max_contacts: 10,
            limits: FailureLimits::default(),
            lockout: LockoutLimits::default(),
            trusted: TrustedSources::default(),
        }
    }
}

/// An agent's secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password; HA1s are computed once, at construction.
    Password(String),
    /// Precomputed HA1s (`H(user:realm:password)`, hex), per base
    /// algorithm. Credentials with an algorithm whose HA1 is missing are
    /// refused like a wrong password.
    Ha1 {
        /// The MD5 HA1 (32 hex digits).
        md5: Option<String>,
        /// The SHA-256 HA1 (64 hex digits).
        sha256: Option<String>,
    },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Secret::Password(..)"),
            Secret::Ha1 { .. } => f.write_str("Secret::Ha1 { .. }"),
        }
    }
}

/// A configuration the registrar cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrarError {
    /// `algorithms` is empty.
    #[error("no digest algorithm configured")]
    NoAlgorithms,
    /// The realm is empty.
    #[error("the digest realm is empty")]
    EmptyRealm,
    /// Not `0 < min_expires <= default_expires <= max_expires`.
    #[error("expiries must satisfy 0 < min ({min}) <= default ({default}) <= max ({max}) seconds")]
    Expires {
        /// `min_expires`.
        min: u32,
        /// `default_expires`.
        default: u32,
        /// `max_expires`.
        max: u32,
    },
    /// An HA1 that is not hex of the algorithm's length.
    #[error("the {algorithm} HA1 of user {user} is not {} hex digits", algorithm.hex_len())]
    BadHa1 {
        /// The user.
        user: String,
        /// The algorithm.
        algorithm: Algorithm,
    },
}

/// What to answer to a REGISTER, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The response, for the REGISTER's server transaction.
    pub response: Response,
    /// Hold the response back this long (a source with recent auth
    /// failures); `None`: send it now. The daemon keeps the transaction
    /// open meanwhile (retransmitted requests are absorbed by it).
    pub send_after: Option<Duration>,
    /// What was decided, for logs and metrics.
    pub decision: Decision,
    /// The source is banned until then (this REGISTER's failure banned
    /// it, or it already was): the daemon may drop all its traffic until
    /// then.
    pub banned_until: Option<Instant>,
}

/// What a REGISTER came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// 401 with fresh challenges; `stale` when only the nonce was too old.
    Challenged {
        /// `stale=true` was sent.
        stale: bool,
    },
    /// 401 `stale=true`: right credentials, but a nonce count already used.
    Replayed {
        /// The user.
        user: String,
    },
    /// 200: the bindings of `user` were updated, or listed (a query).
    Accepted {
        /// The user.
        user: String,
    },
    /// 403 after checking the credentials.
    Forbidden {
        /// The user name the credentials gave.
        username: String,
        /// Why (never sent: the response is the same for each).
        reason: ForbiddenReason,
    },
    /// 403 without a challenge: the source is banned.
    Banned {
        /// When the ban lifts.
        until: Instant,
    },
    /// 403 without a challenge: the account is locked for this source
    /// (too many failures against it from sources it never signed in
    /// from; see [`AccountLockout`]).
    Locked {
        /// The account.
        user: String,
        /// How long until the lock lifts at the latest.
        retry_after: Duration,
    },
    /// Any other refusal (400, 405, 423, 500): see the response's status
    /// and reason.
    Rejected,
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenReason {
    /// The response did not match the user's HA1 (counted as a failure).
    WrongCredentials,
    /// No such user (counted as a failure).
    UnknownUser,
    /// Right credentials, for another AOR than the REGISTER's To.
    OtherAor,
}

/// News about agents' bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrarEvent {
    /// A new contact was bound. `first`: the agent had no binding before
    /// (DESIGN.md: a first registration makes it `available`).
    Registered {
        /// The agent.
        user: String,
        /// It went from no binding to some.
        first: bool,
    },
    /// Existing bindings were renewed and none added (presence unchanged).
    Refreshed {
        /// The agent.
        user: String,
    },
    /// The agent's last binding went (DESIGN.md: `offline`).
    Unregistered {
        /// The agent.
        user: String,
        /// Why.
        reason: UnregisterReason,
    },
    /// The agent's bindings changed in any way (added, refreshed, removed,
    /// expired): time to write the persistence file.
    BindingsChanged {
        /// The agent.
        user: String,
    },
}

/// Why an agent's last binding went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnregisterReason {
    /// It expired.
    Expired,
    /// An un-REGISTER removed it (`Expires: 0` or `Contact: *`).
    Removed,
    /// The user was taken out of the configuration
    /// ([`Registrar::set_users`]).
    Deconfigured,
}

/// HA1s of one user, lower-case hex.
#[derive(Debug, Clone)]
struct Keys {
    md5: Option<String>,
    sha256: Option<String>,
}

impl Keys {
    fn get(&self, base: Algorithm) -> Option<&str> {
        match base {
            Algorithm::Md5 | Algorithm::Md5Sess => self.md5.as_deref(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => self.sha256.as_deref(),
        }
    }

    fn new(user: &str, realm: &str, secret: Secret) -> Result<Self, RegistrarError> {
        match secret {
            Secret::Password(password) => Ok(Keys {
                md5: Some(digest::ha1(Algorithm::Md5, user, realm, &password)),
                sha256: Some(digest::ha1(Algorithm::Sha256, user, realm, &password)),
            }),
            Secret::Ha1 { md5, sha256 } => {
                let check = |algorithm: Algorithm, ha1: Option<String>| match ha1 {
                    None => Ok(None),
                    Some(hex)
                        if hex.len() == algorithm.hex_len() && digest::unhex(&hex).is_some() =>
                    {
                        Ok(Some(hex.to_ascii_lowercase()))
                    }
                    Some(_) => Err(RegistrarError::BadHa1 {
                        user: user.to_owned(),
                        algorithm,
                    }),
                };
                Ok(Keys {
                    md5: check(Algorithm::Md5, md5)?,
                    sha256: check(Algorithm::Sha256, sha256)?,
                })
            }
        }
    }
}

/// A REGISTER's AOR and contacts, checked before authentication.
#[derive(Debug)]
struct Parsed {
    user: String,
    contacts: Contacts,
    /// The Path values, nearest proxy first (RFC 3327 §4).
    path: Vec<NameAddr>,
}

/// Path values kept per binding at most: a REGISTER crosses one proxy
/// (Kamailio) here, a few in any sane network; more is refused with 400
/// so that a binding's size stays bounded.
pub const MAX_PATH: usize = 8;

#[derive(Debug)]
enum Contacts {
    Query,
    Wildcard,
    /// Each contact with the expiry it asks for (before min/max).
    List(Vec<(Requested, u32)>),
}

/// How authentication went.
enum Auth {
    Accepted(String),
    Challenge { stale: bool },
    Replayed(String),
    Failed { username: String, known: bool },
    Bad(String),
}

/// The registrar: users, nonces, failure limits and the location table.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    users: HashMap<String, Keys>,
    /// Random HA1s an unknown user is checked against.
    dummy: Keys,
    nonces: NonceKeeper,
    opaque: String,
    limiter: FailureLimiter,
    accounts: AccountLockout,
    location: Location,
    events: VecDeque<RegistrarEvent>,
    rng: StdRng,
}

impl Registrar {
    /// A registrar for `users` (user name → secret), started at `now`.
    /// `rng` must be a cryptographic generator (the daemon passes
    /// `rand::rng()`, tests a seeded `StdRng`): it keys the nonces and
    /// draws tags.
    pub fn new(
        config: RegistrarConfig,
        users: impl IntoIterator<Item = (String, Secret)>,
        rng: &mut impl CryptoRng,
        now: Instant,
    ) -> Result<Self, RegistrarError> {
        if config.algorithms.is_empty() {
            return Err(RegistrarError::NoAlgorithms);
        }
        if config.realm.is_empty() {
            return Err(RegistrarError::EmptyRealm);
        }
        if config.min_expires == 0
            || config.min_expires > config.default_expires
            || config.default_expires > config.max_expires
        {
            return Err(RegistrarError::Expires {
                min: config.min_expires,
                default: config.default_expires,
                max: config.max_expires,
            });
        }
        let users = Registrar::keys(&config.realm, users)?;
        let mut random = [0u8; 32];
        rng.fill_bytes(&mut random);
        let dummy = Keys {
            md5: Some(digest::hex(&random[..16])),
            sha256: Some(digest::hex(&random)),
        };
        let nonces = NonceKeeper::new(rng, now, config.nonce_lifetime, config.max_nonce_records);
        let opaque = nonces.opaque(&config.realm);
        Ok(Registrar {
            limiter: FailureLimiter::new(config.limits.clone()),
            accounts: AccountLockout::new(config.lockout.clone()),
            config,
            users,
            dummy,
            nonces,
            opaque,
            location: Location::default(),
            events: VecDeque::new(),
            rng: StdRng::from_rng(rng),
        })
    }

    fn keys(
        realm: &str,
        users: impl IntoIterator<Item = (String, Secret)>,
    ) -> Result<HashMap<String, Keys>, RegistrarError> {
        users
            .into_iter()
            .map(|(user, secret)| Keys::new(&user, realm, secret).map(|keys| (user, keys)))
            .collect()
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Replaces the users (a dialplan reload). Bindings of users no longer
    /// present are dropped, each with
    /// [`UnregisterReason::Deconfigured`]. On error nothing changes.
    pub fn set_users(
        &mut self,
        users: impl IntoIterator<Item = (String, Secret)>,
    ) -> Result<(), RegistrarError> {
        self.users = Registrar::keys(&self.config.realm, users)?;
        for user in self.location.users() {
            if !self.users.contains_key(&user) && self.location.remove_user(&user) {
                self.events.push_back(RegistrarEvent::Unregistered {
                    user: user.clone(),
                    reason: UnregisterReason::Deconfigured,
                });
                self.events
                    .push_back(RegistrarEvent::BindingsChanged { user });
            }
        }
        Ok(())
    }

    /// Replaces the trusted sources (a configuration reload).
    pub fn set_trusted(&mut self, trusted: TrustedSources) {
        self.config.trusted = trusted;
    }

    /// Replaces the failure limits and the lockout's (a configuration
    /// reload); the history of failures and bans is kept.
    pub fn set_limits(&mut self, limits: FailureLimits, lockout: LockoutLimits) {
        self.limiter.set_limits(limits.clone());
        self.accounts.set_limits(lockout.clone());
        self.config.limits = limits;
        self.config.lockout = lockout;
    }

    /// Answers a REGISTER that arrived from `source` at `now`; `wall` is
    /// the wall clock in Unix seconds (for `Date` and stored expiries).
    pub fn handle_register(
        &mut self,
        now: Instant,
        wall: u64,
        request: &ValidRequest,
        source: Peer,
    ) -> Outcome {
        self.register(now, wall, request, source, None)
    }

    /// Answers a REGISTER that a trusted proxy (`source`, its
    /// `X-Frontdesk-Source` believed by the daemon) forwarded from the
    /// phone at `client`. The failure limits, the ban and the account
    /// lockout judge `client`: the proxy forwards the whole clinic, and
    /// only after parsing is the real source known (the transport's front
    /// door saw the proxy, which is exempt). The binding keeps `source`
    /// (requests to the phone go back through the proxy, with the Path)
    /// and remembers `client` ([`Binding::client`]).
    pub fn handle_proxied_register(
        &mut self,
        now: Instant,
        wall: u64,
        request: &ValidRequest,
        source: Peer,
        client: std::net::SocketAddr,
    ) -> Outcome {
        self.register(now, wall, request, source, Some(client))
    }

    fn register(
        &mut self,
        now: Instant,
        wall: u64,
        request: &ValidRequest,
        source: Peer,
        client: Option<std::net::SocketAddr>,
    ) -> Outcome {
        self.handle_timeout(now);
        let ip = client.map_or(source.address.ip(), |client| client.ip());
        let limited = !self.config.trusted.is_trusted(ip);
        if request.request.method != Method::Register {
            let mut response = self.response(request, StatusCode::METHOD_NOT_ALLOWED);
            response.headers.push(HeaderName::Allow, "REGISTER");
            return self.finish(now, ip, limited, response, Decision::Rejected);
        }
        if limited && let Admission::Banned { until } = self.limiter.admission(now, ip) {
            return Outcome {
                response: self.response(request, StatusCode::FORBIDDEN),
                send_after: None,
                decision: Decision::Banned { until },
                banned_until: Some(until),
            };
        }
        let parsed = match self.parse(request) {
            Ok(parsed) => parsed,
            Err(reason) => return self.bad_request(now, ip, limited, request, &reason),
        };
        if limited && let Err(retry_after) = self.accounts.check(now, &parsed.user, ip) {
            // No challenge: a locked account tests no password from here.
            let response = self.response(request, StatusCode::FORBIDDEN);
            let decision = Decision::Locked {
                user: parsed.user,
                retry_after,
            };
            return self.finish(now, ip, limited, response, decision);
        }
        let user = match self.authenticate(now, request) {
            Auth::Accepted(user) => user,
            Auth::Challenge { stale } => {
                let response = self.challenge(now, request, stale);
                return self.finish(now, ip, limited, response, Decision::Challenged { stale });
            }
            Auth::Replayed(user) => {
                let response = self.challenge(now, request, true);
                return self.finish(now, ip, limited, response, Decision::Replayed { user });
            }
            Auth::Failed { username, known } => {
                if limited {
                    self.limiter.record_failure(now, ip);
                    // Unknown names too: a lock must not tell which exist.
                    self.accounts.failed(now, &username, ip);
                }
                let reason = if known {
                    ForbiddenReason::WrongCredentials
                } else {
                    ForbiddenReason::UnknownUser
                };
                let response = self.response(request, StatusCode::FORBIDDEN);
                let decision = Decision::Forbidden { username, reason };
                return self.finish(now, ip, limited, response, decision);
            }
            Auth::Bad(reason) => return self.bad_request(now, ip, limited, request, &reason),
        };
        if limited {
            // Only this account's failures from this source are forgotten.
            self.accounts.succeeded(now, &user, ip);
        }
        if user != parsed.user {
            let response = self.response(request, StatusCode::FORBIDDEN);
            let decision = Decision::Forbidden {
                username: user,
                reason: ForbiddenReason::OtherAor,
            };
            return self.finish(now, ip, limited, response, decision);
        }
        let update = match parsed.contacts {
            Contacts::Query => None,
            Contacts::Wildcard => Some(Update::RemoveAll),
            Contacts::List(list) => {
                let min = self.config.min_expires;
                if list.iter().any(|(_, asked)| *asked != 0 && *asked < min) {
                    let mut response = self.response(request, StatusCode::INTERVAL_TOO_BRIEF);
                    response.headers.push(HeaderName::MinExpires, min);
                    return self.finish(now, ip, limited, response, Decision::Rejected);
                }
                let max = self.config.max_expires;
                let granted = list
                    .into_iter()
                    .map(|(mut requested, asked)| {
                        requested.expires = asked.min(max);
                        requested
                    })
                    .collect();
                Some(Update::Contacts(granted))
            }
        };
        if let Some(update) = update {
            let origin = Origin {
                call_id: &request.call_id,
                path: &parsed.path,
                client,
                cseq: request.cseq.seq,
                source,
                now,
                wall,
            };
            match self
                .location
                .apply(&user, origin, update, self.config.max_contacts)
            {
                Ok(change) => self.announce(&user, change),
                Err(_) => {
                    let response = self
                        .response(request, StatusCode::SERVER_INTERNAL_ERROR)
                        .with_reason("Out of order CSeq for this Call-ID");
                    return self.finish(now, ip, limited, response, Decision::Rejected);
                }
            }
        }
        let mut response = self.response(request, StatusCode::OK);
        // RFC 3327 §5.3: the 200 echoes the Path stored, so the UA (and
        // the proxy) can see the route its requests will come over. Stored
        // and echoed even without `Supported: path` from the UA: the proxy
        // in front of us (Kamailio, in its default lazy mode) adds Path
        // whatever the UA said, and without it our requests to the UA
        // would miss the flow the UA opened to the proxy.
        for path in &parsed.path {
            response.headers.push(HeaderName::Path, path);
        }
        for binding in self.location.bindings(&user) {
            let mut contact = binding.contact.clone();
            let remaining = binding.remaining_secs(now).to_string();
            contact.params.set("expires", Some(&remaining));
            response.headers.push(HeaderName::Contact, contact);
        }
        response.headers.push(HeaderName::Date, http_date(wall));
        self.finish(now, ip, limited, response, Decision::Accepted { user })
    }

    fn announce(&mut self, user: &str, change: location::Change) {
        let user = user.to_owned();
        if change.after == 0 && change.before > 0 {
            self.events.push_back(RegistrarEvent::Unregistered {
                user: user.clone(),
                reason: UnregisterReason::Removed,
            });
        } else if change.added {
            self.events.push_back(RegistrarEvent::Registered {
                user: user.clone(),
                first: change.before == 0,
            });
        } else if change.refreshed {
            self.events
                .push_back(RegistrarEvent::Refreshed { user: user.clone() });
        }
        if change.any() {
            self.events
                .push_back(RegistrarEvent::BindingsChanged { user });
        }
    }

    fn finish(
        &mut self,
        now: Instant,
        ip: IpAddr,
        limited: bool,
        response: Response,
        decision: Decision,
    ) -> Outcome {
        let (send_after, banned_until) = if limited {
            let banned_until = match self.limiter.admission(now, ip) {
                Admission::Banned { until } => Some(until),
                Admission::Allowed => None,
            };
            (self.limiter.delay(now, ip), banned_until)
        } else {
            (None, None)
        };
        Outcome {
            response,
            send_after,
            decision,
            banned_until,
        }
    }

    fn bad_request(
        &mut self,
        now: Instant,
        ip: IpAddr,
        limited: bool,
        request: &ValidRequest,
        reason: &str,
    ) -> Outcome {
        let response = self
            .response(request, StatusCode::BAD_REQUEST)
            .with_reason(reason);
        self.finish(now, ip, limited, response, Decision::Rejected)
    }

    fn response(&mut self, request: &ValidRequest, status: StatusCode) -> Response {
        let tag = digest::hex(&self.rng.next_u64().to_be_bytes());
        Response::to_request(&request.request.headers, status, Some(&tag))
    }

    fn challenge(&mut self, now: Instant, request: &ValidRequest, stale: bool) -> Response {
        let mut response = self.response(request, StatusCode::UNAUTHORIZED);
        let nonce = self.nonces.issue(now, &self.config.realm);
        for algorithm in &self.config.algorithms {
            let mut challenge = Challenge::new(&self.config.realm, &nonce, *algorithm);
            challenge.opaque = Some(self.opaque.clone());
            challenge.stale = stale;
            response
                .headers
                .push(HeaderName::WwwAuthenticate, challenge);
        }
        response
    }

    /// The checks that need no credentials (RFC 3261 §10.3 steps 5–6 as
    /// far as syntax goes).
    fn parse(&self, request: &ValidRequest) -> Result<Parsed, String> {
        let Uri::Sip(aor) = &request.to.uri else {
            return Err("AOR must be a SIP or SIPS URI".into());
        };
        let user = aor
            .user_unescaped()
            .ok_or("AOR has no user part")?
            .into_owned();
        let user = String::from_utf8(user).map_err(|_| "AOR user part is not UTF-8")?;
        let headers = &request.request.headers;
        let contacts = headers.contacts().map_err(|e| e.to_string())?;
        let expires_header = headers.expires().map_err(|e| e.to_string())?;
        let path = headers.paths().map_err(|e| e.to_string())?;
        if path.len() > MAX_PATH {
            return Err(format!("More than {MAX_PATH} Path values"));
        }
        if path.iter().any(|hop| hop.uri.as_sip().is_none()) {
            return Err("Path must be SIP or SIPS URIs".into());
        }
        if contacts.is_empty() {
            return Ok(Parsed {
                user,
                contacts: Contacts::Query,
                path,
            });
        }
        if contacts.contains(&Contact::Wildcard) {
            if contacts.len() > 1 {
                return Err("Contact * must be the only contact".into());
            }
            if expires_header != Some(0) {
                return Err("Contact * needs Expires: 0".into());
            }
            return Ok(Parsed {
                user,
                contacts: Contacts::Wildcard,
                path,
            });
        }
        let default = expires_header.unwrap_or(self.config.default_expires);
        let mut list = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let Contact::Address(mut contact) = contact else {
                continue;
            };
            if contact.uri.as_sip().is_none() {
                return Err("Contact must be a SIP or SIPS URI".into());
            }
            let asked = match contact.params.get("expires") {
                None => default,
                Some(value) => value
                    .and_then(|v| parse_delta_seconds(v).ok())
                    .ok_or("Bad expires parameter in Contact")?,
            };
            let q = match contact.params.get("q") {
                None => None,
                Some(value) => Some(parse_q(value).ok_or("Bad q parameter in Contact")?),
            };
            contact.params.remove("expires");
            let requested = Requested {
                key: contact_key(&contact.uri),
                contact,
                q,
                expires: asked,
            };
            list.push((requested, asked));
        }
        Ok(Parsed {
            user,
            contacts: Contacts::List(list),
            path,
        })
    }

    /// RFC 7616 §3.4 on the server side; see the module docs for what
    /// each outcome is answered with.
    fn authenticate(&mut self, now: Instant, request: &ValidRequest) -> Auth {
        let realm = self.config.realm.as_str();
        let mut ours = None;
        for header in request.request.headers.all(&HeaderName::Authorization) {
            let Ok(text) = ByteString::try_from(header.value.clone()) else {
                continue;
            };
            match AuthParams::parse(&text) {
                Ok(params) if params.is_digest() && params.get("realm") == Some(realm) => {
                    ours = Some(params);
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    let scheme = text.split([' ', '\t']).next().unwrap_or_default();
                    if scheme.eq_ignore_ascii_case("Digest") {
                        return Auth::Bad("Bad Authorization header".into());
                    }
                }
            }
        }
        let Some(params) = ours else {
            return Auth::Challenge { stale: false };
        };
        let credentials = match Credentials::from_params(&params) {
            Ok(credentials) => credentials,
            Err(DigestError::UnsupportedAlgorithm(_) | DigestError::UnsupportedQop(_)) => {
                return Auth::Challenge { stale: false };
            }
            Err(error) => return Auth::Bad(format!("Bad Authorization header: {error}")),
        };
        if !self.config.algorithms.contains(&credentials.algorithm)
            || credentials
                .opaque
                .as_deref()
                .is_some_and(|opaque| opaque != self.opaque)
        {
            return Auth::Challenge { stale: false };
        }
        let (issued, stale) = match self.nonces.check(now, realm, &credentials.nonce) {
            NonceStatus::Fresh { issued } => (issued, false),
            NonceStatus::Stale { issued } => (issued, true),
            NonceStatus::Invalid => return Auth::Challenge { stale: false },
        };
        // The same work whether or not the user exists: one digest against
        // either the user's HA1 or a random one.
        let base = credentials.algorithm.base();
        let own = self
            .users
            .get(&credentials.username)
            .and_then(|k| k.get(base));
        let dummy = self.dummy.get(base).unwrap_or_default();
        let valid = credentials.verify(request.request.method.as_str(), own.unwrap_or(dummy));
        if !valid || own.is_none() {
            return Auth::Failed {
                known: self.users.contains_key(&credentials.username),
                username: credentials.username,
            };
        }
        if stale {
            return Auth::Challenge { stale: true };
        }
        let count = credentials.qop.as_ref().and_then(|qop| qop.count());
        if !self
            .nonces
            .accept_count(now, &credentials.nonce, issued, count)
        {
            return Auth::Replayed(credentials.username);
        }
        Auth::Accepted(credentials.username)
    }

    /// Removes the bindings due at `now` and prunes expired nonce counts.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (user, left) in self.location.expire(now) {
            if !left {
                self.events.push_back(RegistrarEvent::Unregistered {
                    user: user.clone(),
                    reason: UnregisterReason::Expired,
                });
            }
            self.events
                .push_back(RegistrarEvent::BindingsChanged { user });
        }
        self.nonces.prune(now);
    }

    /// The next binding expiry, when there is a binding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.location.next_deadline()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    /// Where to ring `user`: best `q` first (no `q` is 1.0), then the most
    /// recently registered first. Empty when not registered.
    pub fn bindings(&self, user: &str) -> Vec<Binding> {
        self.location.bindings(user)
    }

    /// `true` when `user` has at least one binding.
    pub fn is_registered(&self, user: &str) -> bool {
        self.location.is_registered(user)
    }

    /// The registered users, sorted.
    pub fn users(&self) -> Vec<String> {
        self.location.users()
    }

    /// `true` when `user` is configured (may register).
    pub fn knows(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Every live binding as plain data, for the persistence file; each
    /// `expires_at_unix` is `wall` plus the binding's remaining time.
    pub fn export(&self, now: Instant, wall: u64) -> Vec<StoredBinding> {
        self.location.export(now, wall)
    }

    /// Puts back bindings read from the persistence file: those of known
    /// users whose `expires_at_unix` is still ahead of `wall`, each
    /// expiring after its remaining time from `now` (at most
    /// `max_expires`). Emits [`RegistrarEvent::Registered`] (`first:
    /// true`) for each user that had no binding and now has some, then
    /// [`RegistrarEvent::BindingsChanged`].
    pub fn restore(
        &mut self,
        now: Instant,
        wall: u64,
        stored: Vec<StoredBinding>,
    ) -> RestoreSummary {
        self.handle_timeout(now);
        let mut summary = RestoreSummary::default();
        let mut touched: Vec<(String, bool)> = Vec::new();
        for binding in stored {
            if !self.users.contains_key(&binding.user) {
                summary.refused += 1;
                continue;
            }
            let user = binding.user.clone();
            let source = binding.source.ip();
            let before = self.location.is_registered(&user);
            match self
                .location
                .restore_one(binding, now, wall, self.config.max_expires)
            {
                Ok(true) => {
                    summary.restored += 1;
                    // It registered from there: still one of its sources
                    // after a restart, exempt from a lock.
                    if !self.config.trusted.is_trusted(source) {
                        self.accounts.succeeded(now, &user, source);
                    }
                    if !touched.iter().any(|(u, _)| *u == user) {
                        touched.push((user, !before));
                    }
                }
                Ok(false) => summary.expired += 1,
                Err(()) => summary.refused += 1,
            }
        }
        for (user, first) in touched {
            self.events.push_back(RegistrarEvent::Registered {
                user: user.clone(),
                first,
            });
            self.events
                .push_back(RegistrarEvent::BindingsChanged { user });
        }
        summary
    }
}
