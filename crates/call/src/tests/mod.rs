//! The call core in virtual time: a harness plays everything around one
//! [`Call`] (the transaction layer, the media task, routing, the port pool,
//! the agents' phones and the patient's), the way quinn's `Pair::step`
//! plays both ends of a connection. Time moves only when a test says so,
//! to the next deadline or by a given amount; nothing sleeps.
//!
//! The harness answers what a driver answers at once (a port for every
//! lease, a transaction id for every INVITE sent with a token) and keeps
//! every action the call took, by kind, for the scenarios to assert on.
//! Routing is a small fake ([`FakeRouter`]) that hunts agents one after
//! another, as a queue with one strategy would; a scenario can also say
//! what routing decides (an overflow, a give-up).

mod callbacks;
mod drain;
mod proxy;
mod scenarios;
mod voicemail;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ivr::Dialplan;
use ivr::jiff::Timestamp;
use media::playback::PlaybackMode;
use media::sdp::NegotiatedMedia;
use media::session::{Leg, MediaEvent};
use rand::SeedableRng;
use rand::rngs::StdRng;
use routing::{AgentId, Enqueued, OfferFailure, QueueId};
use sip::Peer;
use sip::message::validate::{Policy, ValidRequest, ValidResponse};
use sip::message::{Frame, Limits, Message, Request, Response, parse_datagram};
use sip::registrar::Binding;
use sip::transaction::{ClientTransactionId, Event, ServerTransactionId};

use crate::{
    Action, Call, CallConfig, Clock, Environment, MediaAction, Outcome, PortToken, RouterRequest,
    RoutingInput,
};

/// A Tuesday, 10:00 in Chicago: the demo clinic is open.
pub(crate) const OPEN: &str = "2026-12-08T16:00:00Z";
/// The same Tuesday, 22:00 in Chicago: closed.
pub(crate) const CLOSED: &str = "2026-12-09T04:00:00Z";

/// The patient's phone.
pub(crate) const PATIENT: &str = "192.0.2.50:5062";
/// Where the daemon listens.
const US: &str = "192.0.2.1:5060";

/// The demo clinic, with `tweak` applied to its text.
pub(crate) fn clinic(tweak: impl Fn(String) -> String) -> Arc<Dialplan> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialplans");
    let text = std::fs::read_to_string(folder.join("clinic.toml")).expect("the demo clinic");
    let text = tweak(text);
    Arc::new(
        Dialplan::from_toml(&text, folder.join("clinic.toml"), &folder)
            .unwrap_or_else(|errors| panic!("the tweaked clinic: {errors}")),
    )
}

/// Adds a number that rings 2 s before answering (`+15550199`).
pub(crate) fn with_ringing_number(text: String) -> String {
    text.replacen(
        "[[numbers]]\nnumber = \"+15550111\"",
        "[[numbers]]\nnumber = \"+15550199\"\nsource = \"ring-test\"\npriority = \"routine\"\n\
         answer_after = \"2s\"\nannounce = [\"prompts/emergency-notice.wav\"]\nthen = { menu = \"main\" }\n\n\
         [[numbers]]\nnumber = \"+15550111\"",
        1,
    )
}

pub(crate) fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

