//! Agent feature codes: an agent dials `*41` (away), `*42` (available)
//! or `*43` (what's waiting) from their softphone (the codes are the
//! dialplan's `[features]`).
//!
//! Who counts as an agent: the INVITE's From user is an agent of the plan
//! and the INVITE comes from the very source (transport, address and, over
//! a stream, connection) that agent's current registration came from, the
//! way phones send everything from their one SIP socket; behind a trusted
//! proxy (Kamailio) both came from the proxy, so the phone's own address
//! the proxy named must match too ([`sip::registrar::Binding::client`]:
//! one phone behind Kamailio cannot pass for another's agent). Nothing is
//! changed until our 200 is ACKed: a forged source address cannot see the
//! 200's To tag, so it cannot ACK, so it cannot change an agent's state.
//! No password is checked here, so this path gives no password oracle
//! beside the registrar (whose failure limits stay the only place
//! passwords are tried). Anything else dialing a code is an ordinary call
//! to an unknown number (404).
//!
//! The call is answered, a short confirmation plays (the feature's prompt,
//! or a tone), and we hang up. `*43` reads the number of callers waiting
//! in the queues the agent serves, summed, digit by digit.

use std::sync::Arc;
use std::time::Duration;

use ivr::{Dialplan, FeatureCode};
use media::driver::{MediaHandle, MediaTaskEvent, spawn_media_task};
use media::playback::{PlaybackId, PlaybackMode};
use media::prompt::Prompt;
use media::sdp::{self, LocalMedia, SessionDescription};
use media::session::{Leg, MediaEvent};
use routing::{AgentId, QueueStats, RequestedState};
use sip::Peer;
use sip::dialog::Dialog;
use sip::message::validate::ValidRequest;
use sip::message::{Method, StatusCode};
use sip::transaction::{Event, ServerTransactionId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::CallServices;
use super::signal;
use crate::app::tag;

/// The longest a feature call may last (answer, ACK, prompt, BYE).
const FEATURE_CALL_BOUND: Duration = Duration::from_secs(60);
/// Beeps are 8 kHz linear PCM at this amplitude (about -12 dBFS).
const BEEP_LEVEL: f64 = 8_000.0;
/// At most this many beeps count callers when there are no digit prompts.
const MAX_COUNT_BEEPS: usize = 10;

/// The agent and feature an INVITE is, if it is one (see the module docs).
pub(super) fn recognise(
    app: &CallServices,
    invite: &ValidRequest,
    source: Peer,
    client: Option<std::net::SocketAddr>,
) -> Option<(AgentId, FeatureCode)> {
    let plan = app.dialplan.current();
    let feature = plan.features().lookup(&signal::dialed_number(invite))?;
    let caller = signal::caller_number(invite);
    let agent = plan.agent(&caller)?;
    let registered_here = app
        .locations
        .get(agent.id().as_str())
        .iter()
        .any(|binding| binding.source == source && binding.client == client);
    if !registered_here {
        debug!(agent = %caller, %source, "feature code from outside the agent's registration: not an agent");
        return None;
    }
    Some((AgentId::new(agent.id().as_str()), feature))
}

/// Where a feature call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// 200 sent; waiting for the ACK before acting.
    Answered,
    /// Done, confirmation playing.
    Confirming,
    /// We sent BYE, or the agent did.
    Over,
}

/// One feature call's task.
pub(super) struct FeatureCall {
    app: Arc<CallServices>,
    agent: AgentId,
    feature: FeatureCode,
    invite: Box<ValidRequest>,
    local_tag: String,
    dialog: Option<Dialog>,
    /// Our SDP, kept to read a delayed offer's answer from the ACK.
    local: Option<(LocalMedia, SessionDescription, media::driver::PortLease)>,
    media: Option<MediaHandle>,
    media_events: Option<mpsc::UnboundedReceiver<MediaTaskEvent>>,
    sip_events: mpsc::UnboundedReceiver<Event>,
    phase: Phase,
}

