//! The agent legs of a call (the B2BUA half): offers from routing become
//! INVITEs to the agents' registered contacts; the first to answer is
//! bridged to the patient; the others are cancelled; no answer, busy and
//! unreachable go back to routing, which offers the next agent. A bridged
//! agent may transfer the patient ([`super::transfer`]).

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use media::driver::PortLease;
use media::sdp::{self, Direction, LocalMedia, SessionDescription};
use media::session::Leg;
use routing::{AgentId, OfferFailure};
use sip::Peer;
use sip::dialog::Dialog;
use sip::endpoint::EndpointHandle;
use sip::message::validate::{ValidRequest, ValidResponse};
use sip::message::{HeaderName, Method, Request, StatusCode};
use sip::transaction::{ClientTransactionId, Event, ServerTransactionId};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::book::Outcome;
use super::call::Call;
use super::signal;
use crate::app::tag;

#[derive(Debug)]
pub(super) enum LegState {
    /// INVITE sent, waiting for an answer until the ring deadline.
    Ringing,
    /// We cancelled it (ring timeout, another agent answered, the caller
    /// left); a crossing 2xx is ACKed and ended with BYE.
    Cancelling,
    /// The agent answered and is bridged to the patient.
    Connected {
        dialog: Box<Dialog>,
        /// The ACK, to answer each retransmitted 2xx.
        ack: Bytes,
    },
    /// The agent transferred the patient: no longer bridged, still up to
    /// hear how the transfer ends (NOTIFY), then ended.
    Transferred {
        dialog: Box<Dialog>,
        /// The ACK, to answer each retransmitted 2xx.
        ack: Bytes,
    },
    /// Over.
    Done,
}

/// One INVITE to one agent.
#[derive(Debug)]
pub(super) struct AgentLeg {
    agent: AgentId,
    call_id: ByteString,
    transaction: Option<ClientTransactionId>,
    invite: Request,
    peer: Peer,
    local: LocalMedia,
    offer: SessionDescription,
    lease: Option<PortLease>,
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
        self.local.session_version += 1;
        let body = signal::sdp_body(headers, body).ok_or(media::SdpError::NoAudio)?;
        SessionDescription::parse(&body).and_then(|offer| sdp::create_answer(&offer, &self.local))
    }
}

/// Every agent leg of a call.
#[derive(Debug, Default)]
pub(super) struct Legs {
    legs: Vec<AgentLeg>,
    connected: Option<usize>,
}

impl Legs {
    /// The agent bridged to the patient, if any.
    pub(super) fn connected(&self) -> Option<&AgentId> {
        self.connected.map(|index| &self.legs[index].agent)
    }

    /// The earliest ring deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.legs
            .iter()
            .filter(|leg| matches!(leg.state, LegState::Ringing))
            .filter_map(|leg| leg.ring_deadline)
            .min()
    }

    fn index_of(&self, call_id: &str) -> Option<usize> {
        self.legs.iter().position(|leg| leg.call_id == call_id)
    }

    /// Our tag on leg `index` (the From tag of our INVITE).
    pub(super) fn local_tag(&self, index: usize) -> String {
        self.legs[index]
            .invite
            .headers
            .from()
            .ok()
            .and_then(|from| from.tag().map(str::to_string))
            .unwrap_or_default()
    }

    /// The agent of leg `index`.
    pub(super) fn agent_of(&self, index: usize) -> &AgentId {
        &self.legs[index].agent
    }

    /// The bridged leg `index` was transferred: it is no longer the
    /// patient's agent, but stays up until the transfer is decided.
    pub(super) fn set_transferred(&mut self, index: usize) {
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
    pub(super) fn request_on(&mut self, index: usize, method: Method) -> Option<(Request, Peer)> {
        let leg = self.legs.get_mut(index)?;
        let peer = leg.peer;
        let request = leg.state.dialog_mut()?.request(method);
        Some((request, peer))
    }

    /// Leg `index` is over (we sent BYE).
    pub(super) fn finish(&mut self, index: usize) {
        if let Some(leg) = self.legs.get_mut(index) {
            leg.state = LegState::Done;
            leg.lease = None;
        }
    }

    /// Stops routing every agent leg's Call-ID to the call.
    pub(super) fn unroute_all(&self, endpoint: &EndpointHandle) {
        for leg in &self.legs {
            endpoint.unroute(&leg.call_id);
        }
    }
}

