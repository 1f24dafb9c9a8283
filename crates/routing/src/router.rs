//! The sans-IO router: queues, offers, timers and events.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AgentConfig, Overflow, QueueConfig, RouterConfig, validate};
use crate::error::{ConfigError, EnqueueError, RoutingError};
use crate::id::CallbackId;
use crate::id::{AgentId, CallId, Priority, PromptId, QueueId};
use crate::line::{self, Line, LineCursor, OrderKey, Waiting};
use crate::offer::{
    AgentList, CallbackEvent, CallerContext, Enqueued, Offer, OfferFailure, OverflowReason,
    RouterEvent,
};
use crate::state::AgentState;
use crate::stats::{QueueCounters, QueueStats, WaitSamples};
use crate::table::{AgentSnapshot, AgentTable, Preferences, RequestedState, Selection, Transition};
use crate::time::Millis;

mod callback;
mod shared;
mod transfer;

pub use callback::{CallbackEntry, CallbackPhase, CallbackStatus};
use callback::{CallbackRecord, DialAttempt};
pub use shared::{LineEntry, LinePlace};
pub use transfer::DirectOffer;

/// The routing core. One owner drives it (one task in the daemon): feed it
/// inputs with `now`, then drain [`Router::poll_offer`] and
/// [`Router::poll_event`], then sleep until [`Router::poll_timeout`]. See
/// the crate documentation for the loop.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    table: Arc<AgentTable>,
    /// Sorted by id; lookups by binary search.
    queues: Vec<QueueRuntime>,
    calls: HashMap<CallId, CallRecord>,
    timers: BinaryHeap<Reverse<Timer>>,
    events: VecDeque<RouterEvent>,
    /// Something changed that may allow an offer.
    dirty: bool,
    /// Scratch for [`Router::poll_offer`], kept to avoid allocating.
    cursors: Vec<QueueCursor>,
    /// Callback entries (virtual hold), in line, dialing or connected.
    callbacks: HashMap<CallbackId, CallbackRecord>,
    callback_events: VecDeque<CallbackEvent>,
    /// Agents another node holds, and that node's name.
    held: HashMap<AgentId, Box<str>>,
    /// The node drains: no callback entry is dialed or shared any more
    /// ([`Router::pause_callbacks`]).
    callbacks_paused: bool,
}

#[derive(Debug)]
struct QueueRuntime {
    config: Arc<QueueConfig>,
    selection: Selection,
    line: Line,
    /// Calls of this queue being offered.
    offered: Vec<CallId>,
    /// Callback entries keeping their place, by the same order as `line`
    /// (keyed by `CallId(callback.0)`; a line of its own so that capped
    /// callbacks are skipped in one step, however many wait).
    callbacks: Line,
    /// Callback entries of this queue holding an agent who is ringing or
    /// dialing the patient (what `max_share` caps).
    dialing: Vec<CallbackId>,
    samples: [WaitSamples; 2],
    counters: QueueCounters,
    /// Removed by a reload; kept until its callers are gone.
    retired: bool,
}

impl QueueRuntime {
    fn waiting(&self) -> usize {
        self.line.len() + self.offered.len()
    }

    /// Anyone still depends on this queue: live callers or callbacks not
    /// yet connected.
    fn holds_anyone(&self) -> bool {
        self.waiting() > 0 || !self.callbacks.is_empty() || !self.dialing.is_empty()
    }

    fn is_full(&self) -> bool {
        self.config
            .max_length
            .is_some_and(|max| self.waiting() >= max)
    }
}

#[derive(Debug)]
struct CallRecord {
    queue: QueueId,
    priority: Priority,
    context: CallerContext,
    /// When the call first entered routing (SLA, waits, place in line).
    enqueued_at: Millis,
    /// When it entered its current queue (max wait).
    entered_at: Millis,
    /// When the max wait in the current queue is over (`None`: never).
    max_wait_at: Option<Millis>,
    coordinator_until: Option<Millis>,
    /// Agents who missed this call in this queue: chosen last.
    missed_by: Vec<AgentId>,
    /// A transfer to one agent: offered to them alone until then.
    direct: Option<(AgentId, Millis)>,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    Waiting,
    /// Agents still ringing.
    Offered(AgentList),
    Connected {
        agent: AgentId,
        wrap_up: Duration,
        /// How long the caller had waited when this agent answered (kept
        /// across a transfer).
        waited: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Millis,
    kind: TimerKind,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    MaxWait(CallId),
    CoordinatorWindow(CallId),
    /// A transfer's window for its one agent closes.
    DirectWindow(CallId),
    /// The wrap-up that began at the given time ends.
    WrapUp(AgentId, Millis),
    /// A callback entry's retry pause ends.
    CallbackDue(CallbackId),
}

#[derive(Debug, Clone, Copy)]
struct QueueCursor {
    queue: usize,
    line: LineCursor,
    blocked: bool,
    /// This cursor walks the queue's callback line.
    callbacks: bool,
}

/// The outcome of trying to find agents for one waiting caller.
enum Attempt {
    Claimed(AgentList),
    /// This caller waits for their coordinator; others may still be served.
    Reserved,
    /// No qualified agent is available for this queue.
    NoAgent,
}

impl Router {
    /// A router over a validated configuration, with every agent `offline`.
    pub fn new(
        config: RouterConfig,
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
    ) -> Result<Router, ConfigError> {
        let mut router = Router {
            config,
            table: Arc::new(AgentTable::new()),
            queues: Vec::new(),
            calls: HashMap::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            dirty: false,
            cursors: Vec::new(),
            callbacks: HashMap::new(),
            callback_events: VecDeque::new(),
            held: HashMap::new(),
            callbacks_paused: false,
        };
        router.reconfigure(queues, agents)?;
        Ok(router)
    }

