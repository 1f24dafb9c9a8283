//! The SIP endpoint: between the transport and the calls, it owns the
//! [`TransactionLayer`](crate::transaction::TransactionLayer), answers
//! what any SIP element answers the same way, and hands the rest to whoever
//! owns it.
//!
//! # Core and driver
//!
//! Built like quinn, where `quinn-proto`'s `Endpoint` decides and `quinn`
//! drives it: [`core::EndpointCore`] makes every decision and touches
//! nothing (no socket, no clock, no task, no channel: `now` comes in with
//! each input), and the driver ([`start`], behind the `runtime` feature) is
//! one tokio task that feeds it and carries out what it says. The core
//! compiles without tokio; its tests run in virtual time.
//!
//! The run loop (the driver's, or a test's):
//!
//! 1. feed the core what arrived ([`core::EndpointCore::handle_inbound`]),
//!    what the owners of calls asked for ([`core::EndpointCore::respond`],
//!    [`core::EndpointCore::send_request`], ...), what the transport could
//!    not deliver ([`core::EndpointCore::handle_transport_error`]), the
//!    loop's own lateness ([`core::EndpointCore::observe_lag`]) and expired
//!    deadlines ([`core::EndpointCore::handle_timeout`]), each with `now`;
//! 2. drain [`core::EndpointCore::poll_transmit`] (bytes for the transport)
//!    and [`core::EndpointCore::poll_event`] (events to deliver) until both
//!    are empty; an event that cannot be delivered goes back to the core
//!    ([`core::EndpointCore::handle_unowned`],
//!    [`core::EndpointCore::handle_application_busy`]), which decides what
//!    it becomes;
//! 3. sleep until [`core::EndpointCore::poll_timeout`].
//!
//! # What the core answers on its own
//!
//! RFC 3261 §8.2, §11, RFC 4475:
//! - malformed requests, with the response [`validate`](crate::message::validate)
//!   decided (400 with a precise reason, 505, 501, 416, 420 with
//!   Unsupported), statelessly; a message too broken to read its headers,
//!   an ACK or a response, never;
//! - OPTIONS outside a dialog: 200 with Allow, Accept and Supported,
//!   statelessly (§8.2.7): no transaction is kept, and a retransmission is
//!   answered with the same bytes because the To tag is derived from the
//!   request (a keyed hash of its Call-ID, From tag, branch and CSeq);
//!   once the daemon drains, 503 with Retry-After instead, so that a
//!   proxy's probes take us out of its set (issue 24);
//! - methods the application does not serve: 405 with Allow (§8.2.1);
//! - requests inside a dialog nobody owns: 481 (§12.2.2);
//! - an INVITE with Max-Forwards 0 (every call we take is forwarded to an
//!   agent leg): 483 (§16.3 item 3);
//! - when the application cannot keep up: 503 with Retry-After (§21.5.4);
//! - a new INVITE that admission control refuses ([`crate::overload`]):
//!   503 with Retry-After, statelessly, before any transaction exists for
//!   it. A retransmission of an admitted INVITE never gets that far: the
//!   transaction layer absorbs it. An admitted INVITE holds its place in
//!   set-up until it is first answered (by its owner, or by the core), or
//!   for [`core::PERMIT_LIFETIME`] at most.
//!
//! Everything else is an event for the owner of its Call-ID (a call
//! registered with [`EndpointHandle::route`]) or, for new requests and
//! events nobody owns, for the application channel given to [`start`]. The
//! endpoint makes no decision about what a call means.
//!
//! # Routing by Call-ID: a table the owners write
//!
//! quinn-proto keeps its table of connection ids inside its `Endpoint`,
//! because only the endpoint's own task ever routes a datagram. Here the
//! owners route themselves, and a route must hold from the moment
//! [`EndpointHandle::route`] returns: the application task starts a call,
//! routes its Call-ID, and on the same task hands the call the events that
//! reached the application before it existed ([`EndpointHandle::deliver`]:
//! a CANCEL right behind its INVITE). A route sent to the core as a
//! command would only hold once the endpoint's task got to it, and that
//! hand-over would miss it. So the table (Call-ID → the owner's channel)
//! is shared: the owners write it, the driver reads it. The core decides
//! everything else about routing: which events go to owners
//! ([`core::Dispatch::ToOwner`]), which to the application
//! ([`core::Dispatch::ToApplication`]), and what an event nobody owns, or
//! that the application has no room for, becomes (481, dropped, 503).
//!
//! # Sending
//!
//! The driver never waits to send and spawns nothing per message: each
//! transmit is queued, in order, on the transport's queue for its
//! connection (or sent at once on the UDP socket when it takes it), and a
//! TCP peer with no connection gets a single connection attempt, the
//! messages for it queued behind the attempt
//! ([`crate::transport::TransportHandle::enqueue`]). A client transaction's
//! request that the transport took but could not deliver comes back as a
//! transport error (§8.1.3.1: the transaction user treats it as a 503).

pub mod core;
mod counters;
#[cfg(feature = "runtime")]
mod driver;
mod via;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::message::Method;
use crate::message::validate::ValidRequest;
use crate::overload::{AdmissionConfig, CallClass};
use crate::transaction;

pub use counters::Counters;
#[cfg(feature = "runtime")]
pub use driver::{EndpointHandle, Stopped, start};

/// How the endpoint is set up.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Transaction timers, our sent-by, the RNG seed.
    pub transaction: transaction::Config,
    /// Methods the application serves (INVITE, REGISTER, BYE ...); OPTIONS,
    /// ACK and CANCEL are always served.
    pub allow: Vec<Method>,
    /// Option tags we support.
    pub supported: Vec<&'static str>,
    /// The product token for `Server` and `User-Agent`.
    pub product: String,
    /// Admission control of new INVITEs; `None` admits every one.
    pub admission: Option<AdmissionSetup>,
}

/// How new calls are admitted: the thresholds, and which calls are urgent.
#[derive(Clone)]
pub struct AdmissionSetup {
    /// Thresholds.
    pub config: AdmissionConfig,
    /// Urgent lines (admitted ahead of routine ones) from the new INVITE.
    pub classify: Arc<dyn Fn(&ValidRequest) -> CallClass + Send + Sync>,
}

impl std::fmt::Debug for AdmissionSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionSetup")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
