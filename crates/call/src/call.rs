//! The call: its state, its inputs and the patient's leg.
//!
//! The course of a call: INVITE → (a port is leased, the SDP answered,
//! the media started) → (180 during a ring-before-answer delay) → 200
//! with our SDP answer → the IVR plays the emergency notice and the menus,
//! collects digits (RFC 4733, SIP INFO, in-band) → a queue decision → the
//! queue wait ([`crate::queue`]) and the agent legs ([`crate::agent`]) →
//! bridge → BYE. The agent may transfer the patient
//! ([`crate::transfer`]).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use ivr::{Dialplan, Input, Session};
use media::DtmfDigit;
use media::playback::PlaybackMode;
use media::sdp::{self, LocalMedia, SessionDescription};
use media::session::{Leg, MediaEvent};
use rand::rngs::StdRng;
use rand::{Rng, RngCore};
use sip::Peer;
use sip::TransportKind;
use sip::dialog::Dialog;
use sip::message::validate::ValidRequest;
use sip::message::{Method, StatusCode};
use sip::registrar::Binding;
use sip::transaction::{Event, ServerTransactionId};
use tracing::{debug, info, warn};

use crate::Outcome;
use crate::action::{Action, MediaAction, PortToken, RouterRequest, RoutingInput, SendToken};
use crate::agent::Legs;
use crate::clock::Clock;
use crate::queue::{Hold, Waiting};
use crate::record::CallRecord;
use crate::signal;
use crate::transfer::Transfer;

/// How long to wait for the ACK of a delayed-offer 200 before giving up.
pub const ACK_WAIT: Duration = Duration::from_secs(32);

/// Read-only views of state the call consults as it goes; reading them is
/// not I/O (the driver hands snapshots or shared tables).
pub trait Environment {
    /// The dialplan in force (a reload applies to calls under way).
    fn plan(&self) -> Arc<Dialplan>;
    /// An agent's registered contacts, preferred first.
    fn bindings(&self, agent: &str) -> Vec<Binding>;
}

/// What a call needs to know about the daemon it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// The address peers reach us at (Contact, SDP).
    pub advertise: IpAddr,
    /// Our SIP port (UDP and TCP).
    pub sip_port: u16,
    /// Our SIP over TLS port, with `--sips`.
    pub sips_port: Option<u16>,
}

impl CallConfig {
    /// Our Contact for a dialog with a peer on `transport`: over TLS it
    /// names the TLS port with `;transport=tls`, so that the peer's requests
    /// in the dialog come back over TLS.
    pub fn contact_for(&self, transport: TransportKind) -> String {
        match (transport, self.sips_port) {
            (TransportKind::Tls, Some(port)) => format!(
                "<sip:frontdesk@{};transport=tls>",
                signal::host_port(std::net::SocketAddr::new(self.advertise, port))
            ),
            _ => signal::contact(self.advertise, self.sip_port),
        }
    }
}

/// Where the patient's leg stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the port of the patient's media.
    Leasing,
    /// The INVITE is unanswered (ringing before answer).
    Offered,
    /// 200 sent; with a delayed offer, waiting for the ACK's answer.
    Answered,
    /// Over.
    Ended,
}

/// The patient's leg: the INVITE, the dialog, our SDP.
#[derive(Debug)]
pub(crate) struct CallerLeg {
    pub(crate) transaction: ServerTransactionId,
    pub(crate) invite: Box<ValidRequest>,
    pub(crate) source: Peer,
    pub(crate) local_tag: String,
    pub(crate) dialog: Option<Dialog>,
    pub(crate) phase: Phase,
    /// Our SDP towards the patient.
    pub(crate) local: Option<LocalMedia>,
    /// What we answered (or offered, for a delayed offer).
    pub(crate) our_sdp: Option<SessionDescription>,
    /// The port of a delayed offer, used once the ACK brings the answer.
    pub(crate) port: Option<PortToken>,
    /// The media runs (the SDP was agreed).
    pub(crate) media: bool,
    pub(crate) ack_deadline: Option<Instant>,
    /// The patient hung up (or cancelled): nothing more goes to them.
    pub(crate) gone: bool,
}

