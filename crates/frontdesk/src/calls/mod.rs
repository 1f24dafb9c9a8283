//! Calls: one tokio task per call owns everything about it: the patient's
//! leg (dialog, SDP, media task), the IVR session, the queue wait with its
//! announcements ([`queue`]), the agent legs and the bridge ([`agent`]),
//! transfers by the agent ([`transfer`]), and its record for the API.
//! Agents' feature codes (`*41` …) are short calls of their own
//! ([`features`]).
//!
//! The task reacts to four sources of news, never holding a lock across
//! them: SIP events routed to its Call-IDs by the endpoint, media events
//! from its media task, messages from the routing task, and its own
//! deadlines (the IVR's, the agents' ring timeouts).

mod agent;
pub mod book;
mod call;
mod features;
mod lead;
pub mod prompts;
mod queue;
pub mod signal;
mod transfer;

use std::sync::Arc;

use sip::Peer;
use sip::message::validate::ValidRequest;
use sip::message::{HeaderName, Response, StatusCode};
use sip::transaction::ServerTransactionId;

pub use book::CallBook;
pub use prompts::Prompts;

use crate::app::{App, tag};

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
    app: Arc<App>,
    transaction: ServerTransactionId,
    invite: Box<ValidRequest>,
    source: Peer,
    source_slot: Option<guard::SourceSlot>,
) {
    let headers = &invite.request.headers;
    if headers.contains(&HeaderName::Replaces) {
        let refused = Response::to_request(headers, StatusCode::NOT_IMPLEMENTED, Some(&tag()))
            .with_reason("Replaces Not Implemented");
        let _ = app.endpoint.respond(transaction, refused);
        return;
    }
    if let Some((agent, feature)) = features::recognise(&app, &invite, source) {
        features::FeatureCall::start(app, transaction, invite, source, agent, feature);
        return;
    }
    call::Call::start(app, transaction, invite, source, source_slot);
}