    /// The agent table, to share with readers (the admin API's
    /// `GET /api/agents`). Change agents' states through the router, which
    /// must hear of them to offer calls.
    pub fn table(&self) -> &Arc<AgentTable> {
        &self.table
    }

    /// Applies a new dialplan's queues and agents (a live reload). It is
    /// validated whole first: on error nothing changes. Agents keep their
    /// states and counters, callers keep their places; a removed queue
    /// keeps serving the callers it has (with its old settings) and takes
    /// no new ones; a changed max wait applies to callers already waiting.
    pub fn reconfigure(
        &mut self,
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
    ) -> Result<(), ConfigError> {
        validate(&queues, &agents)?;
        self.table.replace_all(agents)?;
        let mut old: HashMap<QueueId, QueueRuntime> = self
            .queues
            .drain(..)
            .map(|q| (q.config.id.clone(), q))
            .collect();
        let mut next = Vec::with_capacity(queues.len());
        for config in queues {
            let selection = self.table.selection(&config.skills, config.strategy);
            let runtime = match old.remove(&config.id) {
                Some(mut runtime) => {
                    if runtime.selection.strategy() == config.strategy {
                        selection.continue_from(&runtime.selection);
                    }
                    runtime.selection = selection;
                    runtime.config = Arc::new(config);
                    runtime.retired = false;
                    runtime
                }
                None => QueueRuntime {
                    config: Arc::new(config),
                    selection,
                    line: Line::default(),
                    offered: Vec::new(),
                    callbacks: Line::default(),
                    dialing: Vec::new(),
                    samples: [
                        WaitSamples::new(self.config.wait_samples),
                        WaitSamples::new(self.config.wait_samples),
                    ],
                    counters: QueueCounters::default(),
                    retired: false,
                },
            };
            next.push(runtime);
        }
        for (_, mut runtime) in old {
            if runtime.holds_anyone() {
                runtime.retired = true;
                next.push(runtime);
            }
        }
        next.sort_by(|a, b| a.config.id.cmp(&b.config.id));
        self.queues = next;
        // Max waits follow the new settings.
        for (call, record) in &mut self.calls {
            if matches!(record.phase, Phase::Connected { .. }) {
                continue;
            }
            let Some(queue) = find(&self.queues, &record.queue) else {
                continue;
            };
            let at = queue
                .config
                .max_wait
                .map(|max_wait| record.entered_at.saturating_add(max_wait));
            if at != record.max_wait_at {
                record.max_wait_at = at;
                if let Some(at) = at {
                    self.timers.push(Reverse(Timer {
                        at,
                        kind: TimerKind::MaxWait(*call),
                    }));
                }
            }
        }
        self.dirty = true;
        Ok(())
    }

    // ----- callers ---------------------------------------------------------

    /// A caller enters `queue` with `priority`. When the queue is full the
    /// caller follows its overflow chain (the answer names the queue they
    /// landed in); when the chain ends in a message, they are refused with
    /// it. A queue with no agent signed in still takes callers, who wait up
    /// to its max wait.
    pub fn enqueue(
        &mut self,
        now: Millis,
        call: CallId,
        queue: &QueueId,
        priority: Priority,
        context: CallerContext,
    ) -> Result<Enqueued, EnqueueError> {
        self.enqueue_since(now, call, queue, priority, context, now)
    }