/// One call. See the crate docs.
#[derive(Debug)]
pub struct Call {
    pub(crate) config: CallConfig,
    pub(crate) clock: Clock,
    pub(crate) rng: StdRng,
    /// Routing's id of the call.
    pub(crate) id: routing::CallId,
    pub(crate) record: CallRecord,
    pub(crate) caller: CallerLeg,
    pub(crate) session: Option<Session>,
    /// The IVR's playback in progress: ours, and the IVR's id.
    playing: Option<(u64, ivr::PlaybackId)>,
    next_playback: u64,
    /// After the last message: hang up when it ends, with this outcome.
    pub(crate) hang_up_after: Option<(u64, Outcome)>,
    pub(crate) waiting: Option<Waiting>,
    pub(crate) hold: Option<Hold>,
    /// Digits pressed while waiting (and not the callback's).
    pub(crate) queued_digits: String,
    /// The caller's callback, once offered or asked for.
    pub(crate) callback: Option<crate::callback::CallbackState>,
    /// When routing's estimate of the wait passed the callback's
    /// `offer_after`.
    pub(crate) callback_estimate_passed: Option<Instant>,
    pub(crate) transfer: Option<Transfer>,
    pub(crate) overflowed: bool,
    /// A voicemail in progress (greeting, recording).
    pub(crate) voicemail: Option<crate::voicemail::Voicemail>,
    /// The clinic was closed when the call was answered.
    after_hours: bool,
    pub(crate) legs: Legs,
    /// The daemon drains and callers still waiting keep their place
    /// ([`Call::handle_drain`]).
    pub(crate) draining: bool,
    actions: VecDeque<Action>,
    next_token: u64,
    finished: bool,
}

impl Call {
    /// A call for the patient's `invite` (received on `transaction` from
    /// `source`), numbered `id` by the driver, at `now` (the wall time then
    /// in `clock`). Nothing happens before [`Call::start`].
    #[allow(clippy::too_many_arguments)] // the INVITE and what the driver knows of it, each from a different owner
    pub fn new(
        config: CallConfig,
        id: u64,
        record_id: String,
        invite: Box<ValidRequest>,
        transaction: ServerTransactionId,
        source: Peer,
        clock: Clock,
        now: Instant,
        mut rng: StdRng,
    ) -> Call {
        let dialed = signal::dialed_number(&invite);
        let caller = signal::caller_number(&invite);
        let local_tag = tag(&mut rng);
        Call {
            record: CallRecord::new(record_id, &caller, &dialed, clock.wall(now)),
            config,
            clock,
            rng,
            id: routing::CallId(id),
            caller: CallerLeg {
                transaction,
                invite,
                source,
                local_tag,
                dialog: None,
                phase: Phase::Leasing,
                local: None,
                our_sdp: None,
                port: None,
                media: false,
                ack_deadline: None,
                gone: false,
            },
            session: None,
            playing: None,
            next_playback: 1,
            hang_up_after: None,
            waiting: None,
            hold: None,
            queued_digits: String::new(),
            callback: None,
            callback_estimate_passed: None,
            transfer: None,
            overflowed: false,
            voicemail: None,
            after_hours: false,
            legs: Legs::default(),
            draining: false,
            actions: VecDeque::new(),
            next_token: 1,
            finished: false,
        }
    }

    /// The call's record as it stands.
    pub fn record(&self) -> &CallRecord {
        &self.record
    }

    /// The Call-ID of the patient's leg.
    pub fn call_id(&self) -> &ByteString {
        &self.caller.invite.call_id
    }

