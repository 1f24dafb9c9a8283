//! One call's task: the patient's leg and the IVR.
//!
//! The course of a call: INVITE → (180 during a ring-before-answer delay)
//! → 200 with our SDP answer → the IVR plays the emergency notice and the
//! menus, collects digits (RFC 4733, SIP INFO, in-band) → a queue decision
//! → the queue wait and the agent legs ([`super::agent`]) → bridge → BYE.

use std::sync::Arc;
use std::time::Duration;

use ivr::jiff::Timestamp;
use ivr::{Action, Input, Session};
use media::DtmfDigit;
use media::driver::{MediaHandle, MediaTaskEvent, PortLease, spawn_media_task};
use media::playback::PlaybackId;
use media::sdp::{self, LocalMedia, NegotiatedMedia, SessionDescription};
use media::session::{Leg, MediaEvent};
use sip::Peer;
use sip::dialog::Dialog;
use sip::message::validate::ValidRequest;
use sip::message::{Method, StatusCode};
use sip::transaction::{Event, ServerTransactionId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::agent::Legs;
use super::book::{CallRecord, Outcome};
use super::queue::Hold;
use super::signal;
use super::transfer::Transfer;
use crate::app::router::RouterMessage;
use crate::app::{App, tag};

/// How long to wait for the ACK of a delayed-offer 200 before giving up.
const ACK_WAIT: Duration = Duration::from_secs(32);

/// Where the patient's leg stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The INVITE is unanswered (ringing before answer).
    Offered,
    /// 200 sent; with a delayed offer, waiting for the ACK's answer.
    Answered,
    /// Over.
    Ended,
}

/// The queue the caller waits in.
#[derive(Debug, Clone)]
pub(super) struct Waiting {
    pub(super) queue: routing::QueueId,
    pub(super) priority: routing::Priority,
    /// When the wait began (moved back by the wait before a transfer).
    pub(super) since: Instant,
    /// When the hold music next gives way to an announcement.
    pub(super) next_announcement: Option<Instant>,
}

/// One call. See the module docs.
pub(super) struct Call {
    pub(super) app: Arc<App>,
    /// The routing id.
    pub(super) id: routing::CallId,
    sequence: u64,
    pub(super) record: CallRecord,
    /// The patient's INVITE and its transaction.
    transaction: ServerTransactionId,
    pub(super) invite: Box<ValidRequest>,
    source: Peer,
    local_tag: String,
    pub(super) dialog: Option<Dialog>,
    phase: Phase,
    /// Our SDP towards the patient, and what was agreed.
    pub(super) local: Option<LocalMedia>,
    our_offer: Option<SessionDescription>,
    caller_lease: Option<PortLease>,
    pub(super) media: Option<MediaHandle>,
    media_events: Option<mpsc::UnboundedReceiver<MediaTaskEvent>>,
    session: Option<Session>,
    playing: Option<(u64, ivr::PlaybackId)>,
    next_playback: u64,
    /// After the last IVR message: hang up when it ends.
    hang_up_after: Option<u64>,
    ending_outcome: Outcome,
    pub(super) waiting: Option<Waiting>,
    /// What plays while waiting.
    pub(super) hold: Option<Hold>,
    /// Digits pressed while waiting, kept for a callback offer.
    pub(super) queued_digits: String,
    /// A transfer by the agent, until it is decided.
    pub(super) transfer: Option<Transfer>,
    pub(super) overflowed: bool,
    pub(super) legs: Legs,
    sip_events: mpsc::UnboundedReceiver<Event>,
    pub(super) sip_sender: mpsc::UnboundedSender<Event>,
    router_events: mpsc::UnboundedReceiver<RouterMessage>,
    pub(super) router_sender: mpsc::UnboundedSender<RouterMessage>,
    ack_deadline: Option<Instant>,
    caller_gone: bool,
    /// The clinic was closed when the call was answered.
    after_hours: bool,
    /// One of its untrusted source's call slots, given back when the call
    /// ends (`[limits.sip] calls`).
    _source_slot: Option<guard::SourceSlot>,
}