    /// [`Router::enqueue`] for a caller who entered routing at
    /// `enqueued_at` (a transfer keeps the wait before the answer).
    fn enqueue_since(
        &mut self,
        now: Millis,
        call: CallId,
        queue: &QueueId,
        priority: Priority,
        context: CallerContext,
        enqueued_at: Millis,
    ) -> Result<Enqueued, EnqueueError> {
        if self.calls.contains_key(&call) {
            return Err(EnqueueError::DuplicateCall(call));
        }
        let mut at = match queue_index(&self.queues, queue) {
            Some(at) if !self.queues[at].retired => at,
            _ => return Err(EnqueueError::UnknownQueue(queue.clone())),
        };
        let mut priority = priority;
        let mut overflowed_from = None;
        for _ in 0..=self.queues.len() {
            if !self.queues[at].is_full() {
                break;
            }
            let full = &mut self.queues[at];
            match &full.config.on_max_wait {
                // Not when the configuration was validated: a queue with a
                // max length has an overflow.
                None => {
                    full.counters.refused += 1;
                    return Err(EnqueueError::Refused {
                        queue: full.config.id.clone(),
                        message: self.config.fallback_message.clone(),
                    });
                }
                Some(Overflow::Message { message }) => {
                    full.counters.refused += 1;
                    let refused = EnqueueError::Refused {
                        queue: full.config.id.clone(),
                        message: message.clone(),
                    };
                    return Err(refused);
                }
                Some(Overflow::Voicemail { queue }) => {
                    full.counters.refused += 1;
                    return Err(EnqueueError::Voicemail {
                        queue: queue.clone(),
                    });
                }
                Some(Overflow::Queue {
                    queue: target,
                    priority: change,
                }) => {
                    let (target, change) = (target.clone(), *change);
                    full.counters.overflowed += 1;
                    overflowed_from.get_or_insert_with(|| full.config.id.clone());
                    match queue_index(&self.queues, &target) {
                        Some(next) if !self.queues[next].retired => {
                            at = next;
                            priority = change.apply(priority);
                        }
                        _ => {
                            return Err(EnqueueError::Refused {
                                queue: target,
                                message: self.config.fallback_message.clone(),
                            });
                        }
                    }
                }
            }
        }
        let queue_id = self.queues[at].config.id.clone();
        let mut record = CallRecord {
            queue: queue_id.clone(),
            priority,
            context,
            enqueued_at,
            entered_at: now,
            max_wait_at: None,
            coordinator_until: None,
            missed_by: Vec::new(),
            direct: None,
            phase: Phase::Waiting,
        };
        self.enter(now, call, &mut record, at);
        self.calls.insert(call, record);
        let position = self.position(now, call).unwrap_or(1);
        Ok(Enqueued {
            queue: queue_id.clone(),
            priority,
            position,
            estimated_wait: self.estimate_wait(&queue_id, priority),
            overflowed_from,
        })
    }

    /// Puts `record` in line in queue `at`, arming its timers.
    fn enter(&mut self, now: Millis, call: CallId, record: &mut CallRecord, at: usize) {
        let runtime = &mut self.queues[at];
        record.queue = runtime.config.id.clone();
        record.entered_at = now;
        record.max_wait_at = runtime
            .config
            .max_wait
            .map(|max_wait| now.saturating_add(max_wait));
        record.missed_by.clear();
        record.direct = None;
        record.phase = Phase::Waiting;
        record.coordinator_until = match (
            &record.context.coordinator,
            runtime.config.preferences.coordinator_for,
        ) {
            (Some(_), Some(window)) if !window.is_zero() => Some(now.saturating_add(window)),
            _ => None,
        };
        runtime.counters.entered += 1;
        runtime.line.insert(
            record.priority,
            Waiting {
                enqueued_at: record.enqueued_at,
                call,
            },
        );
        if let Some(at) = record.max_wait_at {
            self.timers.push(Reverse(Timer {
                at,
                kind: TimerKind::MaxWait(call),
            }));
        }
        if let Some(until) = record.coordinator_until {
            self.timers.push(Reverse(Timer {
                at: until,
                kind: TimerKind::CoordinatorWindow(call),
            }));
        }
        self.dirty = true;
    }

    /// The caller hung up (while waiting, while agents rang, or connected).
    /// Ringing agents are released without a miss; a connected call ends as
    /// with [`Router::call_ended`]. Not yet connected, it counts as
    /// abandoned.
    pub fn cancel(&mut self, now: Millis, call: CallId) -> Result<(), RoutingError> {
        self.finish(now, call)
    }

    /// The call is over (BYE from either side, or the bridge gave up on it).
    /// A connected agent goes to `wrap_up` for the queue's wrap-up time.
    /// Called on a call not yet connected, it behaves as [`Router::cancel`].
    pub fn call_ended(&mut self, now: Millis, call: CallId) -> Result<(), RoutingError> {
        self.finish(now, call)
    }

    fn finish(&mut self, now: Millis, call: CallId) -> Result<(), RoutingError> {
        let record = self
            .calls
            .remove(&call)
            .ok_or(RoutingError::UnknownCall(call))?;
        let at = queue_index(&self.queues, &record.queue);
        match record.phase {
            Phase::Waiting => {
                if let Some(at) = at {
                    self.queues[at].line.remove(record.priority, call);
                    self.queues[at].counters.abandoned += 1;
                }
            }
            Phase::Offered(agents) => {
                if let Some(at) = at {
                    self.queues[at].offered.retain(|c| *c != call);
                    self.queues[at].counters.abandoned += 1;
                }
                for agent in &agents {
                    let result = self.table.release(agent, now);
                    self.record(now, result);
                }
            }
            Phase::Connected { agent, wrap_up, .. } => self.end_agent_call(now, &agent, wrap_up),
        }
        self.retire_empty_queues();
        self.dirty = true;
        Ok(())
    }

    /// The agent's call ended: `wrap_up`, then `available`.
    fn end_agent_call(&mut self, now: Millis, agent: &AgentId, wrap_up: Duration) {
        let result = self.table.end_call(agent, now);
        if let Ok(Transition {
            to: AgentState::WrapUp,
            ..
        }) = &result
        {
            self.timers.push(Reverse(Timer {
                at: now.saturating_add(wrap_up),
                kind: TimerKind::WrapUp(agent.clone(), now),
            }));
        }
        self.record(now, result);
    }

