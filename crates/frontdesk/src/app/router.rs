//! The routing service: one task owns the sans-IO [`routing::Router`]
//! (STYLE.md: one owner per piece of state). Calls, the registrar and the
//! admin API talk to it through a [`RouterHandle`]; offers and queue news
//! go back to each call's own channel.
//!
//! The agent availability table itself is shared read-only
//! ([`RouterHandle::table`]): the API reads snapshots without asking the
//! task.
//!
//! Callbacks that keep their place (issue 22): a call asks for it
//! ([`RouterHandle::hold_place`]); what routing decides about callback
//! entries (dial now, try again later, given up) goes out as
//! [`CallbackNews`] to the callback dialer (`crate::calls::callbacks`),
//! which reports the dials' outcomes back ([`RouterHandle::callback`]).
//!
//! The router's clock: Unix milliseconds when the task started, then
//! monotonic time since. So an entry's place (its first enqueue time) is
//! a wall time the journal keeps, and a restart gives it back as it was.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use routing::{
    AgentConfig, AgentId, AgentSnapshot, AgentTable, CallId, CallbackDial, CallbackEntry,
    CallbackError, CallbackEvent, CallbackFailure, CallbackId, CallbackStatus, CallerContext,
    DirectOffer, EnqueueError, Enqueued, Millis, Offer, OfferFailure, Priority, QueueConfig,
    QueueId, QueueStats, RequestedState, Router, RouterConfig, RouterEvent, RoutingError,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// What the routing task tells one call.
#[derive(Debug, Clone)]
pub enum RouterMessage {
    /// Ring these agents for this call.
    Offer(Offer),
    /// The call moved to another queue (max wait, or a full line).
    Overflowed {
        /// The new queue.
        to: QueueId,
        /// The caller's priority there.
        priority: Priority,
    },
    /// Nobody will take the call: play this message and hang up.
    GiveUp {
        /// The message (a prompt id of the dialplan).
        message: routing::PromptId,
    },
    /// Nobody will take the call: take a voicemail for this queue.
    Voicemail {
        /// The queue whose department gets the message.
        queue: QueueId,
    },
}

/// What routing decided about a callback entry, for the callback dialer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackNews {
    /// Ring this agent (claimed already), then call the patient.
    Dial(CallbackDial),
    /// The patient did not answer: tried again from `at` (Unix ms).
    Rescheduled {
        /// The entry.
        callback: CallbackId,
        /// Tries at the patient so far.
        attempts: u32,
        /// Not dialed before this, Unix milliseconds.
        at: u64,
        /// Why the last try failed.
        reason: CallbackFailure,
    },
    /// The last try failed: the entry left routing.
    Exhausted {
        /// The entry.
        callback: CallbackId,
        /// Tries made.
        attempts: u32,
        /// Why the last try failed.
        reason: CallbackFailure,
    },
}

/// How a callback dial went, for routing ([`RouterHandle::callback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackInput {
    /// The agent answered: the patient is called now.
    AgentAnswered(AgentId),
    /// The agent's phone did not answer (a miss; the entry keeps its place).
    AgentFailed(AgentId, OfferFailure),
    /// The patient answered: the two talk.
    Answered,
    /// The patient's leg failed: a try is spent.
    Failed(CallbackFailure),
    /// It is over (hung up after the patient answered, or withdrawn).
    Ended,
}

/// A kept place: the answer to [`RouterHandle::hold_place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPlace {
    /// Its 1-based place among everyone its queue will serve.
    pub position: usize,
    /// The entry (its enqueue time in Unix milliseconds).
    pub status: CallbackStatus,
}

