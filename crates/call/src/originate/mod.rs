//! An outbound call as a state machine: ring an agent's phone, and once
//! the agent answers, dial a patient through the carrier's trunk and bridge
//! the two (click-to-call; the callback dialer is to reuse it).
//!
//! # Why a type of its own
//!
//! [`crate::Call`] is built around the patient's INVITE: its patient leg is
//! a server transaction, its IVR, queue and routing all follow from it.
//! Here both legs are ours (two client INVITEs), there is no IVR, no queue
//! and no routing offer; the agent is chosen before the call exists. What
//! the two share is small and already shared: the messages
//! ([`crate::signal`]), the SDP of `media::sdp`, the dialogs of
//! `sip::dialog`, the tokens of ports and sent requests. So [`Originate`]
//! is a second core in this crate, beside [`crate::Call`], with the same
//! run loop and the same kind of driver.
//!
//! # The course of an originate
//!
//! ```text
//! lease a port → INVITE the agent (their registered phone)
//!   no answer in `agent_ring` → CANCEL              (agent_no_answer)
//!   486 / 600, 603, other    → over                 (agent_busy, agent_declined, agent_unreachable)
//!   200 → ACK, start the agent's media, [play the whisper once,]
//!         play ringback to the agent, lease a port → INVITE the patient
//!         through the trunk
//!           401 / 407 → one retry with digest credentials (RFC 3261 §22.2, RFC 7616)
//!           no answer in `patient_ring` → CANCEL, BYE the agent (patient_no_answer)
//!           486 / 600, 4xx-6xx, timeout → BYE the agent  (patient_busy, trunk_refused, …)
//!           the agent hangs up first → CANCEL        (agent_hung_up)
//!           200 → ACK, bridge the two legs' media          (patient answered)
//!             either side's BYE → 200, BYE the other side  (ended)
//! ```
//!
//! The trunk's responses and requests are taken only from the trunk's
//! address: anything else on the patient's Call-ID is dropped (the trunk
//! is the one peer trusted to speak for the patient).
//!
//! # The run loop
//!
//! As [`crate::Call`]'s: `start`, then drain [`Originate::poll_action`],
//! feed [`Originate::handle_sip`], [`Originate::handle_port`],
//! [`Originate::handle_sent`], [`Originate::handle_media`],
//! [`Originate::handle_timeout`] at [`Originate::poll_timeout`], until
//! [`Originate::is_finished`]. It never reads a clock or touches a socket.

mod legs;
mod signal;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use media::playback::PlaybackMode;
use media::sdp::{self, LocalMedia, NegotiatedMedia, SessionDescription};
use media::session::{Leg, MediaEvent};
use rand::RngCore;
use rand::rngs::StdRng;
use sip::Peer;
use sip::dialog::Dialog;
use sip::message::validate::ValidResponse;
use sip::message::{Method, Request, Response};
use sip::registrar::Binding;
use sip::transaction::{ClientTransactionId, Event, ServerTransactionId};
use tracing::{debug, info, warn};

use crate::action::{PortToken, SendToken};
use crate::call::{CallConfig, tag};

/// How long an originate that is over still listens for the answer to a
/// CANCEL it sent (64 × T1, Timer B of RFC 3261 §17.1.1.2): a 2xx that
/// crossed the CANCEL is ACKed and ended with BYE, so no phone is left
/// off-hook.
pub const CANCEL_LINGER: Duration = Duration::from_secs(32);

/// Everything an originate is told before it starts.
#[derive(Debug, Clone)]
pub struct OriginateSetup {
    /// The agent (`1004`), for their phone's To and the reports.
    pub agent: String,
    /// The agent's phone: its registration (the INVITE goes to its
    /// contact, over the flow it registered on, as the call path rings
    /// agents).
    pub agent_binding: Binding,
    /// What the agent's phone shows as the caller.
    pub display: String,
    /// The patient's number, E.164, already allowed by the trunk.
    pub patient: String,
    /// The trunk the patient is dialed through.
    pub trunk: TrunkRoute,
    /// How long the agent's phone rings.
    pub agent_ring: Duration,
    /// How long the patient's phone rings.
    pub patient_ring: Duration,
    /// Played to the agent (looped) while the patient's phone rings.
    pub ringback: Option<PathBuf>,
    /// Played once to the agent when they answer, before the patient is
    /// dialed: a callback's "callback, pediatrics", so the agent knows
    /// whom they are about to talk to. `None` dials at once.
    pub whisper: Option<PathBuf>,
}