/// A message written with `\n` line ends in its head: CRLF there, the body
/// (already CRLF) as it is.
fn wire(text: &str) -> Bytes {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    Bytes::from(format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n")))
}

/// Parses a request of the test's own.
pub(crate) fn request(text: &str) -> ValidRequest {
    match parse_datagram(wire(text), &Limits::default()) {
        Ok(Frame::Message(Message::Request(request))) => {
            sip::message::validate::request(request, &Policy::default())
                .unwrap_or_else(|(_, rejection)| panic!("invalid: {}", rejection.reason))
        }
        other => panic!("not a request: {other:?}"),
    }
}

/// Parses a response of the test's own.
pub(crate) fn response(text: &str) -> ValidResponse {
    match parse_datagram(wire(text), &Limits::default()) {
        Ok(Frame::Message(Message::Response(response))) => {
            sip::message::validate::response(response).expect("a valid response")
        }
        other => panic!("not a response: {other:?}"),
    }
}

/// A plain PCMU + telephone-event offer at `address`.
pub(crate) fn offer(address: SocketAddr) -> String {
    format!(
        "v=0\no=p 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio {port} RTP/AVP 0 101\n\
         a=rtpmap:101 telephone-event/8000\na=sendrecv\n",
        ip = address.ip(),
        port = address.port()
    )
    .replace('\n', "\r\n")
}

/// The same offer with an SRTP key (RFC 4568), as `RTP/SAVP`.
pub(crate) fn srtp_offer(address: SocketAddr) -> String {
    offer(address).replace("RTP/AVP 0 101", "RTP/SAVP 0 101").replace(
        "a=sendrecv",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\na=sendrecv",
    )
}

/// The patient's INVITE to `number`, with `sdp` (or none: a delayed offer).
pub(crate) fn invite(number: &str, sdp: Option<&str>) -> ValidRequest {
    let body = sdp.unwrap_or_default();
    let kind = if sdp.is_some() {
        "Content-Type: application/sdp\n"
    } else {
        ""
    };
    request(&format!(
        "INVITE sip:{number}@{US} SIP/2.0\n\
         Via: SIP/2.0/UDP {PATIENT};branch=z9hG4bKpatient1\n\
         From: <sip:+13125550142@{PATIENT}>;tag=patient\n\
         To: <sip:{number}@{US}>\n\
         Call-ID: patient-call@test\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:patient@{PATIENT}>\n\
         Max-Forwards: 70\n\
         {kind}Content-Length: {}\n\n{body}",
        body.len()
    ))
}

/// What the fake router does next, beside answering the call's requests.
#[derive(Debug, Default)]
pub(crate) struct FakeRouter {
    /// Agents to offer, in order, one at a time (ring-all: all at once).
    pub(crate) agents: VecDeque<String>,
    /// Offer them all at once.
    pub(crate) ring_all: bool,
    pub(crate) ring_timeout: Duration,
    /// When every agent failed: overflow there with these agents, or give up.
    pub(crate) overflow: Option<(String, Vec<String>)>,
    /// Every request the call made.
    pub(crate) requests: Vec<RouterRequest>,
    /// The queue the caller waits in.
    pub(crate) queue: Option<QueueId>,
    /// Agents offered and not yet failed or answered.
    pub(crate) ringing: Vec<String>,
    /// The wait estimate announcements get.
    pub(crate) estimate: Option<Duration>,
    /// Routing cannot keep a callback's place (`HoldPlace` gets `None`).
    pub(crate) refuse_hold: bool,
}

/// The harness. See the module docs.
pub(crate) struct Harness {
    pub(crate) now: Instant,
    pub(crate) call: Call,
    pub(crate) env: FakeEnv,
    pub(crate) router: FakeRouter,
    /// Every action, in order.
    pub(crate) actions: Vec<Action>,
    /// Answer leases with this error.
    pub(crate) ports_fail: bool,
    next_port: u16,
    next_transaction: u64,
    /// Where each client transaction id went (request, peer).
    pub(crate) sent: HashMap<ClientTransactionId, (Request, Peer)>,
    /// Drop every journal step (a failing disk): the call must not care.
    pub(crate) journal_fails: bool,
    /// Journal steps written.
    pub(crate) journal: Vec<records::CallEvent>,
    /// Leads the call made ([`Action::Lead`]).
    pub(crate) leads: Vec<crate::CallLead>,
    /// The media's state as the call's actions left it.
    pub(crate) media: MediaModel,
}

/// What the call told its media, kept as a media task would.
#[derive(Debug, Default)]
pub(crate) struct MediaModel {
    pub(crate) started: bool,
    pub(crate) caller: Option<NegotiatedMedia>,
    pub(crate) agent: Option<NegotiatedMedia>,
    pub(crate) bridged: bool,
    pub(crate) ended: bool,
    /// The playback on the patient's leg: id, files, mode.
    pub(crate) playing: Option<(u64, Vec<PathBuf>, PlaybackMode)>,
    /// Every playback started, in order.
    pub(crate) played: Vec<Vec<PathBuf>>,
    /// Digits sent to the agent.
    pub(crate) dtmf_to_agent: Vec<char>,
    /// Ports leased and not given back.
    pub(crate) ports: HashMap<PortToken, u16>,
    /// The file the caller's leg is being recorded into.
    pub(crate) recording: Option<String>,
    /// Every recording started, by file name.
    pub(crate) recordings: Vec<String>,
}

/// The views a call reads: the plan and the agents' bindings.
pub(crate) struct FakeEnv {
    pub(crate) plan: Arc<Dialplan>,
    pub(crate) bindings: HashMap<String, Vec<Binding>>,
}

impl Environment for FakeEnv {
    fn plan(&self) -> Arc<Dialplan> {
        Arc::clone(&self.plan)
    }

    fn bindings(&self, agent: &str) -> Vec<Binding> {
        self.bindings.get(agent).cloned().unwrap_or_default()
    }
}

/// An agent's phone: registered over `transport` at `address`.
pub(crate) fn binding(agent: &str, address: SocketAddr, tls: bool, now: Instant) -> Binding {
    let transport = if tls {
        sip::TransportKind::Tls
    } else {
        sip::TransportKind::Udp
    };
    let scheme = if tls { ";transport=tls" } else { "" };
    Binding {
        contact: sip::message::NameAddr::parse(&bytestring::ByteString::from(format!(
            "<sip:{agent}@{address}{scheme}>"
        )))
        .expect("a contact"),
        source: Peer {
            transport,
            address,
            connection: tls.then_some(sip::ConnectionId(7)),
        },
        path: Vec::new(),
        client: None,
        call_id: format!("register-{agent}"),
        cseq: 1,
        q: None,
        expires_at: now + Duration::from_secs(3600),
        expires_at_unix: 0,
        updated_at: now,
    }
}

impl Harness {
    /// A call to `number` with the patient's `invite`, at wall time `wall`,
    /// with agents' phones for `agents` (each at 192.0.2.10x:5060).
    pub(crate) fn new(plan: Arc<Dialplan>, invite: ValidRequest, wall: &str) -> Harness {
        // The virtual clock's origin: any instant will do, and the harness
        // only moves it forward by hand.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let wall: Timestamp = wall.parse().expect("a time");
        let call = Call::new(
            CallConfig {
                advertise: "192.0.2.1".parse().expect("an ip"),
                sip_port: 5060,
                sips_port: Some(5061),
            },
            1,
            "c-test-1".to_string(),
            Box::new(invite),
            ServerTransactionId::from_raw(1),
            Peer::udp(addr(PATIENT)),
            Clock::new(now, wall),
            now,
            StdRng::seed_from_u64(7),
        );
        Harness {
            now,
            call,
            env: FakeEnv {
                plan,
                bindings: HashMap::new(),
            },
            router: FakeRouter {
                ring_timeout: Duration::from_secs(15),
                estimate: Some(Duration::from_secs(125)),
                ..FakeRouter::default()
            },
            actions: Vec::new(),
            ports_fail: false,
            next_port: 20_000,
            next_transaction: 100,
            sent: HashMap::new(),
            journal_fails: false,
            journal: Vec::new(),
            leads: Vec::new(),
            media: MediaModel::default(),
        }
    }

    /// Registers agents' phones, `1003` at 192.0.2.103:5060 and so on.
    pub(crate) fn agents(mut self, agents: &[&str], tls: bool) -> Harness {
        for agent in agents {
            let last: u8 = agent[agent.len() - 1..].parse().unwrap_or(0);
            let address = SocketAddr::new(format!("192.0.2.10{last}").parse().expect("ip"), 5060);
            self.env.bindings.insert(
                agent.to_string(),
                vec![binding(agent, address, tls, self.now)],
            );
        }
        self.router.agents = agents.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Starts the call and plays what follows at once.
    pub(crate) fn start(mut self) -> Harness {
        self.call.start(self.now, &self.env);
        self.pump();
        self
    }

    /// Performs every pending action, answering what a driver answers at
    /// once, until the call has nothing more to do.
    pub(crate) fn pump(&mut self) {
        while let Some(action) = self.call.poll_action() {
            self.perform(action.clone());
            self.actions.push(action);
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::LeasePort { token } => {
                let port = if self.ports_fail {
                    Err("no free RTP port".to_string())
                } else {
                    self.next_port += 2;
                    self.media.ports.insert(token, self.next_port);
                    Ok(self.next_port)
                };
                self.call.handle_port(self.now, token, port, &self.env);
            }
            Action::ReleasePort { token } => {
                assert!(
                    self.media.ports.remove(&token).is_some(),
                    "release of {token:?}"
                );
            }
            Action::Send {
                request,
                peer,
                token,
            } => {
                self.next_transaction += 1;
                let id = ClientTransactionId::from_raw(self.next_transaction);
                self.sent.insert(id, (request, peer));
                if let Some(token) = token {
                    self.call.handle_sent(self.now, token, Some(id));
                }
            }
            Action::Media(media) => self.media(media),
            Action::Router(request) => self.route(request),
            Action::Journal(event) => {
                if !self.journal_fails {
                    self.journal.push(event);
                }
            }
            Action::JournalEntry(entry) => {
                if !self.journal_fails {
                    self.journal.push(entry.event);
                }
            }
            Action::Lead(lead) => self.leads.push(lead),
            Action::Respond { .. }
            | Action::Cancel { .. }
            | Action::Ack { .. }
            | Action::Route { .. }
            | Action::Unroute { .. }
            | Action::Publish
            | Action::Finished => {}
        }
    }

    fn media(&mut self, action: MediaAction) {
        match action {
            MediaAction::Start { port, media } => {
                assert!(
                    self.media.ports.remove(&port).is_some(),
                    "start on {port:?}"
                );
                self.media.started = true;
                self.media.caller = Some(media);
            }
            MediaAction::AddLeg { port, media } => {
                assert!(
                    self.media.ports.remove(&port).is_some(),
                    "agent leg on {port:?}"
                );
                self.media.agent = Some(media);
            }
            MediaAction::UpdateLeg { leg, media } => match leg {
                Leg::Caller => self.media.caller = Some(media),
                Leg::Agent => self.media.agent = Some(media),
            },
            MediaAction::RemoveLeg { leg: Leg::Agent } => {
                self.media.agent = None;
                self.media.bridged = false;
            }
            MediaAction::RemoveLeg { leg: Leg::Caller } => self.media.caller = None,
            MediaAction::Play {
                leg: Leg::Caller,
                id,
                prompts,
                mode,
                ..
            } => {
                self.media.played.push(prompts.clone());
                self.media.playing = Some((id, prompts, mode));
            }
            MediaAction::Play { .. } => {}
            MediaAction::Stop { leg: Leg::Caller } => self.media.playing = None,
            MediaAction::Stop { .. } => {}
            MediaAction::SendDtmf { digits, .. } => self
                .media
                .dtmf_to_agent
                .extend(digits.iter().map(|digit| digit.as_char())),
            MediaAction::Bridge => {
                self.media.bridged = true;
                self.media.playing = None;
            }
            MediaAction::Unbridge => self.media.bridged = false,
            MediaAction::Record { leg, name, .. } => {
                assert_eq!(leg, Leg::Caller, "only the caller is recorded");
                self.media.recordings.push(name.clone());
                self.media.recording = Some(name);
            }
            MediaAction::StopRecording => {
                assert!(
                    self.media.recording.take().is_some(),
                    "no recording to stop"
                );
            }
            // The clinic's plan has no speech menu.
            MediaAction::Listen { .. } | MediaAction::StopListening { .. } => {
                panic!("listening in a plan without speech")
            }
            MediaAction::End => {
                self.media.ended = true;
                self.media.playing = None;
            }
        }
    }

    fn route(&mut self, request: RouterRequest) {
        self.router.requests.push(request.clone());
        match request {
            RouterRequest::Enqueue {
                queue, priority, ..
            } => {
                self.router.queue = Some(queue.clone());
                let enqueued = Enqueued {
                    queue,
                    priority,
                    position: 1,
                    estimated_wait: None,
                    overflowed_from: None,
                };
                self.routing(RoutingInput::Enqueued(Some(Ok(enqueued))));
                self.offer_next();
            }
            RouterRequest::Transfer { queue, direct, .. } => {
                self.router.queue = Some(queue.clone());
                let enqueued = Enqueued {
                    queue,
                    priority: routing::Priority::Routine,
                    position: 1,
                    estimated_wait: None,
                    overflowed_from: None,
                };
                self.routing(RoutingInput::Transferred(Some(Ok(enqueued))));
                if let Some(direct) = direct {
                    self.router
                        .agents
                        .push_front(direct.agent.as_str().to_string());
                }
                self.offer_next();
            }
            RouterRequest::Announcement { .. } => self.routing(RoutingInput::Announcement {
                position: Some(2),
                estimate: self.router.estimate,
            }),
            RouterRequest::OfferFailed(agent, _) => {
                self.router.ringing.retain(|a| a != agent.as_str());
                if self.router.ringing.is_empty() {
                    self.offer_next();
                }
            }
            RouterRequest::Answered(_) => self.router.ringing.clear(),
            RouterRequest::HoldPlace { .. } => {
                let held = (!self.router.refuse_hold).then_some(4);
                self.routing(RoutingInput::PlaceHeld(held));
            }
            RouterRequest::Cancel | RouterRequest::CallEnded => {}
        }
    }

    /// Routing offers the next agent(s), or, with none left, overflows or
    /// gives up.
    fn offer_next(&mut self) {
        if !self.router.ringing.is_empty() {
            return;
        }
        let agents: Vec<String> = if self.router.ring_all {
            self.router.agents.drain(..).collect()
        } else {
            self.router.agents.pop_front().into_iter().collect()
        };
        if agents.is_empty() {
            if let Some((to, agents)) = self.router.overflow.take() {
                self.router.agents = agents.into();
                self.routing(RoutingInput::Overflowed {
                    to: QueueId::new(to.as_str()),
                    priority: routing::Priority::Routine,
                });
                self.offer_next();
            }
            return;
        }
        self.router.ringing = agents.clone();
        let ring_timeout = self.router.ring_timeout;
        self.routing(RoutingInput::Offer {
            agents: agents.iter().map(|a| AgentId::new(a.as_str())).collect(),
            ring_timeout,
            waited: Duration::from_secs(42),
        });
    }

    /// Routing tells the call something.
    pub(crate) fn routing(&mut self, input: RoutingInput) {
        self.call.handle_routing(self.now, input, &self.env);
    }

    /// Feeds routing news and plays the consequences.
    pub(crate) fn routing_news(&mut self, input: RoutingInput) {
        self.routing(input);
        self.pump();
    }

    /// A SIP event for the call, then its consequences.
    pub(crate) fn sip(&mut self, event: Event) {
        self.call.handle_sip(self.now, event, &self.env);
        self.pump();
    }

    /// A media event, then its consequences.
    pub(crate) fn media_event(&mut self, event: MediaEvent) {
        self.call.handle_media(self.now, event, &self.env);
        self.pump();
    }

    /// Moves virtual time by `by`, firing every deadline on the way.
    pub(crate) fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(deadline) = self.call.poll_timeout().filter(|at| *at <= until) {
            self.now = deadline.max(self.now);
            self.call.handle_timeout(self.now, &self.env);
            self.pump();
        }
        self.now = until;
    }

    /// The playback on the patient's leg ends (completed).
    pub(crate) fn finish_playback(&mut self) {
        let (id, _, _) = self.media.playing.take().expect("something plays");
        self.media_event(MediaEvent::PlaybackEnded {
            leg: Leg::Caller,
            id: media::playback::PlaybackId(id),
            completed: true,
        });
    }

    /// The patient presses `digit` by RFC 4733 (or in-band).
    pub(crate) fn press(&mut self, digit: char, source: media::DtmfSource) {
        self.media_event(MediaEvent::Dtmf {
            leg: Leg::Caller,
            digit: media::DtmfDigit::from_char(digit).expect("a key"),
            source,
        });
    }

    // ---- what the call said ----------------------------------------------

    /// Every response on the patient's INVITE, by status code.
    pub(crate) fn invite_responses(&self) -> Vec<u16> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                Action::Respond {
                    transaction,
                    response,
                } if *transaction == ServerTransactionId::from_raw(1) => {
                    Some(response.status.as_u16())
                }
                _ => None,
            })
            .collect()
    }

    /// The final response on the patient's INVITE.
    pub(crate) fn final_response(&self) -> Response {
        self.actions
            .iter()
            .rev()
            .find_map(|action| match action {
                Action::Respond {
                    transaction,
                    response,
                } if *transaction == ServerTransactionId::from_raw(1)
                    && !response.status.is_provisional() =>
                {
                    Some(response.clone())
                }
                _ => None,
            })
            .expect("a final response to the INVITE")
    }

    /// The responses sent on server transaction `id`.
    pub(crate) fn responses_on(&self, id: u64) -> Vec<u16> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                Action::Respond {
                    transaction,
                    response,
                } if *transaction == ServerTransactionId::from_raw(id) => {
                    Some(response.status.as_u16())
                }
                _ => None,
            })
            .collect()
    }

    /// The requests sent with `method`, in order, with their transaction ids.
    pub(crate) fn sent(&self, method: &str) -> Vec<(ClientTransactionId, Request, Peer)> {
        let mut sent: Vec<_> = self
            .sent
            .iter()
            .filter(|(_, (request, _))| request.method.as_str() == method)
            .map(|(id, (request, peer))| (*id, request.clone(), *peer))
            .collect();
        sent.sort_by_key(|(id, _, _)| *id);
        sent
    }

    /// The CANCELs sent, by transaction.
    pub(crate) fn cancels(&self) -> Vec<ClientTransactionId> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                Action::Cancel { transaction } => Some(*transaction),
                _ => None,
            })
            .collect()
    }

    /// How many ACKs went out.
    pub(crate) fn acks(&self) -> usize {
        self.actions
            .iter()
            .filter(|action| matches!(action, Action::Ack { .. }))
            .count()
    }

    /// The prompt files of every playback, by file stem.
    pub(crate) fn played(&self) -> Vec<Vec<String>> {
        self.media
            .played
            .iter()
            .map(|files| {
                files
                    .iter()
                    .filter_map(|file| file.file_stem())
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .collect()
            })
            .collect()
    }

    /// The journal's step kinds, in order.
    pub(crate) fn steps(&self) -> Vec<&'static str> {
        self.journal.iter().map(step_name).collect()
    }

    /// The call is over with `outcome`, its media ended, its ports back.
    pub(crate) fn assert_over(&self, outcome: Outcome) {
        assert!(self.call.is_finished(), "the call goes on");
        assert_eq!(
            self.call.record().outcome,
            Some(outcome),
            "{:#?}",
            self.call.record()
        );
        assert!(self.call.record().ended_at.is_some());
        assert!(
            self.media.ports.is_empty(),
            "ports kept: {:?}",
            self.media.ports
        );
        if self.media.started {
            assert!(self.media.ended, "the media goes on");
        }
        assert!(
            matches!(self.actions.last(), Some(Action::Finished)),
            "the last action is Finished: {:?}",
            self.actions.last()
        );
        assert_eq!(self.steps().last(), Some(&"ended"));
    }

    // ---- the patient's side ----------------------------------------------

    /// The patient's ACK of our 200 (with `sdp`: the answer to a delayed offer).
    pub(crate) fn patient_acks(&mut self, sdp: Option<&str>) {
        let to = self.our_to();
        let body = sdp.unwrap_or_default();
        let kind = if sdp.is_some() {
            "Content-Type: application/sdp\n"
        } else {
            ""
        };
        let ack = request(&format!(
            "ACK sip:frontdesk@{US} SIP/2.0\n\
             Via: SIP/2.0/UDP {PATIENT};branch=z9hG4bKpatientack\n\
             From: <sip:+13125550142@{PATIENT}>;tag=patient\n\
             {to}\n\
             Call-ID: patient-call@test\n\
             CSeq: 1 ACK\n\
             Max-Forwards: 70\n\
             {kind}Content-Length: {}\n\n{body}",
            body.len()
        ));
        self.sip(Event::Ack {
            transaction: ServerTransactionId::from_raw(1),
            ack: Box::new(ack),
            source: Peer::udp(addr(PATIENT)),
        });
    }

    /// The To header of our 200 to the patient (with our tag).
    fn our_to(&self) -> String {
        let ok = self.final_response();
        let to = ok.headers.get(&sip::message::HeaderName::To).expect("a To");
        format!("To: {}", String::from_utf8_lossy(to))
    }

    /// A request of the patient's in the dialog, on server transaction `id`.
    pub(crate) fn patient_sends(
        &mut self,
        id: u64,
        method: &str,
        cseq: u32,
        extra: &str,
        body: &str,
    ) {
        let to = self.our_to();
        let request = request(&format!(
            "{method} sip:frontdesk@{US} SIP/2.0\n\
             Via: SIP/2.0/UDP {PATIENT};branch=z9hG4bKpatient{id}\n\
             From: <sip:+13125550142@{PATIENT}>;tag=patient\n\
             {to}\n\
             Call-ID: patient-call@test\n\
             CSeq: {cseq} {method}\n\
             Contact: <sip:patient@{PATIENT}>\n\
             Max-Forwards: 70\n\
             {extra}Content-Length: {}\n\n{body}",
            body.len()
        ));
        self.sip(Event::Request {
            transaction: ServerTransactionId::from_raw(id),
            request: Box::new(request),
            source: Peer::udp(addr(PATIENT)),
        });
    }

    /// The patient hangs up.
    pub(crate) fn patient_hangs_up(&mut self) {
        self.patient_sends(50, "BYE", 9, "", "");
    }

    // ---- the agents' side ------------------------------------------------

    /// The INVITE sent to `agent`, with its transaction.
    pub(crate) fn invite_to(&self, agent: &str) -> (ClientTransactionId, Request, Peer) {
        self.sent("INVITE")
            .into_iter()
            .find(|(_, request, _)| {
                request
                    .uri
                    .as_sip()
                    .is_some_and(|uri| uri.user.as_deref() == Some(agent))
            })
            .unwrap_or_else(|| panic!("no INVITE to {agent}"))
    }

    /// Every INVITE sent to `agent` (one per device), in order.
    pub(crate) fn invites_to(&self, agent: &str) -> Vec<(ClientTransactionId, Request, Peer)> {
        self.sent("INVITE")
            .into_iter()
            .filter(|(_, request, _)| {
                request
                    .uri
                    .as_sip()
                    .is_some_and(|uri| uri.user.as_deref() == Some(agent))
            })
            .collect()
    }

    /// `agent`'s phone answers `status` (200 with an SDP answer at its media
    /// address 192.0.2.20x:7000).
    pub(crate) fn agent_answers(&mut self, agent: &str, status: u16) {
        self.device_answers(agent, 0, status);
    }

    /// The `device`-th device of `agent` (in the order they were rung)
    /// answers `status`.
    pub(crate) fn device_answers(&mut self, agent: &str, device: usize, status: u16) {
        let (transaction, invite, peer) = self
            .invites_to(agent)
            .into_iter()
            .nth(device)
            .unwrap_or_else(|| panic!("no INVITE to device {device} of {agent}"));
        let header = |name: &str| {
            String::from_utf8_lossy(
                invite
                    .headers
                    .get(&sip::message::HeaderName::from_token(name))
                    .expect("a header"),
            )
            .into_owned()
        };
        let body = if status == 200 {
            let last: u8 = agent[agent.len() - 1..].parse().unwrap_or(0);
            let media = addr(&format!("192.0.2.20{last}:7000"));
            let savp = String::from_utf8_lossy(&invite.body).contains("RTP/SAVP");
            if savp {
                srtp_offer(media)
            } else {
                offer(media)
            }
        } else {
            String::new()
        };
        let kind = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\n"
        };
        let response = response(&format!(
            "SIP/2.0 {status} Whatever\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKleg\n\
             From: {}\n\
             To: {};tag=agent{agent}\n\
             Call-ID: {}\n\
             CSeq: 1 INVITE\n\
             Contact: <sip:{agent}@{}>\n\
             {kind}Content-Length: {}\n\n{body}",
            header("From"),
            header("To"),
            header("Call-ID"),
            peer.address,
            body.len()
        ));
        self.sip(Event::Response {
            transaction,
            response: Box::new(response),
            source: peer,
        });
    }

    /// A request of `agent`'s phone in its dialog, on server transaction `id`.
    pub(crate) fn agent_sends(
        &mut self,
        agent: &str,
        id: u64,
        method: &str,
        cseq: u32,
        extra: &str,
        body: &str,
    ) {
        let (_, invite, peer) = self.invite_to(agent);
        let header = |name: &str| {
            String::from_utf8_lossy(
                invite
                    .headers
                    .get(&sip::message::HeaderName::from_token(name))
                    .expect("a header"),
            )
            .into_owned()
        };
        let request = request(&format!(
            "{method} sip:frontdesk@{US} SIP/2.0\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bKagent{id}\n\
             From: {};tag=agent{agent}\n\
             To: {}\n\
             Call-ID: {}\n\
             CSeq: {cseq} {method}\n\
             Contact: <sip:{agent}@{}>\n\
             Max-Forwards: 70\n\
             {extra}Content-Length: {}\n\n{body}",
            peer.address,
            header("To"),
            header("From"),
            header("Call-ID"),
            peer.address,
            body.len()
        ));
        self.sip(Event::Request {
            transaction: ServerTransactionId::from_raw(id),
            request: Box::new(request),
            source: peer,
        });
    }

    /// The responses to the requests sent on `agent`'s leg, by method.
    pub(crate) fn on_leg(&self, agent: &str, method: &str) -> Vec<Request> {
        let (_, invite, _) = self.invite_to(agent);
        let call_id = invite.headers.call_id().expect("a Call-ID");
        self.sent(method)
            .into_iter()
            .filter(|(_, request, _)| request.headers.call_id().ok() == Some(call_id.clone()))
            .map(|(_, request, _)| request)
            .collect()
    }
}

