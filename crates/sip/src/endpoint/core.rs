//! [`EndpointCore`]: every decision of the endpoint, sans-IO. The module
//! docs of [`super`] list the decisions and the run loop.
//!
//! It reads no clock (`now` comes in with each input; clippy's
//! `disallowed-methods` holds it to that), owns no socket, spawns nothing
//! and knows no channel: an event goes out as a [`Dispatch`], and what the
//! driver could not deliver comes back in
//! ([`EndpointCore::handle_unowned`], [`EndpointCore::handle_application_busy`]).
#![warn(clippy::disallowed_methods)]

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use guard::WarnEvery;

use super::EndpointConfig;
use super::counters::Counters;
use super::via::stamp_received;
use crate::message::validate::{self, Policy, ValidRequest};
use crate::message::{
    HeaderName, Headers, Message, Method, ParseError, Request, Response, StatusCode,
};
use crate::overload::{AdmissionControl, CallClass, Refusal, SetupPermit};
use crate::peer::Peer;
use crate::transaction::{
    ClientTransactionId, Event, ServerTransactionId, TransactionError, TransactionLayer, Transmit,
};

/// An admitted INVITE's place among the calls in set-up is given back when
/// the INVITE is first answered; past this, whatever happened (64 × T1,
/// Timer B's default: its caller has given up by then).
pub const PERMIT_LIFETIME: Duration = Duration::from_secs(64);

/// How often permits past their lifetime are looked for, while any is held.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// `Retry-After` in the 503 to a request the application has no room for.
const BUSY_RETRY_AFTER: u32 = 5;

/// Refusals for a full application queue are warned about at most this
/// often, with how many there were (under load there is one per request).
const BUSY_WARN_EVERY: Duration = Duration::from_secs(10);

/// `Retry-After` in the 503 a draining endpoint answers OPTIONS with: about
/// how long a drain lasts before the daemon is gone or back.
pub const DRAINING_RETRY_AFTER: u32 = 30;

/// URI schemes of the requests we serve.
const SCHEMES: &[&str] = &["sip", "sips", "tel"];

/// Where an event goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Dispatch {
    /// To whoever owns the event's Call-ID; with no owner (or one that is
    /// gone), give it back with [`EndpointCore::handle_unowned`].
    ToOwner(Event),
    /// To the application; when it has no room, give it back with
    /// [`EndpointCore::handle_application_busy`].
    ToApplication(Event),
}

/// See the module docs of [`super`].
pub struct EndpointCore {
    config: EndpointConfig,
    layer: TransactionLayer,
    admission: Option<Admitter>,
    /// The secret mixed into stateless To tags (from the seeded RNG).
    tag_key: String,
    /// The value of `Allow`.
    allow: String,
    /// The value of `Supported`.
    supported: String,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Dispatch>,
    counters: Counters,
    /// When to warn about new requests refused for a full application queue.
    busy_warn: WarnEvery,
    /// SIGTERM received: OPTIONS get 503 (see [`EndpointCore::start_draining`]).
    draining: bool,
}

impl std::fmt::Debug for EndpointCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointCore")
            .field("layer", &self.layer)
            .field("admission", &self.admission)
            .field("transmits", &self.transmits.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// Admission control in the endpoint: the controller, and the permits of
/// the INVITEs it admitted until they are first answered.
struct Admitter {
    control: AdmissionControl,
    classify: Arc<dyn Fn(&ValidRequest) -> CallClass + Send + Sync>,
    /// Admitted, its transaction not yet created (within one input).
    admitted: Option<SetupPermit>,
    permits: HashMap<ServerTransactionId, (Instant, SetupPermit)>,
    /// When permits past their lifetime are next looked for.
    next_sweep: Option<Instant>,
}

impl std::fmt::Debug for Admitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitter")
            .field("control", &self.control)
            .field("permits", &self.permits.len())
            .finish_non_exhaustive()
    }
}

impl Admitter {
    fn hold(&mut self, now: Instant, transaction: ServerTransactionId, permit: SetupPermit) {
        self.permits.insert(transaction, (now, permit));
        self.next_sweep.get_or_insert(now + SWEEP_EVERY);
    }

    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_none_or(|at| at > now) {
            return;
        }
        self.permits
            .retain(|_, (admitted, _)| now.saturating_duration_since(*admitted) < PERMIT_LIFETIME);
        self.next_sweep = (!self.permits.is_empty()).then_some(now + SWEEP_EVERY);
    }
}

