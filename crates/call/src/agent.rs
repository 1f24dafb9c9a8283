//! The agent legs of a call (the B2BUA half): offers from routing become
//! INVITEs to the agents' registered contacts; the first to answer is
//! bridged to the patient; the others are cancelled; no answer, busy and
//! unreachable go back to routing, which offers the next agent. A bridged
//! agent may transfer the patient ([`crate::transfer`]).
//!
//! Ringing an agent takes two of the driver's answers: a port for the
//! agent's media ([`Action::LeasePort`]), then the INVITE's client
//! transaction ([`Action::Send`] with a token), which a CANCEL needs. A
//! leg the call gives up before they come (the caller hung up, another
//! agent answered) is cancelled as soon as its transaction is known.

use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use media::sdp::{self, LocalMedia, SessionDescription};
use media::session::Leg;
use rand::RngCore;
use routing::{AgentId, OfferFailure};
use sip::Peer;
use sip::dialog::Dialog;
use sip::message::validate::{ValidRequest, ValidResponse};
use sip::message::{HeaderName, Method, Request, StatusCode};
use sip::transaction::{ClientTransactionId, Event, ServerTransactionId};
use tracing::{debug, info, warn};

use crate::Outcome;
use crate::action::{Action, MediaAction, PortToken, RouterRequest, SendToken};
use crate::call::{Call, Environment, tag};
use crate::signal;

#[derive(Debug)]
pub(crate) enum LegState {
    /// Waiting for the port of the agent's media.
    Leasing { port: PortToken },
    /// INVITE sent, waiting for an answer until the ring deadline.
    Ringing,
    /// We cancelled it (ring timeout, another agent answered, the caller
    /// left); a crossing 2xx is ACKed and ended with BYE.
    Cancelling,
    /// The agent answered and is bridged to the patient.
    Connected {
        dialog: Box<Dialog>,
        /// The ACK, sent again for each retransmitted 2xx.
        ack: Request,
    },
    /// The agent transferred the patient: no longer bridged, still up to
    /// hear how the transfer ends (NOTIFY), then ended.
    Transferred {
        dialog: Box<Dialog>,
        /// The ACK, sent again for each retransmitted 2xx.
        ack: Request,
    },
    /// Over.
    Done,
}

impl LegState {
    /// The dialog of a leg that is still up (bridged or transferring).
    pub(crate) fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        match self {
            LegState::Connected { dialog, .. } | LegState::Transferred { dialog, .. } => {
                Some(dialog)
            }
            _ => None,
        }
    }
}

/// One INVITE to one agent.
#[derive(Debug)]
pub(crate) struct AgentLeg {
    agent: AgentId,
    call_id: ByteString,
    /// The INVITE's token until its transaction is known.
    token: SendToken,
    transaction: Option<ClientTransactionId>,
    /// Cancel as soon as the transaction is known.
    cancel_when_sent: bool,
    invite: Option<Request>,
    /// The device this leg rings (one of the agent's registrations).
    binding: Box<sip::registrar::Binding>,
    peer: Peer,
    local: Option<LocalMedia>,
    offer: Option<SessionDescription>,
    /// The agent's port, until it is bridged (or released).
    port: Option<PortToken>,
    ring_timeout: Duration,
    waited_secs: u64,
    ring_deadline: Option<Instant>,
    state: LegState,
}

impl AgentLeg {
    /// Our answer to the offer of a re-INVITE from the agent, as a new
    /// version of our session; `NoAudio` when it carries no SDP.
    fn answer_reoffer(
        &mut self,
        headers: &sip::message::Headers,
        body: &Bytes,
    ) -> Result<sdp::Answer, media::SdpError> {
        let local = self.local.as_mut().ok_or(media::SdpError::NoAudio)?;
        local.session_version += 1;
        let body = signal::sdp_body(headers, body).ok_or(media::SdpError::NoAudio)?;
        SessionDescription::parse(&body).and_then(|offer| sdp::create_answer(&offer, local))
    }

