//! The SIP endpoint: one tokio task that owns the [`TransactionLayer`],
//! answers what any SIP element answers the same way, and routes the rest.
//!
//! It answers on its own (RFC 3261 §8.2, §11, RFC 4475):
//! - malformed requests, with the response [`validate`] decided (400 with
//!   a precise reason, 505, 501, 416, 420 with Unsupported), statelessly;
//! - OPTIONS outside a dialog: 200 with Allow, Accept and Supported,
//!   statelessly (§8.2.7): no transaction is kept, and a retransmission is
//!   answered with the same bytes because the To tag is derived from the
//!   request (a keyed hash of its Call-ID, From tag, branch and CSeq);
//! - methods the application does not serve: 405 with Allow;
//! - requests inside a dialog nobody owns: 481;
//! - an INVITE with Max-Forwards 0 (every call we take is forwarded to an
//!   agent leg): 483;
//! - when the application cannot keep up: 503 with Retry-After;
//! - a new INVITE that admission control refuses ([`crate::overload`]):
//!   503 with Retry-After, statelessly, before any transaction exists for
//!   it. A retransmission of an admitted INVITE never gets that far: the
//!   transaction layer absorbs it.
//!
//! Everything else is an [`Event`] for the owner of its Call-ID (a call
//! registered with [`EndpointHandle::route`]) or, for new requests, for the
//! application channel given to [`start`]. The task makes no decision about
//! what a call means.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;
use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::message::validate::{self, Policy, ValidRequest};
use crate::message::{
    HeaderName, Headers, Message, Method, ParseError, Request, Response, StatusCode, Via,
};
use crate::overload::{AdmissionConfig, AdmissionControl, CallClass, Refusal, SetupPermit};
use crate::peer::Peer;
use crate::transaction::{
    self, ClientTransactionId, Event, ServerTransactionId, TransactionError, TransactionLayer,
};
use crate::transport::{Inbound, TransportHandle, TrySend};

/// How the endpoint is set up.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Transaction timers, our sent-by, the RNG seed.
    pub transaction: transaction::Config,
    /// Methods the application serves (INVITE, REGISTER, BYE ...); OPTIONS,
    /// ACK and CANCEL are always served.
    pub allow: Vec<Method>,
    /// Option tags we support.
    pub supported: Vec<&'static str>,
    /// The product token for `Server` and `User-Agent`.
    pub product: String,
    /// Admission control of new INVITEs; `None` admits every one.
    pub admission: Option<AdmissionSetup>,
}

/// How new calls are admitted: the thresholds, and which calls are urgent.
#[derive(Clone)]
pub struct AdmissionSetup {
    /// Thresholds.
    pub config: AdmissionConfig,
    /// Urgent lines (admitted ahead of routine ones) from the new INVITE.
    pub classify: Arc<dyn Fn(&ValidRequest) -> CallClass + Send + Sync>,
}

impl std::fmt::Debug for AdmissionSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionSetup")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How often the endpoint's task measures its own lateness (the
/// event-loop lag admission control follows).
const LAG_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// An admitted INVITE's place among the calls in set-up is given back when
/// the INVITE gets its final response; past this, whatever happened.
const PERMIT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(64);

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
}

/// The endpoint task is gone (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SIP endpoint has stopped")]
pub struct Stopped;

/// A cheap, cloneable handle to the endpoint task.
#[derive(Debug, Clone)]
pub struct EndpointHandle {
    commands: mpsc::UnboundedSender<Command>,
    // Call-ID → owner. Written by call tasks, read by the endpoint task;
    // guards never leave these methods.
    routes: Arc<DashMap<ByteString, mpsc::UnboundedSender<Event>>>,
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

    /// Routes every event with this Call-ID to `owner`.
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
    let routes = Arc::new(DashMap::new());
    let handle = EndpointHandle {
        commands,
        routes: routes.clone(),
    };
    let allow = allow_header(&config.allow);
    let supported = config.supported.join(", ");
    let mut layer = TransactionLayer::new(config.transaction.clone());
    let tag_key = layer.random_token(16);
    let admission = config.admission.clone().map(|setup| Admitter {
        control: AdmissionControl::new(setup.config, Instant::now()),
        classify: setup.classify,
        admitted: None,
        permits: HashMap::new(),
    });
    let endpoint = Endpoint {
        admission,
        layer,
        tag_key,
        config,
        allow,
        supported,
        transport,
        routes,
        application,
        send_errors: mpsc::unbounded_channel(),
        counters: Counters::default(),
    };
    let task = tokio::spawn(endpoint.run(inbound, command_rx, shutdown));
    (handle, task)
}