impl Call {
    /// Creates the call and spawns its task.
    pub(super) fn start(
        app: Arc<App>,
        transaction: ServerTransactionId,
        invite: Box<ValidRequest>,
        source: Peer,
        source_slot: Option<guard::SourceSlot>,
    ) {
        let (sip_sender, sip_events) = mpsc::unbounded_channel();
        // Route this Call-ID to the call before anything else can happen
        // (a CANCEL right behind the INVITE reaches the call).
        app.endpoint
            .route(invite.call_id.clone(), sip_sender.clone());
        let (router_sender, router_events) = mpsc::unbounded_channel();
        let dialed = signal::dialed_number(&invite);
        let caller = signal::caller_number(&invite);
        let sequence = app.calls.next_sequence();
        let id = routing::CallId(sequence);
        let record = CallRecord::new(
            format!("c-{}-{sequence}", Timestamp::now().as_second()),
            &caller,
            &dialed,
        );
        // Every log line of the call names it, and its caller by pseudonym
        // (the number in full only with --log-patient-numbers).
        let span = info_span!("call", call = %record.id, caller = %app.leads.show(&caller));
        let call = Call {
            app,
            id,
            sequence,
            record,
            transaction,
            invite,
            source,
            local_tag: tag(),
            dialog: None,
            phase: Phase::Offered,
            local: None,
            our_offer: None,
            caller_lease: None,
            media: None,
            media_events: None,
            session: None,
            playing: None,
            next_playback: 1,
            hang_up_after: None,
            ending_outcome: Outcome::Abandoned,
            waiting: None,
            hold: None,
            queued_digits: String::new(),
            transfer: None,
            overflowed: false,
            legs: Legs::default(),
            sip_events,
            sip_sender,
            router_events,
            router_sender,
            ack_deadline: None,
            caller_gone: false,
            after_hours: false,
            _source_slot: source_slot,
        };
        tokio::spawn(call.run().instrument(span));
    }

    async fn run(mut self) {
        metrics::gauge!("frontdesk_active_calls").increment(1.0);
        let accepted = self.begin().await;
        // The record now knows the number's source tag.
        self.publish();
        self.lead_started();
        if accepted {
            self.serve().await;
        }
        self.finish();
        metrics::gauge!("frontdesk_active_calls").decrement(1.0);
    }

    pub(super) fn publish(&self) {
        self.app.calls.publish(self.sequence, &self.record);
    }

    /// Checks the INVITE, prepares media and the IVR; `false` when the
    /// call was refused.
    async fn begin(&mut self) -> bool {
        let plan = self.app.dialplan.current();
        let dialed = self.record.dialed.clone();
        let caller = self.record.caller.clone();
        let session = match Session::new(Arc::clone(&plan), &dialed, &caller, Timestamp::now()) {
            Ok(session) => session,
            Err(error) => {
                let status = StatusCode::new(error.sip_status()).unwrap_or(StatusCode::NOT_FOUND);
                info!(dialed = %signal::unescaped(&dialed), %status, "call refused: {error}");
                self.refuse(status);
                return false;
            }
        };
        let mut rings_first = false;
        if let Some(number) = plan.number(&dialed) {
            self.record.source = Some(number.source().as_str().to_string());
            self.record.priority = crate::app::plan_map::priority(number.priority()).as_str();
            rings_first = number.answer_after().is_some_and(|d| !d.is_zero());
        }
        self.after_hours = !matches!(plan.open_state(Timestamp::now()), ivr::OpenState::Open);
        let headers = &self.invite.request.headers;
        if signal::has_foreign_body(headers, &self.invite.request.body) {
            self.refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            return false;
        }
        let lease = match self.app.ports.allocate() {
            Ok(lease) => lease,
            Err(error) => {
                warn!(%error, "no RTP port for a new call");
                self.refuse(StatusCode::SERVICE_UNAVAILABLE);
                return false;
            }
        };
        // A fresh SRTP key per call: an RTP/SAVP offer with a=crypto gets an
        // SRTP answer (RFC 4568); a plain offer stays plain RTP.
        let local = LocalMedia::new(
            self.app.advertise,
            lease.port(),
            rand::random::<u32>().into(),
        )
        .with_srtp(&mut rand::rng());
        let offer = signal::sdp_body(headers, &self.invite.request.body);
        match offer {
            Some(body) => {
                let answer = SessionDescription::parse(&body)
                    .and_then(|offer| sdp::create_answer(&offer, &local));
                match answer {
                    Ok(answer) => {
                        self.our_offer = Some(answer.description);
                        self.start_media(lease, answer.media);
                    }
                    Err(error) => {
                        info!(%error, "call refused: SDP");
                        let status = StatusCode::new(error.sip_status())
                            .unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                        self.refuse(status);
                        return false;
                    }
                }
            }
            None => {
                // Delayed offer: our offer goes in the 200, the answer
                // comes in the ACK (RFC 3261 §13.2.1).
                self.our_offer = Some(sdp::create_offer(&local));
                self.caller_lease = Some(lease);
            }
        }
        self.local = Some(local);
        self.session = Some(session);
        if rings_first {
            self.ring();
        }
        info!(source = ?self.record.source, "call answered by the IVR");
        true
    }

