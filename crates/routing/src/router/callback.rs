//! Callbacks that keep the caller's place (virtual hold).
//!
//! A caller waiting in a queue with a callback policy may hang up and be
//! called back instead. Their entry keeps what their place in line rests
//! on: the time they first entered routing, their priority and context.
//! It waits in a line of its own beside the queue's live line, with the
//! same order (urgent first, first come first served, aging), and the
//! router merges the two when it looks for the next one to serve; so a
//! callback is served before callers who came later, exactly as if the
//! patient had held on, and a restart that gives the entries back
//! ([`Router::add_callback`] with their original times) keeps that.
//!
//! Why a second line and not flags in the first: the `max_share` cap blocks
//! all of a queue's callbacks at once, and a separate line lets the search
//! skip them in one step whatever their number (thousands of entries after
//! a busy morning), instead of stepping over each to reach a live caller.
//!
//! When an entry is at the head and an agent is free, the router claims the
//! agent (chosen as for a call: the queue's strategy and skills, the
//! patient's branch and language, agents who missed it last) and emits
//! [`CallbackEvent::Dial`]: the bridge rings the agent, then calls the
//! patient. The outcomes come back as inputs:
//!
//! * the agent does not answer ([`Router::callback_agent_failed`]): a miss,
//!   as for an offer, and the entry goes back to its place for the next
//!   agent; it costs no try;
//! * the agent answers ([`Router::callback_agent_answered`], `on_call`),
//!   then the patient answers ([`Router::callback_answered`]): connected;
//!   [`Router::callback_ended`] ends it with the queue's wrap-up;
//! * the patient does not answer, is busy or unreachable
//!   ([`Router::callback_failed`]): the agent's call ends (wrap-up), and the
//!   entry waits `retry_every` in its place ([`CallbackEvent::Rescheduled`])
//!   up to `retries` more times, then leaves routing
//!   ([`CallbackEvent::Exhausted`]; the driver makes it a follow-up lead).
//!
//! Fairness: callbacks of a queue hold at most `max_share` of the agents
//! that are free or dialing its callbacks ([`CallbackPolicy::cap`]), and at
//! least one whenever an agent is free; past that, the queue's callbacks
//! wait and its live callers are served, so holding on is never worse
//! than hanging up. A callback has no max wait and does not count toward
//! `max_length`: the patient holds no line.

use std::cmp::Reverse;
use std::time::Duration;

use super::{CallRecord, Phase, Router, Timer, TimerKind, queue_index};
use crate::config::CallbackPolicy;
use crate::error::CallbackError;
use crate::id::{AgentId, CallId, CallbackId, Priority, QueueId};
use crate::line::{self, LineCursor, Waiting};
use crate::offer::{
    CallbackDial, CallbackEvent, CallbackFailure, CallerContext, OfferFailure, RouterEvent,
};
use crate::state::AgentState;
use crate::time::Millis;

/// A callback entry given to the router: a new one, or one restored from
/// the journal at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEntry {
    /// The driver's number for it.
    pub id: CallbackId,
    /// The queue whose agents call back.
    pub queue: QueueId,
    /// The priority it keeps.
    pub priority: Priority,
    /// Branch and language for the choice of agent (a coordinator is not
    /// waited for: the patient is not on the line).
    pub context: CallerContext,
    /// When the patient first entered routing, on the router's clock: the
    /// place it keeps. After a restart the driver maps the journalled wall
    /// time onto the new clock (`now` minus the time since), saturating at
    /// [`Millis::ZERO`].
    pub enqueued_at: Millis,
    /// Tries at the patient already made (0 for a new entry).
    pub attempts: u32,
    /// Not dialed before this (a retry's pause), `None`: at once.
    pub not_before: Option<Millis>,
}

/// Where a callback entry is, from [`Router::callback_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackStatus {
    /// Its queue.
    pub queue: QueueId,
    /// Its priority there.
    pub priority: Priority,
    /// Branch and language for the choice of agent (what the driver
    /// journals to give the entry back after a restart).
    pub context: CallerContext,
    /// The place it keeps.
    pub enqueued_at: Millis,
    /// Tries at the patient so far.
    pub attempts: u32,
    /// Waiting for a retry until then.
    pub not_before: Option<Millis>,
    /// What is happening to it.
    pub phase: CallbackPhase,
}

