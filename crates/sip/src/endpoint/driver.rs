//! The endpoint's tokio driver: one task that owns an [`EndpointCore`],
//! feeds it (inbound messages, the owners' commands, what the transport
//! could not deliver, its own lateness, the core's deadline) and carries
//! out what it says: transmits go on the transport's queues, events to the
//! owner of their Call-ID or to the application. It decides nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::EndpointConfig;
use super::core::{Dispatch, EndpointCore};
use crate::message::{Request, Response};
use crate::overload::{AdmissionStats, RefusalReason};
use crate::peer::Peer;
use crate::transaction::{
    ClientTransactionId, Event, ServerTransactionId, TransactionError, Transmit,
};
use crate::transport::{Inbound, SendTag, TransportHandle, Undelivered};

/// How often the driver measures its own lateness (the event-loop lag
/// admission control follows).
const LAG_TICK: Duration = Duration::from_millis(10);

/// How often the counters are published.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// How many queued inbound messages one turn of the loop takes before
/// carrying out what they caused.
const BATCH: usize = 64;

/// A request to the endpoint task.
#[derive(Debug)]
enum Command {
    Respond {
        transaction: ServerTransactionId,
        response: Response,
    },
    Send {
        request: Request,
        destination: Peer,
        reply: oneshot::Sender<Result<ClientTransactionId, TransactionError>>,
    },
    Cancel {
        transaction: ClientTransactionId,
    },
    Ack {
        request: Request,
        destination: Peer,
        reply: oneshot::Sender<Bytes>,
    },
    Raw {
        destination: Peer,
        bytes: Bytes,
    },
    Drain,
}

/// The endpoint task is gone (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SIP endpoint has stopped")]
pub struct Stopped;

/// Call-ID → owner, written by the owners, read by the endpoint task (see
/// "Routing by Call-ID" in the module docs). Guards never leave the
/// methods that take them, and none is held across `.await`.
type Routes = Arc<DashMap<ByteString, mpsc::UnboundedSender<Event>>>;

/// A cheap, cloneable handle to the endpoint task.
#[derive(Debug, Clone)]
pub struct EndpointHandle {
    commands: mpsc::UnboundedSender<Command>,
    routes: Routes,
}

impl EndpointHandle {
    /// Sends `response` on a server transaction.
    pub fn respond(
        &self,
        transaction: ServerTransactionId,
        response: Response,
    ) -> Result<(), Stopped> {
        self.commands
            .send(Command::Respond {
                transaction,
                response,
            })
            .map_err(|_| Stopped)
    }

    /// Starts a client transaction; the endpoint adds Via and Max-Forwards.
    pub async fn send_request(
        &self,
        request: Request,
        destination: Peer,
    ) -> Result<Result<ClientTransactionId, TransactionError>, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Send {
                request,
                destination,
                reply,
            })
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Cancels a pending INVITE client transaction.
    pub fn cancel(&self, transaction: ClientTransactionId) -> Result<(), Stopped> {
        self.commands
            .send(Command::Cancel { transaction })
            .map_err(|_| Stopped)
    }

    /// Sends the ACK for a 2xx; returns its bytes to resend on 2xx copies.
    pub async fn send_ack(&self, request: Request, destination: Peer) -> Result<Bytes, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Ack {
                request,
                destination,
                reply,
            })
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Sends bytes outside any transaction.
    pub fn send_raw(&self, destination: Peer, bytes: Bytes) -> Result<(), Stopped> {
        self.commands
            .send(Command::Raw { destination, bytes })
            .map_err(|_| Stopped)
    }

    /// The daemon drains: OPTIONS get 503 from now on
    /// ([`EndpointCore::start_draining`]).
    pub fn start_draining(&self) -> Result<(), Stopped> {
        self.commands.send(Command::Drain).map_err(|_| Stopped)
    }

    /// Routes every event with this Call-ID to `owner`, from now on.
    pub fn route(&self, call_id: ByteString, owner: mpsc::UnboundedSender<Event>) {
        self.routes.insert(call_id, owner);
    }

    /// Stops routing a Call-ID.
    pub fn unroute(&self, call_id: &str) {
        self.routes.remove(call_id);
    }

    /// Hands `event` to the owner of its Call-ID, if one is routed now;
    /// gives it back otherwise. For events that reached the application
    /// before their call was routed.
    pub fn deliver(&self, event: Event) -> Result<(), Event> {
        let owner = self.routes.get(event.call_id()).map(|owner| owner.clone());
        match owner {
            Some(owner) => owner.send(event).map_err(|returned| returned.0),
            None => Err(event),
        }
    }

    /// How many Call-IDs are routed to owners.
    pub fn routed(&self) -> usize {
        self.routes.len()
    }
}

