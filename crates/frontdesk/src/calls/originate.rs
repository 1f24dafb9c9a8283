//! Click-to-call (issue 21): the checks before an outbound call, and the
//! thin driver of its sans-IO core ([`call::originate::Originate`]).
//!
//! [`Originator::call_lead`] answers at once whether the call may start:
//! the lead exists, its patient consented to calls (`consent.call` is not
//! `false`), the trunk `[trunks.carrier]` permits the number (one `allow`
//! matches, no `deny` does), and the agent has a registered SIP phone. A
//! refusal sends no INVITE at all (not even to the agent) and is on the
//! lead's history (`call_refused` with its reason). Then one task per call
//! drives the core: it performs the core's actions (SIP through the
//! endpoint, ports from the pool, the media task, the lead's history) and
//! decides nothing. The callback dialer (issue 22,
//! [`super::callbacks`]) starts the same core the same way
//! ([`spawn_dial`]): its agent is claimed by routing already, and what
//! happens goes to routing and the callback's journal row instead of a
//! lead's history.
//!
//! The lead hears that its patient answered through one [`ContactSink`];
//! [`JournalContact`] writes the first contact to the journal.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use call::PortToken;
use call::originate::{
    Failure, Originate, OriginateAction, OriginateMedia, OriginateSetup, Progress, TrunkRoute,
};
use ivr::jiff::Timestamp;
use ivr::leads::{PhoneNumber, Trunk, TrunkTransport};
use media::driver::{MediaCommand, MediaHandle, MediaTaskEvent, PortLease, spawn_media_task};
use media::playback::{Playback, PlaybackId};
use media::session::Leg;
use rand::SeedableRng;
use rand::rngs::StdRng;
use records::{JournalHandle, LeadEvent, LeadId, LeadRow};
use serde_json::{Value, json};
use sip::Peer;
use sip::transaction::Event;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::driver::{now, recv_some, sleep_until};
use super::services::CallServices;

/// The trunk click-to-call dials through (DESIGN.md's one trunk).
pub const TRUNK: &str = ivr::leads::Trunk::CARRIER;
/// How long the agent's phone rings when the lead's department has no
/// queue (its queue's `ring_timeout` otherwise).
const AGENT_RING: Duration = Duration::from_secs(30);

/// Where "the patient answered" goes: the lead is contacted (its
/// `first_contact_at`, its state, and for the lead desk its response timer
/// stops). One call per answered call out.
pub trait ContactSink: Send + Sync + fmt::Debug {
    /// The patient of `lead` answered a call out of `agent`'s at `at`.
    fn patient_answered(&self, lead: &LeadId, agent: &str, at: Timestamp);
}

/// The journal's [`ContactSink`]: a `patient_answered` step on the lead
/// that sets its `first_contact_at` (the first time) and state
/// `contacted`.
#[derive(Debug, Clone)]
pub struct JournalContact {
    journal: JournalHandle,
}

impl JournalContact {
    /// Writes through `journal`.
    pub fn new(journal: JournalHandle) -> JournalContact {
        JournalContact { journal }
    }
}

impl ContactSink for JournalContact {
    fn patient_answered(&self, lead: &LeadId, agent: &str, at: Timestamp) {
        let _ = self.journal.record_lead_event(LeadEvent {
            lead: lead.clone(),
            at,
            event: "patient_answered".into(),
            agent: Some(agent.to_string()),
            detail: json!({}),
            first_contact: true,
        });
    }
}

/// Why a call out was not started; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such lead (404).
    UnknownLead(String),
    /// No such agent in the dialplan (404).
    UnknownAgent(String),
    /// `consent.call` is `false` (403).
    NoConsent,
    /// The trunk does not permit the number (403).
    NumberNotAllowed,
    /// The agent has no registered SIP phone (409).
    NoPhone(String),
    /// The agent is not `available` (on a call, ringing, in wrap-up,
    /// away): a call out would ring a phone that is busy (409).
    AgentBusy(String),
    /// No `[trunks.carrier]`, or one that cannot be dialed (503).
    NoTrunk(String),
    /// The daemon is stopping, or the journal cannot be read (503).
    Unavailable(String),
}