/// The phase of a callback entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackPhase {
    /// In its place in line (perhaps until a retry is due).
    Waiting,
    /// This agent's phone rings for it.
    Ringing(AgentId),
    /// The agent answered; the patient is being called.
    Dialing(AgentId),
    /// The agent and the patient talk.
    Connected(AgentId),
}

#[derive(Debug)]
pub(crate) struct CallbackRecord {
    pub(super) queue: QueueId,
    pub(super) priority: Priority,
    pub(super) context: CallerContext,
    pub(super) enqueued_at: Millis,
    pub(super) attempts: u32,
    pub(super) not_before: Option<Millis>,
    /// Agents who missed it since the last try at the patient: chosen last.
    pub(super) missed_by: Vec<AgentId>,
    /// The wrap-up of its queue, kept at the connection.
    pub(super) wrap_up: Duration,
    pub(super) phase: CallbackPhase,
}

impl CallbackRecord {
    fn waiting(&self, id: CallbackId) -> Waiting {
        Waiting {
            enqueued_at: self.enqueued_at,
            call: line_key(id),
        }
    }
}

/// The outcome of trying to dial the callback at a cursor.
pub(super) enum DialAttempt {
    /// An agent was claimed; the dial is queued.
    Dialed,
    /// Its retry is not due: the entries behind it may be.
    NotDue,
    /// The queue's callbacks hold their share of agents already.
    Capped,
    /// No qualified agent is free.
    NoAgent,
}

/// A callback's key in its queue's callback line.
fn line_key(id: CallbackId) -> CallId {
    CallId(id.0)
}

impl Router {
    /// Adds a callback entry to its queue, in the place its `enqueued_at`
    /// and priority give it; answers its 1-based place among everyone the
    /// queue will serve (live callers and callbacks). Use it for a new
    /// entry and, at start, for each one the journal still holds, so
    /// callers who came later are still served after it. A retry's pause
    /// (`not_before`) is kept.
    pub fn add_callback(
        &mut self,
        now: Millis,
        entry: CallbackEntry,
    ) -> Result<usize, CallbackError> {
        let at = queue_index(&self.queues, &entry.queue)
            .filter(|at| !self.queues[*at].retired)
            .ok_or_else(|| CallbackError::UnknownQueue(entry.queue.clone()))?;
        if self.queues[at].config.callback.is_none() {
            return Err(CallbackError::NotEnabled(entry.queue));
        }
        if self.callbacks.contains_key(&entry.id) {
            return Err(CallbackError::Duplicate(entry.id));
        }
        let record = CallbackRecord {
            queue: entry.queue,
            priority: entry.priority,
            context: entry.context,
            enqueued_at: entry.enqueued_at,
            attempts: entry.attempts,
            not_before: entry.not_before.filter(|at| *at > now),
            missed_by: Vec::new(),
            wrap_up: Duration::ZERO,
            phase: CallbackPhase::Waiting,
        };
        self.enter_callback(entry.id, record, at);
        Ok(self.callback_position(now, entry.id).unwrap_or(1))
    }

    /// The caller `call`, waiting in line, hangs up to be called back: its
    /// place (enqueue time, priority, context) passes to the callback entry
    /// `callback` and the call leaves routing (not counted abandoned).
    /// Answers the entry's place. Refused unless the call waits in line
    /// (when agents ring for it, let the offer run its course) in a queue
    /// with callbacks.
    pub fn hold_place(
        &mut self,
        now: Millis,
        call: CallId,
        callback: CallbackId,
    ) -> Result<usize, CallbackError> {
        let record = self
            .calls
            .get(&call)
            .ok_or(CallbackError::UnknownCall(call))?;
        if !matches!(record.phase, Phase::Waiting) {
            return Err(CallbackError::NotWaiting(call));
        }
        let at = queue_index(&self.queues, &record.queue)
            .ok_or_else(|| CallbackError::UnknownQueue(record.queue.clone()))?;
        if self.queues[at].config.callback.is_none() {
            return Err(CallbackError::NotEnabled(record.queue.clone()));
        }
        if self.callbacks.contains_key(&callback) {
            return Err(CallbackError::Duplicate(callback));
        }
        let Some(CallRecord {
            queue,
            priority,
            context,
            enqueued_at,
            ..
        }) = self.calls.remove(&call)
        else {
            return Err(CallbackError::UnknownCall(call));
        };
        self.queues[at].line.remove(priority, call);
        let record = CallbackRecord {
            queue,
            priority,
            context: CallerContext {
                coordinator: None,
                ..context
            },
            enqueued_at,
            attempts: 0,
            not_before: None,
            missed_by: Vec::new(),
            wrap_up: Duration::ZERO,
            phase: CallbackPhase::Waiting,
        };
        self.enter_callback(callback, record, at);
        Ok(self.callback_position(now, callback).unwrap_or(1))
    }