    /// Whether the call is over ([`Action::Finished`] was given).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Call::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let ivr = self
            .session
            .as_ref()
            .and_then(Session::poll_timeout)
            .map(|at| self.ivr_instant(at));
        [
            ivr,
            self.legs.next_deadline(),
            self.caller.ack_deadline,
            self.hold_deadline(),
            self.callback_deadline(),
            self.transfer_deadline(),
            self.voicemail_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Checks the INVITE, prepares the IVR and asks for the patient's port.
    pub fn start(&mut self, now: Instant, env: &dyn Environment) {
        let plan = env.plan();
        let wall = self.clock.wall(now);
        let session = match Session::new(
            Arc::clone(&plan),
            &self.record.dialed,
            &self.record.caller,
            wall,
        ) {
            Ok(session) => session,
            Err(error) => {
                let status = StatusCode::new(error.sip_status()).unwrap_or(StatusCode::NOT_FOUND);
                info!(dialed = %signal::unescaped(&self.record.dialed), %status, "call refused: {error}");
                self.refuse(now, status);
                return;
            }
        };
        if let Some(number) = plan.number(&self.record.dialed) {
            self.record.source = Some(number.source().as_str().to_string());
            self.record.priority = number.priority();
        }
        self.after_hours = !matches!(plan.open_state(wall), ivr::OpenState::Open);
        self.session = Some(session);
        let headers = &self.caller.invite.request.headers;
        if signal::has_foreign_body(headers, &self.caller.invite.request.body) {
            self.refuse(now, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            return;
        }
        let token = self.port_token();
        self.caller.port = Some(token);
        self.push(Action::LeasePort { token });
    }

    /// The answer to an [`Action::LeasePort`]: the port's number, or why
    /// there is none.
    pub fn handle_port(
        &mut self,
        now: Instant,
        token: PortToken,
        port: Result<u16, String>,
        env: &dyn Environment,
    ) {
        if self.caller.port == Some(token) && self.caller.phase == Phase::Leasing {
            self.caller_port(now, token, port, env);
        } else if self.legs.wants_port(token) {
            self.agent_port(now, token, port, env);
        } else if port.is_ok() {
            // Asked for and no longer needed (the call moved on).
            self.push(Action::ReleasePort { token });
        }
    }

    /// The transaction id of a request sent with a token, or `None` when it
    /// could not be sent.
    pub fn handle_sent(
        &mut self,
        now: Instant,
        token: SendToken,
        transaction: Option<sip::transaction::ClientTransactionId>,
    ) {
        self.agent_invite_sent(now, token, transaction);
    }

    /// SIP news for one of the call's Call-IDs.
    pub fn handle_sip(&mut self, now: Instant, event: Event, env: &dyn Environment) {
        if self.finished {
            return;
        }
        self.on_sip(now, event, env);
        // An agent's leg failed: the caller may be back in line.
        self.keep_place_if_draining(now, env);
    }

    fn on_sip(&mut self, now: Instant, event: Event, env: &dyn Environment) {
        if event.call_id() != &self.caller.invite.call_id {
            self.on_agent_sip(now, event, env);
            return;
        }
        match event {
            Event::Cancelled { .. } => {
                info!("caller cancelled before the answer");
                self.caller.gone = true;
                self.end(now, Outcome::Abandoned);
            }
            Event::Ack { ack, .. } => self.on_ack(now, &ack, env),
            Event::AckTimeout { .. } => {
                warn!("the caller never ACKed our 200");
                self.hang_up(now, Outcome::Abandoned);
            }
            Event::Request {
                transaction,
                request,
                ..
            } => self.on_caller_request(now, transaction, &request, env),
            Event::Response { response, .. } => {
                // The 2xx to our re-INVITE (hold) is ACKed; answers to our
                // BYE need nothing.
                if response.response.status.is_success()
                    && response.cseq.method == Method::Invite
                    && let Some(dialog) = self.caller.dialog.as_ref()
                {
                    self.push(Action::Ack {
                        request: dialog.ack(response.cseq.seq),
                        peer: dialog.peer,
                    });
                }
            }
            Event::Timeout { .. } | Event::TransportError { .. } => {}
            Event::StrayAck { .. } | Event::Stray2xx { .. } => {}
        }
    }

    /// News from the call's media.
    pub fn handle_media(&mut self, now: Instant, event: MediaEvent, env: &dyn Environment) {
        if self.finished {
            return;
        }
        match event {
            MediaEvent::Dtmf {
                leg: Leg::Caller,
                digit,
                source,
            } => {
                debug!(digit = %digit.as_char(), ?source, "digit");
                if self.voicemail_digit(now, digit.as_char()) {
                    return;
                }
                if self.legs.connected().is_none() {
                    if self.waiting.is_some() {
                        self.queued_digit(now, digit.as_char(), env);
                    } else {
                        self.drive_ivr(now, Some(Input::Digit(digit.as_char())), env);
                    }
                }
            }
            MediaEvent::SpeechStarted { leg: Leg::Caller } => {
                if self.legs.connected().is_none() && self.waiting.is_none() {
                    self.drive_speech(now, ivr::SpeechInput::Started, env);
                }
            }
            MediaEvent::PlaybackEnded {
                leg: Leg::Caller,
                id,
                completed,
            } => {
                if self.voicemail_playback_ended(now, id.0, env) {
                    return;
                }
                if let Some((last, outcome)) = self.hang_up_after
                    && last == id.0
                {
                    self.hang_up_after = None;
                    self.hang_up(now, outcome);
                    return;
                }
                if self.on_hold_playback_ended(now, id.0, completed, env) {
                    return;
                }
                if let Some((playing, ivr_id)) = self.playing
                    && playing == id.0
                {
                    self.playing = None;
                    if completed {
                        self.drive_ivr(now, Some(Input::PromptFinished(ivr_id)), env);
                    }
                }
            }
            MediaEvent::Inactive { leg, silent_for } => {
                warn!(?leg, ?silent_for, "no RTP: ending the call");
                let outcome = if self.legs.connected().is_some() {
                    Outcome::Connected
                } else {
                    Outcome::Abandoned
                };
                self.hang_up(now, outcome);
            }
            MediaEvent::RecordingEnded {
                leg: Leg::Caller,
                end,
            } => {
                info!(?end, "voicemail ended by itself");
                self.voicemail_recording_ended(now);
            }
            MediaEvent::RecordingEnded { .. } => {}
            MediaEvent::Latched { leg, address } => debug!(?leg, %address, "rtp latched"),
            // An utterance's end goes to the recogniser from the media
            // task; the call hears the recogniser's answer.
            MediaEvent::Dtmf { .. }
            | MediaEvent::PlaybackEnded { .. }
            | MediaEvent::SpeechStarted { .. }
            | MediaEvent::SpeechEnded { .. } => {}
        }
    }

    /// News from routing, or its answer to a request.
    pub fn handle_routing(&mut self, now: Instant, input: RoutingInput, env: &dyn Environment) {
        if self.finished {
            return;
        }
        self.on_routing(now, input, env);
        // Queued (perhaps only now), or an offer withdrawn.
        self.keep_place_if_draining(now, env);
    }

    /// Deadlines: the ACK wait, ring timeouts, announcements, the transfer's
    /// subscription, the IVR's timers.
    pub fn handle_timeout(&mut self, now: Instant, env: &dyn Environment) {
        if self.finished {
            return;
        }
        self.on_timeout(now, env);
        // A ring timed out: the caller may be back in line.
        self.keep_place_if_draining(now, env);
    }

    fn on_timeout(&mut self, now: Instant, env: &dyn Environment) {
        if self.caller.ack_deadline.is_some_and(|at| at <= now) {
            self.caller.ack_deadline = None;
            warn!("no ACK with an SDP answer: ending the call");
            self.hang_up(now, Outcome::Abandoned);
            return;
        }
        self.legs_deadline(now);
        self.voicemail_timeout(now);
        if self.finished {
            return;
        }
        self.hold_timeout(now, env);
        self.callback_timeout(now, env);
        self.transfer_timeout(now);
        let wall = self.clock.wall(now);
        if let Some(session) = self.session.as_mut() {
            session.handle_timeout(wall);
        }
        self.drive_ivr(now, None, env);
    }

    /// The daemon stops and its grace for calls is over: hang up. A call
    /// saying its last words keeps the outcome they were for (a caller
    /// told their place is kept is no abandonment); a caller still
    /// waiting after a drain that could not keep their place in time
    /// becomes a callback lead ([`Call::last_resort_place`]).
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        let outcome = if let Some((_, outcome)) = self.hang_up_after {
            outcome
        } else if self.legs.connected().is_some() {
            Outcome::Connected
        } else if self.last_resort_place(now) {
            Outcome::Overflowed
        } else {
            Outcome::Abandoned
        };
        warn!("daemon stopping: hanging up");
        self.hang_up(now, outcome);
    }

    // ---- actions -------------------------------------------------------

    pub(crate) fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    pub(crate) fn media(&mut self, action: MediaAction) {
        if self.caller.media {
            self.push(Action::Media(action));
        }
    }

    pub(crate) fn router(&mut self, request: RouterRequest) {
        self.push(Action::Router(request));
    }

    pub(crate) fn port_token(&mut self) -> PortToken {
        PortToken(self.next_token())
    }

    pub(crate) fn next_token(&mut self) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        token
    }