impl Refusal {
    /// The reason in the lead's history and the metric's `result`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnknownLead(_) => "unknown_lead",
            Refusal::UnknownAgent(_) => "unknown_agent",
            Refusal::NoConsent => "no_consent",
            Refusal::NumberNotAllowed => "number_not_allowed",
            Refusal::NoPhone(_) => "no_phone",
            Refusal::AgentBusy(_) => "agent_not_available",
            Refusal::NoTrunk(_) => "no_trunk",
            Refusal::Unavailable(_) => "unavailable",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownLead(id) => write!(f, "no lead {id}"),
            Refusal::UnknownAgent(id) => write!(f, "no agent {id}"),
            Refusal::NoConsent => {
                f.write_str("the patient did not consent to calls (consent.call is false)")
            }
            Refusal::NumberNotAllowed => write!(f, "number not allowed by trunk {TRUNK}"),
            Refusal::NoPhone(agent) => write!(f, "agent {agent} has no registered SIP phone"),
            Refusal::AgentBusy(agent) => write!(
                f,
                "agent {agent} is not available (on a call, ringing, in wrap-up or away)"
            ),
            Refusal::NoTrunk(why) | Refusal::Unavailable(why) => f.write_str(why),
        }
    }
}

/// A call out under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Its id (`o-<unix s>-<n>`), in the lead's history.
    pub id: String,
    /// The lead.
    pub lead: String,
    /// The agent whose phone rings.
    pub agent: String,
}

/// A call out as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = CallOut)]
pub struct StartedJson {
    /// `o-…`.
    pub id: String,
    /// The lead.
    pub lead: String,
    /// The agent whose phone rings.
    pub agent: String,
    /// `ringing_agent`.
    pub state: String,
}

impl Started {
    /// The API's `{"id","lead","agent","state"}`.
    pub fn to_json(&self) -> Value {
        json!(StartedJson {
            id: self.id.clone(),
            lead: self.lead.clone(),
            agent: self.agent.clone(),
            state: "ringing_agent".into(),
        })
    }
}

/// Whether `lead`'s patient may be called through `trunk`: consent, then
/// the trunk's `allow` and `deny`.
pub fn permitted(lead: &LeadRow, trunk: &Trunk) -> Result<(), Refusal> {
    if lead.consent.get("call") == Some(&Value::Bool(false)) {
        return Err(Refusal::NoConsent);
    }
    match PhoneNumber::parse(&lead.phone, None) {
        Ok(number) if trunk.permits(&number) => Ok(()),
        _ => Err(Refusal::NumberNotAllowed),
    }
}

/// Starts call outs (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Originator {
    services: Arc<CallServices>,
    contact: Arc<dyn ContactSink>,
}

impl Originator {
    /// Call outs through `services`, telling `contact` of answers.
    pub fn new(services: Arc<CallServices>, contact: Arc<dyn ContactSink>) -> Originator {
        Originator { services, contact }
    }

    /// Rings `agent`'s phone for `lead`, then dials its patient; or says
    /// why not, having sent nothing.
    pub async fn call_lead(&self, lead: &str, agent: &str) -> Result<Started, Refusal> {
        let result = self.try_call_lead(lead, agent).await;
        if let Err(refusal) = &result {
            metrics::counter!("frontdesk_originate_total", "result" => refusal.reason())
                .increment(1);
            info!(lead, agent, reason = refusal.reason(), "call out refused");
        }
        result
    }