impl EndpointCore {
    /// A core with no transaction, starting at `now`.
    pub fn new(config: EndpointConfig, now: Instant) -> EndpointCore {
        let allow = allow_header(&config.allow);
        let supported = config.supported.join(", ");
        let mut layer = TransactionLayer::new(config.transaction.clone());
        let tag_key = layer.random_token(16);
        let admission = config.admission.as_ref().map(|setup| Admitter {
            control: AdmissionControl::new(setup.config, now),
            classify: Arc::clone(&setup.classify),
            admitted: None,
            permits: HashMap::new(),
            next_sweep: None,
        });
        EndpointCore {
            config,
            layer,
            admission,
            tag_key,
            allow,
            supported,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            busy_warn: WarnEvery::new(BUSY_WARN_EVERY),
            draining: false,
        }
    }

    /// The daemon drains (SIGTERM): from now on OPTIONS outside a dialog
    /// get 503 with Retry-After instead of 200, so that a proxy probing
    /// us (Kamailio's dispatcher, `ds_probing_mode` 1) marks us inactive
    /// and sends its new calls to the other nodes, while the calls in
    /// progress finish here. New INVITEs are refused by the application.
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    // ---- inputs -------------------------------------------------------

    /// A message (or what failed to parse) from `source`.
    pub fn handle_inbound(
        &mut self,
        now: Instant,
        source: Peer,
        message: Result<Message, ParseError>,
    ) {
        self.counters.inbound(&message);
        match message {
            Err(error) => self.refuse_unparseable(source, &error),
            Ok(Message::Response(response)) => match validate::response(response) {
                Ok(valid) => self.layer.handle_response(now, valid, source),
                Err(discard) => tracing::debug!(peer = %source, %discard, "response dropped"),
            },
            Ok(Message::Request(request)) => {
                let policy = Policy {
                    schemes: SCHEMES,
                    supported: &self.config.supported,
                };
                match validate::request(request, &policy) {
                    Ok(valid)
                        if valid.request.method == Method::Options && valid.to.tag().is_none() =>
                    {
                        self.answer_options(valid, source);
                    }
                    Ok(valid)
                        if valid.request.method == Method::Invite
                            && valid.to.tag().is_none()
                            && self.admission.is_some()
                            && !self.layer.has_server_transaction(&valid) =>
                    {
                        self.admit_invite(now, valid, source);
                    }
                    Ok(valid) => self.layer.handle_request(now, valid, source),
                    Err((request, rejection)) => {
                        tracing::debug!(peer = %source, status = %rejection.status, reason = %rejection.reason, "request refused");
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
                            self.transmit_stateless(source, response.encode());
                        }
                    }
                }
            }
        }
        self.pump(now);
    }

    /// The owner of `transaction` answers it. Its first answer ends the
    /// INVITE's set-up wait (admission control's place is given back).
    pub fn respond(
        &mut self,
        now: Instant,
        transaction: ServerTransactionId,
        mut response: Response,
    ) -> Result<(), TransactionError> {
        self.release(transaction);
        if !response.headers.contains(&HeaderName::Server) {
            response
                .headers
                .push(HeaderName::Server, &self.config.product);
        }
        let sent = self.layer.respond(now, transaction, response);
        self.pump(now);
        sent
    }

    /// Starts a client transaction; Via and Max-Forwards are added by the
    /// transaction layer, `User-Agent` here when missing.
    pub fn send_request(
        &mut self,
        now: Instant,
        mut request: Request,
        destination: Peer,
    ) -> Result<ClientTransactionId, TransactionError> {
        if !request.headers.contains(&HeaderName::UserAgent) {
            request
                .headers
                .push(HeaderName::UserAgent, &self.config.product);
        }
        let started = self.layer.send_request(now, request, destination);
        self.pump(now);
        started
    }

    /// Cancels a pending INVITE client transaction (RFC 3261 §9.1).
    pub fn cancel(
        &mut self,
        now: Instant,
        transaction: ClientTransactionId,
    ) -> Result<(), TransactionError> {
        let cancelled = self.layer.cancel(now, transaction);
        self.pump(now);
        cancelled
    }

    /// Sends the ACK for a 2xx; returns its bytes to resend on 2xx copies.
    pub fn send_ack(&mut self, now: Instant, request: Request, destination: Peer) -> Bytes {
        let bytes = self.layer.send_ack(request, destination);
        self.pump(now);
        bytes
    }

    /// Sends bytes outside any transaction.
    pub fn send_raw(&mut self, now: Instant, destination: Peer, bytes: Bytes) {
        self.layer.send_raw(destination, bytes);
        self.pump(now);
    }

    /// The transport could not deliver a request of `transaction`.
    pub fn handle_transport_error(&mut self, now: Instant, transaction: ClientTransactionId) {
        self.layer.handle_transport_error(transaction);
        self.pump(now);
    }

    /// The event loop ran `lag` late (admission control follows it).
    pub fn observe_lag(&mut self, now: Instant, lag: Duration) {
        if let Some(admission) = self.admission.as_mut() {
            admission.control.observe_lag(now, lag);
        }
    }

    /// Fires what is due at `now` (transaction timers, permits past their
    /// lifetime).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        if let Some(admission) = self.admission.as_mut() {
            admission.sweep(now);
        }
        self.pump(now);
    }

    /// A [`Dispatch::ToOwner`] event nobody owns: a request inside a
    /// dialog gets 481 (§12.2.2), a stray ACK is dropped, anything else
    /// goes to the application.
    pub fn handle_unowned(&mut self, now: Instant, event: Event) {
        match event {
            Event::Request {
                transaction,
                request,
                ..
            } if request.to.tag().is_some() => {
                let response =
                    self.answer(&request.request.headers, StatusCode::CALL_DOES_NOT_EXIST);
                self.answer_transaction(now, transaction, response);
            }
            Event::StrayAck { .. } => {}
            other => self.events.push_back(Dispatch::ToApplication(other)),
        }
        self.pump(now);
    }

    /// A [`Dispatch::ToApplication`] event the application had no room
    /// for: a request gets 503 with Retry-After (§21.5.4), anything else is
    /// dropped. The event comes back by value, so nothing of the request is
    /// copied to refuse it. The warning is rate-limited: under overload
    /// there is one refusal per new request.
    pub fn handle_application_busy(&mut self, now: Instant, event: Event) {
        match event {
            Event::Request {
                transaction,
                request,
                ..
            } => {
                if let Some(count) = self.busy_warn.hit(now) {
                    tracing::warn!(
                        refused = count,
                        "application busy: new request refused with 503 ({count} since the last such warning)"
                    );
                }
                let mut busy =
                    self.answer(&request.request.headers, StatusCode::SERVICE_UNAVAILABLE);
                busy.headers.push(HeaderName::RetryAfter, BUSY_RETRY_AFTER);
                self.answer_transaction(now, transaction, busy);
            }
            other => {
                tracing::debug!(call_id = %other.call_id(), "event dropped: the application is busy");
            }
        }
        self.pump(now);
    }

    // ---- outputs ------------------------------------------------------

    /// The next bytes to send, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event to deliver, in order.
    pub fn poll_event(&mut self) -> Option<Dispatch> {
        self.events.pop_front()
    }

    /// When [`EndpointCore::handle_timeout`] is next needed.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let layer = self.layer.poll_timeout();
        let sweep = self.admission.as_ref().and_then(|a| a.next_sweep);
        match (layer, sweep) {
            (Some(layer), Some(sweep)) => Some(layer.min(sweep)),
            (layer, sweep) => layer.or(sweep),
        }
    }

    // ---- what it holds ------------------------------------------------

    /// Messages in and out so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Admission control, when configured.
    pub fn admission(&self) -> Option<&AdmissionControl> {
        self.admission.as_ref().map(|a| &a.control)
    }

    /// Admitted INVITEs not answered yet (their places in set-up).
    pub fn held_permits(&self) -> usize {
        self.admission.as_ref().map_or(0, |a| a.permits.len())
    }

    /// Transactions alive (server, client).
    pub fn transactions(&self) -> (usize, usize) {
        self.layer.len()
    }

    // ---- decisions ----------------------------------------------------

    /// Moves what the transaction layer produced out: transmits as they
    /// are, events through [`EndpointCore::route`] (which may answer and
    /// so produce more), until it has nothing left.
    fn pump(&mut self, now: Instant) {
        loop {
            while let Some(transmit) = self.layer.poll_transmit() {
                self.counters.outbound(&transmit.bytes);
                self.transmits.push_back(transmit);
            }
            let Some(event) = self.layer.poll_event() else {
                return;
            };
            self.route(now, event);
        }
    }

    /// An event of the transaction layer: admission's bookkeeping, the
    /// answers that need no application, else for its Call-ID's owner.
    fn route(&mut self, now: Instant, event: Event) {
        if let Some(admission) = self.admission.as_mut() {
            match &event {
                Event::Request {
                    transaction,
                    request,
                    ..
                } if request.request.method == Method::Invite => {
                    if let Some(permit) = admission.admitted.take() {
                        admission.hold(now, *transaction, permit);
                    }
                }
                Event::Cancelled { transaction, .. } => {
                    admission.permits.remove(transaction);
                }
                _ => {}
            }
        }
        if let Event::Request {
            transaction,
            request,
            ..
        } = &event
            && self.core_answer(now, *transaction, request)
        {
            return;
        }
        self.events.push_back(Dispatch::ToOwner(event));
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
        self.answer_transaction(now, transaction, response);
        true
    }

    /// The core answers `transaction` itself: the INVITE's set-up is over.
    fn answer_transaction(
        &mut self,
        now: Instant,
        transaction: ServerTransactionId,
        response: Response,
    ) {
        self.release(transaction);
        if let Err(error) = self.layer.respond(now, transaction, response) {
            tracing::debug!(%error, "core answer not sent");
        }
    }

    /// Gives back the set-up place of `transaction`'s INVITE, if it holds one.
    fn release(&mut self, transaction: ServerTransactionId) {
        if let Some(admission) = self.admission.as_mut() {
            admission.permits.remove(&transaction);
        }
    }

    /// A new INVITE: admitted (its transaction starts, its permit meets
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
                // The new transaction's event comes out now, so the permit
                // meets its transaction id (events stay in order). If no
                // transaction came of it, the permit is given back here.
                self.pump(now);
                if let Some(admission) = self.admission.as_mut() {
                    admission.admitted = None;
                }
            }
            Err(Refusal {
                retry_after,
                reason,
            }) => {
                tracing::debug!(peer = %source, reason = reason.as_str(), "new call refused: overload");
                let destination = stamp_received(&mut request, source);
                let tag = self.stateless_tag(&request);
                let mut busy = Response::to_request(
                    &request.request.headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(&tag),
                );
                busy.headers.push(HeaderName::RetryAfter, retry_after);
                busy.headers.push(HeaderName::Server, &self.config.product);
                self.transmit_stateless(destination, busy.encode());
            }
        }
    }

    /// OPTIONS outside a dialog: 200 with what we allow, accept and
    /// support, sent without a transaction (a stateless UAS, §8.2.7, as
    /// keep-alive pings and load generators need). The response depends
    /// only on the request, so a retransmission gets the same bytes again.
    fn answer_options(&mut self, mut request: ValidRequest, source: Peer) {
        let destination = stamp_received(&mut request, source);
        let tag = self.stateless_tag(&request);
        if self.draining {
            let mut busy = Response::to_request(
                &request.request.headers,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&tag),
            )
            .with_reason("Draining");
            busy.headers
                .push(HeaderName::RetryAfter, DRAINING_RETRY_AFTER);
            busy.headers.push(HeaderName::Server, &self.config.product);
            self.transmit_stateless(destination, busy.encode());
            return;
        }
        let mut ok = Response::to_request(&request.request.headers, StatusCode::OK, Some(&tag));
        ok.headers.push(HeaderName::Server, &self.config.product);
        ok.headers.push(HeaderName::Allow, &self.allow);
        ok.headers.push(HeaderName::Accept, "application/sdp");
        if !self.supported.is_empty() {
            ok.headers.push(HeaderName::Supported, &self.supported);
        }
        self.transmit_stateless(destination, ok.encode());
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
        self.transmit_stateless(peer, response.encode());
    }

    fn stateless(&mut self, headers: &Headers, status: StatusCode, reason: &str) -> Response {
        let tag = self.layer.random_token(10);
        let mut response = Response::to_request(headers, status, Some(&tag)).with_reason(reason);
        response
            .headers
            .push(HeaderName::Server, &self.config.product);
        response
    }

    fn answer(&mut self, headers: &Headers, status: StatusCode) -> Response {
        let tag = self.layer.random_token(10);
        let mut response = Response::to_request(headers, status, Some(&tag));
        response
            .headers
            .push(HeaderName::Server, &self.config.product);
        response
    }

    fn transmit_stateless(&mut self, peer: Peer, bytes: Bytes) {
        self.counters.outbound(&bytes);
        self.transmits.push_back(Transmit {
            peer,
            bytes,
            transaction: None,
        });
    }
}

/// The value of `Allow`: what is always served, then what the application
/// serves.
fn allow_header(allow: &[Method]) -> String {
    let mut methods: Vec<&str> = vec!["INVITE", "ACK", "CANCEL", "OPTIONS"];
    for method in allow {
        if !methods.contains(&method.as_str()) {
            methods.push(method.as_str());
        }
    }
    methods.join(", ")
}
