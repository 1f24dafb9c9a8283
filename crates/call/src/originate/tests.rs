//! The outbound call in virtual time: a harness plays the transaction
//! layer, the port pool, the agent's phone and the trunk around one
//! [`Originate`]; time moves only when a test says so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use sip::Peer;
use sip::digest::{Algorithm, Challenge, Credentials, ha1};
use sip::message::{HeaderName, Request};
use sip::transaction::{ClientTransactionId, Event, ServerTransactionId};

use super::*;
use crate::tests::{addr, offer, request, response};

const AGENT: &str = "192.0.2.101:5060";
const TRUNK: &str = "192.0.2.60:5062";
const PATIENT: &str = "+13125550199";
const AGENT_RING: Duration = Duration::from_secs(20);
const PATIENT_RING: Duration = Duration::from_secs(30);

struct Harness {
    now: Instant,
    call: Originate,
    actions: Vec<OriginateAction>,
    sent: HashMap<ClientTransactionId, (Request, Peer)>,
    next_transaction: u64,
    next_port: u16,
    ports_fail: bool,
    leased: usize,
    released: usize,
}

fn setup(credentials: bool) -> OriginateSetup {
    let agent = addr(AGENT);
    OriginateSetup {
        agent: "1004".into(),
        // The virtual clock's origin does for the binding's times.
        #[allow(clippy::disallowed_methods)]
        agent_binding: crate::tests::binding("1004", agent, false, Instant::now()),
        display: "Lead l-1 · Orthopedics".into(),
        patient: PATIENT.into(),
        trunk: TrunkRoute {
            peer: Peer::udp(addr(TRUNK)),
            host: addr(TRUNK).ip().into(),
            port: Some(5062),
            caller_id: "+15550100".into(),
            credentials: credentials.then(|| ("clinic".to_string(), "s3cret".to_string())),
        },
        agent_ring: AGENT_RING,
        patient_ring: PATIENT_RING,
        ringback: Some("prompts/hold-music.wav".into()),
        whisper: None,
    }
}

impl Harness {
    fn new(credentials: bool) -> Harness {
        Harness::with(setup(credentials))
    }