    /// The next callback event: a dial to make, a retry scheduled, an
    /// entry exhausted. Drain it after [`Router::poll_offer`] returned
    /// `None` (dials are decided there, in serving order with the calls).
    pub fn poll_callback(&mut self) -> Option<CallbackEvent> {
        self.callback_events.pop_front()
    }

    /// The agent of a dial answered: `on_call`; now call the patient.
    pub fn callback_agent_answered(
        &mut self,
        now: Millis,
        callback: CallbackId,
        agent: &AgentId,
    ) -> Result<(), CallbackError> {
        let record = self.ringing_record(callback, agent)?;
        record.phase = CallbackPhase::Dialing(agent.clone());
        let result = self.table.answer(agent, now);
        self.record(now, result);
        Ok(())
    }

    /// The agent of a dial did not answer (`reason`): a miss (but not for
    /// [`OfferFailure::ClaimedElsewhere`]: never rung), as for an
    /// offer (`away` after [`crate::RouterConfig::away_after_misses`] in a
    /// row), and the entry goes back to its place for another agent first.
    pub fn callback_agent_failed(
        &mut self,
        now: Millis,
        callback: CallbackId,
        agent: &AgentId,
        reason: OfferFailure,
    ) -> Result<(), CallbackError> {
        let record = self.ringing_record(callback, agent)?;
        let missed = reason != OfferFailure::ClaimedElsewhere;
        if missed {
            record.missed_by.push(agent.clone());
        }
        record.phase = CallbackPhase::Waiting;
        let (queue, priority, waiting) = (
            record.queue.clone(),
            record.priority,
            record.waiting(callback),
        );
        let result = if missed {
            self.table.miss(agent, now, self.config.away_after_misses)
        } else {
            self.table.release(agent, now)
        };
        self.record(now, result);
        if let Some(at) = queue_index(&self.queues, &queue) {
            let runtime = &mut self.queues[at];
            runtime.counters.missed.count(reason);
            runtime.dialing.retain(|id| *id != callback);
            runtime.callbacks.insert(priority, waiting);
        }
        self.dirty = true;
        Ok(())
    }

    /// The patient answered: agent and patient talk; the entry's wait is
    /// over and it no longer counts against `max_share`.
    pub fn callback_answered(
        &mut self,
        _now: Millis,
        callback: CallbackId,
    ) -> Result<(), CallbackError> {
        let record = self
            .callbacks
            .get_mut(&callback)
            .ok_or(CallbackError::UnknownCallback(callback))?;
        let CallbackPhase::Dialing(agent) = &record.phase else {
            return Err(CallbackError::WrongPhase {
                callback,
                expected: "dialing the patient",
            });
        };
        record.phase = CallbackPhase::Connected(agent.clone());
        record.wrap_up = match queue_index(&self.queues, &record.queue) {
            Some(at) => {
                let runtime = &mut self.queues[at];
                runtime.dialing.retain(|id| *id != callback);
                runtime.config.wrap_up
            }
            None => Duration::ZERO,
        };
        self.retire_empty_queues();
        self.dirty = true;
        Ok(())
    }