/// Starts the endpoint task. New requests (and events about Call-IDs no
/// one owns) go to `application`, a bounded channel: when it is full, new
/// requests get 503.
pub fn start(
    config: EndpointConfig,
    transport: TransportHandle,
    inbound: mpsc::Receiver<Inbound>,
    application: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> (EndpointHandle, tokio::task::JoinHandle<()>) {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let routes: Routes = Arc::new(DashMap::new());
    let handle = EndpointHandle {
        commands,
        routes: Arc::clone(&routes),
    };
    let (undelivered_tx, undelivered) = mpsc::unbounded_channel();
    if !transport.report_undelivered(undelivered_tx) {
        tracing::warn!(
            "the transport reports undelivered messages to another endpoint: transport errors are not seen here"
        );
    }
    let driver = Driver {
        core: EndpointCore::new(config, Instant::now()),
        transport,
        routes,
        application,
        published_admission: AdmissionStats::default(),
    };
    let task = tokio::spawn(driver.run(inbound, command_rx, undelivered, shutdown));
    (handle, task)
}

#[derive(Debug)]
struct Driver {
    core: EndpointCore,
    transport: TransportHandle,
    routes: Routes,
    application: mpsc::Sender<Event>,
    /// Admission counters as last published.
    published_admission: AdmissionStats,
}

impl Driver {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut undelivered: mpsc::UnboundedReceiver<Undelivered>,
        shutdown: CancellationToken,
    ) {
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lag_tick = tokio::time::interval(LAG_TICK);
        lag_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let measure_lag = self.core.admission().is_some();
        loop {
            let deadline = self.core.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                received = inbound.recv() => {
                    let Some(first) = received else { break };
                    let now = Instant::now();
                    self.core.handle_inbound(now, first.peer, first.message);
                    for _ in 1..BATCH {
                        match inbound.try_recv() {
                            Ok(next) => self.core.handle_inbound(now, next.peer, next.message),
                            Err(_) => break,
                        }
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    self.command(Instant::now(), command);
                    while let Ok(command) = commands.try_recv() {
                        self.command(Instant::now(), command);
                    }
                }
                Some(failed) = undelivered.recv() => {
                    tracing::debug!(peer = %failed.peer, error = %failed.error, "not delivered");
                    let transaction = ClientTransactionId::from_raw(failed.tag.0);
                    self.core.handle_transport_error(Instant::now(), transaction);
                }
                _ = publish.tick() => self.publish(),
                scheduled = lag_tick.tick(), if measure_lag => {
                    let now = Instant::now();
                    let lag = now.saturating_duration_since(scheduled.into_std());
                    self.core.observe_lag(now, lag);
                }
                () = sleep => self.core.handle_timeout(Instant::now()),
            }
            self.carry_out(Instant::now());
        }
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Respond {
                transaction,
                response,
            } => {
                if let Err(error) = self.core.respond(now, transaction, response) {
                    tracing::debug!(%error, "response not sent");
                }
            }
            Command::Send {
                request,
                destination,
                reply,
            } => {
                let _ = reply.send(self.core.send_request(now, request, destination));
            }
            Command::Cancel { transaction } => {
                if let Err(error) = self.core.cancel(now, transaction) {
                    tracing::debug!(%error, "cancel not sent");
                }
            }
            Command::Ack {
                request,
                destination,
                reply,
            } => {
                let _ = reply.send(self.core.send_ack(now, request, destination));
            }
            Command::Raw { destination, bytes } => self.core.send_raw(now, destination, bytes),
            Command::Drain => self.core.start_draining(),
        }
    }

    /// Sends and delivers what the core produced, handing back what could
    /// not be delivered, until the core has nothing left.
    fn carry_out(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(transmit) = self.core.poll_transmit() {
                progressed = true;
                self.transmit(now, transmit);
            }
            while let Some(dispatch) = self.core.poll_event() {
                progressed = true;
                self.deliver(now, dispatch);
            }
            if !progressed {
                break;
            }
        }
        self.publish_refusals();
    }

    fn transmit(&mut self, now: Instant, transmit: Transmit) {
        let Transmit {
            peer,
            bytes,
            transaction,
        } = transmit;
        let tag = transaction.map(|id| SendTag(id.tag()));
        if let Err(error) = self.transport.enqueue(peer, bytes, tag) {
            tracing::debug!(%peer, %error, "send failed");
            if let Some(transaction) = transaction {
                self.core.handle_transport_error(now, transaction);
            }
        }
    }

    fn deliver(&mut self, now: Instant, dispatch: Dispatch) {
        match dispatch {
            Dispatch::ToOwner(event) => {
                let owner = self.routes.get(event.call_id()).map(|owner| owner.clone());
                let Some(owner) = owner else {
                    self.core.handle_unowned(now, event);
                    return;
                };
                if let Err(returned) = owner.send(event) {
                    // The owner ended without unrouting: forget it (unless
                    // the Call-ID has a new owner already), and the event
                    // belongs to nobody.
                    let event = returned.0;
                    self.routes
                        .remove_if(event.call_id(), |_, current| current.same_channel(&owner));
                    self.core.handle_unowned(now, event);
                }
            }
            // A full queue hands the event back whole: the core refuses a
            // request from it without anything having been copied.
            Dispatch::ToApplication(event) => match self.application.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.core.handle_application_busy(now, event);
                }
                Err(mpsc::error::TrySendError::Closed(event)) => {
                    tracing::debug!(call_id = %event.call_id(), "event dropped: no application");
                }
            },
        }
    }

    fn publish(&mut self) {
        let counters = self.core.counters();
        for (direction, method, count) in counters.requests() {
            metrics::counter!("frontdesk_sip_requests_total", "direction" => direction.as_str(), "method" => method)
                .absolute(count);
        }
        for (direction, code, count) in counters.responses() {
            metrics::counter!("frontdesk_sip_responses_total", "direction" => direction.as_str(), "code" => code.to_string())
                .absolute(count);
        }
        metrics::counter!("frontdesk_sip_unparseable_total").absolute(counters.unparseable());
        if let Some(control) = self.core.admission() {
            metrics::gauge!("frontdesk_calls_in_setup").set(f64::from(control.in_setup()));
            metrics::gauge!("frontdesk_admission_rate").set(control.rate());
            metrics::gauge!("frontdesk_event_loop_lag_seconds").set(control.lag().as_secs_f64());
            metrics::counter!("frontdesk_calls_admitted_total").absolute(control.stats().admitted);
        }
    }

    /// Refused calls, published as soon as there are new ones.
    fn publish_refusals(&mut self) {
        let Some(stats) = self.core.admission().map(|control| control.stats()) else {
            return;
        };
        if stats == self.published_admission {
            return;
        }
        let published = &self.published_admission;
        for (reason, count, before) in [
            (
                RefusalReason::InSetup,
                stats.refused_in_setup,
                published.refused_in_setup,
            ),
            (
                RefusalReason::Rate,
                stats.refused_rate,
                published.refused_rate,
            ),
            (
                RefusalReason::Refused,
                stats.refused_retransmission,
                published.refused_retransmission,
            ),
        ] {
            if count != before {
                metrics::counter!("frontdesk_calls_refused_total", "reason" => reason.as_str())
                    .absolute(count);
            }
        }
        self.published_admission = stats;
    }
}