    fn with(setup: OriginateSetup) -> Harness {
        // The virtual clock's origin: nothing reads the clock after it.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let config = CallConfig {
            advertise: "192.0.2.1".parse().expect("an address"),
            sip_port: 5060,
            sips_port: None,
        };
        let mut harness = Harness {
            now,
            call: Originate::new(config, setup, StdRng::seed_from_u64(7)),
            actions: Vec::new(),
            sent: HashMap::new(),
            next_transaction: 1,
            next_port: 30000,
            ports_fail: false,
            leased: 0,
            released: 0,
        };
        harness.call.start(harness.now);
        harness.pump();
        harness
    }

    /// Performs every action as a driver would, answering at once what a
    /// driver answers (ports, transaction ids).
    fn pump(&mut self) {
        while let Some(action) = self.call.poll_action() {
            match &action {
                OriginateAction::LeasePort { token } => {
                    let port = if self.ports_fail {
                        Err("no port".to_string())
                    } else {
                        self.leased += 1;
                        self.next_port += 2;
                        Ok(self.next_port)
                    };
                    self.call.handle_port(self.now, *token, port);
                }
                OriginateAction::ReleasePort { .. } => self.released += 1,
                OriginateAction::Send {
                    request,
                    peer,
                    token,
                } => {
                    let id = ClientTransactionId::from_raw(self.next_transaction);
                    self.next_transaction += 1;
                    self.sent.insert(id, (request.clone(), *peer));
                    if let Some(token) = token {
                        self.call.handle_sent(self.now, *token, Some(id));
                    }
                }
                _ => {}
            }
            self.actions.push(action);
        }
    }

    fn sip(&mut self, event: Event) {
        self.call.handle_sip(self.now, event);
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.call.poll_timeout().filter(|at| *at <= until) {
            self.now = at;
            self.call.handle_timeout(at);
            self.pump();
        }
        self.now = until;
    }

    /// Requests sent with `method`, in order, with their transaction.
    fn sent(&self, method: &str) -> Vec<(ClientTransactionId, Request, Peer)> {
        let mut sent: Vec<_> = self
            .sent
            .iter()
            .filter(|(_, (request, _))| request.method.as_str() == method)
            .map(|(id, (request, peer))| (*id, request.clone(), *peer))
            .collect();
        sent.sort_by_key(|(id, _, _)| *id);
        sent
    }

    /// The last INVITE sent to `to`.
    fn invite_to(&self, to: &str) -> (ClientTransactionId, Request, Peer) {
        self.sent("INVITE")
            .into_iter()
            .filter(|(_, _, peer)| peer.address == addr(to))
            .last()
            .unwrap_or_else(|| panic!("no INVITE to {to}"))
    }

    fn invites_to(&self, to: &str) -> usize {
        self.sent("INVITE")
            .iter()
            .filter(|(_, _, peer)| peer.address == addr(to))
            .count()
    }

    /// `to`'s answer `status` to our last INVITE there, from `source`,
    /// with `extra` header lines; a 200 carries an SDP answer.
    fn answers_from(&mut self, to: &str, status: u16, extra: &str, source: &str) {
        let (transaction, invite, _) = self.invite_to(to);
        let header = |name: &str| {
            String::from_utf8_lossy(
                invite
                    .headers
                    .get(&HeaderName::from_token(name))
                    .expect("a header"),
            )
            .into_owned()
        };
        let body = if status == 200 {
            offer(addr("192.0.2.201:7000"))
        } else {
            String::new()
        };
        let kind = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\n"
        };
        let answer = response(&format!(
            "SIP/2.0 {status} Whatever\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKleg\n\
             From: {}\n\
             To: {};tag=far\n\
             Call-ID: {}\n\
             CSeq: {}\n\
             Contact: <sip:far@{to}>\n\
             {extra}{kind}Content-Length: {}\n\n{body}",
            header("From"),
            header("To"),
            header("Call-ID"),
            header("CSeq"),
            body.len()
        ));
        self.sip(Event::Response {
            transaction,
            response: Box::new(answer),
            source: Peer::udp(addr(source)),
        });
    }

    fn answers(&mut self, to: &str, status: u16) {
        self.answers_from(to, status, "", to);
    }

    /// A BYE from `from` in its dialog.
    fn hangs_up(&mut self, from: &str) {
        let (_, invite, _) = self.invite_to(from);
        let header = |name: &str| {
            String::from_utf8_lossy(
                invite
                    .headers
                    .get(&HeaderName::from_token(name))
                    .expect("a header"),
            )
            .into_owned()
        };
        let bye = request(&format!(
            "BYE sip:frontdesk@192.0.2.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP {from};branch=z9hG4bKbye\n\
             From: {};tag=far\n\
             To: {}\n\
             Call-ID: {}\n\
             CSeq: 9 BYE\n\
             Max-Forwards: 70\n\
             Content-Length: 0\n\n",
            header("To"),
            header("From"),
            header("Call-ID"),
        ));
        self.sip(Event::Request {
            transaction: ServerTransactionId::from_raw(900),
            request: Box::new(bye),
            source: Peer::udp(addr(from)),
        });
    }

    fn cancels(&self) -> Vec<ClientTransactionId> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                OriginateAction::Cancel { transaction } => Some(*transaction),
                _ => None,
            })
            .collect()
    }

    fn byes_to(&self, to: &str) -> usize {
        self.sent("BYE")
            .iter()
            .filter(|(_, _, peer)| peer.address == addr(to))
            .count()
    }

    fn acks_to(&self, to: &str) -> usize {
        self.actions
            .iter()
            .filter(|action| {
                matches!(action, OriginateAction::Ack { peer, .. } if peer.address == addr(to))
            })
            .count()
    }

    fn reports(&self) -> Vec<Progress> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                OriginateAction::Report(progress) => Some(*progress),
                _ => None,
            })
            .collect()
    }

    fn media(&self) -> Vec<&OriginateMedia> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                OriginateAction::Media(media) => Some(media),
                _ => None,
            })
            .collect()
    }

    fn responses(&self) -> Vec<u16> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                OriginateAction::Respond { response, .. } => Some(response.status.as_u16()),
                _ => None,
            })
            .collect()
    }

    /// Over with `result`, every port back; once no CANCEL waits for
    /// its answer, done, with both Call-IDs unrouted.
    fn assert_over(&self, result: Progress) {
        assert_eq!(self.call.result(), Some(result));
        assert_eq!(self.reports().last(), Some(&result));
        let unrouted = self
            .actions
            .iter()
            .filter(|a| matches!(a, OriginateAction::Unroute { .. }))
            .count();
        if self.call.is_finished() {
            assert_eq!(self.call.poll_timeout(), None);
            assert_eq!(unrouted, 2);
        } else {
            assert_eq!(unrouted, 0, "still listening for a CANCEL's answer");
            assert!(self.call.poll_timeout().is_some(), "but not for ever");
        }
        // A port handed to the media goes back with it; the others are
        // released one by one.
        let to_media = self
            .media()
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    OriginateMedia::StartAgent { .. } | OriginateMedia::AddPatient { .. }
                )
            })
            .count();
        assert_eq!(self.leased, self.released + to_media, "every port back");
    }

    /// Up to the trunk's INVITE: the agent answered.
    fn agent_answered(credentials: bool) -> Harness {
        let mut h = Harness::new(credentials);
        h.answers(AGENT, 200);
        assert_eq!(h.reports(), vec![Progress::AgentAnswered]);
        assert_eq!(h.invites_to(TRUNK), 1);
        h
    }

    /// Both up and bridged.
    fn bridged() -> Harness {
        let mut h = Harness::agent_answered(false);
        h.answers(TRUNK, 200);
        assert!(h.call.reached_patient());
        h
    }
}