    /// A caller's 1-based place in line (`None` when not waiting in line:
    /// being offered, connected, or unknown).
    pub fn position(&self, now: Millis, call: CallId) -> Option<usize> {
        let record = self.calls.get(&call)?;
        let runtime = find(&self.queues, &record.queue)?;
        let place = runtime.line.position(call, now, runtime.config.aging)?;
        let key = line::order_key(
            record.priority,
            Waiting {
                enqueued_at: record.enqueued_at,
                call,
            },
            now,
            runtime.config.aging,
        );
        Some(
            place
                + runtime
                    .callbacks
                    .count_before(key, now, runtime.config.aging),
        )
    }

    // ----- offers ----------------------------------------------------------

    /// The next offer: the first waiting caller, in serving order across all
    /// queues, for whom agents could be claimed. Call until `None` after
    /// every input. Urgent and aged callers come first, then by enqueue
    /// time; a caller reserved for their coordinator does not hold up the
    /// callers behind them.
    pub fn poll_offer(&mut self, now: Millis) -> Option<Offer> {
        if !self.dirty {
            return None;
        }
        let mut cursors = std::mem::take(&mut self.cursors);
        cursors.clear();
        for (queue, runtime) in self.queues.iter().enumerate() {
            for (callbacks, line) in [(false, &runtime.line), (true, &runtime.callbacks)] {
                if !line.is_empty() {
                    cursors.push(QueueCursor {
                        queue,
                        line: LineCursor::default(),
                        blocked: false,
                        callbacks,
                    });
                }
            }
        }
        let mut found = None;
        loop {
            let mut best: Option<(OrderKey, usize, Waiting, Priority)> = None;
            for (index, cursor) in cursors.iter().enumerate() {
                if cursor.blocked {
                    continue;
                }
                let runtime = &self.queues[cursor.queue];
                let line = if cursor.callbacks {
                    &runtime.callbacks
                } else {
                    &runtime.line
                };
                if let Some((key, waiting, priority)) =
                    line.peek(cursor.line, now, runtime.config.aging)
                    && best.as_ref().is_none_or(|(b, ..)| key < *b)
                {
                    best = Some((key, index, waiting, priority));
                }
            }
            let Some((_, index, waiting, priority)) = best else {
                break;
            };
            let cursor = &mut cursors[index];
            if cursor.callbacks {
                // A dial is queued for `poll_callback`; the search goes on
                // for a live caller (the entry left the line, so the
                // cursor already points at the next one).
                match self.try_dial(now, cursor.queue, cursor.line, priority, waiting) {
                    DialAttempt::Dialed => {}
                    DialAttempt::NotDue => cursor.line.advance(priority),
                    DialAttempt::Capped | DialAttempt::NoAgent => cursor.blocked = true,
                }
                continue;
            }
            let runtime = &self.queues[cursor.queue];
            let attempt = match self.calls.get(&waiting.call) {
                Some(record) => attempt(&self.table, runtime, record, now),
                None => Attempt::Reserved,
            };
            match attempt {
                Attempt::Claimed(agents) => {
                    found = Some((cursor.queue, cursor.line, priority, waiting.call, agents));
                    break;
                }
                Attempt::Reserved => cursor.line.advance(priority),
                Attempt::NoAgent => cursor.blocked = true,
            }
        }
        self.cursors = cursors;
        let Some((at, line_cursor, priority, call, agents)) = found else {
            self.dirty = false;
            return None;
        };
        let runtime = &mut self.queues[at];
        runtime.line.remove_at(priority, line_cursor);
        runtime.offered.push(call);
        let (queue, ring_timeout) = (runtime.config.id.clone(), runtime.config.ring_timeout);
        for agent in &agents {
            self.events.push_back(RouterEvent::AgentStateChanged {
                agent: agent.clone(),
                from: AgentState::Available,
                to: AgentState::Ringing,
                at: now,
            });
        }
        let record = self.calls.get_mut(&call)?;
        record.phase = Phase::Offered(agents.clone());
        Some(Offer {
            call,
            queue,
            priority: record.priority,
            agents,
            waited: now.saturating_duration_since(record.enqueued_at),
            ring_timeout,
        })
    }