impl FeatureCall {
    /// Answers the INVITE and spawns the call's task.
    pub(super) fn start(
        app: Arc<CallServices>,
        transaction: ServerTransactionId,
        invite: Box<ValidRequest>,
        source: Peer,
        agent: AgentId,
        feature: FeatureCode,
    ) {
        let (sip_sender, sip_events) = mpsc::unbounded_channel();
        app.endpoint.route(invite.call_id.clone(), sip_sender);
        let span = info_span!("feature", agent = %agent, feature = feature.as_str());
        let mut call = FeatureCall {
            app,
            agent,
            feature,
            invite,
            local_tag: tag(),
            dialog: None,
            local: None,
            media: None,
            media_events: None,
            sip_events,
            phase: Phase::Answered,
        };
        let answered = span.in_scope(|| call.answer(transaction, source));
        if !answered {
            call.app.endpoint.unroute(&call.invite.call_id);
            return;
        }
        let tasks = call.app.tasks.clone();
        tasks.spawn(call.run().instrument(span));
    }

    /// Sends the 200 (our SDP answer, or our offer for a delayed offer).
    fn answer(&mut self, transaction: ServerTransactionId, source: Peer) -> bool {
        let headers = &self.invite.request.headers;
        let refuse = |app: &CallServices, status: StatusCode, tag: &str| {
            let _ = app
                .endpoint
                .respond(transaction, signal::response(headers, status, tag));
        };
        let lease = match self.app.ports.allocate() {
            Ok(lease) => lease,
            Err(error) => {
                warn!(%error, "no RTP port for a feature call");
                refuse(&self.app, StatusCode::SERVICE_UNAVAILABLE, &self.local_tag);
                return false;
            }
        };
        let local = LocalMedia::new(
            self.app.call_config.advertise,
            lease.port(),
            rand::random::<u32>().into(),
        );
        let sdp_text = match signal::sdp_body(headers, &self.invite.request.body) {
            Some(body) => {
                match SessionDescription::parse(&body)
                    .and_then(|offer| sdp::create_answer(&offer, &local))
                {
                    Ok(answer) => {
                        let task =
                            spawn_media_task(self.app.media, Leg::Caller, lease, answer.media);
                        self.media = Some(task.handle);
                        self.media_events = Some(task.events);
                        answer.description.to_string()
                    }
                    Err(error) => {
                        let status = StatusCode::new(error.sip_status())
                            .unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                        refuse(&self.app, status, &self.local_tag);
                        return false;
                    }
                }
            }
            None => {
                let offer = sdp::create_offer(&local);
                let text = offer.to_string();
                self.local = Some((local, offer, lease));
                text
            }
        };
        let contact = self.app.call_config.contact_for(source.transport);
        let ok = signal::dialog_response(
            headers,
            StatusCode::OK,
            &self.local_tag,
            Some(&contact),
            Some(sdp_text),
        );
        let _ = self.app.endpoint.respond(transaction, ok);
        match Dialog::uas(&self.invite, &self.local_tag, source) {
            Ok(dialog) => self.dialog = Some(dialog),
            Err(error) => warn!(%error, "no dialog with the agent's phone"),
        }
        true
    }

    async fn run(mut self) {
        let deadline = Instant::now() + FEATURE_CALL_BOUND;
        while self.phase != Phase::Over {
            let media_event = crate::app::recv_some(self.media_events.as_mut());
            tokio::select! {
                event = self.sip_events.recv() => match event {
                    Some(event) => self.on_sip(event).await,
                    None => break,
                },
                event = media_event => match event {
                    Some(event) => self.on_media(event).await,
                    None => self.media_events = None,
                },
                () = tokio::time::sleep_until(deadline) => {
                    warn!("feature call took too long: hanging up");
                    self.hang_up().await;
                }
            }
        }
        self.app.endpoint.unroute(&self.invite.call_id);
    }