    async fn try_call_lead(&self, lead: &str, agent: &str) -> Result<Started, Refusal> {
        let services = &self.services;
        let reader = services.journal.reader().clone();
        let wanted = lead.to_string();
        let row = tokio::task::spawn_blocking(move || reader.lead(&wanted))
            .await
            .map_err(|_| Refusal::Unavailable("the journal cannot be read".into()))?
            .map_err(|error| {
                warn!(%error, "journal query failed");
                Refusal::Unavailable("the journal cannot be read".into())
            })?
            .ok_or_else(|| Refusal::UnknownLead(lead.to_string()))?
            .lead;
        let plan = services.dialplan.current();
        if plan.agent(agent).is_none() {
            return Err(Refusal::UnknownAgent(agent.to_string()));
        }
        let refuse = |refusal: Refusal| {
            self.step(
                &row.id,
                "call_refused",
                agent,
                json!({"reason": refusal.reason()}),
            );
            Err(refusal)
        };
        let Some(trunk) = plan.trunk(TRUNK) else {
            return refuse(Refusal::NoTrunk(format!(
                "no [trunks.{TRUNK}] in the dialplan"
            )));
        };
        if let Err(refusal) = permitted(&row, trunk) {
            return refuse(refusal);
        }
        let Some(binding) = services.locations.get(agent).into_iter().next() else {
            return refuse(Refusal::NoPhone(agent.to_string()));
        };
        if services.ending.is_cancelled() || services.tasks.is_closed() {
            return Err(Refusal::Unavailable("the daemon is stopping".into()));
        }
        let route = match trunk_route(trunk).await {
            Ok(route) => route,
            Err(why) => return refuse(Refusal::NoTrunk(why)),
        };
        // Last: the agent is claimed in the routing table (no queue call
        // rings them meanwhile) and must be released from here on.
        let claimed = services
            .router
            .outbound_started(routing::AgentId::new(agent))
            .await
            .map_err(|_| Refusal::Unavailable("the daemon is stopping".into()))?;
        if claimed.is_err() {
            return refuse(Refusal::AgentBusy(agent.to_string()));
        }
        let queue = plan.queue(&row.department);
        let wrap_up = queue.map_or(Duration::ZERO, ivr::Queue::wrap_up);
        let setup = OriginateSetup {
            agent: agent.to_string(),
            agent_binding: binding,
            display: format!(
                "Lead · {}",
                queue.map_or(row.department.as_str(), |q| q.name())
            ),
            patient: row.phone.clone(),
            trunk: route,
            agent_ring: queue.map_or(AGENT_RING, ivr::Queue::ring_timeout),
            patient_ring: trunk.ring_timeout(),
            ringback: queue
                .and_then(ivr::Queue::hold_music)
                .map(|prompt| prompt.path().to_path_buf()),
            whisper: None,
        };
        let sequence = services.calls.next_sequence();
        let id = format!("o-{}-{sequence}", Timestamp::now().as_second());
        self.step(&row.id, "call_started", agent, json!({ "call": id }));
        let started = Started {
            id: id.clone(),
            lead: row.id.as_str().to_string(),
            agent: agent.to_string(),
        };
        let span = info_span!("originate", call = %id, lead = %row.id, agent = %agent);
        let purpose = Purpose::Lead {
            originator: self.clone(),
            lead: row.id.clone(),
            id,
            wrap_up,
        };
        spawn(Arc::clone(&self.services), setup, purpose, span);
        Ok(started)
    }

    /// A step of the lead's history (dropped and counted if the journal is
    /// behind; the call goes on).
    fn step(&self, lead: &LeadId, event: &str, agent: &str, detail: Value) {
        let _ = self.services.journal.handle().record_lead_event(LeadEvent {
            lead: lead.clone(),
            at: Timestamp::now(),
            event: event.into(),
            agent: Some(agent.to_string()),
            detail,
            first_contact: false,
        });
    }
}

/// The trunk as a call out uses it; its host name resolved (the first
/// address), its transport UDP or TCP.
pub(super) async fn trunk_route(trunk: &Trunk) -> Result<TrunkRoute, String> {
    let uri = trunk.uri();
    if uri.secure || uri.transport == Some(TrunkTransport::Tls) {
        return Err(format!(
            "trunk {TRUNK} asks for TLS, and frontdesk opens no outbound TLS connection"
        ));
    }
    let port = uri.port.unwrap_or(5060);
    let address = match uri.ip() {
        Some(ip) => SocketAddr::new(ip, port),
        None => tokio::net::lookup_host((uri.host.as_str(), port))
            .await
            .ok()
            .and_then(|mut found| found.next())
            .ok_or_else(|| format!("trunk {TRUNK}: {} does not resolve", uri.host))?,
    };
    let peer = match uri.transport {
        Some(TrunkTransport::Tcp) => Peer {
            transport: sip::TransportKind::Tcp,
            address,
            connection: None,
        },
        _ => Peer::udp(address),
    };
    let host = match uri.ip() {
        Some(ip) => ip.into(),
        None => sip::message::Host::Name(uri.host.as_str().into()),
    };
    let credentials = (!trunk.username().is_empty())
        .then(|| (trunk.username().to_string(), trunk.password().to_string()));
    Ok(TrunkRoute {
        peer,
        host,
        port: uri.port,
        caller_id: trunk.caller_id().to_string(),
        credentials,
    })
}