    /// `agent` answered the offered call: they are `on_call`; any other
    /// agent still ringing for it (ring-all) is released, and the bridge
    /// should CANCEL their legs.
    pub fn answered(
        &mut self,
        now: Millis,
        call: CallId,
        agent: &AgentId,
    ) -> Result<(), RoutingError> {
        let record = self
            .calls
            .get_mut(&call)
            .ok_or(RoutingError::UnknownCall(call))?;
        let Phase::Offered(pending) = &mut record.phase else {
            return Err(RoutingError::NotOffered {
                call,
                agent: agent.clone(),
            });
        };
        if !pending.remove(agent) {
            return Err(RoutingError::NotOffered {
                call,
                agent: agent.clone(),
            });
        }
        let others = pending.take();
        let wait = now.saturating_duration_since(record.enqueued_at);
        let priority = record.priority;
        let wrap_up = match queue_index(&self.queues, &record.queue) {
            Some(at) => {
                let runtime = &mut self.queues[at];
                runtime.offered.retain(|c| *c != call);
                runtime.samples[priority.index()].record(wait);
                runtime.counters.answered += 1;
                if wait <= runtime.config.sla {
                    runtime.counters.answered_within_sla += 1;
                }
                runtime.config.wrap_up
            }
            None => Duration::ZERO,
        };
        record.phase = Phase::Connected {
            agent: agent.clone(),
            wrap_up,
            waited: wait,
        };
        let result = self.table.answer(agent, now);
        self.record(now, result);
        for other in &others {
            let result = self.table.release(other, now);
            self.record(now, result);
        }
        self.retire_empty_queues();
        self.dirty = true;
        Ok(())
    }

    /// `agent` did not take the offered call (`reason`). It counts as a miss
    /// (but [`OfferFailure::ClaimedElsewhere`] does not: the agent goes back
    /// as they were, the call is not marked as missed by them)
    /// (the agent goes `away` after [`RouterConfig::away_after_misses`] in a
    /// row), and in the queue's [`crate::MissedOffers`] under its reason. When no agent is left ringing for the call, the caller goes
    /// back to their place in line (or overflows, if their max wait passed
    /// meanwhile) and the next poll offers it to someone else first.
    pub fn offer_failed(
        &mut self,
        now: Millis,
        call: CallId,
        agent: &AgentId,
        reason: OfferFailure,
    ) -> Result<(), RoutingError> {
        let record = self
            .calls
            .get_mut(&call)
            .ok_or(RoutingError::UnknownCall(call))?;
        let Phase::Offered(pending) = &mut record.phase else {
            return Err(RoutingError::NotOffered {
                call,
                agent: agent.clone(),
            });
        };
        if !pending.remove(agent) {
            return Err(RoutingError::NotOffered {
                call,
                agent: agent.clone(),
            });
        }
        let missed = reason != OfferFailure::ClaimedElsewhere;
        if missed {
            record.missed_by.push(agent.clone());
        }
        let back_in_line = pending.is_empty();
        if back_in_line {
            record.phase = Phase::Waiting;
        }
        let (priority, enqueued_at, overdue) = (
            record.priority,
            record.enqueued_at,
            record.max_wait_at.is_some_and(|at| at <= now),
        );
        let queue = record.queue.clone();
        let result = if missed {
            self.table.miss(agent, now, self.config.away_after_misses)
        } else {
            // Never rung: back as they were, their place in the idle line
            // kept (and not claimable while held elsewhere).
            self.table.release(agent, now)
        };
        self.record(now, result);
        if let Some(at) = queue_index(&self.queues, &queue) {
            self.queues[at].counters.missed.count(reason);
        }
        if back_in_line && let Some(at) = queue_index(&self.queues, &queue) {
            let runtime = &mut self.queues[at];
            runtime.offered.retain(|c| *c != call);
            runtime.line.insert(priority, Waiting { enqueued_at, call });
            if overdue {
                self.overflow(now, call);
            }
        }
        self.dirty = true;
        Ok(())
    }

    // ----- agents ------------------------------------------------------------

    /// The registrar accepted a REGISTER for `agent` (first or refresh).
    pub fn registered(&mut self, now: Millis, agent: &AgentId) -> Result<(), RoutingError> {
        let result = self.table.register(agent, now);
        self.record_or_err(now, result)
    }

    /// `agent`'s registration expired or was removed.
    pub fn unregistered(&mut self, now: Millis, agent: &AgentId) -> Result<(), RoutingError> {
        let result = self.table.unregister(agent, now);
        self.record_or_err(now, result)
    }

    /// The agent or the admin API asks for `available` or `away`
    /// (`PUT /api/agents/{id}/state`); answers the agent as it now is.
    pub fn set_agent_state(
        &mut self,
        now: Millis,
        agent: &AgentId,
        requested: RequestedState,
    ) -> Result<AgentSnapshot, RoutingError> {
        let result = self.table.set_state(agent, requested, now);
        self.record_or_err(now, result)?;
        self.table
            .snapshot(agent)
            .ok_or_else(|| RoutingError::UnknownAgent(agent.clone()))
    }

    // ----- the cluster (issue 24) ------------------------------------------

    /// Another node (`node`) holds `agent`'s claim (its claim was seen on
    /// the change feed, or a claim of ours was refused): they are not
    /// offered here until [`Router::released_elsewhere`], and their
    /// snapshot shows `on_call` while this node has them `available`
    /// ([`AgentSnapshot::held_elsewhere`]). A call ringing them here is
    /// not touched: the driver takes its offer back
    /// ([`OfferFailure::ClaimedElsewhere`]).
    pub fn held_elsewhere(
        &mut self,
        now: Millis,
        agent: &AgentId,
        node: &str,
    ) -> Result<(), RoutingError> {
        let result = self.table.hold_elsewhere(agent);
        self.record_or_err(now, result)?;
        match self.held.get_mut(agent) {
            Some(holder) if **holder == *node => {}
            Some(holder) => *holder = node.into(),
            None => {
                self.held.insert(agent.clone(), node.into());
            }
        }
        Ok(())
    }

