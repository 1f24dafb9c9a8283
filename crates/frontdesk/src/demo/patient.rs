//! Simulated patients: they arrive at random (a Poisson process at the
//! demo's rate), each a task with a caller number and a plan, and call
//! the clinic from one shared SIP endpoint (the carrier's trunk): INVITE
//! with an SDP offer, ACK, a tone at 20 ms, menu digits by RFC 4733 (a
//! valid choice, sometimes an invalid one first, sometimes none), then the
//! wait in queue. A patient whose patience runs out before an agent greets
//! them (an RFC 4733 `#` the agent's phone sends) hangs up: an abandoned
//! call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use media::driver::{MediaTask, MediaTaskEvent};
use media::sdp::{self, LocalMedia, SessionDescription};
use media::session::MediaEvent;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sip::Peer;
use sip::dialog::Dialog;
use sip::endpoint::EndpointHandle;
use sip::message::validate::{ValidRequest, ValidResponse};
use sip::message::{HeaderName, Method, Request, StatusCode, Uri};
use sip::transaction::{ClientTransactionId, Event, ServerTransactionId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Stage;
use super::agent::seconds;
use super::audio::{Voice, press};
use super::ua::{Ua, dialog_response, host_port, sdp_body, token};

/// The most patients on the line at once; arrivals beyond it are skipped.
pub const MAX_PATIENTS: usize = 150;
/// How long an INVITE may go unanswered before the patient gives up.
const DIAL_BOUND: Duration = Duration::from_secs(40);
/// The longest a patient stays on the line, whatever happens.
const CALL_BOUND: Duration = Duration::from_secs(15 * 60);
/// The longest conversation (agents normally end it sooner).
const TALK_BOUND: Duration = Duration::from_secs(150);
/// How long hanging up may take when the demo stops.
const LEAVE_BOUND: Duration = Duration::from_secs(2);
/// When the first patient calls: agents have had time to register.
const FIRST_CALL_AFTER: Duration = Duration::from_millis(1500);
/// Seconds after the answer until the first key is pressed (barge-in).
const FIRST_KEY_SECS: (f64, f64) = (1.0, 6.0);
/// Seconds between an invalid key and the next one.
const SECOND_KEY_SECS: (f64, f64) = (2.5, 6.0);
/// The chance a patient presses nothing, or an invalid key first.
const NO_KEY_CHANCE: f64 = 0.10;
const INVALID_KEY_CHANCE: f64 = 0.15;
/// The share of impatient patients, and the patience of each kind,
/// counted from the answer.
const IMPATIENT_CHANCE: f64 = 0.3;
const IMPATIENT_SECS: (f64, f64) = (8.0, 40.0);
const PATIENT_SECS: (f64, f64) = (45.0, 240.0);

/// A number patients dial, with its menu's keys.
#[derive(Debug, Clone)]
pub struct Dialable {
    /// The number (`+15550100`).
    pub number: String,
    /// Its share of the calls (relative).
    pub weight: u32,
    /// Keys its menu acts on; empty when the number leads straight to a queue.
    pub keys: Vec<char>,
    /// Digits its menu does not know.
    pub wrong_keys: Vec<char>,
}

/// What one patient will do.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    dialed: String,
    caller: String,
    /// Keys and when to press them, after the answer.
    keys: Vec<(Duration, char)>,
    /// How long after the answer they hang up if no one has greeted them.
    patience: Duration,
}

fn plan(rng: &mut impl Rng, numbers: &[Dialable]) -> Option<Plan> {
    let total: u32 = numbers.iter().map(|n| n.weight).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.random_range(0..total);
    let number = numbers.iter().find(|n| {
        if ticket < n.weight {
            true
        } else {
            ticket -= n.weight;
            false
        }
    })?;
    let mut keys = Vec::new();
    if let Some(valid) = pick(rng, &number.keys) {
        let first_at = seconds(rng, FIRST_KEY_SECS);
        let roll: f64 = rng.random();
        let wrong = pick(rng, &number.wrong_keys);
        match wrong {
            _ if roll < NO_KEY_CHANCE => {} // waits for the menu to time out
            Some(wrong) if roll < NO_KEY_CHANCE + INVALID_KEY_CHANCE => {
                // The menu is replayed once; then a valid key, or a wrong
                // one again (the IVR sends those to the front desk).
                keys.push((first_at, wrong));
                let second = if rng.random_bool(0.5) { valid } else { wrong };
                keys.push((first_at + seconds(rng, SECOND_KEY_SECS), second));
            }
            _ => keys.push((first_at, valid)),
        }
    }
    let patience = if rng.random_bool(IMPATIENT_CHANCE) {
        seconds(rng, IMPATIENT_SECS)
    } else {
        seconds(rng, PATIENT_SECS)
    };
    Some(Plan {
        dialed: number.number.clone(),
        caller: format!("+1312555{:04}", rng.random_range(0..10_000)),
        keys,
        patience,
    })
}