/// What a call out is for: where its progress goes.
enum Purpose {
    /// Click-to-call: the lead's history, its owner, the metrics; the
    /// agent was claimed by [`RouterHandle::outbound_started`] and is
    /// released at the end (wrap-up).
    ///
    /// [`RouterHandle::outbound_started`]: crate::app::router::RouterHandle::outbound_started
    Lead {
        originator: Originator,
        lead: LeadId,
        /// The call out's id (`o-…`).
        id: String,
        /// The lead's department's wrap-up, for the agent after the call.
        wrap_up: Duration,
    },
    /// A dial whose progress goes to `sink` (a callback entry's: routing,
    /// which claimed the agent and takes them back, and the callback's
    /// journal row).
    Dial(Arc<dyn DialProgress>),
}

/// Where a dial started by [`spawn_dial`] reports (the callback dialer,
/// [`super::callbacks`]): the agent was claimed by its caller, and is
/// released through what it hears here.
pub trait DialProgress: Send + Sync {
    /// What happened on the dial of `agent`'s phone.
    fn progress(&self, agent: &str, progress: Progress);
}

/// Starts the task of a dial whose agent is claimed already (a callback),
/// its progress to `sink`; `span` names it in the logs.
pub(super) fn spawn_dial(
    services: Arc<CallServices>,
    setup: OriginateSetup,
    sink: Arc<dyn DialProgress>,
    span: tracing::Span,
) {
    spawn(services, setup, Purpose::Dial(sink), span);
}

/// Starts the task of one call out.
fn spawn(
    services: Arc<CallServices>,
    setup: OriginateSetup,
    purpose: Purpose,
    span: tracing::Span,
) {
    let (sip_sender, sip_events) = mpsc::unbounded_channel();
    let agent = setup.agent.clone();
    let core = Originate::new(
        services.call_config.clone(),
        setup,
        // A cryptographic RNG: it makes the SRTP keys too.
        StdRng::from_os_rng(),
    );
    let driver = Driver {
        services: Arc::clone(&services),
        purpose,
        core,
        agent,
        sip_sender,
        sip_events,
        ports: HashMap::new(),
        media: None,
        media_events: None,
        answered_at: None,
    };
    services.tasks.spawn(driver.run().instrument(span));
}

/// One call out's task: the core and the resources behind its tokens.
struct Driver {
    services: Arc<CallServices>,
    purpose: Purpose,
    core: Originate,
    agent: String,
    sip_sender: mpsc::UnboundedSender<Event>,
    sip_events: mpsc::UnboundedReceiver<Event>,
    /// Ports leased for the core and not handed to the media yet.
    ports: HashMap<PortToken, PortLease>,
    media: Option<MediaHandle>,
    media_events: Option<mpsc::UnboundedReceiver<MediaTaskEvent>>,
    answered_at: Option<Instant>,
}