/// Where to send an INVITE for `binding`. Over a stream, the connection
/// the phone registered on (over TLS the only way: frontdesk opens no
/// outbound TLS connection, so a phone whose TLS connection is gone is
/// unreachable until it registers again). Over UDP, the Contact when it names the
/// address the REGISTER came from (the phone is reachable as it says);
/// otherwise the REGISTER's source, the way through the phone's NAT.
fn ring_target(binding: &sip::registrar::Binding) -> Peer {
    let source = binding.source;
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

fn failure_for(status: StatusCode) -> OfferFailure {
    match status.as_u16() {
        486 | 600 => OfferFailure::Busy,
        603 => OfferFailure::Rejected,
        408 | 480 | 487 => OfferFailure::NoAnswer,
        _ => OfferFailure::Unreachable,
    }
}

impl Call {
    pub(super) async fn ring_agent(
        &mut self,
        agent: AgentId,
        ring_timeout: Duration,
        waited_secs: u64,
    ) {
        let bindings = self.app.registrar.locations().get(agent.as_str());
        let Some(binding) = bindings.first() else {
            debug!(agent = %agent, "offered agent has no binding");
            self.fail_offer(agent, OfferFailure::Unreachable);
            return;
        };
        let lease = match self.app.ports.allocate() {
            Ok(lease) => lease,
            Err(error) => {
                warn!(%error, "no RTP port for an agent leg");
                self.fail_offer(agent, OfferFailure::Unreachable);
                return;
            }
        };
        let peer = ring_target(binding);
        let local = LocalMedia::new(
            self.app.advertise,
            lease.port(),
            rand::random::<u32>().into(),
        );
        // SDES keys travel in the SDP, so only over TLS (RFC 4568 §8.3): an
        // agent registered over TLS is offered SRTP (RTP/SAVP, a fresh key
        // per leg), the others plain RTP.
        let local = if peer.transport == sip::TransportKind::Tls {
            local.offering_srtp(&mut rand::rng())
        } else {
            local
        };
        let offer = sdp::create_offer(&local);
        let plan = self.app.dialplan.current();
        let department = self
            .record
            .department
            .as_deref()
            .and_then(|id| plan.queue(id))
            .map_or_else(|| "Clinic".to_string(), |q| q.name().to_string());
        let display = signal::agent_display(
            &department,
            self.record.source.as_deref().unwrap_or("unknown"),
            waited_secs,
        );
        let call_id = ByteString::from(format!("{}-{}@frontdesk", tag(), self.id.0));
        let max_forwards = self
            .invite
            .max_forwards
            .unwrap_or(70)
            .saturating_sub(1)
            .max(1);
        let invite = signal::agent_invite(
            binding.uri(),
            agent.as_str(),
            &display,
            std::net::SocketAddr::new(self.app.advertise, self.app.sip.port()),
            &call_id,
            &tag(),
            max_forwards,
            offer.to_string(),
            self.record.priority == "urgent",
        );
        let mut invite = invite;
        if peer.transport == sip::TransportKind::Tls {
            // In-dialog requests from the agent come back over TLS.
            invite
                .headers
                .set(HeaderName::Contact, self.app.contact_for(peer.transport));
        }
        if let Some(replaces) = self.replaces_for(&agent) {
            // Attended transfer: the agent's phone swaps its consultation
            // call for this one (RFC 3891).
            invite.headers.push(HeaderName::Replaces, replaces);
        }
        self.app
            .endpoint
            .route(call_id.clone(), self.sip_sender.clone());
        let transaction = match self.app.endpoint.send_request(invite.clone(), peer).await {
            Ok(Ok(transaction)) => transaction,
            _ => {
                self.app.endpoint.unroute(&call_id);
                self.fail_offer(agent, OfferFailure::Unreachable);
                return;
            }
        };
        info!(agent = %agent, "ringing agent");
        self.lead(records::CallEvent::Offered {
            agent: agent.as_str().to_string(),
        });
        self.legs.legs.push(AgentLeg {
            agent,
            call_id,
            transaction: Some(transaction),
            invite,
            peer,
            local,
            offer,
            lease: Some(lease),
            ring_deadline: Some(Instant::now() + ring_timeout),
            state: LegState::Ringing,
        });
    }

    /// Ring timeouts.
    pub(super) async fn legs_deadline(&mut self, now: Instant) {
        for index in 0..self.legs.legs.len() {
            let leg = &mut self.legs.legs[index];
            if matches!(leg.state, LegState::Ringing)
                && leg.ring_deadline.is_some_and(|at| at <= now)
            {
                info!(agent = %leg.agent, "no answer: next agent");
                leg.state = LegState::Cancelling;
                leg.ring_deadline = None;
                if let Some(transaction) = leg.transaction {
                    let _ = self.app.endpoint.cancel(transaction);
                }
                let agent = leg.agent.clone();
                self.fail_offer(agent, OfferFailure::NoAnswer);
            }
        }
    }

    /// SIP news on an agent leg.
    pub(super) async fn on_agent_sip(&mut self, event: Event) {
        let Some(index) = self.legs.index_of(event.call_id()) else {
            return;
        };
        match event {
            Event::Response { response, .. } | Event::Stray2xx { response, .. } => {
                self.on_agent_response(index, &response).await;
            }
            Event::Timeout { .. } | Event::TransportError { .. } => {
                let leg = &mut self.legs.legs[index];
                if matches!(leg.state, LegState::Ringing) {
                    warn!(agent = %leg.agent, "agent unreachable");
                    leg.state = LegState::Done;
                    leg.lease = None;
                    let agent = leg.agent.clone();
                    self.fail_offer(agent, OfferFailure::Unreachable);
                }
            }
            Event::Request {
                transaction,
                request,
                ..
            } => self.on_agent_request(index, transaction, &request).await,
            _ => {}
        }
    }

    async fn on_agent_response(&mut self, index: usize, response: &ValidResponse) {
        let status = response.response.status;
        let seq = response.cseq.seq;
        if response.cseq.method != Method::Invite || status.is_provisional() {
            return;
        }
        let endpoint = self.app.endpoint.clone();
        let leg = &mut self.legs.legs[index];
        if status.is_success() {
            match &leg.state {
                LegState::Connected { dialog, ack } | LegState::Transferred { dialog, ack } => {
                    if seq == 1 {
                        let _ = endpoint.send_raw(leg.peer, ack.clone());
                    } else {
                        // The answer to our re-INVITE (hold).
                        let _ = endpoint.send_ack(dialog.ack(seq), leg.peer).await;
                    }
                }
                LegState::Ringing if self.legs.connected.is_none() && self.waiting.is_some() => {
                    self.connect(index, response).await;
                }
                _ => {
                    // Lost the race (another agent, CANCEL crossed, caller
                    // gone): ACK, then BYE (RFC 3261 §9.1, §15).
                    if let Ok(mut dialog) = Dialog::uac(&leg.invite, response, leg.peer) {
                        let _ = endpoint.send_ack(dialog.ack(seq), leg.peer).await;
                        let _ = endpoint
                            .send_request(dialog.request(Method::Bye), leg.peer)
                            .await;
                    }
                    leg.state = LegState::Done;
                    leg.lease = None;
                }
            }
            return;
        }
        match leg.state {
            LegState::Ringing => {
                let reason = failure_for(status);
                info!(agent = %leg.agent, %status, "agent did not take the call");
                leg.state = LegState::Done;
                leg.lease = None;
                let agent = leg.agent.clone();
                self.fail_offer(agent, reason);
            }
            LegState::Cancelling => {
                leg.state = LegState::Done;
                leg.lease = None;
            }
            _ => {}
        }
    }

    /// The agent answered first: ACK, bridge, tell routing, cancel the rest.
    async fn connect(&mut self, index: usize, response: &ValidResponse) {
        let endpoint = self.app.endpoint.clone();
        let leg = &mut self.legs.legs[index];
        let dialog = match Dialog::uac(&leg.invite, response, leg.peer) {
            Ok(dialog) => dialog,
            Err(error) => {
                warn!(%error, "agent's 200 has no usable dialog");
                return;
            }
        };
        let ack = endpoint
            .send_ack(dialog.ack(response.cseq.seq), leg.peer)
            .await
            .unwrap_or_default();
        let answer = signal::sdp_body(&response.response.headers, &response.response.body)
            .ok_or(media::SdpError::NoAudio)
            .and_then(|body| SessionDescription::parse(&body))
            .and_then(|answer| sdp::accept_answer(&leg.offer, &answer, &leg.local));
        let negotiated = match answer {
            Ok(negotiated) => negotiated,
            Err(error) => {
                warn!(%error, agent = %leg.agent, "agent's SDP answer is not usable");
                let mut dialog = dialog;
                let _ = endpoint
                    .send_request(dialog.request(Method::Bye), leg.peer)
                    .await;
                leg.state = LegState::Done;
                leg.lease = None;
                let agent = leg.agent.clone();
                self.fail_offer(agent, OfferFailure::Rejected);
                return;
            }
        };
        let agent = leg.agent.clone();
        let lease = leg.lease.take();
        leg.state = LegState::Connected {
            dialog: Box::new(dialog),
            ack,
        };
        leg.ring_deadline = None;
        self.legs.connected = Some(index);
        info!(agent = %agent, "agent answered: bridged");
        if let (Some(media), Some(lease)) = (&self.media, lease) {
            let _ = media.stop(Leg::Caller);
            let _ = media.add_leg(Leg::Agent, lease, negotiated);
            let _ = media.bridge();
        }
        self.app.router.answered(self.id, agent.clone());
        self.waiting_ended();
        self.hold = None;
        self.record.agent = Some(agent.as_str().to_string());
        self.record.connected_at = Some(ivr::jiff::Timestamp::now());
        self.publish();
        let branch = self
            .app
            .dialplan
            .current()
            .agent(agent.as_str())
            .and_then(|a| a.branch().map(|b| b.as_str().to_string()));
        self.lead(records::CallEvent::Connected {
            agent: agent.as_str().to_string(),
            branch,
        });
        self.transfer_succeeded().await;
        for other in 0..self.legs.legs.len() {
            let leg = &mut self.legs.legs[other];
            if other != index && matches!(leg.state, LegState::Ringing) {
                leg.state = LegState::Cancelling;
                if let Some(transaction) = leg.transaction {
                    let _ = endpoint.cancel(transaction);
                }
            }
        }
    }

    async fn on_agent_request(
        &mut self,
        index: usize,
        transaction: ServerTransactionId,
        request: &ValidRequest,
    ) {
        let headers = &request.request.headers;
        let local_tag = self.legs.local_tag(index);
        let endpoint = self.app.endpoint.clone();
        let connected_here = self.legs.connected == Some(index);
        let transferred = matches!(self.legs.legs[index].state, LegState::Transferred { .. });
        match request.request.method {
            Method::Bye => {
                let _ = endpoint.respond(
                    transaction,
                    signal::response(headers, StatusCode::OK, &local_tag),
                );
                self.legs.legs[index].state = LegState::Done;
                self.legs.legs[index].lease = None;
                if connected_here {
                    info!("agent hung up");
                    self.hang_up(Outcome::Connected).await;
                } else if transferred {
                    debug!("the transferring agent hung up");
                }
            }
            Method::Refer if connected_here => self.on_refer(index, transaction, request).await,
            Method::Refer => {
                // Only the agent talking to the patient can transfer them.
                let _ = endpoint.respond(
                    transaction,
                    signal::response(headers, StatusCode::FORBIDDEN, &local_tag),
                );
            }
            Method::Invite if transferred => {
                // A re-INVITE on a leg whose patient left: same session,
                // no media to change.
                let leg = &mut self.legs.legs[index];
                let answer = leg.answer_reoffer(headers, &request.request.body);
                let response = match answer {
                    Ok(answer) => {
                        let contact = self.app.contact_for(leg.peer.transport);
                        signal::dialog_response(
                            headers,
                            StatusCode::OK,
                            &local_tag,
                            Some(&contact),
                            Some(answer.description.to_string()),
                        )
                    }
                    Err(_) => {
                        signal::response(headers, StatusCode::NOT_ACCEPTABLE_HERE, &local_tag)
                    }
                };
                let _ = endpoint.respond(transaction, response);
            }
            Method::Invite if connected_here => {
                let leg = &mut self.legs.legs[index];
                let answer = leg.answer_reoffer(headers, &request.request.body);
                match answer {
                    Ok(answer) => {
                        let on_hold = answer.media.on_hold;
                        if let Some(media) = &self.media {
                            let _ = media.update_leg(Leg::Agent, answer.media);
                        }
                        let contact = self.app.contact_for(leg.peer.transport);
                        let ok = signal::dialog_response(
                            headers,
                            StatusCode::OK,
                            &local_tag,
                            Some(&contact),
                            Some(answer.description.to_string()),
                        );
                        let _ = endpoint.respond(transaction, ok);
                        info!(on_hold, "agent re-INVITE");
                        self.pass_hold_to_caller(on_hold).await;
                    }
                    Err(error) => {
                        let status = StatusCode::new(error.sip_status())
                            .unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                        let _ = endpoint
                            .respond(transaction, signal::response(headers, status, &local_tag));
                    }
                }
            }
            Method::Info | Method::Notify | Method::Options => {
                let _ = endpoint.respond(
                    transaction,
                    signal::response(headers, StatusCode::OK, &local_tag),
                );
            }
            _ => {
                let _ = endpoint.respond(
                    transaction,
                    signal::response(headers, StatusCode::METHOD_NOT_ALLOWED, &local_tag),
                );
            }
        }
    }

    /// The patient put the call on hold (or took it off): tell the agent.
    pub(super) async fn pass_hold_to_agent(&mut self, on_hold: bool) {
        let Some(index) = self.legs.connected else {
            return;
        };
        let contact = self.app.contact_for(self.legs.legs[index].peer.transport);
        let leg = &mut self.legs.legs[index];
        let LegState::Connected { dialog, .. } = &mut leg.state else {
            return;
        };
        leg.local.direction = if on_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        leg.local.session_version += 1;
        let mut reinvite = dialog.request(Method::Invite);
        reinvite.headers.push(HeaderName::Contact, &contact);
        reinvite
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        reinvite.body = Bytes::from(sdp::create_offer(&leg.local).to_string());
        let peer = leg.peer;
        let _ = self.app.endpoint.send_request(reinvite, peer).await;
    }

    /// The agent put the call on hold (or took it off): tell the patient.
    pub(super) async fn pass_hold_to_caller(&mut self, on_hold: bool) {
        let transport = self
            .dialog
            .as_ref()
            .map_or(sip::TransportKind::Udp, |dialog| dialog.peer.transport);
        let contact = self.app.contact_for(transport);
        let (Some(dialog), Some(local)) = (self.dialog.as_mut(), self.local.as_mut()) else {
            return;
        };
        local.direction = if on_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        local.session_version += 1;
        let offer = sdp::create_offer(local).to_string();
        let mut reinvite = dialog.request(Method::Invite);
        reinvite.headers.push(HeaderName::Contact, &contact);
        reinvite
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        reinvite.body = Bytes::from(offer);
        let peer = dialog.peer;
        let _ = self.app.endpoint.send_request(reinvite, peer).await;
    }

    /// Ends every agent leg: CANCEL the ringing ones, BYE the connected one.
    pub(super) async fn end_legs(&mut self) {
        let endpoint = self.app.endpoint.clone();
        for leg in &mut self.legs.legs {
            match &mut leg.state {
                LegState::Ringing => {
                    if let Some(transaction) = leg.transaction {
                        let _ = endpoint.cancel(transaction);
                    }
                    leg.state = LegState::Cancelling;
                }
                LegState::Connected { dialog, .. } | LegState::Transferred { dialog, .. } => {
                    let bye = dialog.request(Method::Bye);
                    let _ = endpoint.send_request(bye, leg.peer).await;
                    leg.state = LegState::Done;
                }
                _ => {}
            }
            leg.lease = None;
        }
    }
}