    /// The other node's claim on `agent` is over (released, or its lease
    /// expired): back to what this node knows of them, available again if
    /// registered and not away.
    pub fn released_elsewhere(&mut self, now: Millis, agent: &AgentId) -> Result<(), RoutingError> {
        self.held.remove(agent);
        let result = self.table.release_elsewhere(agent, now);
        self.record_or_err(now, result)?;
        self.dirty = true;
        Ok(())
    }

    /// The node holding `agent`'s claim, when it is another node.
    pub fn held_by(&self, agent: &AgentId) -> Option<&str> {
        self.held.get(agent).map(|node| &**node)
    }

    /// Every agent held by another node, with that node.
    pub fn held_agents(&self) -> impl Iterator<Item = (&AgentId, &str)> + '_ {
        self.held.iter().map(|(agent, node)| (agent, &**node))
    }

    // ----- calls out (click-to-call) -------------------------------------

    /// `agent` places a call out (click-to-call rings their phone first):
    /// claimed from `available` to `ringing` like an offer, so no queue
    /// call is offered to them meanwhile. Refused unless they are
    /// `available` (on a call, ringing, in wrap-up, away, offline).
    pub fn outbound_started(&mut self, agent: &AgentId) -> Result<(), RoutingError> {
        self.table.claim(agent)?;
        self.dirty = true;
        Ok(())
    }

    /// The agent answered their own call out: `on_call`.
    pub fn outbound_answered(&mut self, now: Millis, agent: &AgentId) -> Result<(), RoutingError> {
        let result = self.table.answer(agent, now);
        self.record_or_err(now, result)
    }

    /// The call out ended: an agent still ringing is released (keeping
    /// their place in the idle line, not counted as a miss), one who talked
    /// goes to `wrap_up` for `wrap_up`, then `available`.
    pub fn outbound_ended(
        &mut self,
        now: Millis,
        agent: &AgentId,
        wrap_up: Duration,
    ) -> Result<(), RoutingError> {
        match self.table.state(agent) {
            Some(AgentState::Ringing) => {
                let result = self.table.release(agent, now);
                self.record_or_err(now, result)
            }
            Some(AgentState::OnCall) => {
                self.end_agent_call(now, agent, wrap_up);
                self.dirty = true;
                Ok(())
            }
            Some(_) => Ok(()),
            None => Err(RoutingError::UnknownAgent(agent.clone())),
        }
    }

    /// Zeroes every agent's `calls_today` (at the clinic's local midnight).
    pub fn reset_daily_counters(&mut self) {
        self.table.reset_daily_counters();
        self.dirty = true;
    }

    fn record_or_err(
        &mut self,
        now: Millis,
        result: Result<Transition, RoutingError>,
    ) -> Result<(), RoutingError> {
        let transition = result?;
        self.record(now, Ok(transition));
        Ok(())
    }

    /// Emits an event for a state change. A failed table transition is a
    /// race the router's own bookkeeping already covers (an agent removed
    /// by a reload mid-call, for one), so it changes nothing.
    fn record(&mut self, now: Millis, result: Result<Transition, RoutingError>) {
        if let Ok(transition) = result
            && transition.changed()
        {
            // Any change may free an agent or end a coordinator's reservation.
            self.dirty = true;
            self.events.push_back(RouterEvent::AgentStateChanged {
                agent: transition.agent,
                from: transition.from,
                to: transition.to,
                at: now,
            });
        }
    }

    // ----- time --------------------------------------------------------------