#[derive(Debug)]
pub(super) enum Command {
    Enqueue {
        call: CallId,
        /// The call's journal id (the claim history names it).
        record: Arc<str>,
        queue: QueueId,
        priority: Priority,
        context: CallerContext,
        owner: mpsc::UnboundedSender<RouterMessage>,
        reply: oneshot::Sender<Result<Enqueued, EnqueueError>>,
    },
    Transfer {
        call: CallId,
        queue: QueueId,
        direct: Option<DirectOffer>,
        keep_place: bool,
        reply: oneshot::Sender<Result<Enqueued, EnqueueError>>,
    },
    HoldPlace {
        call: CallId,
        callback: CallbackId,
        reply: oneshot::Sender<Result<HeldPlace, CallbackError>>,
    },
    AddCallback {
        entry: CallbackEntry,
        reply: oneshot::Sender<Result<usize, CallbackError>>,
    },
    Callback(CallbackId, CallbackInput),
    /// The node drains: no more callback dials ([`Router::pause_callbacks`]).
    PauseCallbacks,
    Cancel(CallId),
    CallEnded(CallId),
    Answered(CallId, AgentId),
    OfferFailed(CallId, AgentId, OfferFailure),
    Registered(AgentId),
    Unregistered(AgentId),
    SetState {
        agent: AgentId,
        state: RequestedState,
        reply: oneshot::Sender<Result<AgentSnapshot, RoutingError>>,
    },
    OutboundStarted(AgentId, oneshot::Sender<Result<(), RoutingError>>),
    OutboundAnswered(AgentId),
    OutboundEnded(AgentId, Duration),
    Stats(oneshot::Sender<Vec<QueueStats>>),
    Position(CallId, oneshot::Sender<Option<usize>>),
    Estimate(QueueId, Priority, oneshot::Sender<Option<Duration>>),
    Reconfigure {
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
        reply: oneshot::Sender<Result<(), routing::ConfigError>>,
    },
    /// Redis's answers and the claims' feed (`--redis`, app/claims.rs).
    Claims(super::claims::ClaimInput),
}

/// The routing task has stopped.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the routing service has stopped")]
pub struct RouterStopped;

/// A cheap handle to the routing task.
#[derive(Debug, Clone)]
pub struct RouterHandle {
    commands: mpsc::UnboundedSender<Command>,
    table: Arc<AgentTable>,
    agents_changed: watch::Receiver<u64>,
    /// With `--redis`: told each state set here (API, feature codes, the
    /// agent page), so the cluster task shares it.
    states_set: Arc<std::sync::OnceLock<mpsc::UnboundedSender<(AgentId, RequestedState)>>>,
}

impl RouterHandle {
    /// The agent table, for reading snapshots.
    pub fn table(&self) -> &Arc<AgentTable> {
        &self.table
    }

    /// Wakes when an agent's state or registration changed (a count): the
    /// lead desk offers waiting leads then.
    pub fn agents_changed(&self) -> watch::Receiver<u64> {
        self.agents_changed.clone()
    }

    fn send(&self, command: Command) -> Result<(), RouterStopped> {
        self.commands.send(command).map_err(|_| RouterStopped)
    }