    /// The record changed: the driver publishes it once the turn is done.
    pub(crate) fn publish(&mut self) {
        if !matches!(self.actions.back(), Some(Action::Publish)) {
            self.push(Action::Publish);
        }
    }

    pub(crate) fn wall(&self, now: Instant) -> ivr::jiff::Timestamp {
        self.clock.wall(now)
    }

    /// The IVR's deadlines are wall times, paired with the call's instants.
    fn ivr_instant(&self, at: ivr::jiff::Timestamp) -> Instant {
        self.clock.instant_at(at)
    }

    // ---- the patient's leg ---------------------------------------------

    fn caller_port(
        &mut self,
        now: Instant,
        token: PortToken,
        port: Result<u16, String>,
        env: &dyn Environment,
    ) {
        let port = match port {
            Ok(port) => port,
            Err(error) => {
                warn!(%error, "no RTP port for a new call");
                self.caller.port = None;
                self.refuse(now, StatusCode::SERVICE_UNAVAILABLE);
                return;
            }
        };
        let plan = env.plan();
        let rings_first = plan
            .number(&self.record.dialed)
            .and_then(ivr::Number::answer_after)
            .is_some_and(|delay| !delay.is_zero());
        // A fresh SRTP key per call: an RTP/SAVP offer with a=crypto gets an
        // SRTP answer (RFC 4568); a plain offer stays plain RTP.
        let session_id = u64::from(self.rng.next_u32());
        let local =
            LocalMedia::new(self.config.advertise, port, session_id).with_srtp(&mut self.rng);
        let headers = &self.caller.invite.request.headers;
        match signal::sdp_body(headers, &self.caller.invite.request.body) {
            Some(body) => {
                let answer = SessionDescription::parse(&body)
                    .and_then(|offer| sdp::create_answer(&offer, &local));
                match answer {
                    Ok(answer) => {
                        self.caller.our_sdp = Some(answer.description);
                        self.caller.port = None;
                        self.caller.media = true;
                        self.push(Action::Media(MediaAction::Start {
                            port: token,
                            media: answer.media,
                        }));
                    }
                    Err(error) => {
                        info!(%error, "call refused: SDP");
                        let status = StatusCode::new(error.sip_status())
                            .unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                        self.caller.port = None;
                        self.push(Action::ReleasePort { token });
                        self.refuse(now, status);
                        return;
                    }
                }
            }
            None => {
                // Delayed offer: our offer goes in the 200, the answer comes
                // in the ACK (RFC 3261 §13.2.1).
                self.caller.our_sdp = Some(sdp::create_offer(&local));
            }
        }
        self.caller.local = Some(local);
        self.caller.phase = Phase::Offered;
        self.journal_started();
        self.publish();
        if rings_first {
            self.ring();
        }
        info!(source = ?self.record.source, "call answered by the IVR");
        self.drive_ivr(now, None, env);
    }

