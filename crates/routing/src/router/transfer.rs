//! Transfers: an agent hands a connected caller on to another queue, or
//! to one agent (a blind transfer, RFC 3515 REFER, in the bridge).

use std::cmp::Reverse;
use std::time::Duration;

use super::{Phase, Router, Timer, TimerKind};
use crate::error::EnqueueError;
use crate::id::{AgentId, CallId, QueueId};
use crate::offer::Enqueued;
use crate::time::Millis;

/// A transfer to one agent: the call is offered to `agent` alone for
/// `window`, then (or after a miss by them) to anyone in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectOffer {
    /// The agent the transfer names.
    pub agent: AgentId,
    /// How long the call waits for that agent alone.
    pub window: Duration,
}

impl Router {
    /// The agent connected to `call` transfers it to `queue`: the agent's
    /// call ends as with [`Router::call_ended`] (wrap-up, then available),
    /// and the caller enters `queue` with their priority and context,
    /// keeping the wait they had before the answer. Their place in line,
    /// the queue's SLA and the wait samples count that wait, not the time
    /// they spent talking; the new queue's max wait starts now.
    ///
    /// With `direct`, the call is offered to that agent alone (whatever
    /// their skills) for its window: at once when they are available,
    /// waiting for them while they are busy or away; not at all when they
    /// are not signed in. After the window, or once they miss it, anyone
    /// in `queue` may take it.
    ///
    /// A full `queue` sends the caller down its overflow chain, as
    /// [`Router::enqueue`] does. On error nothing changes: the call stays
    /// connected to its agent.
    pub fn transfer(
        &mut self,
        now: Millis,
        call: CallId,
        queue: &QueueId,
        direct: Option<DirectOffer>,
    ) -> Result<Enqueued, EnqueueError> {
        self.move_connected(now, call, queue, direct, false)
    }

    /// The agent's device was lost during the call (the browser phone's
    /// page closed): the caller goes back into `queue` in the place they
    /// first had, their first enqueue, so ahead of every caller who came
    /// after them, instead of after the wait they had before the answer
    /// ([`Router::transfer`]). The agent's call ends as for a transfer.
    pub fn requeue(
        &mut self,
        now: Millis,
        call: CallId,
        queue: &QueueId,
    ) -> Result<Enqueued, EnqueueError> {
        self.move_connected(now, call, queue, None, true)
    }

    fn move_connected(
        &mut self,
        now: Millis,
        call: CallId,
        queue: &QueueId,
        direct: Option<DirectOffer>,
        first_place: bool,
    ) -> Result<Enqueued, EnqueueError> {
        let Some((agent, wrap_up, waited)) = self.calls.get(&call).and_then(|record| match &record
            .phase
        {
            Phase::Connected {
                agent,
                wrap_up,
                waited,
            } => Some((agent.clone(), *wrap_up, *waited)),
            _ => None,
        }) else {
            return Err(EnqueueError::NotTransferable(call));
        };
        // Taken out to enqueue afresh; put back untouched on error.
        let Some(record) = self.calls.remove(&call) else {
            return Err(EnqueueError::NotTransferable(call));
        };
        let since = if first_place {
            record.enqueued_at
        } else {
            Millis::new(now.as_millis().saturating_sub(waited.as_millis() as u64))
        };
        let result = self.enqueue_since(
            now,
            call,
            queue,
            record.priority,
            record.context.clone(),
            since,
        );
        let enqueued = match result {
            Ok(enqueued) => enqueued,
            Err(error) => {
                self.calls.insert(call, record);
                return Err(error);
            }
        };
        self.end_agent_call(now, &agent, wrap_up);
        if let Some(direct) = direct
            && let Some(moved) = self.calls.get_mut(&call)
        {
            let until = now.saturating_add(direct.window);
            moved.direct = Some((direct.agent, until));
            self.timers.push(Reverse(Timer {
                at: until,
                kind: TimerKind::DirectWindow(call),
            }));
        }
        self.dirty = true;
        Ok(enqueued)
    }
}