/// One of `keys`, at random.
fn pick(rng: &mut impl Rng, keys: &[char]) -> Option<char> {
    (!keys.is_empty()).then(|| keys[rng.random_range(0..keys.len())])
}

/// The time to the next arrival: exponential with mean `60 / rate` s.
fn gap(rng: &mut impl Rng, rate_per_minute: f64) -> Duration {
    let mean = 60.0 / rate_per_minute;
    let uniform: f64 = rng.random();
    Duration::from_secs_f64((-(1.0 - uniform).ln() * mean).max(0.01))
}

/// Places calls at `rate_per_minute` until `stop`, then waits (bounded)
/// for the patients on the line to hang up.
pub async fn arrivals(
    stage: Arc<Stage>,
    numbers: Vec<Dialable>,
    rate_per_minute: f64,
    mut rng: SmallRng,
    stop: CancellationToken,
) {
    let allow = vec![
        Method::Invite,
        Method::Bye,
        Method::Info,
        Method::Update,
        Method::Notify,
    ];
    let product = format!("frontdesk-demo-trunk/{}", env!("CARGO_PKG_VERSION"));
    let mut ua = match Ua::start(stage.phone_ip, &product, allow, rng.random()).await {
        Ok(ua) => ua,
        Err(error) => {
            warn!(%error, "simulated patients cannot start");
            return;
        }
    };
    let line = Arc::new(Semaphore::new(MAX_PATIENTS));
    let mut patients = JoinSet::new();
    let mut next = Instant::now() + FIRST_CALL_AFTER;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            event = ua.requests.recv() => match event {
                Some(event) => refuse_new(&ua, event),
                None => break,
            },
            Some(_) = patients.join_next(), if !patients.is_empty() => {}
            () = tokio::time::sleep_until(next) => {
                next += gap(&mut rng, rate_per_minute);
                let Ok(permit) = Arc::clone(&line).try_acquire_owned() else {
                    debug!("{MAX_PATIENTS} patients on the line already: one fewer call");
                    continue;
                };
                let Some(plan) = plan(&mut rng, &numbers) else { continue };
                let patient = Patient::new(plan, &ua, Arc::clone(&stage), SmallRng::seed_from_u64(rng.random()), permit);
                patients.spawn(patient.call(stop.clone()));
            }
        }
    }
    // Each patient saw `stop` and hangs up; the trunk stays up meanwhile.
    let all_gone = async { while patients.join_next().await.is_some() {} };
    if tokio::time::timeout(LEAVE_BOUND + Duration::from_secs(1), all_gone)
        .await
        .is_err()
    {
        patients.abort_all();
    }
}

/// Nobody calls the patients: a new request to the trunk is refused.
fn refuse_new(ua: &Ua, event: Event) {
    if let Event::Request {
        transaction,
        request,
        ..
    } = event
    {
        let refused = dialog_response(
            &request.request.headers,
            StatusCode::TEMPORARILY_UNAVAILABLE,
            "trunk",
            None,
            None,
        );
        let _ = ua.endpoint.respond(transaction, refused);
    }
}

/// Where a patient's call stands.
#[derive(Debug)]
enum Leg {
    Dialing {
        transaction: ClientTransactionId,
        /// Set once we CANCELled: when to stop waiting for the 487.
        leave_by: Option<Instant>,
    },
    Answered(Box<Answered>),
    Over,
}

#[derive(Debug)]
struct Answered {
    dialog: Dialog,
    ack: Bytes,
    local: LocalMedia,
    media: MediaTask,
    at: Instant,
    greeted_at: Option<Instant>,
    next_key: usize,
}