fn allow_header(allow: &[Method]) -> String {
    let mut methods: Vec<&str> = vec!["INVITE", "ACK", "CANCEL", "OPTIONS"];
    for method in allow {
        if !methods.contains(&method.as_str()) {
            methods.push(method.as_str());
        }
    }
    methods.join(", ")
}

/// Admission control in the endpoint: the core, and the permits of the
/// INVITEs it admitted until their final responses.
struct Admitter {
    control: AdmissionControl,
    classify: Arc<dyn Fn(&ValidRequest) -> CallClass + Send + Sync>,
    /// Admitted, its transaction not yet created (within one turn).
    admitted: Option<SetupPermit>,
    permits: HashMap<ServerTransactionId, (Instant, SetupPermit)>,
}

impl std::fmt::Debug for Admitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitter")
            .field("control", &self.control)
            .field("permits", &self.permits.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Endpoint {
    admission: Option<Admitter>,
    layer: TransactionLayer,
    /// The secret mixed into stateless To tags (from the seeded RNG).
    tag_key: String,
    config: EndpointConfig,
    allow: String,
    supported: String,
    transport: TransportHandle,
    routes: Arc<DashMap<ByteString, mpsc::UnboundedSender<Event>>>,
    application: mpsc::Sender<Event>,
    send_errors: (
        mpsc::UnboundedSender<ClientTransactionId>,
        mpsc::UnboundedReceiver<ClientTransactionId>,
    ),
    counters: Counters,
}

/// SIP messages in and out, by method and status code. Counted in plain
/// maps on the endpoint's task (no registry lookup per message) and
/// published to `metrics` once a second.
#[derive(Debug, Default)]
struct Counters {
    requests: HashMap<(&'static str, &'static str), u64>,
    responses: HashMap<(&'static str, u16), u64>,
    unparseable: u64,
}

/// How often the counters are published.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Counters {
    fn count(&mut self, direction: &'static str, bytes: &[u8]) {
        if let Some(rest) = bytes.strip_prefix(b"SIP/2.0 ") {
            let code = rest
                .get(..3)
                .filter(|digits| digits.iter().all(u8::is_ascii_digit))
                .map_or(0, |d| {
                    d.iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
                });
            *self.responses.entry((direction, code)).or_default() += 1;
        } else {
            let method = bytes.split(|b| *b == b' ').next().unwrap_or_default();
            *self
                .requests
                .entry((direction, method_label(method)))
                .or_default() += 1;
        }
    }

    fn publish(&self) {
        for (&(direction, method), &count) in &self.requests {
            metrics::counter!("frontdesk_sip_requests_total", "direction" => direction, "method" => method)
                .absolute(count);
        }
        for (&(direction, code), &count) in &self.responses {
            metrics::counter!("frontdesk_sip_responses_total", "direction" => direction, "code" => code.to_string())
                .absolute(count);
        }
        metrics::counter!("frontdesk_sip_unparseable_total").absolute(self.unparseable);
    }
}

/// A method's name as a label; extension methods are `other`, so that a
/// peer cannot grow the label set.
fn method_label(method: &[u8]) -> &'static str {
    const KNOWN: [&str; 14] = [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    ];
    KNOWN
        .into_iter()
        .find(|known| known.as_bytes() == method)
        .unwrap_or("other")
}

/// How many queued inbound messages one turn of the loop takes before
/// flushing what they caused.
const BATCH: usize = 64;

