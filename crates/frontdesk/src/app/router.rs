//! The routing service: one task owns the sans-IO [`routing::Router`]
//! (STYLE.md: one owner per piece of state). Calls, the registrar and the
//! admin API talk to it through a [`RouterHandle`]; offers and queue news
//! go back to each call's own channel.
//!
//! The agent availability table itself is shared read-only
//! ([`RouterHandle::table`]): the API reads snapshots without asking the
//! task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use routing::{
    AgentConfig, AgentId, AgentSnapshot, AgentTable, CallId, CallerContext, DirectOffer,
    EnqueueError, Enqueued, Millis, Offer, OfferFailure, Priority, QueueConfig, QueueId,
    QueueStats, RequestedState, Router, RouterConfig, RouterEvent, RoutingError,
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

#[derive(Debug)]
enum Command {
    Enqueue {
        call: CallId,
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
        reply: oneshot::Sender<Result<Enqueued, EnqueueError>>,
    },
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
        queue: QueueId,
        priority: Priority,
        context: CallerContext,
        owner: mpsc::UnboundedSender<RouterMessage>,
    ) -> Result<Result<Enqueued, EnqueueError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Enqueue {
            call,
            queue,
            priority,
            context,
            owner,
            reply,
        })?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// The agent connected to `call` transfers it to `queue` (first to
    /// `direct`'s agent, when given): see [`Router::transfer`].
    pub async fn transfer(
        &self,
        call: CallId,
        queue: QueueId,
        direct: Option<DirectOffer>,
    ) -> Result<Result<Enqueued, EnqueueError>, RouterStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Transfer {
            call,
            queue,
            direct,
            reply,
        })?;
        answer.await.map_err(|_| RouterStopped)
    }

    /// The caller hung up (queued, offered, or in the IVR after enqueueing).
    pub fn cancel(&self, call: CallId) {
        let _ = self.send(Command::Cancel(call));
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

    /// Sets an agent `away` or `available` (API, feature codes).
    pub async fn set_state(
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

    /// The caller's position in their queue (1 = next).
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

/// Starts the routing task.
pub fn start(
    queues: Vec<QueueConfig>,
    agents: Vec<AgentConfig>,
    shutdown: CancellationToken,
) -> Result<(RouterHandle, tokio::task::JoinHandle<()>), routing::ConfigError> {
    let router = Router::new(RouterConfig::default(), queues, agents)?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (changed, agents_changed) = watch::channel(0);
    let handle = RouterHandle {
        commands,
        table: Arc::clone(router.table()),
        agents_changed,
    };
    let task = tokio::spawn(
        Service {
            router,
            start: Instant::now(),
            owners: HashMap::new(),
            changed,
        }
        .run(command_rx, shutdown),
    );
    Ok((handle, task))
}

struct Service {
    router: Router,
    start: Instant,
    owners: HashMap<CallId, mpsc::UnboundedSender<RouterMessage>>,
    /// Bumped when agents change (see [`RouterHandle::agents_changed`]).
    changed: watch::Sender<u64>,
}

impl Service {
    fn now(&self) -> Millis {
        Millis::new(self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at.as_millis())
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        loop {
            let deadline = self.router.poll_timeout().map(|at| self.instant(at));
            let sleep = super::sleep_until(deadline);
            tokio::select! {
                () = shutdown.cancelled() => return,
                command = commands.recv() => {
                    let Some(command) = command else { return };
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
                queue,
                priority,
                context,
                owner,
                reply,
            } => {
                let result = self.router.enqueue(now, call, &queue, priority, context);
                if result.is_ok() {
                    self.owners.insert(call, owner);
                }
                let _ = reply.send(result);
            }
            Command::Transfer {
                call,
                queue,
                direct,
                reply,
            } => {
                let _ = reply.send(self.router.transfer(now, call, &queue, direct));
            }
            Command::Cancel(call) => {
                self.owners.remove(&call);
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
                let _ = reply.send(self.router.outbound_started(&agent));
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
            Command::Position(call, reply) => {
                let _ = reply.send(self.router.position(now, call));
            }
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
            let call = offer.call;
            let delivered = self
                .owners
                .get(&call)
                .is_some_and(|owner| owner.send(RouterMessage::Offer(offer.clone())).is_ok());
            if !delivered {
                // The call's task is gone: the caller is not there any more.
                self.owners.remove(&call);
                let _ = self.router.cancel(now, call);
            }
        }
        while let Some(event) = self.router.poll_event() {
            match event {
                RouterEvent::AgentStateChanged {
                    agent, from, to, ..
                } => {
                    info!(agent = %agent, from = from.as_str(), to = to.as_str(), "agent state");
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
