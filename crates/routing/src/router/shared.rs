//! What a cluster's shared line needs from the router (issue 24): each
//! waiting caller's place as one number ([`crate::shared_score`]), and
//! which queues an agent can serve. The daemon publishes the first to
//! Redis and names the second in a claim, so that Redis can refuse a claim
//! for a caller who is not first in line across the nodes.
//!
//! A callback entry (virtual hold) is in the shared line like a waiting
//! caller: it kept the caller's enqueue time and priority, so it has the
//! score the caller would have, and an agent who comes free on another
//! node serves it in its turn ([`LineEntry::Callback`]). Not while the
//! node drains ([`Router::pause_callbacks`]): it dials none any more, so
//! no other node should yield to them; the next start publishes them again
//! with the same score.

use super::callback::CallbackPhase;
use super::{Phase, Router, find};
use crate::id::{AgentId, CallId, CallbackId, QueueId};
use crate::line::shared_score;
use crate::time::Millis;

/// Set in a callback entry's member, never in a call's: calls are numbered
/// from 0 by the daemon and never reach it.
const CALLBACK_BIT: u64 = 1 << 63;

/// Who holds a place in a shared line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineEntry {
    /// A caller on the line.
    Call(CallId),
    /// A callback entry: the caller hung up and keeps their place.
    Callback(CallbackId),
}

impl LineEntry {
    /// Its number in the shared line (`<node>/<number>`): a call's id, or
    /// a callback's with the top bit set, so the two never meet (two
    /// callbacks' random ids that differ only in that bit would share a
    /// member: one chance in 2^63 per pair).
    pub fn member(self) -> u64 {
        match self {
            LineEntry::Call(call) => call.0 & !CALLBACK_BIT,
            LineEntry::Callback(callback) => callback.0 | CALLBACK_BIT,
        }
    }
}

/// One place in a shared line: a caller waiting (not being offered) or a
/// callback entry in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePlace {
    /// Whose place.
    pub entry: LineEntry,
    /// Its queue.
    pub queue: QueueId,
    /// Its place: lower is served first ([`crate::shared_score`]).
    pub score: u64,
}

impl Router {
    /// Every caller and callback entry waiting in line at `now`, in no
    /// particular order. Callers being offered or connected are not in
    /// line, nor callbacks being dialed or waiting for a retry that is not
    /// due (this node could not serve them now: another node's agent should
    /// not yield to them; they are back, with the same score, once due);
    /// nor any callback once they are paused ([`Router::pause_callbacks`]).
    pub fn line_places(&self, now: Millis) -> impl Iterator<Item = LinePlace> + '_ {
        let calls = self.calls.keys().filter_map(|call| self.line_place(*call));
        let callbacks = self
            .callbacks
            .iter()
            .filter(move |(_, record)| {
                !self.callbacks_paused
                    && matches!(record.phase, CallbackPhase::Waiting)
                    && record.not_before.is_none_or(|due| due <= now)
            })
            .filter_map(|(id, _)| self.callback_place(*id));
        calls.chain(callbacks)
    }

    /// A callback entry's place, whatever its phase, while it is in
    /// routing: what its dial's claim names.
    pub fn callback_place(&self, callback: CallbackId) -> Option<LinePlace> {
        let record = self.callbacks.get(&callback)?;
        let runtime = find(&self.queues, &record.queue)?;
        Some(LinePlace {
            entry: LineEntry::Callback(callback),
            queue: record.queue.clone(),
            score: shared_score(record.priority, record.enqueued_at, runtime.config.aging),
        })
    }

    /// `call`'s place when it is waiting in line.
    pub fn line_place(&self, call: CallId) -> Option<LinePlace> {
        let record = self.calls.get(&call)?;
        if !matches!(record.phase, Phase::Waiting) {
            return None;
        }
        let runtime = find(&self.queues, &record.queue)?;
        Some(LinePlace {
            entry: LineEntry::Call(call),
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
            entry: LineEntry::Call(call),
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
