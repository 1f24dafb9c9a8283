//! A simulated agent: a softphone on a loopback port of its own that
//! registers with digest auth (and refreshes halfway to expiry), rings
//! for a random while when the daemon offers a call (sometimes it is not
//! answered at all, so failover shows), answers with SDP and plays a tone,
//! greets the patient with an RFC 4733 `#` (how the simulated patient
//! knows a person picked up), hangs up after a random talk time, and now
//! and then steps away (through the admin API) and comes back.

use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use media::driver::MediaHandle;
use media::sdp::{self, LocalMedia, SessionDescription};
use rand::Rng;
use rand::rngs::SmallRng;
use sip::Peer;
use sip::dialog::Dialog;
use sip::message::validate::ValidRequest;
use sip::message::{Method, StatusCode};
use sip::transaction::{Event, ServerTransactionId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Stage;
use super::audio::{PHONE_LEG, Voice};
use super::register::Registration;
use super::ua::{Ua, dialog_response, sdp_body, token};

/// Seconds of ringing before the agent picks up.
const RING_SECS: (f64, f64) = (1.0, 6.0);
/// The chance an offered call is left ringing until the daemon gives up.
const NO_ANSWER_CHANCE: f64 = 0.12;
/// Seconds of conversation.
const TALK_SECS: (f64, f64) = (10.0, 60.0);
/// Seconds until the first break, between breaks, and of a break.
const FIRST_BREAK_SECS: (f64, f64) = (45.0, 240.0);
const NEXT_BREAK_SECS: (f64, f64) = (120.0, 420.0);
const BREAK_SECS: (f64, f64) = (20.0, 75.0);
/// Seconds after a missed call until the agent looks at their state (the
/// daemon sets an agent away after three unanswered offers in a row).
const LOOK_SECS: (f64, f64) = (8.0, 20.0);
/// How many `#` greetings, one second apart: the second one covers a
/// first that raced the daemon's bridge.
const GREETINGS: u8 = 2;
/// The registration's requested lifetime (the registrar's minimum is 60).
const REGISTER_EXPIRES: u32 = 120;
/// Wait before registering again after a failure.
const REGISTER_RETRY: Duration = Duration::from_secs(5);
/// How long the un-REGISTER may take when the demo stops.
const UNREGISTER_BOUND: Duration = Duration::from_secs(2);

/// One agent of the dialplan.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// SIP user and agent id (`1003`).
    pub id: String,
    /// Display name (`Carol`).
    pub name: String,
    /// Digest password.
    pub password: String,
}

/// A random duration between `range.0` and `range.1` seconds.
pub(super) fn seconds(rng: &mut impl Rng, range: (f64, f64)) -> Duration {
    Duration::from_secs_f64(rng.random_range(range.0..=range.1))
}

/// Runs one agent until `stop`: its registration and its phone.
pub async fn run(spec: AgentSpec, stage: Arc<Stage>, mut rng: SmallRng, stop: CancellationToken) {
    let allow = vec![
        Method::Invite,
        Method::Bye,
        Method::Info,
        Method::Update,
        Method::Notify,
    ];
    let product = format!("frontdesk-demo-agent/{}", env!("CARGO_PKG_VERSION"));
    let ua = match Ua::start(stage.phone_ip, &product, allow, rng.random()).await {
        Ok(ua) => ua,
        Err(error) => {
            warn!(agent = %spec.id, %error, "simulated agent cannot start");
            return;
        }
    };
    let registration = Registration::new(
        ua.endpoint.clone(),
        stage.sip,
        ua.local,
        &spec.id,
        &spec.password,
        &mut rng,
    );
    let keeper = keep_registered(spec.clone(), registration, stop.clone());
    let phone = Phone::new(spec, ua, stage, rng);
    let ((), ua) = tokio::join!(keeper, phone.run(stop));
    // Both are done with SIP: the phone's endpoint may stop.
    drop(ua);
}