    /// Puts a caller in a queue; offers and news come to `owner`.
    pub async fn enqueue(
        &self,
        call: CallId,
        record: Arc<str>,
        queue: QueueId,
        priority: Priority,
        context: CallerContext,
        owner: mpsc::UnboundedSender<RouterMessage>,
    ) -> Result<Result<Enqueued, EnqueueError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Enqueue {
            call,
            record,
            queue,
            priority,
            context,
            owner,
            reply,
        })?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// The agent connected to `call` transfers it to `queue` (first to
    /// `direct`'s agent, when given): see [`Router::transfer`]; with
    /// `keep_place`, the agent's device was lost and the caller goes back
    /// in their first place ([`Router::requeue`]).
    pub async fn transfer(
        &self,
        call: CallId,
        queue: QueueId,
        direct: Option<DirectOffer>,
        keep_place: bool,
    ) -> Result<Result<Enqueued, EnqueueError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Transfer {
            call,
            queue,
            direct,
            keep_place,
            reply,
        })?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// The caller `call`, waiting in line, hangs up to be called back: the
    /// entry `callback` keeps their place ([`Router::hold_place`]).
    pub async fn hold_place(
        &self,
        call: CallId,
        callback: CallbackId,
    ) -> Result<Result<HeldPlace, CallbackError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::HoldPlace {
            call,
            callback,
            reply,
        })?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// Gives routing a callback entry the journal kept (at start): its
    /// `enqueued_at` and `not_before` in Unix milliseconds.
    pub async fn add_callback(
        &self,
        entry: CallbackEntry,
    ) -> Result<Result<usize, CallbackError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::AddCallback { entry, reply })?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// How a callback's dial went.
    pub fn callback(&self, callback: CallbackId, input: CallbackInput) {
        let _ = self.send(Command::Callback(callback, input));
    }

    /// The caller hung up (queued, offered, or in the IVR after enqueueing).
    pub fn cancel(&self, call: CallId) {
        let _ = self.send(Command::Cancel(call));
    }

    /// The node drains (SIGTERM): routing dials no callback entry from now
    /// on and takes them out of the shared line; they keep their places in
    /// the journal for the next start ([`Router::pause_callbacks`]).
    pub fn pause_callbacks(&self) {
        let _ = self.send(Command::PauseCallbacks);
    }

    /// A connected call ended.
    pub fn call_ended(&self, call: CallId) {
        let _ = self.send(Command::CallEnded(call));
    }

    /// `agent` answered the offer for `call`.
    pub fn answered(&self, call: CallId, agent: AgentId) {
        let _ = self.send(Command::Answered(call, agent));
    }

    /// The offer to `agent` failed.
    pub fn offer_failed(&self, call: CallId, agent: AgentId, reason: OfferFailure) {
        let _ = self.send(Command::OfferFailed(call, agent, reason));
    }

    /// The agent's first binding appeared.
    pub fn registered(&self, agent: AgentId) {
        let _ = self.send(Command::Registered(agent));
    }

    /// The agent's last binding went.
    pub fn unregistered(&self, agent: AgentId) {
        let _ = self.send(Command::Unregistered(agent));
    }

    /// Sets an agent `away` or `available` (API, feature codes); with
    /// `--redis`, every node hears of it.
    pub async fn set_state(
        &self,
        agent: AgentId,
        state: RequestedState,
    ) -> Result<Result<AgentSnapshot, RoutingError>, RouterStopped> {
        let answer = self.apply_shared_state(agent.clone(), state).await;
        if let (Ok(Ok(_)), Some(shared)) = (&answer, self.states_set.get()) {
            let _ = shared.send((agent, state));
        }
        answer
    }

    /// From now on, each state set through [`RouterHandle::set_state`]
    /// goes to `states` too (the cluster task). Once.
    pub fn share_states(&self, states: mpsc::UnboundedSender<(AgentId, RequestedState)>) {
        let _ = self.states_set.set(states);
    }

    /// Sets an agent's state as another node set it: not shared again.
    pub async fn apply_shared_state(
        &self,
        agent: AgentId,
        state: RequestedState,
    ) -> Result<Result<AgentSnapshot, RoutingError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::SetState {
            agent,
            state,
            reply,
        })?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// `agent` places a call out (click-to-call): claimed, so no queue
    /// call rings them meanwhile; refused unless they are available.
    pub async fn outbound_started(
        &self,
        agent: AgentId,
    ) -> Result<Result<(), RoutingError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::OutboundStarted(agent, reply))?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// The agent answered their own call out: `on_call`.
    pub fn outbound_answered(&self, agent: AgentId) {
        let _ = self.send(Command::OutboundAnswered(agent));
    }

    /// The call out ended: released, or `wrap_up` for `wrap_up`.
    pub fn outbound_ended(&self, agent: AgentId, wrap_up: Duration) {
        let _ = self.send(Command::OutboundEnded(agent, wrap_up));
    }

    /// Live statistics of every queue.
    pub async fn stats(&self) -> Result<Vec<QueueStats>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stats(reply))?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// The caller's position in their queue (1 = next); with `--redis`,
    /// among the callers of every node.
    pub async fn position(&self, call: CallId) -> Result<Option<usize>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Position(call, reply))?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// An honest wait estimate, `None` when there are too few samples.
    pub async fn estimate(
        &self,
        queue: QueueId,
        priority: Priority,
    ) -> Result<Option<Duration>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Estimate(queue, priority, reply))?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// Applies a reloaded dialplan's queues and agents.
    pub async fn reconfigure(
        &self,
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
    ) -> Result<Result<(), routing::ConfigError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Reconfigure {
            queues,
            agents,
            reply,
        })?;
        answer.await.map_err(|_| RouterStopped)
    }
}