    /// The earliest deadline: a max wait, a wrap-up's end or a coordinator
    /// window's end. Sleep until then (or the next input), then call
    /// [`Router::handle_timeout`]. Aging needs no deadline: the serving
    /// order is computed from `now` whenever an offer is sought, and aging
    /// changes only that order.
    pub fn poll_timeout(&mut self) -> Option<Millis> {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if self.is_live(timer) {
                return Some(timer.at);
            }
            self.timers.pop();
        }
        None
    }

    /// Handles every deadline at or before `now`: callers past their max
    /// wait overflow or give up (a caller whose agent is ringing does so
    /// only if the offer fails), wrap-ups end, coordinator windows close.
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if timer.at > now {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            if !self.is_live(&timer) {
                continue;
            }
            match timer.kind {
                TimerKind::MaxWait(call) => {
                    let waiting = self
                        .calls
                        .get(&call)
                        .is_some_and(|record| matches!(record.phase, Phase::Waiting));
                    if waiting {
                        self.overflow(now, call);
                    }
                }
                TimerKind::CoordinatorWindow(_)
                | TimerKind::DirectWindow(_)
                | TimerKind::CallbackDue(_) => self.dirty = true,
                TimerKind::WrapUp(agent, started) => {
                    let result = self.table.finish_wrap_up(&agent, started, now);
                    self.record(now, result);
                }
            }
        }
    }

    fn is_live(&self, timer: &Timer) -> bool {
        match &timer.kind {
            TimerKind::MaxWait(call) => self.calls.get(call).is_some_and(|record| {
                record.max_wait_at == Some(timer.at)
                    && !matches!(record.phase, Phase::Connected { .. })
            }),
            TimerKind::CoordinatorWindow(call) => self.calls.get(call).is_some_and(|record| {
                record.coordinator_until == Some(timer.at)
                    && !matches!(record.phase, Phase::Connected { .. })
            }),
            TimerKind::DirectWindow(call) => self.calls.get(call).is_some_and(|record| {
                record.direct.as_ref().map(|(_, until)| *until) == Some(timer.at)
                    && !matches!(record.phase, Phase::Connected { .. })
            }),
            TimerKind::CallbackDue(callback) => {
                self.callbacks.get(callback).is_some_and(|record| {
                    record.not_before == Some(timer.at) && record.phase == CallbackPhase::Waiting
                })
            }
            TimerKind::WrapUp(agent, started) => self
                .table
                .snapshot(agent)
                .is_some_and(|agent| agent.state == AgentState::WrapUp && agent.since == *started),
        }
    }

    /// Sends a waiting caller past their max wait on: to the overflow
    /// queue (skipping full ones down the chain), or out with a message.
    fn overflow(&mut self, now: Millis, call: CallId) {
        let Some(mut record) = self.calls.remove(&call) else {
            return;
        };
        let from = record.queue.clone();
        let Some(from_at) = queue_index(&self.queues, &from) else {
            self.give_up(call, from, self.config.fallback_message.clone());
            return;
        };
        self.queues[from_at].line.remove(record.priority, call);
        let mut action = self.queues[from_at].config.on_max_wait.clone();
        let mut reason = OverflowReason::MaxWait;
        for _ in 0..=self.queues.len() {
            match action {
                // Not when the configuration was validated: a queue with a
                // max wait has an overflow.
                None => break,
                Some(Overflow::Message { message }) => {
                    if let Some(at) = queue_index(&self.queues, &record.queue) {
                        self.queues[at].counters.given_up += 1;
                    }
                    self.give_up(call, record.queue.clone(), message);
                    self.retire_empty_queues();
                    return;
                }
                Some(Overflow::Voicemail { queue }) => {
                    if let Some(at) = queue_index(&self.queues, &record.queue) {
                        self.queues[at].counters.given_up += 1;
                    }
                    self.events.push_back(RouterEvent::Voicemail {
                        call,
                        from: record.queue.clone(),
                        queue,
                    });
                    self.retire_empty_queues();
                    return;
                }
                Some(Overflow::Queue {
                    queue: target,
                    priority: change,
                }) => {
                    let Some(at) =
                        queue_index(&self.queues, &target).filter(|at| !self.queues[*at].retired)
                    else {
                        break;
                    };
                    if let Some(left) = queue_index(&self.queues, &record.queue) {
                        self.queues[left].counters.overflowed += 1;
                    }
                    record.priority = change.apply(record.priority);
                    if self.queues[at].is_full() {
                        record.queue = target;
                        action = self.queues[at].config.on_max_wait.clone();
                        reason = OverflowReason::QueueFull;
                        continue;
                    }
                    self.enter(now, call, &mut record, at);
                    self.events.push_back(RouterEvent::Overflowed {
                        call,
                        from,
                        to: target,
                        priority: record.priority,
                        reason,
                    });
                    self.calls.insert(call, record);
                    self.retire_empty_queues();
                    return;
                }
            }
        }
        // The target vanished in a reload (or there was none): end with the
        // fallback message.
        self.give_up(call, record.queue, self.config.fallback_message.clone());
        self.retire_empty_queues();
    }

    fn give_up(&mut self, call: CallId, queue: QueueId, message: PromptId) {
        self.events.push_back(RouterEvent::GiveUp {
            call,
            queue,
            message,
        });
    }

    fn retire_empty_queues(&mut self) {
        self.queues.retain(|q| !q.retired || q.holds_anyone());
    }

    // ----- events and statistics ---------------------------------------------

    /// The next event to act on or record.
    pub fn poll_event(&mut self) -> Option<RouterEvent> {
        self.events.pop_front()
    }

    /// The wait a new caller of `priority` in `queue` should expect: the
    /// configured percentile of that queue's recent answered waits at that
    /// priority. `None` (say nothing) with too few samples.
    pub fn estimate_wait(&self, queue: &QueueId, priority: Priority) -> Option<Duration> {
        find(&self.queues, queue)?.samples[priority.index()].percentile(
            self.config.wait_estimate_percentile,
            self.config.wait_estimate_min_samples,
        )
    }

    /// Live figures of every queue (`GET /api/queues`), sorted by id.
    pub fn queue_stats(&self, now: Millis) -> Vec<QueueStats> {
        self.queues
            .iter()
            .map(|runtime| self.stats_of(now, runtime))
            .collect()
    }

    /// Live figures of one queue.
    pub fn queue_stats_for(&self, now: Millis, queue: &QueueId) -> Option<QueueStats> {
        find(&self.queues, queue).map(|runtime| self.stats_of(now, runtime))
    }

    fn stats_of(&self, now: Millis, runtime: &QueueRuntime) -> QueueStats {
        let offered_oldest = runtime
            .offered
            .iter()
            .filter_map(|call| self.calls.get(call).map(|record| record.enqueued_at))
            .min();
        let dialing_oldest = runtime
            .dialing
            .iter()
            .filter_map(|id| self.callbacks.get(id).map(|record| record.enqueued_at))
            .min();
        let oldest = [
            runtime.line.oldest(),
            offered_oldest,
            runtime.callbacks.oldest(),
            dialing_oldest,
        ]
        .into_iter()
        .flatten()
        .min();
        let agents = self.table.counts(&runtime.selection);
        let id = runtime.config.id.clone();
        QueueStats {
            waiting: runtime.waiting() + runtime.callbacks.len() + runtime.dialing.len(),
            offering: runtime.offered.len() + runtime.dialing.len(),
            urgent_waiting: runtime.line.count(Priority::Urgent)
                + runtime.callbacks.count(Priority::Urgent),
            callbacks: runtime.callbacks.len() + runtime.dialing.len(),
            longest_wait: oldest.map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
            sla: runtime.config.sla,
            agents_available: agents.available(),
            agents_signed_in: agents.signed_in(),
            agents,
            estimated_wait: Priority::ALL.map(|p| (p, self.estimate_wait(&id, p))),
            counters: runtime.counters,
            retired: runtime.retired,
            id,
        }
    }

    /// Number of calls in routing (waiting, offered or connected).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Where a call is: `None` if not in routing.
    pub fn call_status(&self, call: CallId) -> Option<CallStatus> {
        let record = self.calls.get(&call)?;
        Some(CallStatus {
            queue: record.queue.clone(),
            priority: record.priority,
            enqueued_at: record.enqueued_at,
            phase: match &record.phase {
                Phase::Waiting => CallPhase::Waiting,
                Phase::Offered(agents) => CallPhase::Offered(agents.clone()),
                Phase::Connected { agent, .. } => CallPhase::Connected(agent.clone()),
            },
        })
    }
}