impl Driver {
    async fn run(mut self) {
        metrics::gauge!("frontdesk_active_originates").increment(1.0);
        let ending = self.services.ending.clone();
        let mut ending_seen = false;
        self.core.start(now());
        loop {
            self.perform().await;
            if self.core.is_finished() {
                break;
            }
            let deadline = self.core.poll_timeout();
            tokio::select! {
                () = ending.cancelled(), if !ending_seen => {
                    ending_seen = true;
                    self.core.handle_shutdown(now());
                }
                event = self.sip_events.recv() => match event {
                    Some(event) => self.core.handle_sip(now(), event),
                    // Every sender is ours: the channel cannot close first.
                    None => break,
                },
                event = recv_some(self.media_events.as_mut()) => match event {
                    Some(MediaTaskEvent::Media(event)) => self.core.handle_media(now(), event),
                    Some(MediaTaskEvent::CommandFailed(error)) => debug!(%error, "media command failed"),
                    None => self.media_events = None,
                },
                () = sleep_until(deadline) => self.core.handle_timeout(now()),
            }
        }
        metrics::gauge!("frontdesk_active_originates").decrement(1.0);
        if let Purpose::Lead { wrap_up, .. } = &self.purpose {
            // The agent was claimed when the call out started: released if
            // their phone never answered, else wrap-up, then available.
            self.services
                .router
                .outbound_ended(routing::AgentId::new(self.agent.as_str()), *wrap_up);
        }
        for call_id in self.core.call_ids() {
            self.services.endpoint.unroute(call_id);
        }
    }

    /// Carries out the core's actions, feeding back the answers it waits for.
    async fn perform(&mut self) {
        let services = Arc::clone(&self.services);
        while let Some(action) = self.core.poll_action() {
            match action {
                OriginateAction::Send {
                    request,
                    peer,
                    token,
                } => {
                    let sent = services.endpoint.send_request(request, peer).await;
                    if let Some(token) = token {
                        let transaction = sent.ok().and_then(Result::ok);
                        self.core.handle_sent(now(), token, transaction);
                    }
                }
                OriginateAction::Respond {
                    transaction,
                    response,
                } => {
                    let _ = services.endpoint.respond(transaction, response);
                }
                OriginateAction::Cancel { transaction } => {
                    let _ = services.endpoint.cancel(transaction);
                }
                OriginateAction::Ack { request, peer } => {
                    let _ = services.endpoint.send_ack(request, peer).await;
                }
                OriginateAction::Route { call_id } => {
                    services.endpoint.route(call_id, self.sip_sender.clone());
                }
                OriginateAction::Unroute { call_id } => services.endpoint.unroute(&call_id),
                OriginateAction::LeasePort { token } => {
                    let port = services.lease_port(&mut self.ports, token);
                    self.core.handle_port(now(), token, port);
                }
                OriginateAction::ReleasePort { token } => {
                    self.ports.remove(&token);
                }
                OriginateAction::Media(media) => self.media(media).await,
                OriginateAction::Report(progress) => self.report(progress),
                OriginateAction::Finished => {
                    self.media = None;
                    self.media_events = None;
                    self.ports.clear();
                }
            }
        }
    }

    async fn media(&mut self, action: OriginateMedia) {
        let command = match action {
            OriginateMedia::StartAgent { port, media } => {
                let Some(lease) = self.ports.remove(&port) else {
                    return;
                };
                let task = spawn_media_task(self.services.media, Leg::Agent, lease, media);
                self.media = Some(task.handle);
                self.media_events = Some(task.events);
                return;
            }
            OriginateMedia::AddPatient { port, media } => {
                let Some(lease) = self.ports.remove(&port) else {
                    return;
                };
                MediaCommand::AddLeg {
                    leg: Leg::Caller,
                    lease,
                    media: Box::new(media),
                }
            }
            OriginateMedia::UpdateLeg { leg, media } => MediaCommand::UpdateLeg {
                leg,
                media: Box::new(media),
            },
            OriginateMedia::PlayAgent { id, prompts, mode } => {
                let mut loaded = Vec::with_capacity(prompts.len());
                for path in &prompts {
                    match self.services.prompts.get(path).await {
                        Ok(prompt) => loaded.push(prompt),
                        Err(error) => warn!("{}: {error}", path.display()),
                    }
                }
                MediaCommand::Play {
                    leg: Leg::Agent,
                    playback: Playback::new(PlaybackId(id), loaded, mode),
                    barge_in: false,
                }
            }
            OriginateMedia::StopAgent => MediaCommand::Stop { leg: Leg::Agent },
            OriginateMedia::Bridge => MediaCommand::Bridge,
            OriginateMedia::End => {
                // Dropping the handle ends the media task; its ports go back.
                self.media = None;
                self.media_events = None;
                return;
            }
        };
        if let Some(media) = &self.media {
            let _ = media.send(command);
        }
    }