    /// The patient's leg failed (`reason`). The agent's call ends (the
    /// queue's wrap-up, then `available`). With tries left, the entry waits
    /// the queue's `retry_every` in its place
    /// ([`CallbackEvent::Rescheduled`]); after the last, it leaves routing
    /// ([`CallbackEvent::Exhausted`]).
    pub fn callback_failed(
        &mut self,
        now: Millis,
        callback: CallbackId,
        reason: CallbackFailure,
    ) -> Result<(), CallbackError> {
        let record = self
            .callbacks
            .get_mut(&callback)
            .ok_or(CallbackError::UnknownCallback(callback))?;
        let CallbackPhase::Dialing(agent) = &record.phase else {
            return Err(CallbackError::WrongPhase {
                callback,
                expected: "dialing the patient",
            });
        };
        let agent = agent.clone();
        record.attempts = record.attempts.saturating_add(1);
        record.missed_by.clear();
        let at = queue_index(&self.queues, &record.queue);
        let policy = at
            .and_then(|at| self.queues[at].config.callback)
            .unwrap_or(CallbackPolicy::FALLBACK);
        let wrap_up = at.map_or(Duration::ZERO, |at| self.queues[at].config.wrap_up);
        if let Some(at) = at {
            self.queues[at].dialing.retain(|id| *id != callback);
        }
        if record.attempts > policy.retries {
            let (queue, attempts) = (record.queue.clone(), record.attempts);
            self.callbacks.remove(&callback);
            self.callback_events.push_back(CallbackEvent::Exhausted {
                callback,
                queue,
                attempts,
                reason,
            });
        } else {
            let due = now.saturating_add(policy.retry_every);
            record.phase = CallbackPhase::Waiting;
            record.not_before = (due > now).then_some(due);
            let (priority, waiting) = (record.priority, record.waiting(callback));
            self.callback_events.push_back(CallbackEvent::Rescheduled {
                callback,
                queue: record.queue.clone(),
                attempts: record.attempts,
                at: due,
                reason,
            });
            if let Some(at) = at {
                self.queues[at].callbacks.insert(priority, waiting);
            }
            if due > now {
                self.timers.push(Reverse(Timer {
                    at: due,
                    kind: TimerKind::CallbackDue(callback),
                }));
            }
        }
        self.end_agent_call(now, &agent, wrap_up);
        self.retire_empty_queues();
        self.dirty = true;
        Ok(())
    }

    /// The callback is over, whatever its phase: connected, the agent goes
    /// to wrap-up; dialing the patient, likewise; ringing the agent, they
    /// are released without a miss; in line, it leaves (the driver
    /// withdraws it: the patient called in again, or the clinic closed).
    pub fn callback_ended(
        &mut self,
        now: Millis,
        callback: CallbackId,
    ) -> Result<(), CallbackError> {
        let record = self
            .callbacks
            .remove(&callback)
            .ok_or(CallbackError::UnknownCallback(callback))?;
        let at = queue_index(&self.queues, &record.queue);
        match record.phase {
            CallbackPhase::Waiting => {
                if let Some(at) = at {
                    self.queues[at]
                        .callbacks
                        .remove(record.priority, line_key(callback));
                }
            }
            CallbackPhase::Ringing(agent) => {
                if let Some(at) = at {
                    self.queues[at].dialing.retain(|id| *id != callback);
                }
                let result = self.table.release(&agent, now);
                self.record(now, result);
            }
            CallbackPhase::Dialing(agent) => {
                let wrap_up = match at {
                    Some(at) => {
                        self.queues[at].dialing.retain(|id| *id != callback);
                        self.queues[at].config.wrap_up
                    }
                    None => Duration::ZERO,
                };
                self.end_agent_call(now, &agent, wrap_up);
            }
            CallbackPhase::Connected(agent) => self.end_agent_call(now, &agent, record.wrap_up),
        }
        self.retire_empty_queues();
        self.dirty = true;
        Ok(())
    }

    /// Where a callback entry is: `None` if not in routing.
    pub fn callback_status(&self, callback: CallbackId) -> Option<CallbackStatus> {
        let record = self.callbacks.get(&callback)?;
        Some(CallbackStatus {
            queue: record.queue.clone(),
            priority: record.priority,
            context: record.context.clone(),
            enqueued_at: record.enqueued_at,
            attempts: record.attempts,
            not_before: record.not_before,
            phase: record.phase.clone(),
        })
    }

    /// A callback entry's 1-based place among everyone its queue will
    /// serve, live callers included (`None` unless it waits in line).
    pub fn callback_position(&self, now: Millis, callback: CallbackId) -> Option<usize> {
        let record = self.callbacks.get(&callback)?;
        let runtime = &self.queues[queue_index(&self.queues, &record.queue)?];
        let aging = runtime.config.aging;
        let place = runtime.callbacks.position(line_key(callback), now, aging)?;
        let key = line::order_key(record.priority, record.waiting(callback), now, aging);
        Some(place + runtime.line.count_before(key, now, aging))
    }