    /// A final non-2xx answer to the INVITE; the call never starts.
    fn refuse(&mut self, now: Instant, status: StatusCode) {
        let response = signal::response(
            &self.caller.invite.request.headers,
            status,
            &self.caller.local_tag,
        );
        self.push(Action::Respond {
            transaction: self.caller.transaction,
            response,
        });
        self.record.outcome = Some(Outcome::Rejected);
        self.caller.phase = Phase::Ended;
        self.record.ended_at = Some(self.wall(now));
        self.journal_started();
        self.journal_ended();
        self.finish();
    }

    /// Sends the 200 with our SDP and starts the dialog.
    fn answer(&mut self, now: Instant) {
        if self.caller.phase != Phase::Offered {
            return;
        }
        let contact = self.config.contact_for(self.caller.source.transport);
        let sdp = self.caller.our_sdp.as_ref().map(ToString::to_string);
        let ok = signal::dialog_response(
            &self.caller.invite.request.headers,
            StatusCode::OK,
            &self.caller.local_tag,
            Some(&contact),
            sdp,
        );
        self.push(Action::Respond {
            transaction: self.caller.transaction,
            response: ok,
        });
        match Dialog::uas(
            &self.caller.invite,
            &self.caller.local_tag,
            self.caller.source,
        ) {
            Ok(dialog) => self.caller.dialog = Some(dialog),
            Err(error) => warn!(%error, "no dialog with the caller"),
        }
        self.caller.phase = Phase::Answered;
        self.journal(records::CallEvent::Entered {
            source: self.record.source.clone(),
            branch: None,
        });
        if self.caller.media {
            self.ivr_answered(now);
        } else {
            // A delayed offer: the IVR starts once the ACK brings the
            // answer and the media runs, so the notice is heard from its
            // first word.
            self.caller.ack_deadline = Some(now + ACK_WAIT);
        }
    }

    /// Tells the IVR the call is answered (and its media runs).
    fn ivr_answered(&mut self, now: Instant) {
        let wall = self.wall(now);
        if let Some(session) = self.session.as_mut() {
            session.handle_input(wall, Input::Answered);
        }
    }

    /// Offered: a 180 when the number rings before answering.
    fn ring(&mut self) {
        let contact = self.config.contact_for(self.caller.source.transport);
        let ringing = signal::dialog_response(
            &self.caller.invite.request.headers,
            StatusCode::RINGING,
            &self.caller.local_tag,
            Some(&contact),
            None,
        );
        self.push(Action::Respond {
            transaction: self.caller.transaction,
            response: ringing,
        });
    }

