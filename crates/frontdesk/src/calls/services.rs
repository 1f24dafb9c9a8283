//! What a call task may reach: narrow handles to the services a call
//! uses, and nothing else of the daemon (no `App`).

use std::sync::Arc;

use media::driver::PortPool;
use sip::endpoint::EndpointHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{CallBook, CallLeadSink, Prompts};
use crate::app::LiveDialplan;
use crate::app::journal::CallJournal;
use crate::app::registrar::Locations;
use crate::app::router::RouterHandle;

/// The handles of call tasks (patients' calls and agents' feature calls).
#[derive(Debug)]
pub struct CallServices {
    /// Sends SIP; routes the calls' Call-IDs to them.
    pub endpoint: EndpointHandle,
    /// Queues and agents.
    pub router: RouterHandle,
    /// Agents' registered contacts.
    pub locations: Locations,
    /// The dialplan in force.
    pub dialplan: Arc<LiveDialplan>,
    /// RTP ports.
    pub ports: PortPool,
    /// Encoded prompts.
    pub prompts: Prompts,
    /// The calls, for the API.
    pub calls: CallBook,
    /// The journal, and the pseudonyms of patients' numbers in logs.
    pub journal: Arc<CallJournal>,
    /// Calls that become leads go here (to the leads service).
    pub leads: CallLeadSink,
    /// Callers who keep their place to be called back.
    pub callbacks: super::Callbacks,
    /// How each call's media task is set up.
    pub media: media::session::SessionConfig,
    /// Our address and ports, for Contact and SDP.
    pub call_config: call::CallConfig,
    /// Cancelled at the drain's `places` deadline: callers still waiting
    /// in a queue keep their place as callbacks (`Call::handle_drain`).
    pub keeping_places: CancellationToken,
    /// Cancelled when the drain's grace is over: calls still up hang up.
    pub ending: CancellationToken,
    /// Every call task, so that a drain waits for them.
    pub tasks: TaskTracker,
    /// Held while a patient's call is admitted and spawned, and while the
    /// drain closes `tasks` ([`CallServices::admitting`], [`CallServices::close`]):
    /// a call is either spawned before the close, so that the drain waits
    /// for it, or sees the close and is refused. Without it a call admitted
    /// as the drain began could start after the drain found no call left,
    /// and die with the process.
    pub admission: std::sync::Mutex<()>,
    /// This node's name in a cluster (`--node-id`): in the calls' ids.
    pub node: Option<crate::app::node::NodeId>,
    /// Where voicemails are recorded (`<data>/voicemail`).
    pub voicemail: crate::voicemail::VoicemailStore,
    /// The recogniser of speech menus (none yet: no dialplan with speech
    /// has been loaded; a speech menu then falls back to keys and says so).
    pub speech: Arc<crate::app::recogniser::SpeechEngine>,
}

impl CallServices {
    /// `None` once the drain has closed `tasks`; otherwise the admission
    /// guard, to hold while the new call is spawned on `tasks`.
    pub fn admitting(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        let admission = self
            .admission
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (!self.tasks.is_closed()).then_some(admission)
    }

    /// Takes no new call from now on (the drain): every call admitted
    /// before is on `tasks`.
    pub fn close(&self) {
        let _admission = self
            .admission
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.tasks.close();
    }

    /// Leases an RTP port for a call's `token` and keeps the lease in the
    /// call's `ports` (dropping it there returns the port): the port, or
    /// why there is none. One copy for both call drivers.
    pub fn lease_port(
        &self,
        ports: &mut std::collections::HashMap<call::PortToken, media::driver::PortLease>,
        token: call::PortToken,
    ) -> Result<u16, String> {
        match self.ports.allocate() {
            Ok(lease) => {
                let port = lease.port();
                ports.insert(token, lease);
                Ok(port)
            }
            Err(error) => Err(error.to_string()),
        }
    }
}