fn header(request: &Request, name: HeaderName) -> String {
    String::from_utf8_lossy(request.headers.get(&name).expect("the header")).into_owned()
}

#[test]
fn the_agent_rings_first_and_nothing_goes_to_the_trunk_until_they_answer() {
    let mut h = Harness::new(false);
    let (_, invite, peer) = h.invite_to(AGENT);
    assert_eq!(peer.address, addr(AGENT));
    assert_eq!(invite.uri.to_string(), format!("sip:1004@{AGENT}"));
    assert!(header(&invite, HeaderName::From).contains("Lead l-1"));
    assert_eq!(h.invites_to(TRUNK), 0);
    assert_eq!(h.call.poll_timeout(), Some(h.now + AGENT_RING));
    h.answers(AGENT, 180);
    assert_eq!(h.invites_to(TRUNK), 0);
    h.answers(AGENT, 200);
    assert_eq!(h.acks_to(AGENT), 1);
    assert!(matches!(h.media()[0], OriginateMedia::StartAgent { .. }));
    // Ringback to the agent while the patient's phone rings.
    assert!(h.media().iter().any(|m| matches!(
        m,
        OriginateMedia::PlayAgent {
            mode: PlaybackMode::Loop,
            ..
        }
    )));
    let (_, invite, peer) = h.invite_to(TRUNK);
    assert_eq!(peer.address, addr(TRUNK));
    assert_eq!(invite.uri.to_string(), format!("sip:{PATIENT}@{TRUNK}"));
    assert!(header(&invite, HeaderName::To).contains(PATIENT));
    assert!(header(&invite, HeaderName::From).contains("sip:+15550100@192.0.2.1"));
    assert!(
        header(
            &invite,
            HeaderName::Other(ByteString::from_static("P-Asserted-Identity"))
        )
        .contains("sip:+15550100@")
    );
    assert_eq!(h.call.poll_timeout(), Some(h.now + PATIENT_RING));
}

#[test]
fn an_agent_who_does_not_answer_is_cancelled_and_the_patient_never_dialed() {
    let mut h = Harness::new(false);
    h.advance(AGENT_RING - Duration::from_millis(1));
    assert!(h.cancels().is_empty());
    h.advance(Duration::from_millis(1));
    let (agent_invite, _, _) = h.invite_to(AGENT);
    assert_eq!(h.cancels(), vec![agent_invite]);
    assert_eq!(h.invites_to(TRUNK), 0);
    h.assert_over(Progress::Failed(Failure::AgentNoAnswer));
    assert!(!h.call.is_finished());
    // The 487 that follows the CANCEL closes it, and changes nothing else.
    h.answers(AGENT, 487);
    assert!(h.call.is_finished());
    assert_eq!(h.reports().len(), 1);
    h.assert_over(Progress::Failed(Failure::AgentNoAnswer));
}