/// A journal step's kind.
fn step_name(event: &records::CallEvent) -> &'static str {
    use records::CallEvent::*;
    match event {
        Started { .. } => "started",
        Entered { .. } => "entered",
        MenuChoice { .. } => "menu",
        SpeechHeard { .. } => "speech",
        Queued { .. } => "queued",
        Offered { .. } => "offered",
        NoAnswer { .. } => "no_answer",
        Busy { .. } => "busy",
        Connected { .. } => "connected",
        Overflowed { .. } => "overflowed",
        Callback { .. } => "callback",
        Transferred { .. } => "transferred",
        Ended { .. } => "ended",
    }
}

/// Scenarios start with an open clinic and one agent of each department.
pub(crate) fn answered_call(number: &str, agents: &[&str]) -> Harness {
    let mut h = Harness::new(
        clinic(|text| text),
        invite(number, Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .agents(agents, false)
    .start();
    assert_eq!(h.invite_responses(), [200], "answered at once");
    h.patient_acks(None);
    h
}

/// Answered, the notice heard, `digit` pressed: the call waits in the
/// queue the digit chose, its agent's phone ringing.
pub(crate) fn queued_call(digit: char, agents: &[&str]) -> Harness {
    let mut h = answered_call("+15550100", agents);
    h.press(digit, media::DtmfSource::TelephoneEvent);
    h
}

/// A call bridged to `agent`.
pub(crate) fn bridged_call(digit: char, agent: &str) -> Harness {
    let mut h = queued_call(digit, &[agent]);
    h.agent_answers(agent, 200);
    assert!(h.media.bridged, "bridged");
    h
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("record", self.call.record())
            .finish_non_exhaustive()
    }
}

/// For scenarios that need an agent's failure reason spelled out.
pub(crate) fn failures(h: &Harness) -> Vec<(String, OfferFailure)> {
    h.router
        .requests
        .iter()
        .filter_map(|request| match request {
            RouterRequest::OfferFailed(agent, reason) => Some((agent.to_string(), *reason)),
            _ => None,
        })
        .collect()
}