    async fn on_sip(&mut self, event: Event) {
        match event {
            Event::Ack { ack, .. } if self.phase == Phase::Answered => {
                self.on_ack(&ack);
                self.act().await;
            }
            Event::AckTimeout { .. } => {
                debug!("no ACK: nothing changed");
                self.phase = Phase::Over;
            }
            Event::Cancelled { .. } => self.phase = Phase::Over,
            Event::Request {
                transaction,
                request,
                ..
            } => {
                let headers = &request.request.headers;
                let status = match request.request.method {
                    Method::Bye => {
                        self.phase = Phase::Over;
                        StatusCode::OK
                    }
                    Method::Info | Method::Options | Method::Update => StatusCode::OK,
                    _ => StatusCode::METHOD_NOT_ALLOWED,
                };
                let response = signal::response(headers, status, &self.local_tag);
                let _ = self.app.endpoint.respond(transaction, response);
            }
            _ => {}
        }
    }

    /// A delayed offer's answer arrives in the ACK.
    fn on_ack(&mut self, ack: &ValidRequest) {
        let Some((local, offer, lease)) = self.local.take() else {
            return;
        };
        let answer = signal::sdp_body(&ack.request.headers, &ack.request.body)
            .ok_or(media::SdpError::NoAudio)
            .and_then(|body| SessionDescription::parse(&body))
            .and_then(|answer| sdp::accept_answer(&offer, &answer, &local));
        match answer {
            Ok(negotiated) => {
                let task = spawn_media_task(self.app.media, Leg::Caller, lease, negotiated);
                self.media = Some(task.handle);
                self.media_events = Some(task.events);
            }
            Err(error) => warn!(%error, "the ACK's SDP answer is not usable"),
        }
    }

    /// The ACK proved the agent's phone: do the feature, play the answer.
    async fn act(&mut self) {
        let plan = self.app.dialplan.current();
        let prompts = match self.feature {
            FeatureCode::Away | FeatureCode::Available => {
                let requested = if self.feature == FeatureCode::Away {
                    RequestedState::Away
                } else {
                    RequestedState::Available
                };
                match self
                    .app
                    .router
                    .set_state(self.agent.clone(), requested)
                    .await
                {
                    Ok(Ok(snapshot)) => {
                        info!(
                            state = snapshot.state.as_str(),
                            "agent state set by feature code"
                        );
                        self.confirmation(&plan).await
                    }
                    Ok(Err(error)) => {
                        info!(%error, "feature code refused");
                        vec![tone("refused", &[(300.0, 600)])]
                    }
                    Err(stopped) => {
                        warn!(%stopped, "feature code not carried out");
                        vec![tone("refused", &[(300.0, 600)])]
                    }
                }
            }
            FeatureCode::Waiting => {
                let stats = self.app.router.stats().await.unwrap_or_default();
                let waiting = waiting_for(&plan, &self.agent, &stats);
                info!(waiting, "what's waiting, by feature code");
                self.waiting_prompts(&plan, waiting).await
            }
        };
        self.phase = Phase::Confirming;
        match &self.media {
            Some(media) if !prompts.is_empty() => {
                let _ = media.play(
                    Leg::Caller,
                    PlaybackId(1),
                    prompts,
                    PlaybackMode::Once,
                    false,
                );
            }
            _ => self.hang_up().await,
        }
    }

    /// The feature's prompt, or its tone.
    async fn confirmation(&self, plan: &Dialplan) -> Vec<Arc<Prompt>> {
        if let Some(prompt) = plan.features().prompt(self.feature)
            && let Ok(loaded) = self.app.prompts.get(prompt.path()).await
        {
            return vec![loaded];
        }
        match self.feature {
            FeatureCode::Available => vec![tone("available", &[(880.0, 200)])],
            _ => vec![tone("away", &[(440.0, 150), (0.0, 100), (440.0, 150)])],
        }
    }

