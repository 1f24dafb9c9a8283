//! The callback dialer (issue 22): callers who hung up to be called back
//! keep their place in line (virtual hold), and are called when it comes.
//!
//! Routing holds the entries and decides (`routing::router::callback`):
//! the entry keeps the caller's first enqueue time and priority, waits in
//! a line beside the live one, and when it is at the head and an agent is
//! free, routing claims the agent and says [`CallbackNews::Dial`]. This
//! module performs what routing decides and decides nothing itself:
//!
//! * [`Callbacks::hold_place`]: a call's accepted callback becomes an entry
//!   ([`RouterHandle::hold_place`]) and a journal row (`callbacks`, state
//!   `waiting`), committed at once: the patient has been promised a call.
//! * A dial rings the claimed agent with the queue's whisper
//!   ("callback, pediatrics"), then calls the number through the trunk and
//!   bridges the two: the click-to-call core ([`call::originate`]) started
//!   by [`super::originate::spawn_dial`]. Its progress comes back to
//!   [`Callbacks::progress`], which tells routing ([`CallbackInput`]) and
//!   the journal.
//! * A patient who does not answer: routing reschedules the entry in its
//!   place ([`CallbackNews::Rescheduled`], journalled so a restart keeps
//!   the tries), and after the queue's `retries` gives up
//!   ([`CallbackNews::Exhausted`]): the callback becomes a `callback` lead
//!   for the desk to follow up, so nothing is lost.
//! * At start, [`run`] gives routing every entry the journal still holds as
//!   waiting, with its wall-clock enqueue time (routing's clock reads Unix
//!   time, `crate::app::router`), so a callback keeps its place ahead of
//!   callers who came after it, across a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use call::CallLead;
use call::originate::{EndedBy, Failure, OriginateSetup, Progress};
use ivr::jiff::Timestamp;
use ivr::leads::PhoneNumber;
use records::{CallbackChange, CallbackRow, CallbackState};
use routing::{
    AgentId, Branch, CallbackDial, CallbackEntry, CallbackFailure, CallbackId, CallerContext,
    Language, Millis, OfferFailure, Priority, QueueId,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::CallLeadSink;
use super::originate::{DialProgress, TRUNK, spawn_dial, trunk_route};
use super::services::CallServices;
use crate::app::journal::CallJournal;
use crate::app::router::{CallbackInput, CallbackNews, RouterHandle};

/// The most entries taken back from the journal at start.
const MAX_RESTORED: usize = 100_000;

/// What the dialer keeps of an entry beside routing: whom to call and
/// what to journal.
#[derive(Debug, Clone)]
struct Ticket {
    /// The journal's id (`cb-<16 hex>`).
    id: String,
    /// The patient's call that asked for it (`c-…`).
    call: String,
    /// The number to call, E.164.
    number: String,
    queue: QueueId,
    priority: Priority,
    /// The place it keeps: the first enqueue, Unix milliseconds.
    enqueued_at: u64,
    /// The try under way (1 for the first).
    attempt: u32,
    /// The agent of the dial under way answered.
    agent_answered: bool,
}

/// The dialer's handle: the calls' way to keep a place, and the dials'
/// way to report. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Callbacks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Entries in routing, by routing's id. Written before routing hears
    /// of an entry, so a dial never finds its ticket missing.
    tickets: Mutex<HashMap<CallbackId, Ticket>>,
    router: RouterHandle,
    journal: Arc<CallJournal>,
    leads: CallLeadSink,
}

/// The journal's id of routing's `id`.
fn journal_id(id: CallbackId) -> String {
    format!("cb-{:016x}", id.0)
}

/// Routing's id of a journal id (`None` for one not ours).
fn routing_id(id: &str) -> Option<CallbackId> {
    let hex = id.strip_prefix("cb-")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .map(CallbackId)
}

fn timestamp(ms: u64) -> Timestamp {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or_else(Timestamp::now)
}