    /// What happened goes on the lead's history, to the lead's owner
    /// ([`ContactSink`]) and to the metrics; or, for a callback, to
    /// routing and the callback's record.
    fn report(&mut self, progress: Progress) {
        if progress == Progress::PatientAnswered {
            self.answered_at = Some(Instant::now());
        }
        let (originator, lead, call) = match &self.purpose {
            Purpose::Lead {
                originator,
                lead,
                id,
                ..
            } => (originator, lead, id.as_str()),
            Purpose::Dial(sink) => {
                sink.progress(&self.agent, progress);
                return;
            }
        };
        match progress {
            Progress::AgentAnswered => {
                originator
                    .services
                    .router
                    .outbound_answered(routing::AgentId::new(self.agent.as_str()));
                originator.step(lead, "agent_answered", &self.agent, json!({"call": call}));
            }
            Progress::PatientAnswered => {
                originator
                    .contact
                    .patient_answered(lead, &self.agent, Timestamp::now());
            }
            Progress::Failed(failure) => {
                let mut detail = json!({"call": call, "reason": failure.as_str()});
                if let Failure::TrunkRefused(status) = failure {
                    detail["status"] = json!(status);
                }
                originator.step(lead, "call_failed", &self.agent, detail);
                metrics::counter!("frontdesk_originate_total", "result" => failure.as_str())
                    .increment(1);
            }
            Progress::Ended(by) => {
                let talk_ms = self.answered_at.map_or(0, |at| {
                    u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)
                });
                originator.step(
                    lead,
                    "call_ended",
                    &self.agent,
                    json!({"call": call, "by": by.as_str(), "talk_ms": talk_ms}),
                );
                metrics::counter!("frontdesk_originate_total", "result" => "connected")
                    .increment(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use records::{LeadKind, LeadState, Priority};

    use super::*;

    fn carrier() -> Trunk {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialplans");
        let text = std::fs::read_to_string(folder.join("clinic.toml")).expect("the demo");
        let plan = ivr::Dialplan::from_toml(&text, folder.join("clinic.toml"), &folder)
            .expect("the demo clinic");
        plan.trunk(TRUNK).expect("[trunks.carrier]").clone()
    }

    fn lead(phone: &str, consent: Value) -> LeadRow {
        let at: Timestamp = "2026-12-07T15:00:00Z".parse().expect("a time");
        LeadRow {
            id: LeadId::new("l-1"),
            kind: LeadKind::WebForm,
            source: "website".into(),
            campaign: None,
            name: None,
            phone: phone.into(),
            email: None,
            message: "my knee hurts".into(),
            postal_code: None,
            consent,
            department: "orthopedics".into(),
            intent: None,
            emergency: false,
            branch: None,
            priority: Priority::Routine,
            owner: None,
            state: LeadState::Waiting,
            outcome: None,
            created_at: at,
            respond_by: at,
            first_contact_at: None,
            snoozed_until: None,
        }
    }

    #[test]
    fn only_consenting_patients_at_numbers_the_trunk_allows_are_called() {
        let trunk = carrier();
        let yes = json!({"call": true});
        assert_eq!(
            permitted(&lead("+13125550199", yes.clone()), &trunk),
            Ok(())
        );
        // No consent given either way: the form's default is to call.
        assert_eq!(permitted(&lead("+13125550199", json!({})), &trunk), Ok(()));
        assert_eq!(
            permitted(&lead("+13125550199", json!({"call": false})), &trunk),
            Err(Refusal::NoConsent)
        );
        for number in [
            "+19005550199",
            "+442071234567",
            "+1976555019",
            "not a number",
        ] {
            assert_eq!(
                permitted(&lead(number, yes.clone()), &trunk),
                Err(Refusal::NumberNotAllowed),
                "{number}"
            );
        }
        assert_eq!(
            Refusal::NumberNotAllowed.to_string(),
            "number not allowed by trunk carrier"
        );
    }
}