#[test]
fn a_busy_or_declining_agent_ends_it_with_no_invite_to_the_trunk() {
    for (status, failure) in [
        (486, Failure::AgentBusy),
        (600, Failure::AgentBusy),
        (603, Failure::AgentDeclined),
        (404, Failure::AgentUnreachable),
    ] {
        let mut h = Harness::new(false);
        h.answers(AGENT, status);
        assert_eq!(h.invites_to(TRUNK), 0, "{status}");
        assert!(h.cancels().is_empty());
        h.assert_over(Progress::Failed(failure));
    }
}

#[test]
fn an_unreachable_agent_phone_fails_the_call() {
    let mut h = Harness::new(false);
    let (transaction, _, _) = h.invite_to(AGENT);
    let call_id = h.call.call_ids()[0].clone();
    h.sip(Event::Timeout {
        transaction,
        call_id,
    });
    h.assert_over(Progress::Failed(Failure::AgentUnreachable));
    assert_eq!(h.invites_to(TRUNK), 0);
}

#[test]
fn a_407_challenge_is_answered_once_with_digest_then_the_patient_answers() {
    let mut h = Harness::agent_answered(true);
    let challenge = Challenge::new("carrier.example", "nonce-1", Algorithm::Md5);
    // A bare 407 carries no challenge: nothing to answer with.
    h.answers(TRUNK, 407);
    h.assert_over(Progress::Failed(Failure::TrunkAuthFailed));

    let mut h = Harness::agent_answered(true);
    h.answers_from(
        TRUNK,
        407,
        &format!("Proxy-Authenticate: {challenge}\n"),
        TRUNK,
    );
    assert!(!h.call.is_finished());
    assert_eq!(h.invites_to(TRUNK), 2);
    let (_, again, _) = h.invite_to(TRUNK);
    assert_eq!(header(&again, HeaderName::CSeq), "2 INVITE");
    let (_, first, _) = &h.sent("INVITE")[1];
    assert_eq!(
        header(&again, HeaderName::CallId),
        header(first, HeaderName::CallId)
    );
    let authorization = header(&again, HeaderName::ProxyAuthorization);
    let params =
        sip::message::AuthParams::parse(&ByteString::from(authorization)).expect("credentials");
    let credentials = Credentials::from_params(&params).expect("digest credentials");
    assert_eq!(credentials.username, "clinic");
    assert_eq!(credentials.uri, format!("sip:{PATIENT}@{TRUNK}"));
    let secret = ha1(Algorithm::Md5, "clinic", "carrier.example", "s3cret");
    assert!(credentials.verify("INVITE", &secret), "the right response");
    h.answers(TRUNK, 180);
    h.answers(TRUNK, 200);
    assert_eq!(h.acks_to(TRUNK), 1);
    let media = h.media();
    assert!(media.contains(&&OriginateMedia::StopAgent));
    assert!(matches!(
        media[media.len() - 2],
        OriginateMedia::AddPatient { .. }
    ));
    assert_eq!(media.last(), Some(&&OriginateMedia::Bridge));
    assert_eq!(
        h.reports(),
        vec![Progress::AgentAnswered, Progress::PatientAnswered]
    );
    assert_eq!(h.call.poll_timeout(), None, "no timer while talking");
}

#[test]
fn a_401_is_answered_with_authorization_and_a_second_challenge_fails() {
    let mut h = Harness::agent_answered(true);
    let challenge = Challenge::new("carrier.example", "n1", Algorithm::Sha256);
    let line = format!("WWW-Authenticate: {challenge}\n");
    h.answers_from(TRUNK, 401, &line, TRUNK);
    let (_, again, _) = h.invite_to(TRUNK);
    assert!(again.headers.get(&HeaderName::Authorization).is_some());
    h.answers_from(TRUNK, 401, &line, TRUNK);
    assert_eq!(h.invites_to(TRUNK), 2, "one retry only");
    assert_eq!(h.byes_to(AGENT), 1, "the agent is told");
    h.assert_over(Progress::Failed(Failure::TrunkAuthFailed));
}