    /// Our tag on the leg (the From tag of our INVITE).
    fn local_tag(&self) -> String {
        self.invite
            .as_ref()
            .and_then(|invite| invite.headers.from().ok())
            .and_then(|from| from.tag().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Every agent leg of a call.
#[derive(Debug, Default)]
pub(crate) struct Legs {
    legs: Vec<AgentLeg>,
    connected: Option<usize>,
}

impl Legs {
    /// The agent bridged to the patient, if any.
    pub(crate) fn connected(&self) -> Option<&AgentId> {
        self.connected.map(|index| &self.legs[index].agent)
    }

    /// An offer is under way: an agent's phone is being rung (or its port
    /// leased).
    pub(crate) fn offering(&self) -> bool {
        self.legs
            .iter()
            .any(|leg| matches!(leg.state, LegState::Leasing { .. } | LegState::Ringing))
    }

    /// The earliest ring deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.legs
            .iter()
            .filter(|leg| matches!(leg.state, LegState::Ringing))
            .filter_map(|leg| leg.ring_deadline)
            .min()
    }

    /// Whether a leg waits for this port.
    pub(crate) fn wants_port(&self, token: PortToken) -> bool {
        self.legs
            .iter()
            .any(|leg| matches!(leg.state, LegState::Leasing { port } if port == token))
    }

    fn index_of(&self, call_id: &str) -> Option<usize> {
        self.legs.iter().position(|leg| leg.call_id == call_id)
    }

    /// Our tag on leg `index`.
    pub(crate) fn local_tag(&self, index: usize) -> String {
        self.legs[index].local_tag()
    }

    /// The agent of leg `index`.
    pub(crate) fn agent_of(&self, index: usize) -> &AgentId {
        &self.legs[index].agent
    }

    /// The bridged leg `index` was transferred: it is no longer the
    /// patient's agent, but stays up until the transfer is decided.
    pub(crate) fn set_transferred(&mut self, index: usize) {
        let leg = &mut self.legs[index];
        let state = std::mem::replace(&mut leg.state, LegState::Done);
        leg.state = match state {
            LegState::Connected { dialog, ack } => LegState::Transferred { dialog, ack },
            other => other,
        };
        if self.connected == Some(index) {
            self.connected = None;
        }
    }

    /// A new request in leg `index`'s dialog, and where to send it; `None`
    /// once the leg is over.
    pub(crate) fn request_on(&mut self, index: usize, method: Method) -> Option<(Request, Peer)> {
        let leg = self.legs.get_mut(index)?;
        let peer = leg.peer;
        let request = leg.state.dialog_mut()?.request(method);
        Some((request, peer))
    }

    /// Leg `index` is over (we sent BYE).
    pub(crate) fn finish(&mut self, index: usize) {
        if let Some(leg) = self.legs.get_mut(index) {
            leg.state = LegState::Done;
        }
    }

    /// The Call-IDs of every agent leg.
    pub(crate) fn call_ids(&self) -> Vec<ByteString> {
        self.legs.iter().map(|leg| leg.call_id.clone()).collect()
    }
}

/// Where to send an INVITE for `binding`. Registered through a proxy (a
/// Path, RFC 3327 §5.4): to the first Path URI, the proxy the REGISTER
/// came through, which relays it over the flow the phone opened to it
/// (RFC 3261 §12.2.1.1: a request with a pre-loaded route set goes to its
/// first URI; the Request-URI stays the contact). Over a stream, the connection
/// the phone registered on (over TLS the only way: frontdesk opens no
/// outbound TLS connection, so a phone whose TLS connection is gone is
/// unreachable until it registers again). Over UDP, the Contact when it
/// names the address the REGISTER came from (the phone is reachable as it
/// says); otherwise the REGISTER's source, the way through the phone's NAT.
pub(crate) fn ring_target(binding: &sip::registrar::Binding) -> Peer {
    let source = binding.source;
    if let Some(first) = binding.path.first() {
        return path_target(first, source);
    }
    if source.transport.is_reliable() {
        return source;
    }
    let contact = binding.uri().as_sip().and_then(|uri| {
        let ip = uri.host.ip()?;
        (ip == source.address.ip()).then(|| std::net::SocketAddr::new(ip, uri.port.unwrap_or(5060)))
    });
    match contact {
        Some(address) => Peer::udp(address),
        None => source,
    }
}

/// The address of a Path's first URI, the proxy nearest to us. The
/// REGISTER came from it: when the URI names that address, the REGISTER's
/// flow (and its connection, over a stream); a URI naming a host we would
/// have to resolve (we resolve no names) also means the REGISTER's source.
fn path_target(first: &sip::message::NameAddr, source: Peer) -> Peer {
    let Some(uri) = first.uri.as_sip() else {
        return source;
    };
    let Some(ip) = uri.host.ip() else {
        return source;
    };
    let default_port = if first.uri.scheme().eq_ignore_ascii_case("sips") {
        5061
    } else {
        5060
    };
    let address = std::net::SocketAddr::new(ip, uri.port.unwrap_or(default_port));
    if address == source.address {
        return source;
    }
    match uri.params.get("transport").flatten() {
        Some(transport) if transport.eq_ignore_ascii_case("tcp") => Peer {
            transport: sip::TransportKind::Tcp,
            address,
            connection: None,
        },
        // We open no TLS connection: only the REGISTER's own flow.
        Some(transport) if transport.eq_ignore_ascii_case("tls") => source,
        _ => Peer::udp(address),
    }
}

fn failure_for(status: StatusCode) -> OfferFailure {
    match status.as_u16() {
        486 | 600 => OfferFailure::Busy,
        603 => OfferFailure::Rejected,
        408 | 480 | 487 => OfferFailure::NoAnswer,
        _ => OfferFailure::Unreachable,
    }
}

impl Call {
    /// Routing offers `agent`: a port for the agent's media first.
    pub(crate) fn ring_agent(
        &mut self,
        agent: AgentId,
        ring_timeout: Duration,
        waited_secs: u64,
        env: &dyn Environment,
    ) {
        let mut bindings = env.bindings(agent.as_str());
        if bindings.is_empty() {
            debug!(agent = %agent, "offered agent has no binding");
            self.fail_offer(agent, OfferFailure::Unreachable);
            return;
        }
        // An attended transfer's INVITE replaces the consultation call on
        // the phone that holds it: that one device only.
        if self.replaces_for(&agent).is_some() {
            bindings.truncate(1);
        }
        // Every device of the agent rings (a desk phone, a softphone, the
        // browser): the first answer wins and the others are cancelled;
        // the offer fails only when all of them did (`leg_failed`). The
        // registrar bounds an agent's devices (`max_contacts`).
        for binding in bindings {
            let peer = ring_target(&binding);
            let call_id =
                ByteString::from(format!("{}-{}@frontdesk", tag(&mut self.rng), self.id.0));
            let port = self.port_token();
            let token = SendToken(self.next_token());
            self.legs.legs.push(AgentLeg {
                agent: agent.clone(),
                call_id,
                token,
                transaction: None,
                cancel_when_sent: false,
                invite: None,
                binding: Box::new(binding),
                peer,
                local: None,
                offer: None,
                port: Some(port),
                ring_timeout,
                waited_secs,
                ring_deadline: None,
                state: LegState::Leasing { port },
            });
            self.push(Action::LeasePort { token: port });
        }
    }

    /// One of `agent`'s legs failed (`reason`), its state already past
    /// ringing: the offer to the agent fails when none of their other
    /// devices still rings (or waits for its port).
    fn leg_failed(&mut self, agent: AgentId, reason: OfferFailure) {
        let still_ringing = self.legs.legs.iter().any(|leg| {
            leg.agent == agent && matches!(leg.state, LegState::Ringing | LegState::Leasing { .. })
        });
        if still_ringing {
            debug!(agent = %agent, ?reason, "one of the agent's devices failed; another rings");
            return;
        }
        self.fail_offer(agent, reason);
    }

    /// The port for an agent leg: the INVITE goes out.
    pub(crate) fn agent_port(
        &mut self,
        now: Instant,
        token: PortToken,
        port: Result<u16, String>,
        env: &dyn Environment,
    ) {
        let Some(index) = self
            .legs
            .legs
            .iter()
            .position(|leg| matches!(leg.state, LegState::Leasing { port } if port == token))
        else {
            return;
        };
        let port = match port {
            Ok(port) => port,
            Err(error) => {
                warn!(%error, "no RTP port for an agent leg");
                let leg = &mut self.legs.legs[index];
                leg.state = LegState::Done;
                leg.port = None;
                let agent = leg.agent.clone();
                self.leg_failed(agent, OfferFailure::Unreachable);
                return;
            }
        };
        let binding = self.legs.legs[index].binding.clone();
        let peer = self.legs.legs[index].peer;
        let session_id = u64::from(self.rng.next_u32());
        let local = LocalMedia::new(self.config.advertise, port, session_id);
        // SDES keys travel in the SDP, so only over TLS (RFC 4568 §8.3): an
        // agent registered over TLS is offered SRTP (RTP/SAVP, a fresh key
        // per leg), the others plain RTP.
        let local = if peer.transport == sip::TransportKind::Tls {
            local.offering_srtp(&mut self.rng)
        } else {
            local
        };
        let offer = sdp::create_offer(&local);
        let plan = env.plan();
        let department = self
            .record
            .department
            .as_deref()
            .and_then(|id| plan.queue(id))
            .map_or_else(|| "Clinic".to_string(), |q| q.name().to_string());
        let leg = &self.legs.legs[index];
        let display = signal::agent_display(
            &department,
            self.record.source.as_deref().unwrap_or("unknown"),
            leg.waited_secs,
        );
        let max_forwards = self
            .caller
            .invite
            .max_forwards
            .unwrap_or(70)
            .saturating_sub(1)
            .max(1);
        let from_tag = tag(&mut self.rng);
        let mut invite = signal::agent_invite(
            binding.uri(),
            leg.agent.as_str(),
            &display,
            std::net::SocketAddr::new(self.config.advertise, self.config.sip_port),
            &leg.call_id,
            &from_tag,
            max_forwards,
            offer.to_string(),
            self.record.priority == routing::Priority::Urgent,
        );
        if peer.transport == sip::TransportKind::Tls {
            // In-dialog requests from the agent come back over TLS.
            invite
                .headers
                .set(HeaderName::Contact, self.config.contact_for(peer.transport));
        }
        signal::preload_route(&mut invite, &binding.path);
        if let Some(queue) = self.record.department.as_deref() {
            // The queue the patient waits in, for a device that must send
            // them back there (the browser phone whose page is gone,
            // `frontdesk::browser`): a blind transfer to it keeps their
            // place.
            invite.headers.push(
                HeaderName::Other(ByteString::from_static(signal::QUEUE_HEADER)),
                queue,
            );
        }
        if let Some(replaces) = self.replaces_for(&leg.agent) {
            // Attended transfer: the agent's phone swaps its consultation
            // call for this one (RFC 3891).
            invite.headers.push(HeaderName::Replaces, replaces);
        }
        let (call_id, send_token, ring_timeout, agent) = (
            leg.call_id.clone(),
            leg.token,
            leg.ring_timeout,
            leg.agent.clone(),
        );
        let leg = &mut self.legs.legs[index];
        leg.invite = Some(invite.clone());
        leg.local = Some(local);
        leg.offer = Some(offer);
        leg.ring_deadline = Some(now + ring_timeout);
        leg.state = LegState::Ringing;
        self.push(Action::Route { call_id });
        self.push(Action::Send {
            request: invite,
            peer,
            token: Some(send_token),
        });
        info!(agent = %agent, "ringing agent");
        // One offer per agent on the timeline, however many devices ring.
        let first_device = !self.legs.legs.iter().enumerate().any(|(other, leg)| {
            other != index && leg.agent == agent && matches!(leg.state, LegState::Ringing)
        });
        if first_device {
            self.journal(records::CallEvent::Offered {
                agent: agent.as_str().to_string(),
            });
        }
    }

    /// The INVITE to an agent went out (its transaction), or could not.
    pub(crate) fn agent_invite_sent(
        &mut self,
        _now: Instant,
        token: SendToken,
        transaction: Option<ClientTransactionId>,
    ) {
        let Some(index) = self.legs.legs.iter().position(|leg| leg.token == token) else {
            return;
        };
        let leg = &mut self.legs.legs[index];
        match transaction {
            Some(transaction) => {
                leg.transaction = Some(transaction);
                if leg.cancel_when_sent {
                    self.push(Action::Cancel { transaction });
                }
            }
            None if matches!(leg.state, LegState::Ringing) => {
                leg.state = LegState::Done;
                let call_id = leg.call_id.clone();
                let agent = leg.agent.clone();
                self.release_agent_port(index);
                self.push(Action::Unroute { call_id });
                self.leg_failed(agent, OfferFailure::Unreachable);
            }
            None => {}
        }
    }

    /// Cancels a ringing leg (its transaction, at once or once known).
    fn cancel_leg(&mut self, index: usize) {
        let leg = &mut self.legs.legs[index];
        leg.state = LegState::Cancelling;
        leg.ring_deadline = None;
        match leg.transaction {
            Some(transaction) => self.push(Action::Cancel { transaction }),
            None => leg.cancel_when_sent = true,
        }
    }

    fn release_agent_port(&mut self, index: usize) {
        if let Some(token) = self.legs.legs[index].port.take() {
            self.push(Action::ReleasePort { token });
        }
    }

    /// Ring timeouts.
    pub(crate) fn legs_deadline(&mut self, now: Instant) {
        for index in 0..self.legs.legs.len() {
            let leg = &self.legs.legs[index];
            if matches!(leg.state, LegState::Ringing)
                && leg.ring_deadline.is_some_and(|at| at <= now)
            {
                info!(agent = %leg.agent, "no answer: next agent");
                let agent = leg.agent.clone();
                self.cancel_leg(index);
                self.release_agent_port(index);
                self.leg_failed(agent, OfferFailure::NoAnswer);
            }
        }
    }

    /// SIP news on an agent leg.
    pub(crate) fn on_agent_sip(&mut self, now: Instant, event: Event, env: &dyn Environment) {
        let Some(index) = self.legs.index_of(event.call_id()) else {
            return;
        };
        match event {
            Event::Response { response, .. } | Event::Stray2xx { response, .. } => {
                self.on_agent_response(now, index, &response, env);
            }
            Event::Timeout { .. } | Event::TransportError { .. } => {
                let leg = &mut self.legs.legs[index];
                if matches!(leg.state, LegState::Ringing) {
                    warn!(agent = %leg.agent, "agent unreachable");
                    leg.state = LegState::Done;
                    let agent = leg.agent.clone();
                    self.release_agent_port(index);
                    self.leg_failed(agent, OfferFailure::Unreachable);
                }
            }
            Event::Request {
                transaction,
                request,
                ..
            } => self.on_agent_request(now, index, transaction, &request, env),
            _ => {}
        }
    }

    fn on_agent_response(
        &mut self,
        now: Instant,
        index: usize,
        response: &ValidResponse,
        env: &dyn Environment,
    ) {
        let status = response.response.status;
        let seq = response.cseq.seq;
        if response.cseq.method != Method::Invite || status.is_provisional() {
            return;
        }
        if status.is_success() {
            let leg = &mut self.legs.legs[index];
            match &leg.state {
                LegState::Connected { dialog, ack } | LegState::Transferred { dialog, ack } => {
                    let request = if seq == 1 {
                        ack.clone()
                    } else {
                        // The answer to our re-INVITE (hold).
                        dialog.ack(seq)
                    };
                    let peer = leg.peer;
                    self.push(Action::Ack { request, peer });
                }
                LegState::Ringing if self.legs.connected.is_none() && self.waiting.is_some() => {
                    self.connect(now, index, response, env);
                }
                _ => {
                    // Lost the race (another agent, CANCEL crossed, caller
                    // gone): ACK, then BYE (RFC 3261 §9.1, §15).
                    let peer = leg.peer;
                    let dialog = leg
                        .invite
                        .as_ref()
                        .and_then(|invite| Dialog::uac(invite, response, peer).ok());
                    leg.state = LegState::Done;
                    if let Some(mut dialog) = dialog {
                        self.push(Action::Ack {
                            request: dialog.ack(seq),
                            peer,
                        });
                        self.push(Action::Send {
                            request: dialog.request(Method::Bye),
                            peer,
                            token: None,
                        });
                    }
                    self.release_agent_port(index);
                }
            }
            return;
        }
        let leg = &mut self.legs.legs[index];
        match leg.state {
            LegState::Ringing => {
                let reason = failure_for(status);
                info!(agent = %leg.agent, %status, "agent did not take the call");
                leg.state = LegState::Done;
                let agent = leg.agent.clone();
                self.release_agent_port(index);
                self.leg_failed(agent, reason);
            }
            LegState::Cancelling => {
                leg.state = LegState::Done;
                self.release_agent_port(index);
            }
            _ => {}
        }
    }

    /// The agent answered first: ACK, bridge, tell routing, cancel the rest.
    fn connect(
        &mut self,
        now: Instant,
        index: usize,
        response: &ValidResponse,
        env: &dyn Environment,
    ) {
        let leg = &mut self.legs.legs[index];
        let peer = leg.peer;
        let Some(invite) = leg.invite.as_ref() else {
            return;
        };
        let dialog = match Dialog::uac(invite, response, peer) {
            Ok(dialog) => dialog,
            Err(error) => {
                warn!(%error, "agent's 200 has no usable dialog");
                return;
            }
        };
        let ack = dialog.ack(response.cseq.seq);
        self.push(Action::Ack {
            request: ack.clone(),
            peer,
        });
        let leg = &mut self.legs.legs[index];
        let answer = match (leg.offer.as_ref(), leg.local.as_ref()) {
            (Some(offer), Some(local)) => {
                signal::sdp_body(&response.response.headers, &response.response.body)
                    .ok_or(media::SdpError::NoAudio)
                    .and_then(|body| SessionDescription::parse(&body))
                    .and_then(|answer| sdp::accept_answer(offer, &answer, local))
            }
            _ => Err(media::SdpError::NoAudio),
        };
        let negotiated = match answer {
            Ok(negotiated) => negotiated,
            Err(error) => {
                warn!(%error, agent = %leg.agent, "agent's SDP answer is not usable");
                let mut dialog = dialog;
                leg.state = LegState::Done;
                let agent = leg.agent.clone();
                self.push(Action::Send {
                    request: dialog.request(Method::Bye),
                    peer,
                    token: None,
                });
                self.release_agent_port(index);
                self.leg_failed(agent, OfferFailure::Rejected);
                return;
            }
        };
        let agent = leg.agent.clone();
        let port = leg.port.take();
        leg.state = LegState::Connected {
            dialog: Box::new(dialog),
            ack,
        };
        leg.ring_deadline = None;
        self.legs.connected = Some(index);
        info!(agent = %agent, "agent answered: bridged");
        if let Some(port) = port {
            self.media(MediaAction::Stop { leg: Leg::Caller });
            self.media(MediaAction::AddLeg {
                port,
                media: negotiated,
            });
            self.media(MediaAction::Bridge);
        }
        self.router(RouterRequest::Answered(agent.clone()));
        self.waiting_ended(now);
        self.hold = None;
        self.record.agent = Some(agent.as_str().to_string());
        self.record.connected_at = Some(self.wall(now));
        self.publish();
        let branch = env
            .plan()
            .agent(agent.as_str())
            .and_then(|a| a.branch().map(|b| b.as_str().to_string()));
        self.journal(records::CallEvent::Connected {
            agent: agent.as_str().to_string(),
            branch,
        });
        self.transfer_succeeded();
        for other in 0..self.legs.legs.len() {
            if other != index
                && matches!(
                    self.legs.legs[other].state,
                    LegState::Ringing | LegState::Leasing { .. }
                )
            {
                self.give_up_leg(other);
            }
        }
    }

    /// Gives up a leg that has not answered: CANCEL when ringing, its port
    /// back when still waiting for it.
    fn give_up_leg(&mut self, index: usize) {
        match self.legs.legs[index].state {
            LegState::Ringing => self.cancel_leg(index),
            LegState::Leasing { .. } => self.legs.legs[index].state = LegState::Done,
            _ => return,
        }
        self.release_agent_port(index);
    }

    fn on_agent_request(
        &mut self,
        now: Instant,
        index: usize,
        transaction: ServerTransactionId,
        request: &ValidRequest,
        env: &dyn Environment,
    ) {
        let headers = &request.request.headers;
        let local_tag = self.legs.local_tag(index);
        let connected_here = self.legs.connected == Some(index);
        let transferred = matches!(self.legs.legs[index].state, LegState::Transferred { .. });
        let respond = |call: &mut Call, status: StatusCode| {
            call.push(Action::Respond {
                transaction,
                response: signal::response(headers, status, &local_tag),
            });
        };
        match request.request.method {
            Method::Bye => {
                respond(self, StatusCode::OK);
                self.legs.legs[index].state = LegState::Done;
                if connected_here {
                    info!("agent hung up");
                    self.hang_up(now, Outcome::Connected);
                } else if transferred {
                    debug!("the transferring agent hung up");
                }
            }
            Method::Refer if connected_here => self.on_refer(now, index, transaction, request, env),
            // Only the agent talking to the patient can transfer them.
            Method::Refer => respond(self, StatusCode::FORBIDDEN),
            Method::Invite if transferred || connected_here => {
                // A re-INVITE: hold, unhold, or (the patient gone to
                // another agent) the same session with nothing to change.
                let leg = &mut self.legs.legs[index];
                let contact = self.config.contact_for(leg.peer.transport);
                match leg.answer_reoffer(headers, &request.request.body) {
                    Ok(answer) => {
                        let ok = signal::dialog_response(
                            headers,
                            StatusCode::OK,
                            &local_tag,
                            Some(&contact),
                            Some(answer.description.to_string()),
                        );
                        if connected_here {
                            let on_hold = answer.media.on_hold;
                            self.media(MediaAction::UpdateLeg {
                                leg: Leg::Agent,
                                media: answer.media,
                            });
                            self.push(Action::Respond {
                                transaction,
                                response: ok,
                            });
                            info!(on_hold, "agent re-INVITE");
                            self.pass_hold_to_caller(on_hold);
                        } else {
                            self.push(Action::Respond {
                                transaction,
                                response: ok,
                            });
                        }
                    }
                    Err(error) if connected_here => {
                        let status = StatusCode::new(error.sip_status())
                            .unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                        respond(self, status);
                    }
                    Err(_) => respond(self, StatusCode::NOT_ACCEPTABLE_HERE),
                }
            }
            Method::Info | Method::Notify | Method::Options => respond(self, StatusCode::OK),
            _ => respond(self, StatusCode::METHOD_NOT_ALLOWED),
        }
    }

    /// The patient put the call on hold (or took it off): tell the agent.
    pub(crate) fn pass_hold_to_agent(&mut self, on_hold: bool) {
        let Some(index) = self.legs.connected else {
            return;
        };
        let contact = self
            .config
            .contact_for(self.legs.legs[index].peer.transport);
        let leg = &mut self.legs.legs[index];
        let (LegState::Connected { dialog, .. }, Some(local)) =
            (&mut leg.state, leg.local.as_mut())
        else {
            return;
        };
        let reinvite = signal::hold_reinvite(dialog, local, on_hold, &contact);
        let peer = leg.peer;
        self.push(Action::Send {
            request: reinvite,
            peer,
            token: None,
        });
    }

    /// The agent put the call on hold (or took it off): tell the patient.
    pub(crate) fn pass_hold_to_caller(&mut self, on_hold: bool) {
        let transport = self
            .caller
            .dialog
            .as_ref()
            .map_or(sip::TransportKind::Udp, |dialog| dialog.peer.transport);
        let contact = self.config.contact_for(transport);
        let (Some(dialog), Some(local)) = (self.caller.dialog.as_mut(), self.caller.local.as_mut())
        else {
            return;
        };
        let reinvite = signal::hold_reinvite(dialog, local, on_hold, &contact);
        let peer = dialog.peer;
        self.push(Action::Send {
            request: reinvite,
            peer,
            token: None,
        });
    }

    /// Ends every agent leg: CANCEL the ringing ones, BYE the connected one.
    pub(crate) fn end_legs(&mut self) {
        for index in 0..self.legs.legs.len() {
            match &mut self.legs.legs[index].state {
                LegState::Ringing | LegState::Leasing { .. } => self.give_up_leg(index),
                LegState::Connected { dialog, .. } | LegState::Transferred { dialog, .. } => {
                    let bye = dialog.request(Method::Bye);
                    let peer = self.legs.legs[index].peer;
                    self.legs.legs[index].state = LegState::Done;
                    self.push(Action::Send {
                        request: bye,
                        peer,
                        token: None,
                    });
                }
                LegState::Cancelling | LegState::Done => {}
            }
            self.release_agent_port(index);
        }
    }
}
