//! Calls: one tokio task per call owns everything about it: the patient's
//! leg (dialog, SDP, media task), the IVR session, the queue wait, the
//! agent legs and the bridge, and its record for the API.
//!
//! The task reacts to four sources of news, never holding a lock across
//! them: SIP events routed to its Call-IDs by the endpoint, media events
//! from its media task, messages from the routing task, and its own
//! deadlines (the IVR's, the agents' ring timeouts).

mod agent;
pub mod book;
mod call;
pub mod prompts;
pub mod signal;

use std::sync::Arc;

use sip::Peer;
use sip::message::validate::ValidRequest;
use sip::transaction::ServerTransactionId;

pub use book::CallBook;
pub use prompts::Prompts;

use crate::app::App;

/// Starts the task of a new call for this INVITE.
pub fn spawn_inbound(
    app: Arc<App>,
    transaction: ServerTransactionId,
    invite: Box<ValidRequest>,
    source: Peer,
) {
    call::Call::start(app, transaction, invite, source);
}