    fn on_ack(&mut self, now: Instant, ack: &ValidRequest, env: &dyn Environment) {
        if self.caller.media {
            return;
        }
        // Delayed offer: the answer is in the ACK.
        self.caller.ack_deadline = None;
        let (Some(local), Some(offer), Some(port)) = (
            self.caller.local.as_ref(),
            self.caller.our_sdp.as_ref(),
            self.caller.port.take(),
        ) else {
            return;
        };
        let answer = signal::sdp_body(&ack.request.headers, &ack.request.body)
            .ok_or(media::SdpError::NoAudio)
            .and_then(|body| SessionDescription::parse(&body))
            .and_then(|answer| sdp::accept_answer(offer, &answer, local));
        match answer {
            Ok(negotiated) => {
                self.caller.media = true;
                self.push(Action::Media(MediaAction::Start {
                    port,
                    media: negotiated,
                }));
                self.ivr_answered(now);
                self.drive_ivr(now, None, env);
            }
            Err(error) => {
                warn!(%error, "the ACK's SDP answer is not usable");
                self.push(Action::ReleasePort { token: port });
                self.caller.ack_deadline = Some(now);
            }
        }
    }

    fn on_caller_request(
        &mut self,
        now: Instant,
        transaction: ServerTransactionId,
        request: &ValidRequest,
        env: &dyn Environment,
    ) {
        let headers = &request.request.headers;
        if let Some(dialog) = self.caller.dialog.as_mut()
            && let Err(error) = dialog.receive(request)
        {
            debug!(%error, "in-dialog request refused");
            let response = signal::response(
                headers,
                StatusCode::SERVER_INTERNAL_ERROR,
                &self.caller.local_tag,
            );
            self.push(Action::Respond {
                transaction,
                response,
            });
            return;
        }
        match request.request.method {
            Method::Bye => {
                let ok = signal::response(headers, StatusCode::OK, &self.caller.local_tag);
                self.push(Action::Respond {
                    transaction,
                    response: ok,
                });
                info!("caller hung up");
                self.caller.gone = true;
                let outcome = if self.legs.connected().is_some() {
                    Outcome::Connected
                } else {
                    Outcome::Abandoned
                };
                self.end(now, outcome);
            }
            Method::Info => {
                let digit = signal::info_digit(headers, &request.request.body);
                let status = if digit.is_some() {
                    StatusCode::OK
                } else {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                };
                let response = signal::response(headers, status, &self.caller.local_tag);
                self.push(Action::Respond {
                    transaction,
                    response,
                });
                if let Some(digit) = digit {
                    self.on_digit(now, digit, env);
                }
            }
            Method::Invite => self.on_caller_reinvite(transaction, request),
            Method::Update | Method::Options | Method::Notify => {
                let response = signal::response(headers, StatusCode::OK, &self.caller.local_tag);
                self.push(Action::Respond {
                    transaction,
                    response,
                });
            }
            _ => {
                let response = signal::response(
                    headers,
                    StatusCode::METHOD_NOT_ALLOWED,
                    &self.caller.local_tag,
                );
                self.push(Action::Respond {
                    transaction,
                    response,
                });
            }
        }
    }