/// The trunk as the originate uses it: its address (resolved), its host
/// for the Request-URI, the caller id and the digest credentials.
#[derive(Clone)]
pub struct TrunkRoute {
    /// Where the patient's INVITE goes; the only address whose answers
    /// count.
    pub peer: Peer,
    /// The trunk URI's host (the Request-URI is `sip:<number>@host:port`).
    pub host: sip::message::Host,
    /// The trunk URI's port, when written.
    pub port: Option<u16>,
    /// The number presented (From and P-Asserted-Identity).
    pub caller_id: String,
    /// Digest user name and password, when the carrier asks; `None`
    /// answers a challenge with a failure.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for TrunkRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkRoute")
            .field("peer", &self.peer)
            .field("host", &self.host.to_string())
            .field("port", &self.port)
            .field("caller_id", &self.caller_id)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why an originate did not reach the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The agent's phone rang out.
    AgentNoAnswer,
    /// The agent's phone was busy (486, 600).
    AgentBusy,
    /// The agent declined (603).
    AgentDeclined,
    /// The agent's phone could not be reached (timeout, transport, other
    /// errors, an unusable answer).
    AgentUnreachable,
    /// The agent hung up before the patient answered.
    AgentHungUp,
    /// The patient's phone rang out.
    PatientNoAnswer,
    /// The patient's line was busy (486, 600, 603).
    PatientBusy,
    /// The trunk refused the call (another final status).
    TrunkRefused(u16),
    /// The trunk challenged and refused our credentials, or we had none.
    TrunkAuthFailed,
    /// The trunk did not answer (timeout, transport) or its answer was not
    /// usable.
    TrunkUnreachable,
    /// No RTP port was free.
    NoPort,
    /// The daemon stopped.
    Shutdown,
}

impl Failure {
    /// The name in the journal and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::AgentNoAnswer => "agent_no_answer",
            Failure::AgentBusy => "agent_busy",
            Failure::AgentDeclined => "agent_declined",
            Failure::AgentUnreachable => "agent_unreachable",
            Failure::AgentHungUp => "agent_hung_up",
            Failure::PatientNoAnswer => "patient_no_answer",
            Failure::PatientBusy => "patient_busy",
            Failure::TrunkRefused(_) => "trunk_refused",
            Failure::TrunkAuthFailed => "trunk_auth_failed",
            Failure::TrunkUnreachable => "trunk_unreachable",
            Failure::NoPort => "no_port",
            Failure::Shutdown => "shutdown",
        }
    }
}

/// Who ended a connected originate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The agent's BYE.
    Agent,
    /// The patient's BYE.
    Patient,
    /// No RTP from a leg (`--rtp-timeout`).
    Silence,
    /// The daemon stopped.
    Shutdown,
}

impl EndedBy {
    /// The name in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Agent => "agent",
            EndedBy::Patient => "patient",
            EndedBy::Silence => "silence",
            EndedBy::Shutdown => "shutdown",
        }
    }
}

/// What happened, for the journal, the lead and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The agent answered; the patient is dialed now.
    AgentAnswered,
    /// The patient answered: the two are bridged.
    PatientAnswered,
    /// It is over without reaching the patient.
    Failed(Failure),
    /// It is over after the patient answered.
    Ended(EndedBy),
}