    fn start_media(&mut self, lease: PortLease, negotiated: NegotiatedMedia) {
        let task = spawn_media_task(self.app.media, Leg::Caller, lease, negotiated);
        self.media = Some(task.handle);
        self.media_events = Some(task.events);
    }

    /// A final non-2xx answer to the INVITE; the call never starts.
    fn refuse(&mut self, status: StatusCode) {
        let response = signal::response(&self.invite.request.headers, status, &self.local_tag);
        let _ = self.app.endpoint.respond(self.transaction, response);
        self.record.outcome = Outcome::Rejected;
        self.phase = Phase::Ended;
    }

    async fn serve(&mut self) {
        self.drive_ivr(None).await;
        while self.phase != Phase::Ended {
            let ivr_deadline = self
                .session
                .as_ref()
                .and_then(Session::poll_timeout)
                .map(instant_of);
            let deadline = [
                ivr_deadline,
                self.legs.next_deadline(),
                self.ack_deadline,
                self.hold_deadline(),
                self.transfer_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = crate::app::sleep_until(deadline);
            let media_event = crate::app::recv_some(self.media_events.as_mut());
            let ending = self.app.ending.clone();
            tokio::select! {
                () = ending.cancelled() => {
                    // The daemon stops and its grace for calls is over.
                    let outcome = if self.legs.connected().is_some() { Outcome::Connected } else { Outcome::Abandoned };
                    warn!("daemon stopping: hanging up");
                    self.hang_up(outcome).await;
                }
                event = self.sip_events.recv() => match event {
                    Some(event) => self.on_sip(event).await,
                    None => break,
                },
                event = media_event => match event {
                    Some(event) => self.on_media(event).await,
                    None => self.media_events = None,
                },
                message = self.router_events.recv() => {
                    if let Some(message) = message {
                        self.on_router(message).await;
                    }
                }
                () = sleep => self.on_deadline().await,
            }
        }
    }

    async fn on_deadline(&mut self) {
        let now = Instant::now();
        if self.ack_deadline.is_some_and(|at| at <= now) {
            self.ack_deadline = None;
            warn!("no ACK with an SDP answer: ending the call");
            self.hang_up(Outcome::Abandoned).await;
            return;
        }
        self.legs_deadline(now).await;
        self.hold_timeout(now).await;
        self.transfer_timeout(now).await;
        if let Some(session) = self.session.as_mut() {
            session.handle_timeout(Timestamp::now());
        }
        self.drive_ivr(None).await;
    }

    /// Feeds the IVR `input` (if any), then carries out its actions.
    pub(super) async fn drive_ivr(&mut self, input: Option<Input>) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Some(input) = input {
            session.handle_input(Timestamp::now(), input);
            if let Input::Digit(digit) = input {
                self.lead(records::CallEvent::MenuChoice {
                    menu: "ivr".to_string(),
                    digits: digit.to_string(),
                });
            }
        }
        while let Some(action) = self.session.as_mut().and_then(Session::poll_action) {
            self.on_ivr_action(action).await;
            if self.phase == Phase::Ended {
                return;
            }
        }
    }

    async fn on_ivr_action(&mut self, action: Action) {
        match action {
            Action::Answer => self.answer(),
            Action::Play { playback, prompt } => {
                let id = self.next_playback_id();
                self.playing = Some((id, playback));
                self.play(prompt.path(), id, true).await;
            }
            Action::StopPlayback => {
                self.playing = None;
                if let Some(media) = &self.media {
                    let _ = media.stop(Leg::Caller);
                }
            }
            Action::Queue(decision) => self.enter_queue(decision).await,
            Action::HangUp { after_message } => {
                // The IVR ends the call itself: a message path (after
                // hours, or a number that only informs).
                let outcome = if self.after_hours {
                    Outcome::AfterHours
                } else {
                    Outcome::Rejected
                };
                debug!(?after_message, "IVR hangs up");
                self.hang_up(outcome).await;
            }
        }
    }

    pub(super) fn next_playback_id(&mut self) -> u64 {
        let id = self.next_playback;
        self.next_playback += 1;
        id
    }