#[test]
fn a_challenge_without_credentials_fails() {
    let mut h = Harness::agent_answered(false);
    let challenge = Challenge::new("carrier.example", "n1", Algorithm::Md5);
    h.answers_from(
        TRUNK,
        407,
        &format!("Proxy-Authenticate: {challenge}\n"),
        TRUNK,
    );
    assert_eq!(h.invites_to(TRUNK), 1);
    h.assert_over(Progress::Failed(Failure::TrunkAuthFailed));
}

#[test]
fn a_trunk_that_refuses_ends_the_agent_leg_with_bye() {
    for (status, failure) in [
        (403, Failure::TrunkRefused(403)),
        (503, Failure::TrunkRefused(503)),
        (486, Failure::PatientBusy),
        (480, Failure::PatientNoAnswer),
    ] {
        let mut h = Harness::agent_answered(false);
        h.answers(TRUNK, status);
        assert_eq!(h.byes_to(AGENT), 1, "{status}");
        assert!(!h.call.reached_patient());
        h.assert_over(Progress::Failed(failure));
    }
}

#[test]
fn a_patient_who_does_not_answer_is_cancelled_and_the_agent_hung_up() {
    let mut h = Harness::agent_answered(false);
    h.advance(PATIENT_RING);
    let (trunk_invite, _, _) = h.invite_to(TRUNK);
    assert_eq!(h.cancels(), vec![trunk_invite]);
    assert_eq!(h.byes_to(AGENT), 1);
    h.assert_over(Progress::Failed(Failure::PatientNoAnswer));
    // The patient picks up as the CANCEL crosses: ACK and BYE.
    h.answers(TRUNK, 200);
    assert_eq!(h.acks_to(TRUNK), 1);
    assert_eq!(h.byes_to(TRUNK), 1);
    assert!(!h.call.reached_patient());
    assert!(h.call.is_finished());
}

#[test]
fn the_agent_hanging_up_while_the_patient_rings_cancels_the_trunk_invite() {
    let mut h = Harness::agent_answered(false);
    h.hangs_up(AGENT);
    assert_eq!(h.responses(), vec![200]);
    let (trunk_invite, _, _) = h.invite_to(TRUNK);
    assert_eq!(h.cancels(), vec![trunk_invite]);
    assert_eq!(h.byes_to(AGENT), 0, "they hung up themselves");
    h.assert_over(Progress::Failed(Failure::AgentHungUp));
    // No answer to the CANCEL at all: done after the linger.
    h.advance(CANCEL_LINGER);
    assert!(h.call.is_finished());
    h.assert_over(Progress::Failed(Failure::AgentHungUp));
}

#[test]
fn either_side_hanging_up_sends_bye_to_the_other() {
    let mut h = Harness::bridged();
    h.hangs_up(AGENT);
    assert_eq!(h.responses(), vec![200]);
    assert_eq!(h.byes_to(TRUNK), 1);
    assert_eq!(h.byes_to(AGENT), 0);
    h.assert_over(Progress::Ended(EndedBy::Agent));

    let mut h = Harness::bridged();
    h.hangs_up(TRUNK);
    assert_eq!(h.byes_to(AGENT), 1);
    assert_eq!(h.byes_to(TRUNK), 0);
    h.assert_over(Progress::Ended(EndedBy::Patient));
}

#[test]
fn answers_on_the_patient_leg_from_another_address_are_dropped() {
    let mut h = Harness::agent_answered(false);
    h.answers_from(TRUNK, 200, "", "192.0.2.66:5062");
    assert!(!h.call.reached_patient());
    assert_eq!(h.acks_to(TRUNK), 0);
    h.answers_from(TRUNK, 403, "", "192.0.2.66:5062");
    assert!(!h.call.is_finished());
    h.answers(TRUNK, 200);
    assert!(h.call.reached_patient());
}

#[test]
fn a_retransmitted_200_gets_the_same_ack_again() {
    let mut h = Harness::bridged();
    h.answers(TRUNK, 200);
    assert_eq!(h.acks_to(TRUNK), 2);
    assert_eq!(h.reports().len(), 2, "nothing new happened");
}