/// The routing task's handle, its task, and the callback dialer's news.
pub type Started = (
    RouterHandle,
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<CallbackNews>,
);

/// Starts the routing task; with `claims` (`--redis`), no agent is rung
/// before this node holds their claim (app/claims.rs).
pub fn start(
    queues: Vec<QueueConfig>,
    agents: Vec<AgentConfig>,
    claims: Option<(
        super::claims::ClaimsConfig,
        Arc<super::journal::CallJournal>,
    )>,
    shutdown: CancellationToken,
) -> Result<Started, routing::ConfigError> {
    let router = Router::new(RouterConfig::default(), queues, agents)?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    let claims = claims.map(|(config, journal)| {
        let commands = commands.clone();
        let answers =
            super::claims::Answers::new(move |input| commands.send(Command::Claims(input)).is_ok());
        super::claims::Claims::start(config, answers, journal, shutdown.child_token())
    });
    let (callback_news, callback_rx) = mpsc::unbounded_channel();
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let (changed, agents_changed) = watch::channel(0);
    let handle = RouterHandle {
        commands,
        table: Arc::clone(router.table()),
        agents_changed,
        states_set: Arc::default(),
    };
    let task = tokio::spawn(
        Service {
            router,
            start: Instant::now(),
            epoch,
            owners: HashMap::new(),
            changed,
            callback_news,
            claims,
        }
        .run(command_rx, shutdown),
    );
    Ok((handle, task, callback_rx))
}

/// A call's task in routing: where its news goes, and its journal id.
struct Owner {
    sender: mpsc::UnboundedSender<RouterMessage>,
    record: Arc<str>,
}

impl Owner {
    fn send(&self, message: RouterMessage) -> Result<(), mpsc::error::SendError<RouterMessage>> {
        self.sender.send(message)
    }
}

struct Service {
    router: Router,
    start: Instant,
    /// Unix milliseconds at `start`: the router's clock reads wall time
    /// (see the module docs).
    epoch: u64,
    owners: HashMap<CallId, Owner>,
    /// Bumped when agents change (see [`RouterHandle::agents_changed`]).
    changed: watch::Sender<u64>,
    /// To the callback dialer.
    callback_news: mpsc::UnboundedSender<CallbackNews>,
    /// With `--redis`: the claims of the agents this node rings.
    claims: Option<super::claims::Claims>,
}

impl Service {
    fn now(&self) -> Millis {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Millis::new(self.epoch.saturating_add(elapsed))
    }

    fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at.as_millis().saturating_sub(self.epoch))
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut queues_changed = true;
        loop {
            let now = self.now();
            if let Some(claims) = &mut self.claims {
                // This node's waiting callers, shared (app/claims.rs).
                claims.publish_line(&self.router, now, std::mem::take(&mut queues_changed));
            }
            let deadline = self.router.poll_timeout().map(|at| self.instant(at));
            let sleep = super::sleep_until(deadline);
            tokio::select! {
                () = shutdown.cancelled() => return,
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    queues_changed = matches!(command, Command::Reconfigure { .. });
                    self.handle(command);
                }
                () = sleep => {
                    let now = self.now();
                    self.router.handle_timeout(now);
                }
            }
            self.drain();
        }
    }

    fn handle(&mut self, command: Command) {
        let now = self.now();
        let report = |result: Result<(), RoutingError>, what: &str| {
            if let Err(error) = result {
                // Reports racing a hang-up are expected (routing docs).
                debug!(%error, "routing: {what} ignored");
            }
        };
        match command {
            Command::Enqueue {
                call,
                record,
                queue,
                priority,
                context,
                owner,
                reply,
            } => {
                let result = self.router.enqueue(now, call, &queue, priority, context);
                if result.is_ok() {
                    self.owners.insert(
                        call,
                        Owner {
                            sender: owner,
                            record,
                        },
                    );
                }
                let _ = reply.send(result);
            }
            Command::Transfer {
                call,
                queue,
                direct,
                keep_place,
                reply,
            } => {
                let moved = if keep_place {
                    self.router.requeue(now, call, &queue)
                } else {
                    self.router.transfer(now, call, &queue, direct)
                };
                let _ = reply.send(moved);
            }
            Command::HoldPlace {
                call,
                callback,
                reply,
            } => {
                let held = self.router.hold_place(now, call, callback).map(|position| {
                    // The call left routing: nothing more goes to its task.
                    self.owners.remove(&call);
                    HeldPlace {
                        position,
                        status: self
                            .router
                            .callback_status(callback)
                            .expect("an entry hold_place just made is in routing"),
                    }
                });
                let _ = reply.send(held);
            }
            Command::AddCallback { entry, reply } => {
                let _ = reply.send(self.router.add_callback(now, entry));
            }
            Command::Callback(callback, input) => {
                let result = match input {
                    CallbackInput::AgentAnswered(agent) => {
                        self.router.callback_agent_answered(now, callback, &agent)
                    }
                    CallbackInput::AgentFailed(agent, reason) => self
                        .router
                        .callback_agent_failed(now, callback, &agent, reason),
                    CallbackInput::Answered => self.router.callback_answered(now, callback),
                    CallbackInput::Failed(reason) => {
                        self.router.callback_failed(now, callback, reason)
                    }
                    CallbackInput::Ended => self.router.callback_ended(now, callback),
                };
                if let Err(error) = result {
                    debug!(%error, "routing: a callback's outcome ignored");
                }
            }
            Command::PauseCallbacks => self.router.pause_callbacks(),
            Command::Cancel(call) => {
                self.owners.remove(&call);
                if let Some(claims) = &mut self.claims {
                    claims.cancelled(call);
                }
                report(self.router.cancel(now, call), "cancel");
            }
            Command::CallEnded(call) => {
                self.owners.remove(&call);
                report(self.router.call_ended(now, call), "call ended");
            }
            Command::Answered(call, agent) => {
                report(self.router.answered(now, call, &agent), "answer")
            }
            Command::OfferFailed(call, agent, reason) => {
                report(
                    self.router.offer_failed(now, call, &agent, reason),
                    "offer failure",
                );
            }
            Command::Registered(agent) => {
                report(self.router.registered(now, &agent), "registration");
                self.changed.send_modify(|count| *count += 1);
            }
            Command::Unregistered(agent) => {
                report(self.router.unregistered(now, &agent), "unregistration");
                self.changed.send_modify(|count| *count += 1);
            }
            Command::SetState {
                agent,
                state,
                reply,
            } => {
                let _ = reply.send(self.router.set_agent_state(now, &agent, state));
            }
            Command::OutboundStarted(agent, reply) => {
                let started = self.router.outbound_started(&agent);
                match (&mut self.claims, started) {
                    (Some(claims), Ok(())) => claims.outbound(&agent, reply),
                    (_, started) => {
                        let _ = reply.send(started);
                    }
                }
            }
            Command::OutboundAnswered(agent) => {
                if let Err(error) = self.router.outbound_answered(now, &agent) {
                    debug!(%error, "a call out's answer changed no agent");
                }
            }
            Command::OutboundEnded(agent, wrap_up) => {
                if let Err(error) = self.router.outbound_ended(now, &agent, wrap_up) {
                    debug!(%error, "a call out's end changed no agent");
                }
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.router.queue_stats(now));
            }
            Command::Position(call, reply) => match &self.claims {
                // Cluster-wide with --redis (app/claims.rs).
                Some(claims) => claims.position(&self.router, now, call, reply),
                None => {
                    let _ = reply.send(self.router.position(now, call));
                }
            },
            Command::Estimate(queue, priority, reply) => {
                let _ = reply.send(self.router.estimate_wait(&queue, priority));
            }
            Command::Reconfigure {
                queues,
                agents,
                reply,
            } => {
                let _ = reply.send(self.router.reconfigure(queues, agents));
                // A reload may change agents' skills and lead capacities.
                self.changed.send_modify(|count| *count += 1);
            }
            Command::Claims(input) => {
                let ready = match &mut self.claims {
                    Some(claims) => claims.input(&mut self.router, now, input),
                    None => None,
                };
                match ready {
                    Some(super::claims::Ready::Offer(offer)) => self.deliver(now, offer),
                    Some(super::claims::Ready::Dial(dial)) => {
                        self.send_callback_news(now, CallbackNews::Dial(dial));
                    }
                    None => {}
                }
            }
        }
    }

    /// Sends an offer to its call (claimed, when claims are on).
    fn deliver(&mut self, now: Millis, offer: Offer) {
        let call = offer.call;
        let delivered = self
            .owners
            .get(&call)
            .is_some_and(|owner| owner.send(RouterMessage::Offer(offer.clone())).is_ok());
        if !delivered {
            // The call's task is gone: the caller is not there any more.
            self.owners.remove(&call);
            let _ = self.router.cancel(now, call);
            if let Some(claims) = &mut self.claims {
                claims.cancelled(call);
            }
        }
    }

    fn send_callback_news(&mut self, now: Millis, news: CallbackNews) {
        if let Err(lost) = self.callback_news.send(news) {
            // The dialer has stopped (the daemon is stopping): a dial
            // is not made, its agent goes back; the journal keeps the
            // entry for the next start.
            if let CallbackNews::Dial(dial) = lost.0 {
                let _ = self.router.callback_ended(now, dial.callback);
            }
        }
    }

    fn drain(&mut self) {
        let now = self.now();
        loop {
            // The decision itself: choose and claim (the hot path).
            let started = std::time::Instant::now();
            let decided = self.router.poll_offer(now);
            metrics::histogram!("frontdesk_routing_decision_seconds")
                .record(started.elapsed().as_secs_f64());
            let Some(offer) = decided else { break };
            // With claims, the offer waits for them (app/claims.rs).
            let offer = match &mut self.claims {
                Some(claims) => {
                    let record = self.owners.get(&offer.call).map(|o| Arc::clone(&o.record));
                    claims.offer(&self.router, offer, record)
                }
                None => Some(offer),
            };
            if let Some(offer) = offer {
                self.deliver(now, offer);
            }
        }
        while let Some(event) = self.router.poll_callback() {
            let news = match event {
                CallbackEvent::Dial(dial) => match &mut self.claims {
                    Some(claims) => match claims.dial(&self.router, dial) {
                        Some(dial) => CallbackNews::Dial(dial),
                        // Sent once claimed.
                        None => continue,
                    },
                    None => CallbackNews::Dial(dial),
                },
                CallbackEvent::Rescheduled {
                    callback,
                    attempts,
                    at,
                    reason,
                    ..
                } => CallbackNews::Rescheduled {
                    callback,
                    attempts,
                    at: at.as_millis(),
                    reason,
                },
                CallbackEvent::Exhausted {
                    callback,
                    attempts,
                    reason,
                    ..
                } => CallbackNews::Exhausted {
                    callback,
                    attempts,
                    reason,
                },
            };
            self.send_callback_news(now, news);
        }
        while let Some(event) = self.router.poll_event() {
            match event {
                RouterEvent::AgentStateChanged {
                    agent, from, to, ..
                } => {
                    info!(agent = %agent, from = from.as_str(), to = to.as_str(), "agent state");
                    if let Some(claims) = &mut self.claims {
                        // Its state now, not the event's: the agent may be
                        // ringing again already for the next offer.
                        let state = self.router.table().state(&agent).unwrap_or(to);
                        claims.state_changed(&agent, state);
                    }
                    self.changed.send_modify(|count| *count += 1);
                    metrics::counter!("frontdesk_agent_state_changes_total", "to" => to.as_str())
                        .increment(1);
                }
                RouterEvent::Overflowed {
                    call,
                    from,
                    to,
                    priority,
                    ..
                } => {
                    info!(call = call.0, from = %from, to = %to, "call overflowed");
                    if let Some(owner) = self.owners.get(&call) {
                        let _ = owner.send(RouterMessage::Overflowed { to, priority });
                    }
                }
                RouterEvent::GiveUp { call, message, .. } => {
                    if let Some(owner) = self.owners.remove(&call) {
                        let _ = owner.send(RouterMessage::GiveUp { message });
                    }
                }
                RouterEvent::Voicemail { call, queue, .. } => {
                    if let Some(owner) = self.owners.remove(&call) {
                        let _ = owner.send(RouterMessage::Voicemail { queue });
                    }
                }
            }
        }
    }
}