/// Registers, refreshes halfway to expiry, un-registers at `stop`.
async fn keep_registered(spec: AgentSpec, mut registration: Registration, stop: CancellationToken) {
    // What an earlier run left (a demo killed without un-REGISTER) goes.
    if let Err(error) = registration.clear().await {
        debug!(agent = %spec.id, %error, "old bindings not cleared");
    }
    let mut registered = false;
    loop {
        let wait = tokio::select! {
            () = stop.cancelled() => break,
            result = registration.register(REGISTER_EXPIRES) => match result {
                Ok(granted) => {
                    if !registered {
                        info!(agent = %spec.id, "{} signs in (registered for {} s)", spec.name, granted.as_secs());
                        registered = true;
                    }
                    Registration::refresh_after(granted)
                }
                Err(error) => {
                    warn!(agent = %spec.id, %error, "registration failed; retrying");
                    registered = false;
                    REGISTER_RETRY
                }
            },
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    if registered {
        let _ = tokio::time::timeout(UNREGISTER_BOUND, registration.register(0)).await;
    }
}

/// The call the phone is in.
#[derive(Debug)]
enum Line {
    Idle,
    /// An INVITE we answered 180; picked up at `answer_at`, or never.
    Ringing {
        transaction: ServerTransactionId,
        invite: Box<ValidRequest>,
        source: Peer,
        tag: String,
        answer_at: Option<Instant>,
        since: Instant,
    },
    /// In a dialog with the daemon.
    Talking(Box<Talk>),
}

#[derive(Debug)]
struct Talk {
    call_id: ByteString,
    dialog: Dialog,
    tag: String,
    local: LocalMedia,
    media: MediaHandle,
    hang_up_at: Instant,
    greet_at: Option<Instant>,
    greetings_left: u8,
}

/// The agent's presence: working, or on a break until `back_at`.
#[derive(Debug)]
struct Presence {
    break_at: Instant,
    back_at: Option<Instant>,
    look_at: Option<Instant>,
}

struct Phone {
    spec: AgentSpec,
    ua: Ua,
    stage: Arc<Stage>,
    rng: SmallRng,
    contact: String,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    line: Line,
    presence: Presence,
}

impl Phone {
    fn new(spec: AgentSpec, ua: Ua, stage: Arc<Stage>, mut rng: SmallRng) -> Phone {
        let contact = format!("<sip:{}@{}>", spec.id, ua.host_port());
        let (events_tx, events) = mpsc::unbounded_channel();
        let presence = Presence {
            break_at: Instant::now() + seconds(&mut rng, FIRST_BREAK_SECS),
            back_at: None,
            look_at: None,
        };
        Phone {
            spec,
            ua,
            stage,
            rng,
            contact,
            events_tx,
            events,
            line: Line::Idle,
            presence,
        }
    }

    /// Serves calls until `stop`; gives the UA back so that it outlives
    /// the un-REGISTER.
    async fn run(mut self, stop: CancellationToken) -> Ua {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                () = stop.cancelled() => {
                    self.leave().await;
                    return self.ua;
                }
                event = self.ua.requests.recv() => match event {
                    Some(event) => self.on_new(event),
                    None => return self.ua,
                },
                Some(event) = self.events.recv() => self.on_call_event(event).await,
                () = tokio::time::sleep_until(deadline) => self.on_deadline().await,
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let line = match &self.line {
            Line::Idle => None,
            Line::Ringing { answer_at, .. } => *answer_at,
            Line::Talking(talk) => Some(
                talk.greet_at
                    .map_or(talk.hang_up_at, |at| at.min(talk.hang_up_at)),
            ),
        };
        [
            line,
            Some(self.presence.break_at),
            self.presence.back_at,
            self.presence.look_at,
        ]
        .into_iter()
        .flatten()
        .min()
        // Local invariant: `break_at` is always set.
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(60))
    }

    /// A request outside our dialogs (an offer), or an event nobody owns.
    fn on_new(&mut self, event: Event) {
        let Event::Request {
            transaction,
            request,
            source,
        } = event
        else {
            return; // a late answer to a BYE, a stray ACK
        };
        let headers = &request.request.headers;
        let tag = token(&mut self.rng, 10);
        if request.request.method != Method::Invite {
            let response =
                dialog_response(headers, StatusCode::CALL_DOES_NOT_EXIST, &tag, None, None);
            let _ = self.ua.endpoint.respond(transaction, response);
            return;
        }
        if !matches!(self.line, Line::Idle) {
            let busy = dialog_response(headers, StatusCode::BUSY_HERE, &tag, None, None);
            let _ = self.ua.endpoint.respond(transaction, busy);
            return;
        }
        self.ua
            .endpoint
            .route(request.call_id.clone(), self.events_tx.clone());
        let ringing = dialog_response(
            headers,
            StatusCode::RINGING,
            &tag,
            Some(&self.contact),
            None,
        );
        let _ = self.ua.endpoint.respond(transaction, ringing);
        let now = Instant::now();
        let answer_at = (!self.rng.random_bool(NO_ANSWER_CHANCE))
            .then(|| now + seconds(&mut self.rng, RING_SECS));
        debug!(agent = %self.spec.id, answers = answer_at.is_some(), "phone rings");
        if answer_at.is_none() {
            info!(agent = %self.spec.id, "{}'s phone rings; {} is not at the desk", self.spec.name, self.spec.name);
        }
        self.line = Line::Ringing {
            transaction,
            invite: request,
            source,
            tag,
            answer_at,
            since: now,
        };
    }

    async fn on_call_event(&mut self, event: Event) {
        let current = match &self.line {
            Line::Idle => return,
            Line::Ringing { invite, .. } => &invite.call_id,
            Line::Talking(talk) => &talk.call_id,
        };
        if event.call_id() != current {
            return;
        }
        match (event, &mut self.line) {
            (Event::Cancelled { .. }, Line::Ringing { .. }) => {
                // The daemon gave up ringing us (its 487 went out).
                debug!(agent = %self.spec.id, "call cancelled while ringing");
                self.end_call();
                self.presence.look_at = Some(Instant::now() + seconds(&mut self.rng, LOOK_SECS));
            }
            // The first ACK (not a retransmitted one): say hello now.
            (Event::Ack { .. }, Line::Talking(talk))
                if talk.greet_at.is_none() && talk.greetings_left == GREETINGS =>
            {
                talk.greet_at = Some(Instant::now());
            }
            (Event::AckTimeout { .. }, Line::Talking(_)) => {
                warn!(agent = %self.spec.id, "the daemon never ACKed our 200");
                self.hang_up().await;
            }
            (
                Event::Request {
                    transaction,
                    request,
                    ..
                },
                Line::Talking(_),
            ) => self.on_in_dialog(transaction, &request),
            // Answers to our BYE, retransmissions: nothing to do.
            _ => {}
        }
    }

    fn on_in_dialog(&mut self, transaction: ServerTransactionId, request: &ValidRequest) {
        let Line::Talking(talk) = &mut self.line else {
            return;
        };
        let headers = &request.request.headers;
        if talk.dialog.receive(request).is_err() {
            let refused = dialog_response(
                headers,
                StatusCode::SERVER_INTERNAL_ERROR,
                &talk.tag,
                None,
                None,
            );
            let _ = self.ua.endpoint.respond(transaction, refused);
            return;
        }
        match request.request.method {
            Method::Bye => {
                let ok = dialog_response(headers, StatusCode::OK, &talk.tag, None, None);
                let _ = self.ua.endpoint.respond(transaction, ok);
                info!(agent = %self.spec.id, "the patient hung up on {}", self.spec.name);
                self.end_call();
            }
            Method::Invite => {
                // A re-INVITE (hold passed through): answer it.
                talk.local.session_version += 1;
                let answer = sdp_body(headers, &request.request.body)
                    .ok_or(media::SdpError::NoAudio)
                    .and_then(|body| SessionDescription::parse(&body))
                    .and_then(|offer| sdp::create_answer(&offer, &talk.local));
                let response = match answer {
                    Ok(answer) => {
                        let _ = talk.media.update_leg(PHONE_LEG, answer.media);
                        dialog_response(
                            headers,
                            StatusCode::OK,
                            &talk.tag,
                            Some(&self.contact),
                            Some(answer.description.to_string()),
                        )
                    }
                    Err(_) => dialog_response(
                        headers,
                        StatusCode::NOT_ACCEPTABLE_HERE,
                        &talk.tag,
                        None,
                        None,
                    ),
                };
                let _ = self.ua.endpoint.respond(transaction, response);
            }
            _ => {
                let ok = dialog_response(headers, StatusCode::OK, &talk.tag, None, None);
                let _ = self.ua.endpoint.respond(transaction, ok);
            }
        }
    }

    async fn on_deadline(&mut self) {
        let now = Instant::now();
        match &mut self.line {
            Line::Ringing {
                answer_at: Some(at),
                ..
            } if *at <= now => self.answer(),
            Line::Talking(talk) => {
                if talk.greet_at.is_some_and(|at| at <= now) {
                    // A person says hello: the patient's phone hears a `#`.
                    let _ = talk.media.send_dtmf(
                        PHONE_LEG,
                        media::DtmfDigit::from_char('#').into_iter().collect(),
                    );
                    talk.greetings_left = talk.greetings_left.saturating_sub(1);
                    talk.greet_at = (talk.greetings_left > 0).then(|| now + Duration::from_secs(1));
                }
                if talk.hang_up_at <= now {
                    info!(agent = %self.spec.id, "{} ends the call", self.spec.name);
                    self.hang_up().await;
                }
            }
            _ => {}
        }
        self.presence_deadlines(now).await;
    }

    async fn presence_deadlines(&mut self, now: Instant) {
        let idle = matches!(self.line, Line::Idle);
        if self.presence.back_at.is_none() && self.presence.break_at <= now {
            if !idle {
                self.presence.break_at = now + Duration::from_secs(5);
            } else {
                match self.stage.api.set_state(&self.spec.id, "away").await {
                    Ok(()) => {
                        let length = seconds(&mut self.rng, BREAK_SECS);
                        info!(agent = %self.spec.id, "{} steps away for {} s", self.spec.name, length.as_secs());
                        self.presence.back_at = Some(now + length);
                    }
                    Err(error) => {
                        debug!(agent = %self.spec.id, %error, "cannot step away now");
                        self.presence.break_at = now + Duration::from_secs(10);
                    }
                }
            }
        }
        if let Some(back_at) = self.presence.back_at
            && back_at <= now
        {
            match self.stage.api.set_state(&self.spec.id, "available").await {
                Ok(()) => info!(agent = %self.spec.id, "{} is back", self.spec.name),
                Err(error) => debug!(agent = %self.spec.id, %error, "cannot come back"),
            }
            self.presence.back_at = None;
            self.presence.break_at = now + seconds(&mut self.rng, NEXT_BREAK_SECS);
        }
        if self.presence.look_at.is_some_and(|at| at <= now) {
            self.presence.look_at = None;
            let on_break = self.presence.back_at.is_some();
            let state = self.stage.api.state_of(&self.spec.id).await;
            if !on_break && idle && matches!(&state, Ok(Some(state)) if state == "away") {
                info!(agent = %self.spec.id, "{} was set away after missed calls, and comes back", self.spec.name);
                if let Err(error) = self.stage.api.set_state(&self.spec.id, "available").await {
                    debug!(agent = %self.spec.id, %error, "cannot come back");
                }
            }
        }
    }

    /// Picks up: 200 with our SDP answer, the dialog, the tone.
    fn answer(&mut self) {
        let Line::Ringing {
            transaction,
            invite,
            source,
            tag,
            since,
            ..
        } = std::mem::replace(&mut self.line, Line::Idle)
        else {
            return;
        };
        let headers = &invite.request.headers;
        let refuse = |status: StatusCode| dialog_response(headers, status, &tag, None, None);
        let offer = sdp_body(headers, &invite.request.body)
            .ok_or(media::SdpError::NoAudio)
            .and_then(|body| SessionDescription::parse(&body));
        let (offer, dialog, lease) = match (
            offer,
            Dialog::uas(&invite, &tag, source),
            self.stage.audio.allocate(),
        ) {
            (Ok(offer), Ok(dialog), Ok(lease)) => (offer, dialog, lease),
            (offer, dialog, lease) => {
                warn!(agent = %self.spec.id, offer = ?offer.err(), dialog = ?dialog.err(), ports = ?lease.err(), "cannot answer");
                let _ = self
                    .ua
                    .endpoint
                    .respond(transaction, refuse(StatusCode::NOT_ACCEPTABLE_HERE));
                self.ua.endpoint.unroute(&invite.call_id);
                return;
            }
        };
        let local = self
            .stage
            .audio
            .local_media(&lease, self.rng.random::<u32>().into());
        let answer = match sdp::create_answer(&offer, &local) {
            Ok(answer) => answer,
            Err(error) => {
                warn!(agent = %self.spec.id, %error, "no common codec with the daemon");
                let _ = self
                    .ua
                    .endpoint
                    .respond(transaction, refuse(StatusCode::NOT_ACCEPTABLE_HERE));
                self.ua.endpoint.unroute(&invite.call_id);
                return;
            }
        };
        let ok = dialog_response(
            headers,
            StatusCode::OK,
            &tag,
            Some(&self.contact),
            Some(answer.description.to_string()),
        );
        let _ = self.ua.endpoint.respond(transaction, ok);
        let media = self.stage.audio.start(lease, answer.media, Voice::Agent);
        let talk_for = seconds(&mut self.rng, TALK_SECS);
        info!(
            agent = %self.spec.id,
            "{} answers after {:.1} s of ringing",
            self.spec.name,
            since.elapsed().as_secs_f64()
        );
        self.line = Line::Talking(Box::new(Talk {
            call_id: invite.call_id.clone(),
            dialog,
            tag,
            local,
            // Phones act on no media event: only the handle is kept.
            media: media.handle,
            hang_up_at: Instant::now() + talk_for,
            greet_at: None,
            greetings_left: GREETINGS,
        }));
    }

    /// Ends the call from our side with BYE (its answer needs no waiting:
    /// the transaction layer retransmits it until one comes).
    async fn hang_up(&mut self) {
        if let Line::Talking(talk) = &mut self.line {
            let bye = talk.dialog.request(Method::Bye);
            let peer = talk.dialog.peer;
            let _ = self.ua.endpoint.send_request(bye, peer).await;
        }
        self.end_call();
    }

    /// Back to idle: the media task ends, the Call-ID is no longer ours.
    fn end_call(&mut self) {
        let call_id = match std::mem::replace(&mut self.line, Line::Idle) {
            Line::Idle => return,
            Line::Ringing { invite, .. } => invite.call_id,
            Line::Talking(talk) => talk.call_id,
        };
        self.ua.endpoint.unroute(&call_id);
    }

    /// The demo stops: decline a ringing call, hang up a call in progress.
    async fn leave(&mut self) {
        if let Line::Ringing {
            transaction,
            invite,
            tag,
            ..
        } = &self.line
        {
            let declined = dialog_response(
                &invite.request.headers,
                StatusCode::TEMPORARILY_UNAVAILABLE,
                tag,
                None,
                None,
            );
            let _ = self.ua.endpoint.respond(*transaction, declined);
        }
        self.hang_up().await;
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("agent", &self.spec.id)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}