#[test]
fn no_port_no_call() {
    let config = CallConfig {
        advertise: "192.0.2.1".parse().expect("an address"),
        sip_port: 5060,
        sips_port: None,
    };
    #[allow(clippy::disallowed_methods)] // the virtual clock's origin
    let now = Instant::now();
    let mut h = Harness {
        now,
        call: Originate::new(config, setup(false), StdRng::seed_from_u64(1)),
        actions: Vec::new(),
        sent: HashMap::new(),
        next_transaction: 1,
        next_port: 30000,
        ports_fail: true,
        leased: 0,
        released: 0,
    };
    h.call.start(now);
    h.pump();
    assert!(h.sent.is_empty());
    h.assert_over(Progress::Failed(Failure::NoPort));
}

#[test]
fn shutdown_hangs_up_both_or_cancels_what_rings() {
    let mut h = Harness::bridged();
    h.call.handle_shutdown(h.now);
    h.pump();
    assert_eq!((h.byes_to(AGENT), h.byes_to(TRUNK)), (1, 1));
    h.assert_over(Progress::Ended(EndedBy::Shutdown));

    let mut h = Harness::new(false);
    h.call.handle_shutdown(h.now);
    h.pump();
    assert_eq!(h.cancels().len(), 1);
    h.assert_over(Progress::Failed(Failure::Shutdown));
    // The grace is over: no waiting for the CANCEL's answer.
    h.call.handle_shutdown(h.now);
    h.pump();
    assert!(h.call.is_finished());
}

#[test]
fn silence_on_a_bridged_leg_ends_the_call() {
    let mut h = Harness::bridged();
    h.call.handle_media(
        h.now,
        MediaEvent::Inactive {
            leg: Leg::Caller,
            silent_for: Duration::from_secs(30),
        },
    );
    h.pump();
    assert_eq!((h.byes_to(AGENT), h.byes_to(TRUNK)), (1, 1));
    h.assert_over(Progress::Ended(EndedBy::Silence));
}

#[test]
fn a_reinvite_from_the_agent_is_answered_with_our_session() {
    let mut h = Harness::bridged();
    let (_, invite, _) = h.invite_to(AGENT);
    let sdp = offer(addr("192.0.2.201:7002"));
    let reinvite = request(&format!(
        "INVITE sip:frontdesk@192.0.2.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {AGENT};branch=z9hG4bKre\n\
         From: {};tag=far\n\
         To: {}\n\
         Call-ID: {}\n\
         CSeq: 5 INVITE\n\
         Contact: <sip:far@{AGENT}>\n\
         Max-Forwards: 70\n\
         Content-Type: application/sdp\n\
         Content-Length: {}\n\n{sdp}",
        header(&invite, HeaderName::To),
        header(&invite, HeaderName::From),
        header(&invite, HeaderName::CallId),
        sdp.len()
    ));
    h.sip(Event::Request {
        transaction: ServerTransactionId::from_raw(5),
        request: Box::new(reinvite),
        source: Peer::udp(addr(AGENT)),
    });
    assert_eq!(h.responses(), vec![200]);
    assert!(matches!(
        h.media().last(),
        Some(OriginateMedia::UpdateLeg {
            leg: Leg::Agent,
            ..
        })
    ));
    assert!(!h.call.is_finished());
}

#[test]
fn the_trunk_route_hides_its_password() {
    let shown = format!("{:?}", setup(true).trunk);
    assert!(!shown.contains("s3cret"), "{shown}");
}

use proptest::strategy::Strategy;