    /// "Callers waiting in your queues:" and the count, digit by digit (or
    /// a beep per caller without digit prompts).
    async fn waiting_prompts(&self, plan: &Dialplan, waiting: usize) -> Vec<Arc<Prompt>> {
        let mut paths = Vec::new();
        if let Some(prompt) = plan.features().prompt(FeatureCode::Waiting) {
            paths.push(prompt.path().to_path_buf());
        }
        let count = u32::try_from(waiting).unwrap_or(u32::MAX);
        // position_prompts is "you are caller number" and then the digits:
        // the digits alone are what follows its first prompt.
        let digits = plan
            .position_prompts(count)
            .map(|mut prompts| prompts.split_off(1));
        let mut prompts = Vec::new();
        match digits {
            Some(digits) => paths.extend(digits.iter().map(|p| p.path().to_path_buf())),
            None => {
                let beeps: Vec<(f64, u32)> =
                    std::iter::repeat_n([(660.0, 120), (0.0, 120)], waiting.min(MAX_COUNT_BEEPS))
                        .flatten()
                        .collect();
                if beeps.is_empty() {
                    prompts.push(tone("none", &[(0.0, 200)]));
                } else {
                    prompts.push(tone("count", &beeps));
                }
            }
        }
        let mut loaded = Vec::with_capacity(paths.len() + prompts.len());
        for path in &paths {
            match self.app.prompts.get(path).await {
                Ok(prompt) => loaded.push(prompt),
                Err(error) => warn!("{}: {error}", path.display()),
            }
        }
        loaded.extend(prompts);
        loaded
    }

    async fn on_media(&mut self, event: MediaTaskEvent) {
        if let MediaTaskEvent::Media(MediaEvent::PlaybackEnded {
            leg: Leg::Caller, ..
        }) = event
            && self.phase == Phase::Confirming
        {
            self.hang_up().await;
        }
    }

    /// BYE to the agent's phone; the call is over.
    async fn hang_up(&mut self) {
        if self.phase == Phase::Over {
            return;
        }
        self.phase = Phase::Over;
        if let Some(dialog) = self.dialog.as_mut() {
            let bye = dialog.request(Method::Bye);
            let peer = dialog.peer;
            let _ = self.app.endpoint.send_request(bye, peer).await;
        }
        self.media = None;
        self.media_events = None;
    }
}

/// Callers waiting in the queues `agent` serves (all of whose skills they
/// have), summed.
fn waiting_for(plan: &Dialplan, agent: &AgentId, stats: &[QueueStats]) -> usize {
    let Some(agent) = plan.agent(agent.as_str()) else {
        return 0;
    };
    plan.queues()
        .filter(|queue| agent.can_serve(queue))
        .filter_map(|queue| stats.iter().find(|s| s.id.as_str() == queue.id().as_str()))
        .map(|stats| stats.waiting)
        .sum()
}

/// A prompt of beeps: `(frequency in Hz, length in ms)`, 0 Hz for silence.
fn tone(name: &str, parts: &[(f64, u32)]) -> Arc<Prompt> {
    let mut samples: Vec<i16> = Vec::new();
    for &(frequency, ms) in parts {
        let count = ms as usize * 8;
        samples.extend((0..count).map(|n| {
            if frequency == 0.0 {
                return 0;
            }
            let t = n as f64 / 8000.0;
            // A 5 ms fade at both ends, so the beep does not click.
            let edge = (n.min(count - n) as f64 / 40.0).min(1.0);
            (BEEP_LEVEL * edge * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
        }));
    }
    if samples.is_empty() {
        samples.push(0);
    }
    // The samples are not empty: from_samples cannot fail.
    Arc::new(Prompt::from_samples(name, &samples).expect("non-empty samples"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_last_as_long_as_their_parts() {
        let away = tone("away", &[(440.0, 150), (0.0, 100), (440.0, 150)]);
        assert_eq!(away.sample_count(), 400 * 8);
        assert_eq!(away.frame_count(), 20);
        let count = tone("count", &[(660.0, 120), (0.0, 120)]);
        assert_eq!(count.frame_count(), 12);
    }
}