impl Endpoint {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lag_tick = tokio::time::interval(LAG_TICK);
        lag_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.layer.poll_timeout();
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
                    self.handle_inbound(now, first);
                    for _ in 1..BATCH {
                        match inbound.try_recv() {
                            Ok(next) => self.handle_inbound(now, next),
                            Err(_) => break,
                        }
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    self.handle_command(Instant::now(), command);
                    while let Ok(command) = commands.try_recv() {
                        self.handle_command(Instant::now(), command);
                    }
                }
                Some(failed) = self.send_errors.1.recv() => {
                    self.layer.handle_transport_error(failed);
                }
                _ = publish.tick() => {
                    self.counters.publish();
                    self.publish_admission(Instant::now());
                }
                scheduled = lag_tick.tick(), if self.admission.is_some() => {
                    let now = Instant::now();
                    if let Some(admission) = self.admission.as_mut() {
                        let lag = now.saturating_duration_since(scheduled.into_std());
                        admission.control.observe_lag(now, lag);
                    }
                }
                () = sleep => self.layer.handle_timeout(Instant::now()),
            }
            self.flush(Instant::now());
        }
    }

    fn handle_inbound(&mut self, now: Instant, inbound: Inbound) {
        match &inbound.message {
            Ok(Message::Request(request)) => {
                *self
                    .counters
                    .requests
                    .entry(("in", method_label(request.method.as_str().as_bytes())))
                    .or_default() += 1;
            }
            Ok(Message::Response(response)) => {
                *self
                    .counters
                    .responses
                    .entry(("in", response.status.as_u16()))
                    .or_default() += 1;
            }
            Err(_) => self.counters.unparseable += 1,
        }
        match inbound.message {
            Err(error) => self.refuse_unparseable(inbound.peer, &error),
            Ok(Message::Response(response)) => match validate::response(response) {
                Ok(valid) => self.layer.handle_response(now, valid, inbound.peer),
                Err(discard) => tracing::debug!(peer = %inbound.peer, %discard, "response dropped"),
            },
            Ok(Message::Request(request)) => {
                let policy = Policy {
                    schemes: &["sip", "sips", "tel"],
                    supported: &self.config.supported,
                };
                match validate::request(request, &policy) {
                    Ok(valid)
                        if valid.request.method == Method::Options && valid.to.tag().is_none() =>
                    {
                        self.answer_options(valid, inbound.peer);
                    }
                    Ok(valid)
                        if valid.request.method == Method::Invite
                            && valid.to.tag().is_none()
                            && self.admission.is_some()
                            && !self.layer.has_server_transaction(&valid) =>
                    {
                        self.admit_invite(now, valid, inbound.peer);
                    }
                    Ok(valid) => self.layer.handle_request(now, valid, inbound.peer),
                    Err((request, rejection)) => {
                        tracing::debug!(peer = %inbound.peer, status = %rejection.status, reason = %rejection.reason, "request refused");
                        if rejection.answer {
                            let mut response = self.stateless(
                                &request.headers,
                                rejection.status,
                                &rejection.reason,
                            );
                            if !rejection.unsupported.is_empty() {
                                let tags: Vec<&str> =
                                    rejection.unsupported.iter().map(|t| &**t).collect();
                                response
                                    .headers
                                    .push(HeaderName::Unsupported, tags.join(", "));
                            }
                            self.send_now(inbound.peer, response.encode(), None);
                        }
                    }
                }
            }
        }
    }

    /// A new INVITE: admitted (its transaction starts, its permit waits for
    /// the transaction's id) or refused with a stateless 503.
    fn admit_invite(&mut self, now: Instant, mut request: ValidRequest, source: Peer) {
        let key = self.stateless_key(&request);
        let Some(admission) = self.admission.as_mut() else {
            return;
        };
        let class = (admission.classify)(&request);
        match admission.control.admit(now, class, key) {
            Ok(permit) => {
                admission.admitted = Some(permit);
                self.layer.handle_request(now, request, source);
                // Hand the new transaction's event over now, so the permit
                // meets its transaction id (events stay in order).
                self.flush(now);
                if let Some(admission) = self.admission.as_mut() {
                    admission.admitted = None;
                }
            }
            Err(Refusal {
                retry_after,
                reason,
            }) => {
                tracing::debug!(peer = %source, reason = reason.as_str(), "new call refused: overload");
                metrics::counter!("frontdesk_calls_refused_total", "reason" => reason.as_str())
                    .increment(1);
                let destination = stamp_received(&mut request, source);
                let tag = self.stateless_tag(&request);
                let mut busy = Response::to_request(
                    &request.request.headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(&tag),
                );
                busy.headers.push(HeaderName::RetryAfter, retry_after);
                busy.headers.push(HeaderName::Server, &self.config.product);
                self.send_now(destination, busy.encode(), None);
            }
        }
    }

    /// The admission gauges, and permits whose INVITE never got a final
    /// response in time given back.
    fn publish_admission(&mut self, now: Instant) {
        let Some(admission) = self.admission.as_mut() else {
            return;
        };
        admission
            .permits
            .retain(|_, (admitted, _)| now.saturating_duration_since(*admitted) < PERMIT_LIFETIME);
        let control = &admission.control;
        metrics::gauge!("frontdesk_calls_in_setup").set(f64::from(control.in_setup()));
        metrics::gauge!("frontdesk_admission_rate").set(control.rate());
        metrics::gauge!("frontdesk_event_loop_lag_seconds").set(control.lag().as_secs_f64());
        metrics::counter!("frontdesk_calls_admitted_total").absolute(control.stats().admitted);
    }

    /// OPTIONS outside a dialog: 200 with what we allow, accept and
    /// support, sent without a transaction (a stateless UAS, §8.2.7, as
    /// keep-alive pings and load generators need). The response depends
    /// only on the request, so a retransmission gets the same bytes again.
    fn answer_options(&mut self, mut request: ValidRequest, source: Peer) {
        let destination = stamp_received(&mut request, source);
        let tag = self.stateless_tag(&request);
        let mut ok = Response::to_request(&request.request.headers, StatusCode::OK, Some(&tag));
        ok.headers.push(HeaderName::Server, &self.config.product);
        ok.headers.push(HeaderName::Allow, &self.allow);
        ok.headers.push(HeaderName::Accept, "application/sdp");
        if !self.supported.is_empty() {
            ok.headers.push(HeaderName::Supported, &self.supported);
        }
        self.send_now(destination, ok.encode(), None);
    }

    /// A To tag that is the same for every copy of a request and differs
    /// between requests: a keyed hash of what identifies the request.
    fn stateless_tag(&self, request: &ValidRequest) -> String {
        format!("{:016x}", self.stateless_key(request))
    }

    /// A keyed hash of what identifies a request (its copies share it).
    fn stateless_key(&self, request: &ValidRequest) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.tag_key.hash(&mut hasher);
        request.call_id.hash(&mut hasher);
        request.from.tag().hash(&mut hasher);
        request.via.branch().hash(&mut hasher);
        request.cseq.seq.hash(&mut hasher);
        hasher.finish()
    }

    /// Answers a request that could not be parsed, when enough of it was
    /// read to answer (never an ACK, never a response).
    fn refuse_unparseable(&mut self, peer: Peer, error: &ParseError) {
        tracing::debug!(%peer, %error, "unparseable message");
        let Some(headers) = &error.request_headers else {
            return;
        };
        if headers.cseq().is_ok_and(|c| c.method == Method::Ack)
            || headers.top_via().is_err()
            || headers.call_id().is_err()
        {
            return;
        }
        let reason = error.to_string();
        let response = self.stateless(headers, error.status(), &reason);
        self.send_now(peer, response.encode(), None);
    }

    fn stateless(&mut self, headers: &Headers, status: StatusCode, reason: &str) -> Response {
        let tag = self.layer.random_token(10);
        let mut response = Response::to_request(headers, status, Some(&tag)).with_reason(reason);
        response
            .headers
            .push(HeaderName::Server, &self.config.product);
        response
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Respond {
                transaction,
                mut response,
            } => {
                if let Some(admission) = self.admission.as_mut() {
                    // The call's task has taken the INVITE up (a ring, the
                    // answer or a refusal): it is no longer waiting.
                    admission.permits.remove(&transaction);
                }
                if !response.headers.contains(&HeaderName::Server) {
                    response
                        .headers
                        .push(HeaderName::Server, &self.config.product);
                }
                if let Err(error) = self.layer.respond(now, transaction, response) {
                    tracing::debug!(%error, "response not sent");
                }
            }
            Command::Send {
                mut request,
                destination,
                reply,
            } => {
                if !request.headers.contains(&HeaderName::UserAgent) {
                    request
                        .headers
                        .push(HeaderName::UserAgent, &self.config.product);
                }
                let _ = reply.send(self.layer.send_request(now, request, destination));
            }
            Command::Cancel { transaction } => {
                if let Err(error) = self.layer.cancel(now, transaction) {
                    tracing::debug!(%error, "cancel not sent");
                }
            }
            Command::Ack {
                request,
                destination,
                reply,
            } => {
                let _ = reply.send(self.layer.send_ack(request, destination));
            }
            Command::Raw { destination, bytes } => self.layer.send_raw(destination, bytes),
        }
    }

    fn flush(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(transmit) = self.layer.poll_transmit() {
                progressed = true;
                self.send_now(transmit.peer, transmit.bytes, transmit.transaction);
            }
            while let Some(event) = self.layer.poll_event() {
                progressed = true;
                self.dispatch(now, event);
            }
            if !progressed {
                return;
            }
        }
    }

    fn send_now(&mut self, peer: Peer, bytes: Bytes, transaction: Option<ClientTransactionId>) {
        self.counters.count("out", &bytes);
        match self.transport.try_send(peer, bytes) {
            Ok(()) => {}
            Err(TrySend::Wait(bytes)) => {
                let transport = self.transport.clone();
                let errors = self.send_errors.0.clone();
                tokio::spawn(async move {
                    if let Err(error) = transport.send(peer, bytes).await {
                        tracing::debug!(%peer, %error, "send failed");
                        if let Some(transaction) = transaction {
                            let _ = errors.send(transaction);
                        }
                    }
                });
            }
            Err(TrySend::Failed(error)) => {
                tracing::debug!(%peer, %error, "send failed");
                if let Some(transaction) = transaction {
                    let _ = self.send_errors.0.send(transaction);
                }
            }
        }
    }

    fn owner(&self, call_id: &str) -> Option<mpsc::UnboundedSender<Event>> {
        self.routes.get(call_id).map(|owner| owner.clone())
    }

    fn dispatch(&mut self, now: Instant, event: Event) {
        if let Some(admission) = self.admission.as_mut() {
            match &event {
                Event::Request {
                    transaction,
                    request,
                    ..
                } if request.request.method == Method::Invite => {
                    if let Some(permit) = admission.admitted.take() {
                        admission.permits.insert(*transaction, (now, permit));
                    }
                }
                Event::Cancelled { transaction, .. } => {
                    admission.permits.remove(transaction);
                }
                _ => {}
            }
        }
        let call_id = event.call_id().clone();
        let event = match event {
            Event::Request {
                transaction,
                request,
                source,
            } => match self.core_answer(now, transaction, &request) {
                true => return,
                false => Event::Request {
                    transaction,
                    request,
                    source,
                },
            },
            other => other,
        };
        if let Some(owner) = self.owner(&call_id) {
            match owner.send(event) {
                Ok(()) => return,
                Err(returned) => {
                    // The owner ended: forget it, and treat the event as
                    // belonging to nobody.
                    self.routes.remove(&call_id);
                    self.unowned(now, returned.0);
                    return;
                }
            }
        }
        self.unowned(now, event);
    }

    /// Answers what needs no application; `true` when answered.
    fn core_answer(
        &mut self,
        now: Instant,
        transaction: ServerTransactionId,
        request: &ValidRequest,
    ) -> bool {
        let method = &request.request.method;
        let in_dialog = request.to.tag().is_some();
        // OPTIONS outside a dialog never gets here: see `answer_options`.
        let response = if !matches!(method, Method::Options) && !self.config.allow.contains(method)
        {
            let mut refused = self.answer(&request.request.headers, StatusCode::METHOD_NOT_ALLOWED);
            refused.headers.push(HeaderName::Allow, &self.allow);
            refused
        } else if *method == Method::Invite && !in_dialog && request.max_forwards == Some(0) {
            self.answer(&request.request.headers, StatusCode::TOO_MANY_HOPS)
        } else {
            return false;
        };
        if let Err(error) = self.layer.respond(now, transaction, response) {
            tracing::debug!(%error, "core answer not sent");
        }
        true
    }

    fn answer(&mut self, headers: &Headers, status: StatusCode) -> Response {
        let tag = self.layer.random_token(10);
        let mut response = Response::to_request(headers, status, Some(&tag));
        response
            .headers
            .push(HeaderName::Server, &self.config.product);
        response
    }

    /// An event whose Call-ID nobody owns.
    fn unowned(&mut self, now: Instant, event: Event) {
        if let Event::Request {
            transaction,
            request,
            ..
        } = &event
            && request.to.tag().is_some()
        {
            // §12.2.2: a request inside a dialog we do not know.
            let response = self.answer(&request.request.headers, StatusCode::CALL_DOES_NOT_EXIST);
            let _ = self.layer.respond(now, *transaction, response);
            return;
        }
        if matches!(event, Event::StrayAck { .. }) {
            return;
        }
        let overloaded = match &event {
            Event::Request {
                transaction,
                request,
                ..
            } => Some((*transaction, request.request.headers.clone())),
            _ => None,
        };
        if let Err(error) = self.application.try_send(event) {
            match (error, overloaded) {
                (mpsc::error::TrySendError::Full(_), Some((transaction, headers))) => {
                    tracing::warn!("application busy: new request refused with 503");
                    let mut busy = self.answer(&headers, StatusCode::SERVICE_UNAVAILABLE);
                    busy.headers.push(HeaderName::RetryAfter, 5);
                    let _ = self.layer.respond(now, transaction, busy);
                }
                (error, _) => tracing::debug!(%error, "event dropped"),
            }
        }
    }
}