proptest::proptest! {
    /// Whatever a 401 or 407 carries (the trunk's text, unchecked), the
    /// call never panics: it answers one readable digest challenge once,
    /// or gives up with `trunk_auth_failed`.
    #[test]
    fn any_challenge_header_is_answered_once_or_refused(
        value in proptest::prop_oneof![
            "[ -~]{0,200}",
            // Near a real challenge: a digest with odd parameters.
            ("[a-z.]{0,12}", "[ -~]{0,20}", "(, algorithm=[A-Za-z0-9-]{0,12})?", "(, qop=\"[a-z,-]{0,12}\")?")
                .prop_map(|(realm, nonce, algorithm, qop)| format!(
                    "Digest realm=\"{realm}\", nonce=\"{}\"{algorithm}{qop}",
                    nonce.replace(['"', '\\'], "")
                )),
        ],
        proxy in proptest::bool::ANY,
    ) {
        let mut h = Harness::agent_answered(true);
        let (status, name) = if proxy {
            (407, "Proxy-Authenticate")
        } else {
            (401, "WWW-Authenticate")
        };
        h.answers_from(TRUNK, status, &format!("{name}: {value}\n"), TRUNK);
        let readable = sip::message::AuthParams::parse(&ByteString::from(value.trim()))
            .ok()
            .is_some_and(|params| Challenge::from_params(&params).is_ok());
        if readable {
            proptest::prop_assert_eq!(h.invites_to(TRUNK), 2);
            proptest::prop_assert!(!h.call.is_finished());
        } else {
            proptest::prop_assert_eq!(h.invites_to(TRUNK), 1);
            proptest::prop_assert_eq!(
                h.call.result(),
                Some(Progress::Failed(Failure::TrunkAuthFailed))
            );
        }
    }
}

/// A callback's agent answers, hears the whisper, and only then is the
/// patient dialed (with ringback).
#[test]
fn a_whisper_plays_to_the_agent_before_the_patient_is_dialed() {
    let mut h = Harness::with(OriginateSetup {
        whisper: Some("prompts/callback-whisper.wav".into()),
        ..setup(false)
    });
    h.answers(AGENT, 200);
    assert_eq!(h.reports(), vec![Progress::AgentAnswered]);
    let whisper = match h.media().last() {
        Some(OriginateMedia::PlayAgent {
            id,
            prompts,
            mode: PlaybackMode::Once,
        }) => {
            assert_eq!(prompts, &[PathBuf::from("prompts/callback-whisper.wav")]);
            *id
        }
        other => panic!("no whisper: {other:?}"),
    };
    assert_eq!(h.invites_to(TRUNK), 0, "not while the whisper plays");
    // Another playback's end is not the whisper's.
    h.call.handle_media(
        h.now,
        MediaEvent::PlaybackEnded {
            leg: Leg::Agent,
            id: media::playback::PlaybackId(whisper + 100),
            completed: true,
        },
    );
    h.pump();
    assert_eq!(h.invites_to(TRUNK), 0);
    h.call.handle_media(
        h.now,
        MediaEvent::PlaybackEnded {
            leg: Leg::Agent,
            id: media::playback::PlaybackId(whisper),
            completed: true,
        },
    );
    h.pump();
    assert_eq!(h.invites_to(TRUNK), 1);
    assert!(matches!(
        h.media().last(),
        Some(OriginateMedia::PlayAgent {
            mode: PlaybackMode::Loop,
            ..
        })
    ));
    h.answers(TRUNK, 200);
    assert!(h.call.reached_patient());
}

/// A whisper whose end never comes (the media task gone) holds the
/// patient back no longer than the trunk's ring time.
#[test]
fn a_whisper_that_never_ends_dials_the_patient_after_the_ring_time() {
    let mut h = Harness::with(OriginateSetup {
        whisper: Some("prompts/callback-whisper.wav".into()),
        ..setup(false)
    });
    h.answers(AGENT, 200);
    h.advance(PATIENT_RING - Duration::from_millis(1));
    assert_eq!(h.invites_to(TRUNK), 0);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.invites_to(TRUNK), 1);
}

/// The agent hanging up during the whisper ends it: the patient is
/// never dialed.
#[test]
fn the_agent_hanging_up_during_the_whisper_dials_nobody() {
    let mut h = Harness::with(OriginateSetup {
        whisper: Some("prompts/callback-whisper.wav".into()),
        ..setup(false)
    });
    h.answers(AGENT, 200);
    h.hangs_up(AGENT);
    h.assert_over(Progress::Failed(Failure::AgentHungUp));
    h.advance(PATIENT_RING * 2);
    assert_eq!(h.invites_to(TRUNK), 0);
}