/// What the originate's media task must do. The agent's leg is
/// [`Leg::Agent`], the patient's [`Leg::Caller`].
#[derive(Debug, Clone, PartialEq)]
pub enum OriginateMedia {
    /// Start the media with the agent's leg on the leased port.
    StartAgent {
        /// The agent's port.
        port: PortToken,
        /// What offer/answer agreed.
        media: NegotiatedMedia,
    },
    /// Add the patient's leg on its leased port.
    AddPatient {
        /// The patient's port.
        port: PortToken,
        /// What offer/answer agreed.
        media: NegotiatedMedia,
    },
    /// A re-INVITE changed a leg's media.
    UpdateLeg {
        /// Which leg.
        leg: Leg,
        /// The new agreement.
        media: NegotiatedMedia,
    },
    /// Play to the agent: ringback (looped) or a whisper (once).
    PlayAgent {
        /// The playback's id.
        id: u64,
        /// The files.
        prompts: Vec<PathBuf>,
        /// Looped or once.
        mode: PlaybackMode,
    },
    /// Stop the agent's playback.
    StopAgent,
    /// Relay the legs to each other.
    Bridge,
    /// The media is over: its ports go back.
    End,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum OriginateAction {
    /// Start a client transaction for `request`; with a token, report its
    /// id through [`Originate::handle_sent`].
    Send {
        /// The request (the endpoint adds Via and Max-Forwards).
        request: Request,
        /// Where.
        peer: Peer,
        /// Report the transaction's id under this token.
        token: Option<SendToken>,
    },
    /// Answer a request received in one of the dialogs.
    Respond {
        /// Its transaction.
        transaction: ServerTransactionId,
        /// The response.
        response: Response,
    },
    /// CANCEL a pending INVITE.
    Cancel {
        /// Its transaction.
        transaction: ClientTransactionId,
    },
    /// Send the ACK of a 2xx.
    Ack {
        /// The ACK.
        request: Request,
        /// Where.
        peer: Peer,
    },
    /// Route this Call-ID's SIP events to the originate.
    Route {
        /// The Call-ID.
        call_id: ByteString,
    },
    /// Stop routing it.
    Unroute {
        /// The Call-ID.
        call_id: ByteString,
    },
    /// Lease an RTP port; answer with [`Originate::handle_port`].
    LeasePort {
        /// The name of the answer.
        token: PortToken,
    },
    /// Give back a leased port that will not be used.
    ReleasePort {
        /// The lease.
        token: PortToken,
    },
    /// Something for the media.
    Media(OriginateMedia),
    /// Something happened (journal it, tell the lead).
    Report(Progress),
    /// It is over: nothing more will come from it.
    Finished,
}

/// Where one leg stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegState {
    /// Not started.
    Idle,
    /// Waiting for its port.
    Leasing,
    /// INVITE sent, no final answer yet.
    Inviting,
    /// We gave up on it (CANCEL sent or due): a crossing 2xx gets ACK and BYE.
    Cancelling,
    /// Answered and ACKed.
    Up,
    /// Over.
    Done,
}

/// One of the two INVITEs.
#[derive(Debug)]
struct OutLeg {
    peer: Peer,
    call_id: ByteString,
    state: LegState,
    port: Option<PortToken>,
    token: Option<SendToken>,
    transaction: Option<ClientTransactionId>,
    cancel_when_sent: bool,
    invite: Option<Request>,
    local: Option<LocalMedia>,
    offer: Option<SessionDescription>,
    dialog: Option<Dialog>,
    ack: Option<Request>,
    deadline: Option<Instant>,
}

impl OutLeg {
    fn new(peer: Peer, call_id: ByteString) -> OutLeg {
        OutLeg {
            peer,
            call_id,
            state: LegState::Idle,
            port: None,
            token: None,
            transaction: None,
            cancel_when_sent: false,
            invite: None,
            local: None,
            offer: None,
            dialog: None,
            ack: None,
            deadline: None,
        }
    }