    /// The node drains (SIGTERM): from now on no callback entry is dialed
    /// (a dial would ring an agent and the patient past the node's end)
    /// and none is offered to the cluster's shared line. The entries keep
    /// their places in the journal; the next start gives them back and
    /// dials them in their turn. Dials already under way run their course.
    pub fn pause_callbacks(&mut self) {
        self.callbacks_paused = true;
    }

    /// Whether [`Router::pause_callbacks`] was called.
    pub fn callbacks_paused(&self) -> bool {
        self.callbacks_paused
    }

    /// Number of callback entries in routing (in line, dialing or connected).
    pub fn active_callbacks(&self) -> usize {
        self.callbacks.len()
    }

    /// Puts an entry in queue `at`'s callback line, arming its retry timer.
    fn enter_callback(&mut self, id: CallbackId, record: CallbackRecord, at: usize) {
        self.queues[at]
            .callbacks
            .insert(record.priority, record.waiting(id));
        if let Some(due) = record.not_before {
            self.timers.push(Reverse(Timer {
                at: due,
                kind: TimerKind::CallbackDue(id),
            }));
        }
        self.callbacks.insert(id, record);
        self.dirty = true;
    }

    fn ringing_record(
        &mut self,
        callback: CallbackId,
        agent: &AgentId,
    ) -> Result<&mut CallbackRecord, CallbackError> {
        let record = self
            .callbacks
            .get_mut(&callback)
            .ok_or(CallbackError::UnknownCallback(callback))?;
        match &record.phase {
            CallbackPhase::Ringing(ringing) if ringing == agent => Ok(record),
            _ => Err(CallbackError::WrongPhase {
                callback,
                expected: "ringing that agent",
            }),
        }
    }

    /// Tries to dial the callback entry `waiting`, at `cursor` in queue
    /// `at`'s callback line: due, under the queue's cap, and with an agent
    /// claimed, it leaves the line and a [`CallbackEvent::Dial`] is queued.
    pub(super) fn try_dial(
        &mut self,
        now: Millis,
        at: usize,
        cursor: LineCursor,
        priority: Priority,
        waiting: Waiting,
    ) -> DialAttempt {
        let id = CallbackId(waiting.call.0);
        if self.callbacks_paused {
            return DialAttempt::NotDue;
        }
        let runtime = &self.queues[at];
        let Some(record) = self.callbacks.get(&id) else {
            // Not when the bookkeeping is right: the line and the map
            // change together. Skip it rather than stall the queue.
            return DialAttempt::NotDue;
        };
        if record.not_before.is_some_and(|due| due > now) {
            return DialAttempt::NotDue;
        }
        let policy = runtime.config.callback.unwrap_or(CallbackPolicy::FALLBACK);
        let dialing = runtime.dialing.len();
        if dialing > 0 {
            // Counting the free agents costs a walk of the skill's index:
            // only when the cap could bite.
            let free = self.table.counts(&runtime.selection).available() as usize;
            if dialing >= policy.cap(free, dialing) {
                return DialAttempt::Capped;
            }
        }
        let config = &runtime.config;
        let preferences =
            super::caller_preferences(&record.context, &record.missed_by, &config.preferences);
        let Some(claim) = self
            .table
            .choose_and_claim(&runtime.selection, &preferences)
        else {
            return DialAttempt::NoAgent;
        };
        let agent = claim.agent;
        let runtime = &mut self.queues[at];
        runtime.callbacks.remove_at(priority, cursor);
        runtime.dialing.push(id);
        let (queue, ring_timeout) = (runtime.config.id.clone(), runtime.config.ring_timeout);
        self.events.push_back(RouterEvent::AgentStateChanged {
            agent: agent.clone(),
            from: AgentState::Available,
            to: AgentState::Ringing,
            at: now,
        });
        let Some(record) = self.callbacks.get_mut(&id) else {
            return DialAttempt::Dialed;
        };
        record.phase = CallbackPhase::Ringing(agent.clone());
        record.not_before = None;
        self.callback_events
            .push_back(CallbackEvent::Dial(CallbackDial {
                callback: id,
                queue,
                priority,
                agent,
                attempt: record.attempts.saturating_add(1),
                waited: now.saturating_duration_since(record.enqueued_at),
                ring_timeout,
            }));
        DialAttempt::Dialed
    }
}