    /// Plays a prompt file to the patient.
    pub(super) async fn play(&mut self, path: &std::path::Path, id: u64, barge_in: bool) {
        self.play_list(
            &[path.to_path_buf()],
            id,
            media::playback::PlaybackMode::Once,
            barge_in,
        )
        .await;
    }

    /// Plays prompt files to the patient, in order (or looped).
    pub(super) async fn play_list(
        &mut self,
        paths: &[std::path::PathBuf],
        id: u64,
        mode: media::playback::PlaybackMode,
        barge_in: bool,
    ) {
        let mut prompts = Vec::with_capacity(paths.len());
        for path in paths {
            match self.app.prompts.get(path).await {
                Ok(prompt) => prompts.push(prompt),
                Err(error) => warn!("{}: {error}", path.display()),
            }
        }
        if let Some(media) = &self.media {
            let _ = media.play(Leg::Caller, PlaybackId(id), prompts, mode, barge_in);
        }
    }

    /// Sends the 200 with our SDP and starts the dialog.
    fn answer(&mut self) {
        if self.phase != Phase::Offered {
            return;
        }
        let contact = self.app.contact_for(self.source.transport);
        let sdp = self.our_offer.as_ref().map(ToString::to_string);
        let ok = signal::dialog_response(
            &self.invite.request.headers,
            StatusCode::OK,
            &self.local_tag,
            Some(&contact),
            sdp,
        );
        let _ = self.app.endpoint.respond(self.transaction, ok);
        match Dialog::uas(&self.invite, &self.local_tag, self.source) {
            Ok(dialog) => self.dialog = Some(dialog),
            Err(error) => warn!(%error, "no dialog with the caller"),
        }
        self.phase = Phase::Answered;
        self.lead(records::CallEvent::Entered {
            source: self.record.source.clone(),
            branch: None,
        });
        if self.media.is_none() {
            self.ack_deadline = Some(Instant::now() + ACK_WAIT);
        }
        if let Some(session) = self.session.as_mut() {
            session.handle_input(Timestamp::now(), Input::Answered);
        }
    }

    /// Offered: a 180 when the number rings before answering.
    fn ring(&mut self) {
        let contact = self.app.contact_for(self.source.transport);
        let ringing = signal::dialog_response(
            &self.invite.request.headers,
            StatusCode::RINGING,
            &self.local_tag,
            Some(&contact),
            None,
        );
        let _ = self.app.endpoint.respond(self.transaction, ringing);
    }

    async fn on_sip(&mut self, event: Event) {
        let call_id = event.call_id().clone();
        if call_id != self.invite.call_id {
            self.on_agent_sip(event).await;
            return;
        }
        match event {
            Event::Cancelled { .. } => {
                info!("caller cancelled before the answer");
                self.caller_gone = true;
                self.end(Outcome::Abandoned).await;
            }
            Event::Ack { ack, .. } => self.on_ack(&ack),
            Event::AckTimeout { .. } => {
                warn!("the caller never ACKed our 200");
                self.hang_up(Outcome::Abandoned).await;
            }
            Event::Request {
                transaction,
                request,
                ..
            } => self.on_caller_request(transaction, request).await,
            Event::Response { response, .. } => {
                // The 2xx to our re-INVITE (hold) is ACKed; answers to our
                // BYE need nothing.
                let seq = response.cseq.seq;
                if response.response.status.is_success()
                    && response.cseq.method == Method::Invite
                    && let Some(dialog) = self.dialog.as_ref()
                {
                    let _ = self
                        .app
                        .endpoint
                        .send_ack(dialog.ack(seq), dialog.peer)
                        .await;
                }
            }
            Event::Timeout { .. } | Event::TransportError { .. } => {}
            Event::StrayAck { .. } | Event::Stray2xx { .. } => {}
        }
    }

    fn on_ack(&mut self, ack: &ValidRequest) {
        if self.media.is_some() {
            return;
        }
        // Delayed offer: the answer is in the ACK.
        self.ack_deadline = None;
        let (Some(local), Some(offer), Some(lease)) = (
            self.local.as_ref(),
            self.our_offer.as_ref(),
            self.caller_lease.take(),
        ) else {
            return;
        };
        let answer = signal::sdp_body(&ack.request.headers, &ack.request.body)
            .ok_or(media::SdpError::NoAudio)
            .and_then(|body| SessionDescription::parse(&body))
            .and_then(|answer| sdp::accept_answer(offer, &answer, local));
        match answer {
            Ok(negotiated) => self.start_media(lease, negotiated),
            Err(error) => {
                warn!(%error, "the ACK's SDP answer is not usable");
                self.ack_deadline = Some(Instant::now());
            }
        }
    }

