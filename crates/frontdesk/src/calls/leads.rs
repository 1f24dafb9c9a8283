//! Where a call's leads go ([`call::Action::Lead`]): a bounded queue from
//! the call tasks to the leads service (`crate::leads::calls`), which
//! normalises the number, journals the lead and puts it on the lead desk.
//!
//! A channel, not a handle of the leads service: the service starts after
//! the calls' services (it needs the journal and the agent table the app
//! builds), and a call task must never wait for the journal. When the
//! queue is full (the journal far behind) a lead is dropped, counted in
//! `frontdesk_call_leads_dropped_total` and logged, never waited for.

use call::CallLead;
use tokio::sync::mpsc;
use tracing::warn;

/// How many leads may wait for the leads service at once.
pub const CALL_LEAD_QUEUE: usize = 1024;

/// The call tasks' end of the queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CallLeadSink {
    sender: mpsc::Sender<CallLead>,
}

impl CallLeadSink {
    /// A queue of `capacity` leads: the sink, and the receiver the leads
    /// service drains.
    pub fn channel(capacity: usize) -> (CallLeadSink, mpsc::Receiver<CallLead>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (CallLeadSink { sender }, receiver)
    }

    /// Hands `lead` over without waiting; dropped (counted) when the queue
    /// is full or the service has stopped.
    pub fn send(&self, lead: CallLead) {
        if let Err(error) = self.sender.try_send(lead) {
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => "full",
                mpsc::error::TrySendError::Closed(_) => "closed",
            };
            metrics::counter!("frontdesk_call_leads_dropped_total", "reason" => reason)
                .increment(1);
            warn!(
                reason,
                "a call's lead was dropped: the leads service is not taking them"
            );
        }
    }
}
