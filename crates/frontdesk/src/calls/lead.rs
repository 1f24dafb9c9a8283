//! A call's steps in the journal (`records`): every call is a lead, with a
//! timeline the clinic's reports are computed from. Recording never waits
//! on the disk (a loss is counted in the metrics).

use records::{CallEvent, Outcome as LeadOutcome, Priority as LeadPriority};
use routing::{AgentId, OfferFailure, QueueId};

use super::book::Outcome;
use super::call::Call;

impl Call {
    /// Records one step of this call, now.
    pub(super) fn lead(&self, event: CallEvent) {
        self.app.leads.record(&self.record.id, event);
    }

    /// The first step: who called which number (at the INVITE's time).
    pub(super) fn lead_started(&self) {
        let entry = records::JournalEntry::new(
            self.record.id.as_str(),
            self.record.started_at,
            CallEvent::Started {
                caller: self.record.caller.clone(),
                dialed: self.record.dialed.clone(),
                source: self.record.source.clone(),
                branch: None,
            },
        );
        self.app.leads.record_entry(entry);
    }

    /// The caller waits in `queue` from now.
    pub(super) fn lead_queued(&self, queue: &QueueId, priority: routing::Priority) {
        let plan = self.app.dialplan.current();
        let sla_ms = plan
            .queue(queue.as_str())
            .and_then(ivr::Queue::sla)
            .map_or(60_000, |sla| sla.as_millis() as u64);
        self.lead(CallEvent::Queued {
            department: queue.as_str().to_string(),
            priority: match priority {
                routing::Priority::Urgent => LeadPriority::Urgent,
                routing::Priority::Routine => LeadPriority::Routine,
            },
            sla_ms,
        });
    }

    /// An offer to `agent` failed: routing moves on, the timeline says why.
    pub(super) fn fail_offer(&self, agent: AgentId, reason: OfferFailure) {
        let event = match reason {
            OfferFailure::Busy | OfferFailure::Rejected => CallEvent::Busy {
                agent: agent.as_str().to_string(),
            },
            OfferFailure::NoAnswer | OfferFailure::Unreachable => CallEvent::NoAnswer {
                agent: agent.as_str().to_string(),
            },
        };
        self.lead(event);
        self.app.router.offer_failed(self.id, agent, reason);
    }

    /// The last step: how the call ended.
    pub(super) fn lead_ended(&self) {
        let outcome = match self.record.outcome {
            Outcome::Connected => LeadOutcome::Connected,
            Outcome::Overflowed => LeadOutcome::Overflowed,
            Outcome::Rejected => LeadOutcome::Rejected,
            Outcome::AfterHours => LeadOutcome::AfterHours,
            Outcome::Abandoned | Outcome::InProgress => LeadOutcome::Abandoned,
        };
        self.lead(CallEvent::Ended { outcome });
    }
}