    async fn on_caller_request(
        &mut self,
        transaction: ServerTransactionId,
        request: Box<ValidRequest>,
    ) {
        let headers = &request.request.headers;
        if let Some(dialog) = self.dialog.as_mut()
            && let Err(error) = dialog.receive(&request)
        {
            debug!(%error, "in-dialog request refused");
            let response =
                signal::response(headers, StatusCode::SERVER_INTERNAL_ERROR, &self.local_tag);
            let _ = self.app.endpoint.respond(transaction, response);
            return;
        }
        match request.request.method {
            Method::Bye => {
                let ok = signal::response(headers, StatusCode::OK, &self.local_tag);
                let _ = self.app.endpoint.respond(transaction, ok);
                info!("caller hung up");
                self.caller_gone = true;
                let outcome = if self.legs.connected().is_some() {
                    Outcome::Connected
                } else {
                    Outcome::Abandoned
                };
                self.end(outcome).await;
            }
            Method::Info => {
                let digit = signal::info_digit(headers, &request.request.body);
                let status = if digit.is_some() {
                    StatusCode::OK
                } else {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                };
                let response = signal::response(headers, status, &self.local_tag);
                let _ = self.app.endpoint.respond(transaction, response);
                if let Some(digit) = digit {
                    self.on_digit(digit).await;
                }
            }
            Method::Invite => self.on_caller_reinvite(transaction, &request).await,
            Method::Update | Method::Options | Method::Notify => {
                let response = signal::response(headers, StatusCode::OK, &self.local_tag);
                let _ = self.app.endpoint.respond(transaction, response);
            }
            _ => {
                let response =
                    signal::response(headers, StatusCode::METHOD_NOT_ALLOWED, &self.local_tag);
                let _ = self.app.endpoint.respond(transaction, response);
            }
        }
    }