/// Where a call is in routing, from [`Router::call_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatus {
    /// Its queue.
    pub queue: QueueId,
    /// Its priority there.
    pub priority: Priority,
    /// When it first entered routing.
    pub enqueued_at: Millis,
    /// What is happening to it.
    pub phase: CallPhase,
}

/// The phase of a call in routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallPhase {
    /// In line.
    Waiting,
    /// These agents are ringing for it.
    Offered(AgentList),
    /// Talking to this agent.
    Connected(AgentId),
}

fn queue_index(queues: &[QueueRuntime], id: &QueueId) -> Option<usize> {
    queues
        .binary_search_by(|q| q.config.id.as_str().cmp(id.as_str()))
        .ok()
}

fn find<'a>(queues: &'a [QueueRuntime], id: &QueueId) -> Option<&'a QueueRuntime> {
    queue_index(queues, id).map(|at| &queues[at])
}

/// Tries to claim agents for one waiting caller.
fn attempt(
    table: &AgentTable,
    runtime: &QueueRuntime,
    record: &CallRecord,
    now: Millis,
) -> Attempt {
    let config = &runtime.config;
    if let Some((agent, until)) = &record.direct
        && now < *until
        && !record.missed_by.contains(agent)
        && table.is_signed_in(agent)
    {
        return match table.claim(agent) {
            Ok(claim) => Attempt::Claimed(AgentList::One(claim.agent)),
            Err(_) => Attempt::Reserved,
        };
    }
    if let (Some(coordinator), Some(until)) =
        (&record.context.coordinator, record.coordinator_until)
        && now < until
        && !record.missed_by.contains(coordinator)
        && table.is_signed_in(coordinator)
        && table.qualifies(coordinator, &runtime.selection)
    {
        return match table.claim(coordinator) {
            Ok(claim) => Attempt::Claimed(AgentList::One(claim.agent)),
            Err(_) => Attempt::Reserved,
        };
    }
    let preferences = caller_preferences(&record.context, &record.missed_by, &config.preferences);
    if runtime.selection.strategy() == crate::config::Strategy::RingAll {
        let mut claimed = Vec::new();
        if table.claim_all(&runtime.selection, &preferences, &mut claimed) > 0 {
            return Attempt::Claimed(AgentList::from(claimed));
        }
        return Attempt::NoAgent;
    }
    match table.choose_and_claim(&runtime.selection, &preferences) {
        Some(claim) => Attempt::Claimed(AgentList::One(claim.agent)),
        None => Attempt::NoAgent,
    }
}

/// What a waiting caller (or callback entry) asks of the choice of agent,
/// as far as its queue honours it: the branch and the language when the
/// queue prefers them, and the agents who already missed it last.
pub(crate) fn caller_preferences<'a>(
    context: &'a CallerContext,
    missed_by: &'a [AgentId],
    wanted: &crate::config::QueuePreferences,
) -> Preferences<'a> {
    Preferences {
        branch: context.branch.as_ref().filter(|_| wanted.same_branch),
        language: context.language.as_ref().filter(|_| wanted.language),
        avoid: missed_by,
    }
}
