//! A call's steps in the journal (`records`): every call is a lead, with a
//! timeline the clinic's reports are computed from. The core says what
//! happened ([`Action::Journal`]); the driver writes it and never makes the
//! call wait on the disk.

use records::{CallEvent, JournalEntry, Outcome};
use routing::{AgentId, OfferFailure, QueueId};

use crate::action::{Action, RouterRequest};
use crate::call::Call;
use crate::call::Environment;

impl Call {
    /// Records one step of this call.
    pub(crate) fn journal(&mut self, event: CallEvent) {
        self.push(Action::Journal(event));
    }

    /// The first step: who called which number, at the INVITE's time.
    pub(crate) fn journal_started(&mut self) {
        let entry = JournalEntry::new(
            self.record.id.as_str(),
            self.record.started_at,
            CallEvent::Started {
                caller: self.record.caller.clone(),
                dialed: self.record.dialed.clone(),
                source: self.record.source.clone(),
                branch: None,
            },
        );
        self.push(Action::JournalEntry(entry));
    }

    /// The caller waits in `queue` from now.
    pub(crate) fn journal_queued(
        &mut self,
        queue: &QueueId,
        priority: routing::Priority,
        env: &dyn Environment,
    ) {
        let sla_ms = env
            .plan()
            .queue(queue.as_str())
            // The queue left the plan in a reload: the default SLA.
            .map_or(ivr::Queue::DEFAULT_SLA, ivr::Queue::sla);
        let sla_ms = u64::try_from(sla_ms.as_millis()).unwrap_or(u64::MAX);
        self.journal(CallEvent::Queued {
            department: queue.as_str().to_string(),
            priority,
            sla_ms,
        });
    }

    /// An offer to `agent` failed: routing moves on, the timeline says why.
    pub(crate) fn fail_offer(&mut self, agent: AgentId, reason: OfferFailure) {
        let event = match reason {
            OfferFailure::Busy | OfferFailure::Rejected => CallEvent::Busy {
                agent: agent.as_str().to_string(),
            },
            // A call's leg never reports this one (the routing task takes
            // such an offer back before the call sees it): as unreachable.
            OfferFailure::NoAnswer | OfferFailure::Unreachable | OfferFailure::ClaimedElsewhere => {
                CallEvent::NoAnswer {
                    agent: agent.as_str().to_string(),
                }
            }
        };
        self.journal(event);
        self.router(RouterRequest::OfferFailed(agent, reason));
    }

    /// The last step: how the call ended.
    pub(crate) fn journal_ended(&mut self) {
        // Ended without an outcome set: the caller left.
        let outcome = self.record.outcome.unwrap_or(Outcome::Abandoned);
        self.journal(CallEvent::Ended { outcome });
    }
}