struct Patient {
    plan: Plan,
    endpoint: EndpointHandle,
    trunk: SocketAddr,
    stage: Arc<Stage>,
    rng: SmallRng,
    call_id: ByteString,
    tag: String,
    events: mpsc::UnboundedReceiver<Event>,
    owner: mpsc::UnboundedSender<Event>,
    _line: OwnedSemaphorePermit,
}

impl Patient {
    fn new(
        plan: Plan,
        ua: &Ua,
        stage: Arc<Stage>,
        mut rng: SmallRng,
        line: OwnedSemaphorePermit,
    ) -> Patient {
        let call_id = ByteString::from(format!("pat-{}@{}", token(&mut rng, 16), ua.local.ip()));
        let tag = token(&mut rng, 10);
        let (owner, events) = mpsc::unbounded_channel();
        Patient {
            plan,
            endpoint: ua.endpoint.clone(),
            trunk: ua.local,
            stage,
            rng,
            call_id,
            tag,
            events,
            owner,
            _line: line,
        }
    }

    async fn call(mut self, stop: CancellationToken) {
        let Ok(lease) = self.stage.audio.allocate() else {
            warn!("no RTP port left for a simulated patient");
            return;
        };
        let local = self
            .stage
            .audio
            .local_media(&lease, self.rng.random::<u32>().into());
        let offer = sdp::create_offer(&local);
        let invite = self.invite(&offer);
        let daemon = Peer::udp(self.stage.sip);
        self.endpoint
            .route(self.call_id.clone(), self.owner.clone());
        let transaction = match self.endpoint.send_request(invite.clone(), daemon).await {
            Ok(Ok(transaction)) => transaction,
            _ => {
                self.endpoint.unroute(&self.call_id);
                return;
            }
        };
        info!(
            caller = %self.plan.caller,
            "a patient dials {} (keys {:?}, patience {} s)",
            self.plan.dialed,
            self.plan.keys.iter().map(|(_, key)| *key).collect::<String>(),
            self.plan.patience.as_secs()
        );
        let started = Instant::now();
        let mut leg = Leg::Dialing {
            transaction,
            leave_by: None,
        };
        let mut media_slot = Some((lease, local, offer));
        let mut stopping = false;
        while !matches!(leg, Leg::Over) {
            let deadline = self.deadline(&leg, started);
            let media_event = async {
                match &mut leg {
                    Leg::Answered(answered) => answered.media.events.recv().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled(), if !stopping => {
                    stopping = true;
                    leg = self.leave(leg).await;
                }
                Some(event) = self.events.recv() => {
                    leg = self.on_event(leg, event, &invite, daemon, &mut media_slot).await;
                }
                Some(event) = media_event => self.on_media(&mut leg, event),
                () = tokio::time::sleep_until(deadline) => {
                    leg = self.on_deadline(leg, started).await;
                }
            }
        }
        self.endpoint.unroute(&self.call_id);
    }

    fn invite(&self, offer: &SessionDescription) -> Request {
        let daemon = host_port(self.stage.sip);
        let target = format!("sip:{}@{daemon}", self.plan.dialed);
        // Local invariant: the number and the address make a valid URI.
        let uri = Uri::parse(&target)
            .unwrap_or_else(|_| Uri::parse(&format!("sip:{daemon}")).expect("sip:host:port"));
        let mut invite = Request::new(Method::Invite, uri);
        invite.headers.push(
            HeaderName::From,
            format!(
                "<sip:{}@{}>;tag={}",
                self.plan.caller,
                self.trunk.ip(),
                self.tag
            ),
        );
        invite.headers.push(HeaderName::To, format!("<{target}>"));
        invite.headers.push(HeaderName::CallId, &self.call_id);
        invite.headers.push(HeaderName::CSeq, "1 INVITE");
        invite.headers.push(
            HeaderName::Contact,
            format!("<sip:{}@{}>", self.plan.caller, host_port(self.trunk)),
        );
        invite
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        invite.body = Bytes::from(offer.to_string());
        invite
    }

    fn deadline(&self, leg: &Leg, started: Instant) -> Instant {
        match leg {
            Leg::Dialing { leave_by, .. } => leave_by.unwrap_or(started + DIAL_BOUND),
            Leg::Answered(answered) => {
                let key = self
                    .plan
                    .keys
                    .get(answered.next_key)
                    .map(|(at, _)| answered.at + *at);
                let end = match answered.greeted_at {
                    Some(greeted) => greeted + TALK_BOUND,
                    None => answered.at + self.plan.patience,
                };
                [key, Some(end), Some(answered.at + CALL_BOUND)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(end)
            }
            Leg::Over => Instant::now(),
        }
    }

    async fn on_event(
        &mut self,
        leg: Leg,
        event: Event,
        invite: &Request,
        daemon: Peer,
        media_slot: &mut Option<(media::driver::PortLease, LocalMedia, SessionDescription)>,
    ) -> Leg {
        match event {
            Event::Response { response, .. } if response.cseq.method == Method::Invite => {
                self.on_invite_response(leg, &response, invite, daemon, media_slot)
                    .await
            }
            Event::Timeout { .. } | Event::TransportError { .. }
                if matches!(leg, Leg::Dialing { .. }) =>
            {
                info!(caller = %self.plan.caller, "the clinic did not answer");
                Leg::Over
            }
            Event::Request {
                transaction,
                request,
                ..
            } => self.on_request(leg, transaction, &request),
            _ => leg,
        }
    }

    async fn on_invite_response(
        &mut self,
        leg: Leg,
        response: &ValidResponse,
        invite: &Request,
        daemon: Peer,
        media_slot: &mut Option<(media::driver::PortLease, LocalMedia, SessionDescription)>,
    ) -> Leg {
        let status = response.response.status;
        if status.is_provisional() {
            return leg;
        }
        match leg {
            Leg::Dialing { leave_by, .. } if status.is_success() => {
                let Ok(mut dialog) = Dialog::uac(invite, response, daemon) else {
                    warn!("the clinic's 200 has no usable dialog");
                    return Leg::Over;
                };
                let ack = self
                    .endpoint
                    .send_ack(dialog.ack(response.cseq.seq), daemon)
                    .await
                    .unwrap_or_default();
                let answered = media_slot.take().and_then(|(lease, local, offer)| {
                    let answer = sdp_body(&response.response.headers, &response.response.body)?;
                    let answer = SessionDescription::parse(&answer).ok()?;
                    let negotiated = sdp::accept_answer(&offer, &answer, &local).ok()?;
                    Some((
                        local,
                        self.stage.audio.start(lease, negotiated, Voice::Patient),
                    ))
                });
                let Some((local, media)) = answered.filter(|_| leave_by.is_none()) else {
                    // The call crossed our CANCEL, or its SDP is unusable.
                    let _ = self
                        .endpoint
                        .send_request(dialog.request(Method::Bye), daemon)
                        .await;
                    return Leg::Over;
                };
                debug!(caller = %self.plan.caller, "the clinic answered");
                Leg::Answered(Box::new(Answered {
                    dialog,
                    ack,
                    local,
                    media,
                    at: Instant::now(),
                    greeted_at: None,
                    next_key: 0,
                }))
            }
            Leg::Dialing { leave_by, .. } => {
                if leave_by.is_none() {
                    info!(caller = %self.plan.caller, %status, "the call was not taken");
                }
                Leg::Over
            }
            Leg::Answered(answered) if status.is_success() => {
                // A retransmitted 200: our ACK was lost; send it again.
                let _ = self.endpoint.send_raw(daemon, answered.ack.clone());
                Leg::Answered(answered)
            }
            other => other,
        }
    }

    fn on_request(
        &mut self,
        leg: Leg,
        transaction: ServerTransactionId,
        request: &ValidRequest,
    ) -> Leg {
        let headers = &request.request.headers;
        let Leg::Answered(mut answered) = leg else {
            let refused =
                dialog_response(headers, StatusCode::CALL_DOES_NOT_EXIST, "none", None, None);
            let _ = self.endpoint.respond(transaction, refused);
            return leg;
        };
        let tag = answered.dialog.id.local_tag.clone();
        if answered.dialog.receive(request).is_err() {
            let refused =
                dialog_response(headers, StatusCode::SERVER_INTERNAL_ERROR, &tag, None, None);
            let _ = self.endpoint.respond(transaction, refused);
            return Leg::Answered(answered);
        }
        match request.request.method {
            Method::Bye => {
                let ok = dialog_response(headers, StatusCode::OK, &tag, None, None);
                let _ = self.endpoint.respond(transaction, ok);
                match answered.greeted_at {
                    Some(greeted) => debug!(
                        caller = %self.plan.caller,
                        "the call ends after {} s of conversation",
                        greeted.elapsed().as_secs()
                    ),
                    None => {
                        info!(caller = %self.plan.caller, "the clinic ended the call before anyone picked up")
                    }
                }
                Leg::Over
            }
            Method::Invite => {
                // Hold passed through from the agent: answer with the same media.
                let response = match sdp_body(headers, &request.request.body)
                    .and_then(|body| SessionDescription::parse(&body).ok())
                {
                    Some(offer) => {
                        answered.local.session_version += 1;
                        match sdp::create_answer(&offer, &answered.local) {
                            Ok(answer) => {
                                let _ = answered
                                    .media
                                    .handle
                                    .update_leg(super::audio::PHONE_LEG, answer.media);
                                let contact =
                                    format!("<sip:{}@{}>", self.plan.caller, host_port(self.trunk));
                                dialog_response(
                                    headers,
                                    StatusCode::OK,
                                    &tag,
                                    Some(&contact),
                                    Some(answer.description.to_string()),
                                )
                            }
                            Err(_) => dialog_response(
                                headers,
                                StatusCode::NOT_ACCEPTABLE_HERE,
                                &tag,
                                None,
                                None,
                            ),
                        }
                    }
                    None => {
                        dialog_response(headers, StatusCode::NOT_ACCEPTABLE_HERE, &tag, None, None)
                    }
                };
                let _ = self.endpoint.respond(transaction, response);
                Leg::Answered(answered)
            }
            _ => {
                let ok = dialog_response(headers, StatusCode::OK, &tag, None, None);
                let _ = self.endpoint.respond(transaction, ok);
                Leg::Answered(answered)
            }
        }
    }

    fn on_media(&mut self, leg: &mut Leg, event: MediaTaskEvent) {
        let Leg::Answered(answered) = leg else {
            return;
        };
        if let MediaTaskEvent::Media(MediaEvent::Dtmf { .. }) = event
            && answered.greeted_at.is_none()
        {
            // The agent's greeting.
            answered.greeted_at = Some(Instant::now());
            info!(
                caller = %self.plan.caller,
                "the patient talks with an agent after {} s on the line",
                answered.at.elapsed().as_secs()
            );
        }
    }

    async fn on_deadline(&mut self, leg: Leg, started: Instant) -> Leg {
        let now = Instant::now();
        match leg {
            Leg::Dialing {
                transaction,
                leave_by: None,
            } if now >= started + DIAL_BOUND => {
                info!(caller = %self.plan.caller, "nobody answers; the patient hangs up");
                let _ = self.endpoint.cancel(transaction);
                Leg::Dialing {
                    transaction,
                    leave_by: Some(now + LEAVE_BOUND),
                }
            }
            Leg::Dialing {
                leave_by: Some(by), ..
            } if now >= by => Leg::Over,
            Leg::Dialing { .. } => leg,
            Leg::Answered(mut answered) => {
                if let Some(&(at, key)) = self.plan.keys.get(answered.next_key)
                    && answered.at + at <= now
                {
                    debug!(caller = %self.plan.caller, %key, "presses a key");
                    press(&answered.media, key);
                    answered.next_key += 1;
                }
                let give_up = match answered.greeted_at {
                    Some(greeted) => now >= greeted + TALK_BOUND,
                    None => now >= answered.at + self.plan.patience,
                };
                if give_up || now >= answered.at + CALL_BOUND {
                    if answered.greeted_at.is_none() {
                        info!(
                            caller = %self.plan.caller,
                            "the patient gives up after {} s on the line (abandoned)",
                            answered.at.elapsed().as_secs()
                        );
                    }
                    self.bye(&mut answered).await;
                    return Leg::Over;
                }
                Leg::Answered(answered)
            }
            Leg::Over => Leg::Over,
        }
    }

    /// The demo stops: CANCEL a call still ringing, BYE one answered.
    async fn leave(&mut self, leg: Leg) -> Leg {
        match leg {
            Leg::Dialing { transaction, .. } => {
                let _ = self.endpoint.cancel(transaction);
                Leg::Dialing {
                    transaction,
                    leave_by: Some(Instant::now() + LEAVE_BOUND),
                }
            }
            Leg::Answered(mut answered) => {
                self.bye(&mut answered).await;
                Leg::Over
            }
            Leg::Over => Leg::Over,
        }
    }

    async fn bye(&mut self, answered: &mut Answered) {
        let bye = answered.dialog.request(Method::Bye);
        let _ = self.endpoint.send_request(bye, answered.dialog.peer).await;
    }
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patient")
            .field("plan", &self.plan)
            .field("call_id", &self.call_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinic() -> Vec<Dialable> {
        vec![
            Dialable {
                number: "+15550100".into(),
                weight: 85,
                keys: vec!['0', '1', '2', '3', '4', '5', '9'],
                wrong_keys: vec!['6', '7', '8'],
            },
            Dialable {
                number: "+15550111".into(),
                weight: 15,
                keys: Vec::new(),
                wrong_keys: Vec::new(),
            },
        ]
    }

    #[test]
    fn plans_follow_the_weights_and_the_menu() {
        let mut rng = SmallRng::seed_from_u64(7);
        let numbers = clinic();
        let plans: Vec<Plan> = (0..4000)
            .map(|_| plan(&mut rng, &numbers).unwrap())
            .collect();
        let main: Vec<&Plan> = plans.iter().filter(|p| p.dialed == "+15550100").collect();
        let share = main.len() as f64 / plans.len() as f64;
        assert!((0.82..0.88).contains(&share), "{share}");
        // The urgent number leads straight to a queue: no keys.
        assert!(
            plans
                .iter()
                .filter(|p| p.dialed == "+15550111")
                .all(|p| p.keys.is_empty())
        );
        let silent = main.iter().filter(|p| p.keys.is_empty()).count() as f64;
        assert!((0.07..0.13).contains(&(silent / main.len() as f64)));
        let mut wrong_first = 0;
        for plan in &main {
            for (at, key) in &plan.keys {
                assert!(key.is_ascii_digit(), "{plan:?}");
                assert!(*at >= Duration::from_secs(1), "{plan:?}");
                assert!(*at <= Duration::from_secs(12), "{plan:?}");
            }
            match plan.keys.as_slice() {
                [] => {}
                [(_, key)] => assert!(numbers[0].keys.contains(key), "{plan:?}"),
                [(first_at, first), (second_at, _)] => {
                    assert!(numbers[0].wrong_keys.contains(first), "{plan:?}");
                    assert!(second_at > first_at, "{plan:?}");
                    wrong_first += 1;
                }
                _ => panic!("too many keys: {plan:?}"),
            }
            assert!(plan.caller.starts_with("+1312555") && plan.caller.len() == 12);
        }
        let wrong_share = wrong_first as f64 / main.len() as f64;
        assert!((0.12..0.18).contains(&wrong_share), "{wrong_share}");
        let impatient = plans
            .iter()
            .filter(|p| p.patience <= Duration::from_secs(40))
            .count() as f64
            / plans.len() as f64;
        assert!((0.27..0.33).contains(&impatient), "{impatient}");
        assert!(plans.iter().all(
            |p| p.patience >= Duration::from_secs(8) && p.patience <= Duration::from_secs(240)
        ));
    }

    #[test]
    fn the_same_seed_makes_the_same_patients() {
        let numbers = clinic();
        let draw = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..50)
                .map(|_| plan(&mut rng, &numbers))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert_eq!(plan(&mut SmallRng::seed_from_u64(1), &[]), None);
    }

    #[test]
    fn arrivals_average_the_rate() {
        let mut rng = SmallRng::seed_from_u64(3);
        let gaps: Vec<Duration> = (0..20_000).map(|_| gap(&mut rng, 6.0)).collect();
        let mean = gaps.iter().map(Duration::as_secs_f64).sum::<f64>() / gaps.len() as f64;
        assert!(
            (9.7..10.3).contains(&mean),
            "mean gap {mean} s at 6 a minute"
        );
        // Exponential: about 1 − 1/e of the gaps are shorter than the mean.
        let short = gaps.iter().filter(|g| g.as_secs_f64() < 10.0).count() as f64;
        assert!((0.61..0.65).contains(&(short / gaps.len() as f64)));
    }
}
