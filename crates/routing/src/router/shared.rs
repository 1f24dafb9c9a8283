//! What a cluster's shared line needs from the router (issue 24): each
//! waiting caller's place as one number ([`crate::shared_score`]), and
//! which queues an agent can serve. The daemon publishes the first to
//! Redis and names the second in a claim, so that Redis can refuse a claim
//! for a caller who is not first in line across the nodes.

use super::{Phase, Router, find};
use crate::id::{AgentId, CallId, QueueId};
use crate::line::shared_score;

/// One caller waiting in line (not being offered), as a shared line
/// holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePlace {
    /// The call.
    pub call: CallId,
    /// Its queue.
    pub queue: QueueId,
    /// Its place: lower is served first ([`crate::shared_score`]).
    pub score: u64,
}

impl Router {
    /// Every caller waiting in line, in no particular order. Callers being
    /// offered or connected are not in line; neither are callback entries
    /// (they are this node's, journalled here).
    pub fn line_places(&self) -> impl Iterator<Item = LinePlace> + '_ {
        self.calls.keys().filter_map(|call| self.line_place(*call))
    }

    /// `call`'s place when it is waiting in line.
    pub fn line_place(&self, call: CallId) -> Option<LinePlace> {
        let record = self.calls.get(&call)?;
        if !matches!(record.phase, Phase::Waiting) {
            return None;
        }
        let runtime = find(&self.queues, &record.queue)?;
        Some(LinePlace {
            call,
            queue: record.queue.clone(),
            score: shared_score(record.priority, record.enqueued_at, runtime.config.aging),
        })
    }

    /// The place `call` had when offered (or waiting): its queue and score,
    /// whatever its phase, while it is in routing.
    pub fn offered_place(&self, call: CallId) -> Option<LinePlace> {
        let record = self.calls.get(&call)?;
        let runtime = find(&self.queues, &record.queue)?;
        Some(LinePlace {
            call,
            queue: record.queue.clone(),
            score: shared_score(record.priority, record.enqueued_at, runtime.config.aging),
        })
    }

    /// How many callback entries of `call`'s queue are served before it
    /// (its [`Router::position`] less its place among live callers), while
    /// it waits in line.
    pub fn callbacks_ahead(&self, now: crate::Millis, call: CallId) -> Option<usize> {
        let record = self.calls.get(&call)?;
        let runtime = find(&self.queues, &record.queue)?;
        let place = runtime.line.position(call, now, runtime.config.aging)?;
        Some(self.position(now, call)?.saturating_sub(place))
    }

    /// The queues (live ones, sorted by id) whose skill requirements
    /// `agent` meets: the callers they could be offered.
    pub fn queues_served_by(&self, agent: &AgentId) -> Vec<QueueId> {
        self.queues
            .iter()
            .filter(|runtime| !runtime.retired && self.table.qualifies(agent, &runtime.selection))
            .map(|runtime| runtime.config.id.clone())
            .collect()
    }

    /// Every live queue's id, sorted.
    pub fn queue_ids(&self) -> Vec<QueueId> {
        self.queues
            .iter()
            .filter(|runtime| !runtime.retired)
            .map(|runtime| runtime.config.id.clone())
            .collect()
    }
}