    fn local_tag(&self) -> String {
        self.invite
            .as_ref()
            .and_then(|invite| invite.headers.from().ok())
            .and_then(|from| from.tag().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Which leg an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Agent,
    Patient,
}

/// One outbound call. See the module docs.
#[derive(Debug)]
pub struct Originate {
    config: CallConfig,
    setup: OriginateSetup,
    rng: StdRng,
    agent: OutLeg,
    patient: OutLeg,
    /// The INVITE to the trunk was answered with credentials once.
    authenticated: bool,
    connected: bool,
    ringback: Option<u64>,
    /// The whisper playing to the agent (its playback id), and when the
    /// patient is dialed even if its end never comes (the media task
    /// gone): the trunk's ring time after the agent answered.
    whisper: Option<(u64, Instant)>,
    actions: VecDeque<OriginateAction>,
    next_token: u64,
    /// Set once it is over (reported); the legs may still be cancelling.
    result: Option<Progress>,
    /// Over, and waiting for the answers to its CANCELs until then.
    linger_until: Option<Instant>,
    finished: bool,
}

impl Originate {
    /// An originate for `setup` (already checked: the number is allowed,
    /// the agent has a phone). Nothing happens before [`Originate::start`].
    pub fn new(config: CallConfig, setup: OriginateSetup, mut rng: StdRng) -> Originate {
        let agent_call_id = ByteString::from(format!("{}-a@frontdesk", tag(&mut rng)));
        let patient_call_id = ByteString::from(format!("{}-p@frontdesk", tag(&mut rng)));
        Originate {
            agent: OutLeg::new(
                crate::agent::ring_target(&setup.agent_binding),
                agent_call_id,
            ),
            patient: OutLeg::new(setup.trunk.peer, patient_call_id),
            config,
            setup,
            rng,
            authenticated: false,
            connected: false,
            ringback: None,
            whisper: None,
            actions: VecDeque::new(),
            next_token: 1,
            result: None,
            linger_until: None,
            finished: false,
        }
    }

    /// The Call-IDs of the agent's leg and the patient's.
    pub fn call_ids(&self) -> [&ByteString; 2] {
        [&self.agent.call_id, &self.patient.call_id]
    }

    /// How it ended, once over: [`Progress::Failed`] or [`Progress::Ended`].
    pub fn result(&self) -> Option<Progress> {
        self.result
    }

    /// Whether the patient answered.
    pub fn reached_patient(&self) -> bool {
        self.connected
    }

    /// Whether it is over and done with ([`OriginateAction::Finished`]
    /// was given): reported, and no CANCEL waits for its answer.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<OriginateAction> {
        self.actions.pop_front()
    }

    /// When [`Originate::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        if self.result.is_some() {
            return self.linger_until;
        }
        [&self.agent, &self.patient]
            .into_iter()
            .filter(|leg| leg.state == LegState::Inviting)
            .filter_map(|leg| leg.deadline)
            .chain(self.whisper.map(|(_, until)| until))
            .min()
    }

    /// Asks for the agent's port: the agent's phone rings once it comes.
    pub fn start(&mut self, _now: Instant) {
        let token = self.port_token();
        self.agent.port = Some(token);
        self.agent.state = LegState::Leasing;
        self.push(OriginateAction::LeasePort { token });
    }

    /// The answer to an [`OriginateAction::LeasePort`].
    pub fn handle_port(&mut self, now: Instant, token: PortToken, port: Result<u16, String>) {
        let side = if self.agent.state == LegState::Leasing && self.agent.port == Some(token) {
            Side::Agent
        } else if self.patient.state == LegState::Leasing && self.patient.port == Some(token) {
            Side::Patient
        } else {
            if port.is_ok() {
                self.push(OriginateAction::ReleasePort { token });
            }
            return;
        };
        let port = match port {
            Ok(port) => port,
            Err(error) => {
                warn!(%error, "no RTP port for an outbound call");
                self.leg_mut(side).port = None;
                self.leg_mut(side).state = LegState::Done;
                self.fail(now, Failure::NoPort);
                return;
            }
        };
        match side {
            Side::Agent => self.invite_agent(now, port),
            Side::Patient => self.invite_patient(now, port),
        }
    }

    /// The transaction of a request sent with a token, or `None` when it
    /// could not be sent.
    pub fn handle_sent(
        &mut self,
        now: Instant,
        token: SendToken,
        transaction: Option<ClientTransactionId>,
    ) {
        let side = if self.agent.token == Some(token) {
            Side::Agent
        } else if self.patient.token == Some(token) {
            Side::Patient
        } else {
            return;
        };
        let leg = self.leg_mut(side);
        match transaction {
            Some(transaction) => {
                leg.transaction = Some(transaction);
                if leg.cancel_when_sent {
                    leg.cancel_when_sent = false;
                    self.push(OriginateAction::Cancel { transaction });
                }
            }
            None if leg.state == LegState::Cancelling => {
                // Nothing went out: nothing to wait for.
                leg.state = LegState::Done;
                if self.result.is_some() {
                    self.close_when_quiet(now);
                }
            }
            None if leg.state == LegState::Inviting => {
                leg.state = LegState::Done;
                let failure = match side {
                    Side::Agent => Failure::AgentUnreachable,
                    Side::Patient => Failure::TrunkUnreachable,
                };
                self.fail(now, failure);
            }
            None => {}
        }
    }

    /// SIP news for one of the two Call-IDs.
    pub fn handle_sip(&mut self, now: Instant, event: Event) {
        if self.finished {
            return;
        }
        let side = if event.call_id() == &self.agent.call_id {
            Side::Agent
        } else if event.call_id() == &self.patient.call_id {
            Side::Patient
        } else {
            return;
        };
        if side == Side::Patient && !self.came_from_trunk(&event) {
            warn!("a message on the patient's leg not from the trunk: dropped");
            return;
        }
        match event {
            Event::Response { response, .. } | Event::Stray2xx { response, .. } => {
                self.on_response(now, side, &response);
            }
            Event::Timeout { .. } | Event::TransportError { .. }
                if self.leg(side).state == LegState::Inviting =>
            {
                self.leg_mut(side).state = LegState::Done;
                self.fail(now, unreachable_of(side));
            }
            Event::Request {
                transaction,
                request,
                ..
            } => self.on_request(now, side, transaction, &request),
            _ => {}
        }
        if self.result.is_some() {
            self.close_when_quiet(now);
        }
    }

    /// News from the media task.
    pub fn handle_media(&mut self, now: Instant, event: MediaEvent) {
        if self.result.is_some() {
            return;
        }
        match event {
            MediaEvent::Inactive { leg, silent_for } => {
                warn!(?leg, ?silent_for, "no RTP: ending the outbound call");
                if self.connected {
                    self.end(now, EndedBy::Silence);
                } else {
                    self.fail(now, Failure::AgentHungUp);
                }
            }
            MediaEvent::Latched { leg, address } => debug!(?leg, %address, "rtp latched"),
            MediaEvent::PlaybackEnded {
                leg: Leg::Agent,
                id,
                ..
            } if self.whisper.is_some_and(|(whisper, _)| whisper == id.0) => {
                self.whisper = None;
                self.dial_patient();
            }
            // An outbound call records nothing and listens to nothing.
            MediaEvent::Dtmf { .. }
            | MediaEvent::PlaybackEnded { .. }
            | MediaEvent::RecordingEnded { .. }
            | MediaEvent::SpeechStarted { .. }
            | MediaEvent::SpeechEnded { .. } => {}
        }
    }

    /// Ring deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if self.result.is_some() {
            if self.linger_until.is_some_and(|at| at <= now) {
                debug!("no answer to our CANCEL: done waiting");
                self.close(now);
            }
            return;
        }
        let due = |leg: &OutLeg| {
            leg.state == LegState::Inviting && leg.deadline.is_some_and(|at| at <= now)
        };
        if self.whisper.is_some_and(|(_, until)| until <= now) {
            debug!("the whisper did not end: dialing the patient");
            self.whisper = None;
            self.dial_patient();
        } else if due(&self.agent) {
            info!("the agent did not answer");
            self.fail(now, Failure::AgentNoAnswer);
        } else if due(&self.patient) {
            info!("the patient did not answer");
            self.fail(now, Failure::PatientNoAnswer);
        }
    }

    /// The daemon stops (or the originate is called off): hang up both.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if self.result.is_some() {
            self.close(now);
            return;
        }
        if self.connected {
            self.end(now, EndedBy::Shutdown);
        } else {
            self.fail(now, Failure::Shutdown);
        }
    }

    /// The agent answered: the whisper first when there is one, else the
    /// patient at once.
    pub(super) fn agent_answered(&mut self, now: Instant) {
        let Some(path) = self.setup.whisper.clone() else {
            self.dial_patient();
            return;
        };
        let id = self.next_token();
        self.whisper = Some((id, now + self.setup.patient_ring));
        self.push(OriginateAction::Media(OriginateMedia::PlayAgent {
            id,
            prompts: vec![path],
            mode: PlaybackMode::Once,
        }));
        info!(agent = %self.setup.agent, "the agent answered: the whisper plays");
    }

    /// Asks for the patient's port: the trunk is dialed once it comes.
    fn dial_patient(&mut self) {
        if self.result.is_some() || self.patient.state != LegState::Idle {
            return;
        }
        info!(agent = %self.setup.agent, "dialing the patient");
        let token = self.port_token();
        self.patient.port = Some(token);
        self.patient.state = LegState::Leasing;
        self.push(OriginateAction::LeasePort { token });
    }

    // ---- the agent's leg -----------------------------------------------

    fn invite_agent(&mut self, now: Instant, port: u16) {
        let session_id = u64::from(self.rng.next_u32());
        let local = LocalMedia::new(self.config.advertise, port, session_id);
        // SDES keys travel in the SDP, so only over TLS (RFC 4568 §8.3).
        let local = if self.agent.peer.transport == sip::TransportKind::Tls {
            local.offering_srtp(&mut self.rng)
        } else {
            local
        };
        let offer = sdp::create_offer(&local);
        let from_tag = tag(&mut self.rng);
        let mut invite = crate::signal::agent_invite(
            self.setup.agent_binding.uri(),
            &self.setup.agent,
            &self.setup.display,
            std::net::SocketAddr::new(self.config.advertise, self.config.sip_port),
            &self.agent.call_id,
            &from_tag,
            70,
            offer.to_string(),
            false,
        );
        crate::signal::preload_route(&mut invite, &self.setup.agent_binding.path);
        if self.agent.peer.transport == sip::TransportKind::Tls {
            invite.headers.set(
                sip::message::HeaderName::Contact,
                self.config.contact_for(self.agent.peer.transport),
            );
        }
        let token = SendToken(self.next_token());
        let leg = &mut self.agent;
        leg.local = Some(local);
        leg.offer = Some(offer);
        leg.invite = Some(invite.clone());
        leg.token = Some(token);
        leg.deadline = Some(now + self.setup.agent_ring);
        leg.state = LegState::Inviting;
        let call_id = leg.call_id.clone();
        let peer = leg.peer;
        self.push(OriginateAction::Route { call_id });
        self.push(OriginateAction::Send {
            request: invite,
            peer,
            token: Some(token),
        });
        info!(agent = %self.setup.agent, "ringing the agent for an outbound call");
    }

    // ---- the patient's leg ---------------------------------------------

    fn invite_patient(&mut self, now: Instant, port: u16) {
        let session_id = u64::from(self.rng.next_u32());
        let local = LocalMedia::new(self.config.advertise, port, session_id);
        let offer = sdp::create_offer(&local);
        let from_tag = tag(&mut self.rng);
        let trunk = &self.setup.trunk;
        let invite = signal::trunk_invite(&signal::TrunkInvite {
            number: &self.setup.patient,
            host: &trunk.host,
            port: trunk.port,
            caller_id: &trunk.caller_id,
            advertise: self.config.advertise,
            contact: &self.config.contact_for(trunk.peer.transport),
            call_id: &self.patient.call_id,
            tag: &from_tag,
            sdp: offer.to_string(),
        });
        let token = SendToken(self.next_token());
        let leg = &mut self.patient;
        leg.local = Some(local);
        leg.offer = Some(offer);
        leg.invite = Some(invite.clone());
        leg.token = Some(token);
        leg.deadline = Some(now + self.setup.patient_ring);
        leg.state = LegState::Inviting;
        let call_id = leg.call_id.clone();
        let peer = leg.peer;
        self.push(OriginateAction::Route { call_id });
        self.push(OriginateAction::Send {
            request: invite,
            peer,
            token: Some(token),
        });
        if let Some(ringback) = self.setup.ringback.clone() {
            let id = self.next_token();
            self.ringback = Some(id);
            self.push(OriginateAction::Media(OriginateMedia::PlayAgent {
                id,
                prompts: vec![ringback],
                mode: PlaybackMode::Loop,
            }));
        }
        info!("dialing the patient through the trunk");
    }

    /// A 401 or 407 from the trunk: the INVITE again with credentials,
    /// once (RFC 3261 §22.2). `false` when there is nothing to answer with.
    fn answer_challenge(&mut self, response: &ValidResponse) -> bool {
        if self.authenticated {
            return false;
        }
        let Some((username, password)) = self.setup.trunk.credentials.clone() else {
            return false;
        };
        let Some(invite) = self.patient.invite.as_ref() else {
            return false;
        };
        let Some(challenge) = signal::challenge(response) else {
            return false;
        };
        let cnonce = format!("{:016x}", self.rng.next_u64());
        let request = signal::with_credentials(
            invite,
            response.response.status,
            &challenge,
            &username,
            &password,
            &cnonce,
        );
        let token = SendToken(self.next_token());
        self.authenticated = true;
        let leg = &mut self.patient;
        leg.invite = Some(request.clone());
        leg.token = Some(token);
        leg.transaction = None;
        let peer = leg.peer;
        self.push(OriginateAction::Send {
            request,
            peer,
            token: Some(token),
        });
        debug!("the trunk challenged: INVITE again with credentials");
        true
    }

    // ---- the end -------------------------------------------------------

    fn fail(&mut self, now: Instant, failure: Failure) {
        if self.result.is_some() {
            return;
        }
        if let Failure::TrunkRefused(code) = failure {
            info!(status = code, "outbound call failed: {}", failure.as_str());
        } else {
            info!("outbound call failed: {}", failure.as_str());
        }
        self.finish(now, Progress::Failed(failure));
    }

    fn end(&mut self, now: Instant, by: EndedBy) {
        if self.result.is_some() {
            return;
        }
        info!(by = by.as_str(), "outbound call ended");
        self.finish(now, Progress::Ended(by));
    }

    /// Ends both legs (CANCEL the ringing one, BYE the answered ones, ports
    /// back), the media, and reports how it went.
    fn finish(&mut self, now: Instant, result: Progress) {
        for side in [Side::Agent, Side::Patient] {
            self.end_leg(side);
        }
        self.push(OriginateAction::Media(OriginateMedia::End));
        self.push(OriginateAction::Report(result));
        self.result = Some(result);
        self.close_when_quiet(now);
    }

    /// Done once no CANCEL waits for its answer, or [`CANCEL_LINGER`]
    /// after the end.
    fn close_when_quiet(&mut self, now: Instant) {
        let cancelling = [&self.agent, &self.patient]
            .iter()
            .any(|leg| leg.state == LegState::Cancelling);
        if !cancelling {
            self.close(now);
        } else if self.linger_until.is_none() {
            self.linger_until = Some(now + CANCEL_LINGER);
        }
    }

    fn close(&mut self, _now: Instant) {
        if self.finished {
            return;
        }
        for call_id in [self.agent.call_id.clone(), self.patient.call_id.clone()] {
            self.push(OriginateAction::Unroute { call_id });
        }
        self.push(OriginateAction::Finished);
        self.finished = true;
    }

    fn end_leg(&mut self, side: Side) {
        let leg = self.leg_mut(side);
        let port = leg.port.take();
        match leg.state {
            LegState::Inviting => {
                leg.state = LegState::Cancelling;
                match leg.transaction {
                    Some(transaction) => self.push(OriginateAction::Cancel { transaction }),
                    None => leg.cancel_when_sent = true,
                }
            }
            LegState::Up => {
                leg.state = LegState::Done;
                let peer = leg.peer;
                if let Some(dialog) = leg.dialog.as_mut() {
                    let bye = dialog.request(Method::Bye);
                    self.push(OriginateAction::Send {
                        request: bye,
                        peer,
                        token: None,
                    });
                }
            }
            LegState::Idle | LegState::Leasing => leg.state = LegState::Done,
            LegState::Cancelling | LegState::Done => {}
        }
        if let Some(token) = port {
            self.push(OriginateAction::ReleasePort { token });
        }
    }

    // ---- helpers -------------------------------------------------------

    fn came_from_trunk(&self, event: &Event) -> bool {
        let source = match event {
            Event::Response { source, .. }
            | Event::Stray2xx { source, .. }
            | Event::Request { source, .. }
            | Event::Ack { source, .. }
            | Event::StrayAck { source, .. } => source,
            // The transaction layer's own news (timeouts) has no source.
            _ => return true,
        };
        source.address.ip() == self.setup.trunk.peer.address.ip()
    }

    fn leg(&self, side: Side) -> &OutLeg {
        match side {
            Side::Agent => &self.agent,
            Side::Patient => &self.patient,
        }
    }

    fn leg_mut(&mut self, side: Side) -> &mut OutLeg {
        match side {
            Side::Agent => &mut self.agent,
            Side::Patient => &mut self.patient,
        }
    }

    fn push(&mut self, action: OriginateAction) {
        self.actions.push_back(action);
    }

    fn port_token(&mut self) -> PortToken {
        PortToken(self.next_token())
    }

    fn next_token(&mut self) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        token
    }
}

fn unreachable_of(side: Side) -> Failure {
    match side {
        Side::Agent => Failure::AgentUnreachable,
        Side::Patient => Failure::TrunkUnreachable,
    }
}