fn unix_ms(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

/// The name of a failed try, in the journal and the metrics.
fn failure_name(reason: CallbackFailure) -> &'static str {
    match reason {
        CallbackFailure::NoAnswer => "no_answer",
        CallbackFailure::Busy => "busy",
        CallbackFailure::Failed => "failed",
    }
}

impl Callbacks {
    /// The dialer's handle over `router`, `journal` and the calls' leads.
    pub fn new(router: RouterHandle, journal: Arc<CallJournal>, leads: CallLeadSink) -> Callbacks {
        Callbacks {
            inner: Arc::new(Inner {
                tickets: Mutex::new(HashMap::new()),
                router,
                journal,
                leads,
            }),
        }
    }

    fn tickets(&self) -> std::sync::MutexGuard<'_, HashMap<CallbackId, Ticket>> {
        // A panic while holding this lock leaves a map that is still
        // whole (every update is one insert or remove).
        self.inner
            .tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The caller of call `call` (`c-…`, routing's `routing_call`) keeps
    /// their place to be called back at `number`: their 1-based place, or
    /// `None` when routing cannot keep it (the call then becomes a lead).
    pub async fn hold_place(
        &self,
        routing_call: routing::CallId,
        call: &str,
        number: String,
    ) -> Option<usize> {
        let id = loop {
            let id = CallbackId(rand::random::<u64>());
            let mut tickets = self.tickets();
            if tickets.contains_key(&id) {
                continue;
            }
            tickets.insert(
                id,
                Ticket {
                    id: journal_id(id),
                    call: call.to_string(),
                    number: number.clone(),
                    queue: QueueId::new(""),
                    priority: Priority::Routine,
                    enqueued_at: 0,
                    attempt: 0,
                    agent_answered: false,
                },
            );
            break id;
        };
        let held = match self.inner.router.hold_place(routing_call, id).await {
            Ok(Ok(held)) => held,
            Ok(Err(error)) => {
                debug!(%error, "routing cannot keep the place");
                self.tickets().remove(&id);
                return None;
            }
            Err(_) => {
                self.tickets().remove(&id);
                return None;
            }
        };
        let status = held.status;
        let enqueued_at = status.enqueued_at.as_millis();
        let ticket = {
            let mut tickets = self.tickets();
            let Some(ticket) = tickets.get_mut(&id) else {
                // Already over (a dial that failed at once): journalled there.
                return Some(held.position);
            };
            ticket.queue = status.queue.clone();
            ticket.priority = status.priority;
            ticket.enqueued_at = enqueued_at;
            ticket.clone()
        };
        let row = CallbackRow {
            id: ticket.id.clone(),
            call: ticket.call,
            queue: status.queue.as_str().to_string(),
            priority: status.priority,
            branch: status.context.branch.map(|b| b.as_str().to_string()),
            language: status.context.language.map(|l| l.as_str().to_string()),
            number,
            enqueued_at: timestamp(enqueued_at),
            accepted_at: Timestamp::now(),
            attempts: 0,
            not_before: None,
            state: CallbackState::Waiting,
            agent: None,
            ended_at: None,
            reason: None,
        };
        self.journal(CallbackChange::Accepted(row));
        metrics::counter!("frontdesk_callbacks_total", "result" => "held").increment(1);
        info!(callback = %ticket.id, queue = %status.queue, position = held.position, "a caller keeps their place for a callback");
        Some(held.position)
    }

    /// A `callback` step on the timeline of the call that asked for it,
    /// with the wait since the patient first queued.
    fn step(&self, ticket: &Ticket, step: &str, at: Timestamp) {
        let entry = records::JournalEntry::new(
            ticket.call.as_str(),
            at,
            records::CallEvent::Callback {
                step: step.to_string(),
                department: ticket.queue.as_str().to_string(),
                wait_ms: unix_ms(at).saturating_sub(ticket.enqueued_at),
            },
        );
        if let Err(error) = self.inner.journal.handle().record(entry) {
            warn!(%error, "a callback's step was not journalled");
        }
    }

    fn journal(&self, change: CallbackChange) {
        if let Err(error) = self.inner.journal.handle().record_callback(change) {
            warn!(%error, "a callback's change was not journalled");
        }
    }

    /// Routing says: dial. Rings the agent, then the patient, in a task of
    /// its own (see the module docs).
    fn dial(&self, dial: CallbackDial, services: &Arc<CallServices>) {
        let router = &self.inner.router;
        let Some(ticket) = self.tickets().get_mut(&dial.callback).map(|ticket| {
            ticket.attempt = dial.attempt;
            ticket.agent_answered = false;
            ticket.clone()
        }) else {
            warn!(
                callback = dial.callback.0,
                "a dial for an entry the dialer does not know"
            );
            router.callback(dial.callback, CallbackInput::Ended);
            return;
        };
        let Some(binding) = services
            .locations
            .get(dial.agent.as_str())
            .into_iter()
            .next()
        else {
            info!(agent = %dial.agent, "the callback's agent has no phone now");
            router.callback(
                dial.callback,
                CallbackInput::AgentFailed(dial.agent, OfferFailure::Unreachable),
            );
            return;
        };
        let callbacks = self.clone();
        let services = Arc::clone(services);
        services.clone().tasks.spawn(async move {
            let plan = services.dialplan.current();
            let trunk = plan.trunk(TRUNK).filter(|trunk| {
                PhoneNumber::parse(&ticket.number, plan.clinic().country())
                    .is_ok_and(|number| trunk.permits(&number))
            });
            let route = match trunk {
                Some(trunk) => trunk_route(trunk).await.map(|route| (route, trunk.ring_timeout())),
                None => Err(format!(
                    "[trunks.{TRUNK}] is gone or no longer permits the number"
                )),
            };
            let (route, patient_ring) = match route {
                Ok(route) => route,
                Err(why) => {
                    // The patient cannot be called: a try is spent (the
                    // agent passes through the queue's wrap-up).
                    warn!(callback = %ticket.id, "{why}");
                    let router = &callbacks.inner.router;
                    router.callback(dial.callback, CallbackInput::AgentAnswered(dial.agent));
                    router.callback(dial.callback, CallbackInput::Failed(CallbackFailure::Failed));
                    return;
                }
            };
            let queue = plan.queue(dial.queue.as_str());
            let waited_min = dial.waited.as_secs() / 60;
            let setup = OriginateSetup {
                agent: dial.agent.as_str().to_string(),
                agent_binding: binding,
                display: format!(
                    "Callback · {} · waited {waited_min} min",
                    queue.map_or(dial.queue.as_str(), ivr::Queue::name)
                ),
                patient: ticket.number.clone(),
                trunk: route,
                agent_ring: dial.ring_timeout,
                patient_ring,
                ringback: queue
                    .and_then(ivr::Queue::hold_music)
                    .map(|prompt| prompt.path().to_path_buf()),
                whisper: queue
                    .and_then(ivr::Queue::callback)
                    .map(|callback| callback.prompts().whisper.path().to_path_buf()),
            };
            info!(callback = %ticket.id, agent = %dial.agent, attempt = dial.attempt, "calling back: the agent rings first");
            let span = tracing::info_span!("callback", callback = %ticket.id, agent = %dial.agent);
            let sink = Arc::new(DialOf {
                callbacks,
                callback: dial.callback,
            });
            spawn_dial(Arc::clone(&services), setup, sink, span);
        });
    }

    /// A dial's progress (from its task): told to routing, journalled.
    pub(super) fn progress(&self, callback: CallbackId, agent: &str, progress: Progress) {
        let router = &self.inner.router;
        let agent_id = AgentId::new(agent);
        let input = match progress {
            Progress::AgentAnswered => {
                if let Some(ticket) = self.tickets().get_mut(&callback) {
                    ticket.agent_answered = true;
                }
                CallbackInput::AgentAnswered(agent_id)
            }
            Progress::PatientAnswered => {
                let ticket = self.tickets().get(&callback).cloned();
                if let Some(ticket) = ticket {
                    let now = Timestamp::now();
                    let waited_ms = unix_ms(now).saturating_sub(ticket.enqueued_at);
                    info!(callback = %ticket.id, agent, waited_ms, attempt = ticket.attempt, "called back: the patient answered");
                    self.step(&ticket, "connected", now);
                    self.journal(CallbackChange::Finished {
                        id: ticket.id,
                        state: CallbackState::Connected,
                        agent: Some(agent.to_string()),
                        at: now,
                        attempts: ticket.attempt,
                        reason: None,
                    });
                    // Their other open call leads are answered too.
                    self.inner.leads.reached(&ticket.number, agent);
                }
                metrics::counter!("frontdesk_callbacks_total", "result" => "connected")
                    .increment(1);
                CallbackInput::Answered
            }
            Progress::Ended(by) => {
                self.tickets().remove(&callback);
                if by == EndedBy::Shutdown {
                    debug!("a callback's call ended with the daemon");
                }
                CallbackInput::Ended
            }
            Progress::Failed(failure) => {
                let agent_failure = match failure {
                    Failure::AgentNoAnswer => Some(OfferFailure::NoAnswer),
                    Failure::AgentBusy => Some(OfferFailure::Busy),
                    Failure::AgentDeclined => Some(OfferFailure::Rejected),
                    Failure::AgentUnreachable => Some(OfferFailure::Unreachable),
                    // Before the agent's phone rang: as if it could not be
                    // reached; after, the patient could not be called.
                    Failure::NoPort if !self.agent_answered(callback) => {
                        Some(OfferFailure::Unreachable)
                    }
                    _ => None,
                };
                match (agent_failure, failure) {
                    (Some(reason), _) => CallbackInput::AgentFailed(agent_id, reason),
                    // The entry stays in the journal as waiting: the next
                    // start gives it back.
                    (None, Failure::Shutdown) => return,
                    (None, Failure::PatientNoAnswer) => {
                        CallbackInput::Failed(CallbackFailure::NoAnswer)
                    }
                    (None, Failure::PatientBusy) => CallbackInput::Failed(CallbackFailure::Busy),
                    // The agent hung up before the patient answered, the
                    // trunk refused or could not be reached, no port.
                    (None, _) => CallbackInput::Failed(CallbackFailure::Failed),
                }
            }
        };
        router.callback(callback, input);
    }

    /// Whether the agent of the dial under way answered (the originate
    /// core reports it before anything about the patient's leg).
    fn agent_answered(&self, callback: CallbackId) -> bool {
        self.tickets()
            .get(&callback)
            .is_some_and(|ticket| ticket.agent_answered)
    }

    /// Routing's news: a dial, a retry scheduled, an entry given up.
    fn news(&self, news: CallbackNews, services: &Arc<CallServices>) {
        match news {
            CallbackNews::Dial(dial) => self.dial(dial, services),
            CallbackNews::Rescheduled {
                callback,
                attempts,
                at,
                reason,
            } => {
                let Some(ticket) = self.tickets().get(&callback).cloned() else {
                    return;
                };
                info!(callback = %ticket.id, attempts, reason = failure_name(reason), "the patient was not reached: trying again later");
                self.step(&ticket, "retry", Timestamp::now());
                metrics::counter!("frontdesk_callbacks_total", "result" => "retry").increment(1);
                self.journal(CallbackChange::Rescheduled {
                    id: ticket.id,
                    attempts,
                    not_before: timestamp(at),
                });
            }
            CallbackNews::Exhausted {
                callback,
                attempts,
                reason,
            } => {
                let Some(ticket) = self.tickets().remove(&callback) else {
                    return;
                };
                self.give_up(
                    ticket,
                    attempts,
                    failure_name(reason),
                    CallbackState::Exhausted,
                );
            }
        }
    }

    /// The entry leaves for good without reaching the patient: journalled
    /// with `state`, and a `callback` lead for the desk to follow up.
    fn give_up(&self, ticket: Ticket, attempts: u32, reason: &str, state: CallbackState) {
        let now = Timestamp::now();
        info!(callback = %ticket.id, attempts, reason, "the callback becomes a lead for follow-up");
        self.step(&ticket, state.as_str(), now);
        metrics::counter!("frontdesk_callbacks_total", "result" => state.as_str()).increment(1);
        self.journal(CallbackChange::Finished {
            id: ticket.id.clone(),
            state,
            agent: None,
            at: now,
            attempts,
            reason: Some(reason.to_string()),
        });
        let waited = Duration::from_millis(unix_ms(now).saturating_sub(ticket.enqueued_at));
        self.inner.leads.send(CallLead {
            kind: records::LeadKind::Callback,
            queue: ticket.queue,
            caller: ticket.number,
            call: ticket.call,
            waited,
            priority: ticket.priority,
            source: None,
            recording: None,
        });
    }

    /// Gives routing the entries the journal holds as waiting (at start).
    async fn restore(&self) {
        let reader = self.inner.journal.reader().clone();
        let rows = match tokio::task::spawn_blocking(move || reader.waiting_callbacks(MAX_RESTORED))
            .await
        {
            Ok(Ok(rows)) => rows,
            Ok(Err(error)) => {
                warn!(%error, "cannot read the waiting callbacks: none restored");
                return;
            }
            Err(_) => return,
        };
        let mut restored = 0usize;
        for row in rows {
            let Some(id) = routing_id(&row.id) else {
                warn!(callback = %row.id, "a callback with an id not ours: skipped");
                continue;
            };
            let ticket = Ticket {
                id: row.id.clone(),
                call: row.call.clone(),
                number: row.number.clone(),
                queue: QueueId::new(row.queue.as_str()),
                priority: row.priority,
                enqueued_at: unix_ms(row.enqueued_at),
                attempt: row.attempts,
                agent_answered: false,
            };
            self.tickets().insert(id, ticket.clone());
            let entry = CallbackEntry {
                id,
                queue: ticket.queue.clone(),
                priority: row.priority,
                context: CallerContext {
                    branch: row.branch.as_deref().map(Branch::new),
                    coordinator: None,
                    language: row.language.as_deref().map(Language::new),
                },
                enqueued_at: Millis::new(ticket.enqueued_at),
                attempts: row.attempts,
                not_before: row.not_before.map(|at| Millis::new(unix_ms(at))),
            };
            match self.inner.router.add_callback(entry).await {
                Ok(Ok(_)) => restored += 1,
                Ok(Err(error)) => {
                    // The queue is gone or takes no callbacks any more:
                    // the desk follows it up.
                    self.tickets().remove(&id);
                    warn!(callback = %row.id, %error, "a journalled callback cannot wait in its queue");
                    self.give_up(ticket, row.attempts, "queue_gone", CallbackState::Withdrawn);
                }
                Err(_) => return,
            }
        }
        if restored > 0 {
            info!(restored, "callbacks keep their places after the restart");
        }
    }
}

/// One callback's dial, as the originate task reports it.
struct DialOf {
    callbacks: Callbacks,
    callback: CallbackId,
}

impl DialProgress for DialOf {
    fn progress(&self, agent: &str, progress: Progress) {
        self.callbacks.progress(self.callback, agent, progress);
    }
}

/// The dialer's task: restores the journal's entries, then performs
/// routing's callback news until `shutdown`.
pub async fn run(
    mut news: mpsc::UnboundedReceiver<CallbackNews>,
    callbacks: Callbacks,
    services: Arc<CallServices>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    callbacks.restore().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            item = news.recv() => match item {
                Some(item) => callbacks.news(item, &services),
                None => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_ids_and_routing_ids_map_one_to_one() {
        for raw in [0, 1, 0xdead_beef, u64::MAX] {
            let id = CallbackId(raw);
            assert_eq!(routing_id(&journal_id(id)), Some(id));
        }
        for foreign in [
            "cb-",
            "cb-xyz",
            "l-0000000000000001",
            "cb-00000000000000001",
            "",
        ] {
            assert_eq!(routing_id(foreign), None, "{foreign}");
        }
    }
}