/// Fills `received` and `rport` in the top Via (RFC 3261 §18.2.1, RFC 3581
/// §4) and returns where responses go (§18.2.2): the same rules the
/// transaction layer applies to the requests it keeps state for.
fn stamp_received(request: &mut ValidRequest, source: Peer) -> Peer {
    let source_ip = source.address.ip();
    let wants_rport = request.via.rport().is_some();
    if wants_rport || request.via.host.ip() != Some(source_ip) {
        request
            .via
            .params
            .set("received", Some(&source_ip.to_string()));
        if wants_rport {
            request
                .via
                .params
                .set("rport", Some(&source.address.port().to_string()));
        }
        replace_top_via(&mut request.request.headers, &request.via);
    }
    if source.transport.is_reliable() || wants_rport {
        return source;
    }
    Peer {
        address: SocketAddr::new(source_ip, request.via.port.unwrap_or(5060)),
        ..source
    }
}

/// Replaces the first value of the first Via header by `top`, keeping the
/// other values of that header line.
fn replace_top_via(headers: &mut Headers, top: &Via) {
    let Some(first) = headers.remove_first(&HeaderName::Via) else {
        return;
    };
    let mut value = top.to_string();
    // Most Via lines hold one value: only a comma means more to keep.
    if !first.value.contains(&b',') {
        headers.push_front(HeaderName::Via, value);
        return;
    }
    let rest = bytestring::ByteString::try_from(first.value)
        .ok()
        .and_then(|text| Via::parse_list(&text).ok())
        .unwrap_or_default();
    for via in rest.iter().skip(1) {
        value.push_str(", ");
        value.push_str(&via.to_string());
    }
    headers.push_front(HeaderName::Via, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Frame, Limits, parse_datagram};

    fn options(vias: &str) -> ValidRequest {
        let text = format!(
            "OPTIONS sip:frontdesk@127.0.0.1 SIP/2.0\r\n{vias}\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:frontdesk@127.0.0.1>\r\n\
             Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let Ok(Frame::Message(Message::Request(request))) =
            parse_datagram(Bytes::from(text), &Limits::default())
        else {
            panic!("a request");
        };
        validate::request(request, &Policy::default()).expect("valid")
    }

    fn via_lines(request: &ValidRequest) -> Vec<String> {
        request
            .request
            .headers
            .all(&HeaderName::Via)
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect()
    }

    #[test]
    fn rport_sends_back_to_the_source_and_stamps_one_via() {
        let mut request = options("Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKa;rport\r\n");
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        assert_eq!(stamp_received(&mut request, source), source);
        assert_eq!(
            via_lines(&request),
            ["SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKa;rport=40000;received=127.0.0.1"]
        );
    }

    #[test]
    fn without_rport_responses_go_to_the_via_port_at_the_source_address() {
        let mut request = options(
            "Via: SIP/2.0/UDP host.example.com:5062;branch=z9hG4bKa, SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb\r\n\
             Via: SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKc\r\n",
        );
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        let destination = stamp_received(&mut request, source);
        assert_eq!(destination, Peer::udp("127.0.0.1:5062".parse().unwrap()));
        assert_eq!(
            via_lines(&request),
            [
                "SIP/2.0/UDP host.example.com:5062;branch=z9hG4bKa;received=127.0.0.1, \
                 SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb",
                "SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKc",
            ]
        );
    }

    #[test]
    fn a_via_from_the_source_itself_is_left_alone() {
        let mut request = options("Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa\r\n");
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        assert_eq!(stamp_received(&mut request, source), source);
        assert_eq!(
            via_lines(&request),
            ["SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa"]
        );
    }

    #[test]
    fn a_host_name_via_without_a_port_is_answered_at_5060_of_the_source_address() {
        // §18.2.2: the sent-by host is not resolved; `received` (the
        // source address) and the sent-by port, 5060 when absent.
        let mut request = options("Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\r\n");
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        assert_eq!(
            stamp_received(&mut request, source),
            Peer::udp("127.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(
            via_lines(&request),
            ["SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw;received=127.0.0.1"]
        );
    }
}
