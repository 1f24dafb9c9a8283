//! Calls: one tokio task per call ([`driver`]) drives the call's sans-IO
//! core (the `call` crate: the patient's leg, the IVR, the queue wait, the
//! agent legs, transfers) and performs what it asks. Agents' feature codes
//! (`*41` …) are short calls of their own ([`features`]). Click-to-call
//! starts outbound calls ([`originate`]: the agent's phone, then the
//! patient through the trunk); the callback dialer ([`callbacks`]) starts
//! the same outbound calls for callers who kept their place. Call tasks reach
//! the daemon through narrow handles ([`CallServices`]), and are tracked so
//! that a drain waits for them.

pub mod book;
pub mod callbacks;
mod driver;
mod features;
pub mod leads;
pub mod originate;
pub mod prompts;
mod services;

use std::sync::Arc;

use sip::Peer;
use sip::message::validate::ValidRequest;
use sip::message::{HeaderName, Response, StatusCode};
use sip::transaction::ServerTransactionId;

pub use book::CallBook;
pub use call::signal;
pub use callbacks::Callbacks;
pub use leads::{CallLeadNews, CallLeadSink};
pub use prompts::Prompts;
pub use services::CallServices;

use crate::app::tag;

/// Where a new call's INVITE came from.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// The peer it came from (a proxy, or the phone itself): our answers
    /// and in-dialog requests go there.
    pub peer: Peer,
    /// The phone's own address when `peer` is a trusted proxy that named
    /// it (`X-Frontdesk-Source`, `[trust] proxies`).
    pub client: Option<std::net::SocketAddr>,
}

/// Starts the task of a new call for this INVITE: an agent's feature code,
/// or a patient's call.
///
/// An INVITE with `Replaces` (RFC 3891, the far side of an attended
/// transfer that names one of our legs) is answered 501: frontdesk sends
/// `Replaces` to agents' phones when an agent's REFER carries one, but
/// does not let a third party take over one of its legs.
///
/// `source_slot` (an untrusted caller's, see `[limits.sip] calls`) is held
/// by the patient's call until it ends; feature calls are agents' own and
/// short, and give it back at once.
pub fn spawn_inbound(
    services: Arc<CallServices>,
    transaction: ServerTransactionId,
    invite: Box<ValidRequest>,
    source: Source,
    source_slot: Option<guard::SourceSlot>,
) {
    let Source {
        peer: source,
        client,
    } = source;
    let headers = &invite.request.headers;
    if headers.contains(&HeaderName::Replaces) {
        let refused = Response::to_request(headers, StatusCode::NOT_IMPLEMENTED, Some(&tag()))
            .with_reason("Replaces Not Implemented");
        let _ = services.endpoint.respond(transaction, refused);
        return;
    }
    if let Some((agent, feature)) = features::recognise(&services, &invite, source, client) {
        features::FeatureCall::start(services, transaction, invite, source, agent, feature);
        return;
    }
    driver::spawn(services, transaction, invite, source, source_slot);
}