    /// A re-INVITE from the patient (hold, unhold, new address).
    fn on_caller_reinvite(&mut self, transaction: ServerTransactionId, request: &ValidRequest) {
        let headers = &request.request.headers;
        let contact = self.config.contact_for(self.caller.source.transport);
        let Some(local) = self.caller.local.as_mut() else {
            let response =
                signal::response(headers, StatusCode::REQUEST_PENDING, &self.caller.local_tag);
            self.push(Action::Respond {
                transaction,
                response,
            });
            return;
        };
        let Some(body) = signal::sdp_body(headers, &request.request.body) else {
            // No offer: offer the same session again.
            local.session_version += 1;
            let offer = sdp::create_offer(local).to_string();
            let ok = signal::dialog_response(
                headers,
                StatusCode::OK,
                &self.caller.local_tag,
                Some(&contact),
                Some(offer),
            );
            self.push(Action::Respond {
                transaction,
                response: ok,
            });
            return;
        };
        local.session_version += 1;
        let answer =
            SessionDescription::parse(&body).and_then(|offer| sdp::create_answer(&offer, local));
        match answer {
            Ok(answer) => {
                let on_hold = answer.media.on_hold;
                let ok = signal::dialog_response(
                    headers,
                    StatusCode::OK,
                    &self.caller.local_tag,
                    Some(&contact),
                    Some(answer.description.to_string()),
                );
                self.media(MediaAction::UpdateLeg {
                    leg: Leg::Caller,
                    media: answer.media,
                });
                self.push(Action::Respond {
                    transaction,
                    response: ok,
                });
                info!(on_hold, "caller re-INVITE");
                self.pass_hold_to_agent(on_hold);
            }
            Err(error) => {
                let status =
                    StatusCode::new(error.sip_status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                let response = signal::response(headers, status, &self.caller.local_tag);
                self.push(Action::Respond {
                    transaction,
                    response,
                });
            }
        }
    }

    /// A digit by SIP INFO.
    pub(crate) fn on_digit(&mut self, now: Instant, digit: char, env: &dyn Environment) {
        if self.voicemail_digit(now, digit) {
            return;
        }
        if self.legs.connected().is_some() {
            // Connected: digits go through to the agent.
            if let Some(digit) = DtmfDigit::from_char(digit) {
                self.media(MediaAction::SendDtmf {
                    leg: Leg::Agent,
                    digits: vec![digit],
                });
            }
            return;
        }
        if self.waiting.is_some() {
            self.queued_digit(now, digit, env);
            return;
        }
        self.drive_ivr(now, Some(Input::Digit(digit)), env);
    }

    // ---- the IVR -------------------------------------------------------

    /// What the recogniser made of an utterance of a speech menu (or that
    /// none could take it). The journal records the words and the
    /// confidence (never the audio), under the menu listening.
    pub fn handle_speech(&mut self, now: Instant, input: ivr::SpeechInput, env: &dyn Environment) {
        if self.finished || self.legs.connected().is_some() || self.waiting.is_some() {
            return;
        }
        if let ivr::SpeechInput::Heard { text, confidence } = &input
            && let Some(menu) = self.session.as_ref().and_then(Session::current_menu)
        {
            let confidence = if confidence.is_finite() {
                confidence.clamp(0.0, 1.0)
            } else {
                0.0
            };
            self.journal(records::CallEvent::SpeechHeard {
                menu: menu.as_str().to_string(),
                text: text.clone(),
                confidence_permille: (confidence * 1000.0).round() as u32,
            });
        }
        self.drive_speech(now, input, env);
    }

    fn drive_speech(&mut self, now: Instant, input: ivr::SpeechInput, env: &dyn Environment) {
        let wall = self.wall(now);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.handle_speech(wall, input);
        self.run_ivr_actions(now, env);
    }

    /// Feeds the IVR `input` (if any), then carries out its actions.
    pub(crate) fn drive_ivr(&mut self, now: Instant, input: Option<Input>, env: &dyn Environment) {
        let wall = self.wall(now);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Some(input) = input {
            // The menu the digit answers, before the input moves on.
            let menu = session.current_menu().map(|menu| menu.as_str().to_string());
            session.handle_input(wall, input);
            if let (Input::Digit(digit), Some(menu)) = (input, menu) {
                self.journal(records::CallEvent::MenuChoice {
                    menu,
                    digits: digit.to_string(),
                });
            }
        }
        self.run_ivr_actions(now, env);
    }

    fn run_ivr_actions(&mut self, now: Instant, env: &dyn Environment) {
        while let Some(action) = self.session.as_mut().and_then(Session::poll_action) {
            self.on_ivr_action(now, action, env);
            if self.caller.phase == Phase::Ended {
                return;
            }
        }
    }

    fn on_ivr_action(&mut self, now: Instant, action: ivr::Action, env: &dyn Environment) {
        match action {
            ivr::Action::Answer => self.answer(now),
            ivr::Action::Play { playback, prompt } => {
                let id = self.next_playback_id();
                self.playing = Some((id, playback));
                self.play(&[prompt.path().to_path_buf()], id, PlaybackMode::Once, true);
            }
            ivr::Action::StopPlayback => {
                self.playing = None;
                self.media(MediaAction::Stop { leg: Leg::Caller });
            }
            ivr::Action::Listen { grammar, .. } => {
                // A session asks to listen only under a plan with `[speech]`.
                if let Some(speech) = env.plan().speech() {
                    let limits = media::listen::SpeechLimits::new(
                        speech.speech_level(),
                        speech.end_of_speech(),
                        speech.max_utterance(),
                    );
                    self.media(MediaAction::Listen {
                        leg: Leg::Caller,
                        grammar,
                        limits,
                    });
                }
            }
            ivr::Action::StopListening => {
                self.media(MediaAction::StopListening { leg: Leg::Caller });
            }
            ivr::Action::Queue(decision) => self.enter_queue(now, decision, env),
            ivr::Action::Voicemail(decision) => {
                // An IVR path ends in a message for the department.
                let outcome = if self.after_hours {
                    Outcome::AfterHours
                } else {
                    Outcome::Rejected
                };
                self.record.source = Some(decision.context.source.as_str().to_string());
                let queue = routing::QueueId::new(decision.queue.as_str());
                self.start_voicemail(now, queue, outcome, env);
            }
            ivr::Action::HangUp { after_message } => {
                // The IVR ends the call itself: a message path (after
                // hours, or a number that only informs).
                let outcome = if self.after_hours {
                    Outcome::AfterHours
                } else {
                    Outcome::Rejected
                };
                debug!(?after_message, "IVR hangs up");
                self.hang_up(now, outcome);
            }
        }
    }

    pub(crate) fn next_playback_id(&mut self) -> u64 {
        let id = self.next_playback;
        self.next_playback += 1;
        id
    }

    /// Plays prompt files to the patient, in order (or looped).
    pub(crate) fn play(&mut self, paths: &[PathBuf], id: u64, mode: PlaybackMode, barge_in: bool) {
        self.media(MediaAction::Play {
            leg: Leg::Caller,
            id,
            prompts: paths.to_vec(),
            mode,
            barge_in,
        });
    }

    /// Plays `path` as the last words, then hangs up with `outcome`.
    pub(crate) fn farewell(&mut self, now: Instant, path: &Path, outcome: Outcome) {
        let id = self.next_playback_id();
        self.hang_up_after = Some((id, outcome));
        self.session = None;
        if self.caller.media {
            self.play(&[path.to_path_buf()], id, PlaybackMode::Once, false);
        } else {
            // Nothing to play it on: the last words are skipped.
            self.hang_up(now, outcome);
        }
    }

    // ---- the end -------------------------------------------------------

    /// We end the call: BYE to the patient (if answered), then [`Call::end`].
    pub(crate) fn hang_up(&mut self, now: Instant, outcome: Outcome) {
        if self.caller.phase == Phase::Ended {
            return;
        }
        if !self.caller.gone {
            if matches!(self.caller.phase, Phase::Offered | Phase::Leasing) {
                let response = signal::response(
                    &self.caller.invite.request.headers,
                    StatusCode::TEMPORARILY_UNAVAILABLE,
                    &self.caller.local_tag,
                );
                self.push(Action::Respond {
                    transaction: self.caller.transaction,
                    response,
                });
            } else if let Some(dialog) = self.caller.dialog.as_mut() {
                let bye = dialog.request(Method::Bye);
                let peer = dialog.peer;
                self.push(Action::Send {
                    request: bye,
                    peer,
                    token: None,
                });
            }
            self.caller.gone = true;
        }
        self.end(now, outcome);
    }

    /// Ends everything: agent legs, queue, media, the record.
    pub(crate) fn end(&mut self, now: Instant, outcome: Outcome) {
        if self.caller.phase == Phase::Ended {
            return;
        }
        // A caller who hangs up after leaving a message did not abandon.
        let outcome = self.voicemail_outcome().unwrap_or(outcome);
        self.caller.phase = Phase::Ended;
        self.session = None;
        let connected = self.legs.connected().is_some();
        self.transfer_failed(StatusCode::REQUEST_TERMINATED);
        self.end_legs();
        if connected {
            self.router(RouterRequest::CallEnded);
        } else if self.waiting.is_some() {
            self.router(RouterRequest::Cancel);
            if outcome == Outcome::Abandoned {
                self.abandoned(now);
            }
        }
        if let Some(waiting) = &self.waiting
            && self.record.wait_ms.is_none()
        {
            self.record.wait_ms = Some(waited_ms(waiting.since, now));
        }
        self.record.outcome = Some(if connected {
            Outcome::Connected
        } else if self.callback_accepted() {
            // Hung up during the goodbye: still a callback, not abandoned.
            Outcome::Overflowed
        } else {
            outcome
        });
        self.record.ended_at = Some(self.wall(now));
        if let Some(token) = self.caller.port.take() {
            self.push(Action::ReleasePort { token });
        }
        self.voicemail_call_ended(now);
        self.media(MediaAction::End);
        self.caller.media = false;
        info!(outcome = Outcome::name(self.record.outcome), "call ended");
        self.journal_ended();
        self.finish();
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.publish();
        for call_id in self.legs.call_ids() {
            self.push(Action::Unroute { call_id });
        }
        self.push(Action::Finished);
        self.finished = true;
    }
}

/// A token of letters and digits for tags and Call-IDs.
pub(crate) fn tag(rng: &mut StdRng) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..10)
        .map(|_| char::from(LETTERS[rng.random_range(0..LETTERS.len())]))
        .collect()
}

/// Milliseconds from `since` to `now`.
pub(crate) fn waited_ms(since: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX)
}