    /// A re-INVITE from the patient (hold, unhold, new address).
    async fn on_caller_reinvite(
        &mut self,
        transaction: ServerTransactionId,
        request: &ValidRequest,
    ) {
        let headers = &request.request.headers;
        let Some(local) = self.local.as_mut() else {
            let response = signal::response(headers, StatusCode::REQUEST_PENDING, &self.local_tag);
            let _ = self.app.endpoint.respond(transaction, response);
            return;
        };
        let contact = self.app.contact_for(self.source.transport);
        let Some(body) = signal::sdp_body(headers, &request.request.body) else {
            // No offer: offer the same session again.
            local.session_version += 1;
            let offer = sdp::create_offer(local).to_string();
            let ok = signal::dialog_response(
                headers,
                StatusCode::OK,
                &self.local_tag,
                Some(&contact),
                Some(offer),
            );
            let _ = self.app.endpoint.respond(transaction, ok);
            return;
        };
        local.session_version += 1;
        let answer =
            SessionDescription::parse(&body).and_then(|offer| sdp::create_answer(&offer, local));
        match answer {
            Ok(answer) => {
                let on_hold = answer.media.on_hold;
                if let Some(media) = &self.media {
                    let _ = media.update_leg(Leg::Caller, answer.media);
                }
                let ok = signal::dialog_response(
                    headers,
                    StatusCode::OK,
                    &self.local_tag,
                    Some(&contact),
                    Some(answer.description.to_string()),
                );
                let _ = self.app.endpoint.respond(transaction, ok);
                info!(on_hold, "caller re-INVITE");
                self.pass_hold_to_agent(on_hold).await;
            }
            Err(error) => {
                let status =
                    StatusCode::new(error.sip_status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                let response = signal::response(headers, status, &self.local_tag);
                let _ = self.app.endpoint.respond(transaction, response);
            }
        }
    }

    pub(super) async fn on_digit(&mut self, digit: char) {
        if self.legs.connected().is_some() {
            // Connected: digits go through to the agent.
            if let (Some(media), Some(digit)) = (&self.media, DtmfDigit::from_char(digit)) {
                let _ = media.send_dtmf(Leg::Agent, vec![digit]);
            }
            return;
        }
        if self.waiting.is_some() {
            self.queued_digit(digit);
            return;
        }
        self.drive_ivr(Some(Input::Digit(digit))).await;
    }

    async fn on_media(&mut self, event: MediaTaskEvent) {
        match event {
            MediaTaskEvent::Media(MediaEvent::Dtmf {
                leg: Leg::Caller,
                digit,
                source,
            }) => {
                debug!(digit = %digit.as_char(), ?source, "digit");
                if self.waiting.is_some() && self.legs.connected().is_none() {
                    self.queued_digit(digit.as_char());
                } else if self.legs.connected().is_none() {
                    self.drive_ivr(Some(Input::Digit(digit.as_char()))).await;
                }
            }
            MediaTaskEvent::Media(MediaEvent::PlaybackEnded {
                leg: Leg::Caller,
                id,
                completed,
            }) => {
                if self.hang_up_after == Some(id.0) {
                    self.hang_up_after = None;
                    let outcome = self.ending_outcome;
                    self.hang_up(outcome).await;
                    return;
                }
                if self.on_hold_playback_ended(id.0, completed).await {
                    return;
                }
                if let Some((playing, ivr_id)) = self.playing
                    && playing == id.0
                {
                    self.playing = None;
                    if completed {
                        self.drive_ivr(Some(Input::PromptFinished(ivr_id))).await;
                    }
                }
            }
            MediaTaskEvent::Media(MediaEvent::Inactive { leg, silent_for }) => {
                warn!(?leg, ?silent_for, "no RTP: ending the call");
                let outcome = if self.legs.connected().is_some() {
                    Outcome::Connected
                } else {
                    Outcome::Abandoned
                };
                self.hang_up(outcome).await;
            }
            MediaTaskEvent::Media(MediaEvent::Latched { leg, address }) => {
                debug!(?leg, %address, "rtp latched")
            }
            MediaTaskEvent::Media(_) => {}
            MediaTaskEvent::CommandFailed(error) => debug!(%error, "media command failed"),
        }
    }

    /// Plays `path` as the last words, then hangs up with `outcome`.
    pub(super) async fn farewell(&mut self, path: &std::path::Path, outcome: Outcome) {
        let id = self.next_playback_id();
        self.ending_outcome = outcome;
        self.hang_up_after = Some(id);
        self.session = None;
        self.play(path, id, false).await;
    }

    /// We end the call: BYE to the patient (if answered), then [`Self::end`].
    pub(super) async fn hang_up(&mut self, outcome: Outcome) {
        if self.phase == Phase::Ended {
            return;
        }
        if !self.caller_gone {
            if self.phase == Phase::Offered {
                let response = signal::response(
                    &self.invite.request.headers,
                    StatusCode::TEMPORARILY_UNAVAILABLE,
                    &self.local_tag,
                );
                let _ = self.app.endpoint.respond(self.transaction, response);
            } else if let Some(dialog) = self.dialog.as_mut() {
                let bye = dialog.request(Method::Bye);
                let peer = dialog.peer;
                let _ = self.app.endpoint.send_request(bye, peer).await;
            }
            self.caller_gone = true;
        }
        self.end(outcome).await;
    }

    /// Ends everything: agent legs, queue, media, the record.
    pub(super) async fn end(&mut self, outcome: Outcome) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.session = None;
        let connected = self.legs.connected().is_some();
        self.transfer_failed(StatusCode::REQUEST_TERMINATED).await;
        self.end_legs().await;
        if connected {
            self.app.router.call_ended(self.id);
        } else if self.waiting.is_some() {
            self.app.router.cancel(self.id);
        }
        let now = Timestamp::now();
        if let Some(waiting) = &self.waiting
            && self.record.wait_ms.is_none()
        {
            self.record.wait_ms = Some(waiting.since.elapsed().as_millis() as u64);
        }
        self.record.outcome = if connected {
            Outcome::Connected
        } else if self.overflowed && outcome == Outcome::Abandoned {
            Outcome::Abandoned
        } else {
            outcome
        };
        self.record.ended_at = Some(now);
        self.media = None;
        self.media_events = None;
        info!(outcome = self.record.outcome.as_str(), "call ended");
    }

    fn finish(&mut self) {
        if self.record.ended_at.is_none() {
            self.record.ended_at = Some(Timestamp::now());
            if self.record.outcome == Outcome::InProgress {
                self.record.outcome = Outcome::Abandoned;
            }
        }
        metrics::counter!("frontdesk_calls_total", "outcome" => self.record.outcome.as_str())
            .increment(1);
        self.publish();
        self.lead_ended();
        self.app.endpoint.unroute(&self.invite.call_id);
        self.legs.unroute_all(&self.app.endpoint);
    }
}

/// The tokio instant at which the IVR's `at` falls.
fn instant_of(at: Timestamp) -> Instant {
    let ahead = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
    Instant::now() + ahead
}
