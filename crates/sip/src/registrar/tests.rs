//! The registrar on a virtual clock: requests are written as text and go
//! through the real parser and validator; simulated agents answer
//! challenges with [`Credentials::answer`]; time jumps from deadline to
//! deadline (STYLE.md "Deterministic time"). No sleeps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::message::validate::{self, Policy};
use crate::message::{Frame, Limits, Message, parse_datagram};
use crate::peer::TransportKind;

const REALM: &str = "frontdesk";
const REQUEST_URI: &str = "sip:127.0.0.1:5060";
/// The wall clock when the virtual clock starts: 2026-03-02 09:00:00 UTC.
const WALL: u64 = 1_772_442_000;

fn agents() -> Vec<(String, Secret)> {
    (1001..=1007)
        .map(|id| (id.to_string(), Secret::Password(format!("demo-{id}"))))
        .collect()
}

fn peer(address: &str) -> Peer {
    Peer::udp(address.parse::<SocketAddr>().unwrap())
}

fn parse(text: &str) -> ValidRequest {
    let frame = parse_datagram(Bytes::from(text.to_owned()), &Limits::default()).unwrap();
    let Frame::Message(Message::Request(request)) = frame else {
        panic!("not a request: {text}");
    };
    validate::request(request, &Policy::default())
        .unwrap_or_else(|(_, rejection)| panic!("invalid: {rejection:?}\n{text}"))
}

/// The registrar, a virtual clock and the events it produced.
struct Clinic {
    registrar: Registrar,
    start: Instant,
    now: Instant,
    /// The wall clock at `start`, Unix seconds.
    wall_base: u64,
    events: Vec<(Duration, RegistrarEvent)>,
}

impl Clinic {
    fn new(config: RegistrarConfig) -> Self {
        Clinic::with_users(config, agents())
    }

    fn with_users(config: RegistrarConfig, users: Vec<(String, Secret)>) -> Self {
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(7);
        Clinic {
            registrar: Registrar::new(config, users, &mut rng, start).unwrap(),
            start,
            now: start,
            wall_base: WALL,
            events: Vec::new(),
        }
    }

    fn standard() -> Self {
        Clinic::new(RegistrarConfig::new(REALM))
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn wall(&self) -> u64 {
        self.wall_base + self.elapsed().as_secs()
    }

    fn send(&mut self, text: &str, source: Peer) -> Outcome {
        let request = parse(text);
        let outcome = self
            .registrar
            .handle_register(self.now, self.wall(), &request, source);
        self.drain();
        outcome
    }

    fn drain(&mut self) {
        while let Some(event) = self.registrar.poll_event() {
            self.events.push((self.elapsed(), event));
        }
    }

    /// Moves the clock forward by `by`, waking the registrar at each
    /// deadline on the way.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(at) = self.registrar.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.registrar.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    fn take_events(&mut self) -> Vec<RegistrarEvent> {
        self.events.drain(..).map(|(_, event)| event).collect()
    }
}

/// A REGISTER as text.
#[allow(clippy::too_many_arguments)]
fn register_text(
    from_user: &str,
    to_user: &str,
    call_id: &str,
    cseq: u32,
    contacts: &[&str],
    expires: Option<u32>,
    authorization: Option<&str>,
) -> String {
    let mut text = format!(
        "REGISTER {REQUEST_URI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-{from_user}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{from_user}@127.0.0.1>;tag=f{from_user}\r\n\
         To: <sip:{to_user}@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for contact in contacts {
        text.push_str(&format!("Contact: {contact}\r\n"));
    }
    if let Some(expires) = expires {
        text.push_str(&format!("Expires: {expires}\r\n"));
    }
    if let Some(authorization) = authorization {
        text.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

/// A softphone: answers challenges the way SIPp and baresip do.
struct Agent {
    user: String,
    to_user: String,
    password: String,
    call_id: String,
    cseq: u32,
    nc: u32,
    algorithm: Algorithm,
    challenge: Option<Challenge>,
    source: Peer,
    last: String,
}

impl Agent {
    fn new(user: &str, source: Peer) -> Self {
        Agent {
            user: user.to_owned(),
            to_user: user.to_owned(),
            password: format!("demo-{user}"),
            call_id: format!("reg-{user}"),
            cseq: 0,
            nc: 0,
            algorithm: Algorithm::Md5,
            challenge: None,
            source,
            last: String::new(),
        }
    }

    fn local(user: &str) -> Self {
        Agent::new(user, peer("127.0.0.1:5062"))
    }

    fn authorization(&mut self) -> Option<String> {
        let challenge = self.challenge.as_ref()?;
        self.nc += 1;
        let credentials = Credentials::answer(
            challenge,
            &self.user,
            &self.password,
            "REGISTER",
            REQUEST_URI,
            "0a4f113b",
            self.nc,
        );
        Some(credentials.to_params().to_string())
    }

    fn text(&mut self, contacts: &[&str], expires: Option<u32>) -> String {
        self.cseq += 1;
        let authorization = self.authorization();
        register_text(
            &self.user,
            &self.to_user,
            &self.call_id,
            self.cseq,
            contacts,
            expires,
            authorization.as_deref(),
        )
    }

    fn learn(&mut self, response: &Response) {
        let challenges = response.headers.www_authenticates().unwrap();
        self.challenge = challenges
            .iter()
            .map(|params| Challenge::from_params(params).unwrap())
            .find(|challenge| challenge.algorithm == self.algorithm);
        self.nc = 0;
    }

    /// One request; learns the challenge of a 401.
    fn send(&mut self, clinic: &mut Clinic, contacts: &[&str], expires: Option<u32>) -> Outcome {
        let text = self.text(contacts, expires);
        let outcome = clinic.send(&text, self.source);
        if outcome.response.status == StatusCode::UNAUTHORIZED {
            self.learn(&outcome.response);
        }
        self.last = text;
        outcome
    }

    /// A request, and again with credentials when challenged.
    fn register(
        &mut self,
        clinic: &mut Clinic,
        contacts: &[&str],
        expires: Option<u32>,
    ) -> Outcome {
        let outcome = self.send(clinic, contacts, expires);
        if outcome.response.status == StatusCode::UNAUTHORIZED {
            return self.send(clinic, contacts, expires);
        }
        outcome
    }
}

fn header_values(response: &Response, name: &HeaderName) -> Vec<String> {
    response
        .headers
        .all(name)
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
        .collect()
}

fn contacts(response: &Response) -> Vec<String> {
    header_values(response, &HeaderName::Contact)
}

fn challenges(response: &Response) -> Vec<Challenge> {
    response
        .headers
        .www_authenticates()
        .unwrap()
        .iter()
        .map(|params| Challenge::from_params(params).unwrap())
        .collect()
}

const PHONE: &str = "<sip:1003@192.0.2.10:5062>";

#[test]
fn challenge_then_credentials_then_200_for_agent_1003() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let first = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(first.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(first.decision, Decision::Challenged { stale: false });
    assert_eq!(first.send_after, None);
    let headers = header_values(&first.response, &HeaderName::WwwAuthenticate);
    assert_eq!(headers.len(), 2);
    assert!(
        headers[0].starts_with(r#"Digest realm="frontdesk", nonce=""#),
        "{}",
        headers[0]
    );
    assert!(
        headers[0].ends_with(r#"algorithm=MD5, qop="auth""#),
        "{}",
        headers[0]
    );
    assert!(
        headers[1].ends_with(r#"algorithm=SHA-256, qop="auth""#),
        "{}",
        headers[1]
    );
    let offered = challenges(&first.response);
    assert_eq!(offered[0].nonce, offered[1].nonce);
    assert!(offered[0].opaque.is_some());
    assert!(
        first.response.headers.to().unwrap().tag().is_some(),
        "responses carry a To tag"
    );
    assert!(clinic.take_events().is_empty());

    let second = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(second.response.status, StatusCode::OK);
    assert_eq!(
        second.decision,
        Decision::Accepted {
            user: "1003".into()
        }
    );
    assert_eq!(
        contacts(&second.response),
        ["<sip:1003@192.0.2.10:5062>;expires=3600"]
    );
    assert_eq!(
        header_values(&second.response, &HeaderName::Date),
        ["Mon, 02 Mar 2026 09:00:00 GMT"]
    );
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Registered {
                user: "1003".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
    assert!(clinic.registrar.is_registered("1003"));
    assert_eq!(clinic.registrar.users(), ["1003"]);
    let bindings = clinic.registrar.bindings("1003");
    assert_eq!(bindings.len(), 1);
    let binding = &bindings[0];
    assert_eq!(binding.uri().to_string(), "sip:1003@192.0.2.10:5062");
    assert_eq!(binding.source, peer("127.0.0.1:5062"));
    assert_eq!(binding.call_id, "reg-1003");
    assert_eq!(binding.cseq, 2);
    assert_eq!(binding.expires_at, clinic.start + Duration::from_secs(3600));
    assert_eq!(binding.expires_at_unix, WALL + 3600);
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(3600))
    );
}

/// The Authorization header SIPp would send, written out by hand: the
/// response was computed with python3 hashlib from the nonce the
/// registrar issued (checked here through `digest::compute_response`'s
/// vectors in `digest::tests`), so this only pins the header's shape.
#[test]
fn a_hand_written_authorization_header_is_accepted() {
    let mut clinic = Clinic::standard();
    let first = clinic.send(
        &register_text("1003", "1003", "sipp-1", 1, &[PHONE], Some(600), None),
        peer("127.0.0.1:5062"),
    );
    let challenge = &challenges(&first.response)[0];
    let ha1 = digest::ha1(Algorithm::Md5, "1003", REALM, "demo-1003");
    let response = digest::compute_response(
        Algorithm::Md5,
        &ha1,
        &challenge.nonce,
        Some(&digest::QopAuth::new(1, "6b8b4567")),
        "REGISTER",
        REQUEST_URI,
    );
    let authorization = format!(
        "Digest username=\"1003\",realm=\"frontdesk\",cnonce=\"6b8b4567\",nc=00000001,qop=auth,\
         uri=\"{REQUEST_URI}\",nonce=\"{}\",response=\"{response}\",algorithm=MD5,opaque=\"{}\"",
        challenge.nonce,
        challenge.opaque.as_deref().unwrap()
    );
    let second = clinic.send(
        &register_text(
            "1003",
            "1003",
            "sipp-1",
            2,
            &[PHONE],
            Some(600),
            Some(&authorization),
        ),
        peer("127.0.0.1:5062"),
    );
    assert_eq!(second.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&second.response),
        ["<sip:1003@192.0.2.10:5062>;expires=600"]
    );
}

#[test]
fn wrong_password_is_forbidden() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.password = "demo-1004".into();
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
    assert!(
        !outcome
            .response
            .headers
            .contains(&HeaderName::WwwAuthenticate)
    );
    assert_eq!(
        outcome.decision,
        Decision::Forbidden {
            username: "1003".into(),
            reason: ForbiddenReason::WrongCredentials
        }
    );
    assert!(!clinic.registrar.is_registered("1003"));
    assert!(clinic.take_events().is_empty());
}

/// Replaces every `nonce="<64 hex>"`, every `;tag=<16 hex>` and `user`.
fn normalize(response: &Response, user: &str) -> String {
    let mut text = String::from_utf8(response.encode().to_vec()).unwrap();
    for (marker, length, placeholder) in [("nonce=\"", 64, "NONCE"), (";tag=", 16, "TAG")] {
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(marker) {
            let start = at + marker.len();
            let end = start + length;
            let value = rest.get(start..end).unwrap_or_default();
            if value.len() == length && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push_str(&rest[..start]);
                out.push_str(placeholder);
                rest = &rest[end..];
            } else {
                out.push_str(&rest[..start]);
                rest = &rest[start..];
            }
        }
        out.push_str(rest);
        text = out;
    }
    text.replace(user, "USER")
}

#[test]
fn an_unknown_user_is_answered_exactly_like_a_wrong_password() {
    let mut config = RegistrarConfig::new(REALM);
    config.trusted = TrustedSources::none();
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::new("1003", peer("192.0.2.10:5062"));
    carol.password = "not-her-password".into();
    let mut nobody = Agent::new("9999", peer("192.0.2.10:5062"));
    carol.call_id = "same-call".into();
    nobody.call_id = "same-call".into();

    let carol_challenge = carol.send(&mut clinic, &[PHONE], None);
    let nobody_challenge = nobody.send(&mut clinic, &["<sip:9999@192.0.2.10:5062>"], None);
    assert_eq!(nobody_challenge.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        normalize(&carol_challenge.response, "1003"),
        normalize(&nobody_challenge.response, "9999")
    );
    assert_eq!(carol_challenge.send_after, nobody_challenge.send_after);

    let carol_refusal = carol.send(&mut clinic, &[PHONE], None);
    let nobody_refusal = nobody.send(&mut clinic, &["<sip:9999@192.0.2.10:5062>"], None);
    assert_eq!(nobody_refusal.response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        normalize(&carol_refusal.response, "1003"),
        normalize(&nobody_refusal.response, "9999")
    );
    assert_eq!(carol_refusal.send_after, nobody_refusal.send_after);
    assert_eq!(
        nobody_refusal.decision,
        Decision::Forbidden {
            username: "9999".into(),
            reason: ForbiddenReason::UnknownUser
        }
    );
    // Both count as failures against the source: two so far, the fifth
    // of either kind is slowed.
    for _ in 0..2 {
        nobody.send(&mut clinic, &["<sip:9999@192.0.2.10:5062>"], None);
    }
    let slowed = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(slowed.send_after, Some(Duration::from_millis(500)));
}

#[test]
fn an_expired_nonce_gets_a_stale_challenge() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    clinic.advance(Duration::from_secs(300));
    let refresh = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(refresh.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh.decision, Decision::Challenged { stale: true });
    let offered = challenges(&refresh.response);
    assert_eq!(offered.len(), 2);
    assert!(offered.iter().all(|c| c.stale));
    let header = &header_values(&refresh.response, &HeaderName::WwwAuthenticate)[0];
    assert!(header.ends_with(r#"qop="auth", stale=true"#), "{header}");
    let retry = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(retry.response.status, StatusCode::OK);
    assert_eq!(
        clinic.take_events().last(),
        Some(&RegistrarEvent::BindingsChanged {
            user: "1003".into()
        })
    );

    // An expired nonce with a wrong password is a wrong password.
    clinic.advance(Duration::from_secs(301));
    carol.password = "guess".into();
    let guess = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(guess.response.status, StatusCode::FORBIDDEN);
}

#[test]
fn a_forged_nonce_gets_a_challenge_without_stale() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.send(&mut clinic, &[PHONE], None);
    let challenge = carol.challenge.as_mut().unwrap();
    // A nonce that claims to be younger: the MAC no longer matches.
    challenge.nonce.replace_range(0..16, "0000000000000001");
    let forged = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(forged.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.decision, Decision::Challenged { stale: false });
    assert!(challenges(&forged.response).iter().all(|c| !c.stale));
    // A nonce from another registrar (another key, as after a restart)
    // is forged too.
    let mut other = Clinic::standard();
    other.registrar = Registrar::new(
        RegistrarConfig::new(REALM),
        agents(),
        &mut StdRng::seed_from_u64(99),
        other.start,
    )
    .unwrap();
    let mut dan = Agent::local("1003");
    dan.send(&mut clinic, &[PHONE], None);
    let foreign = dan.send(&mut other, &[PHONE], None);
    assert_eq!(foreign.decision, Decision::Challenged { stale: false });
    // A client that returns another opaque did not get it from us.
    let mut carol = Agent::local("1003");
    carol.send(&mut clinic, &[PHONE], None);
    carol.challenge.as_mut().unwrap().opaque = Some("ffff".into());
    let outcome = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.decision, Decision::Challenged { stale: false });
}

#[test]
fn a_replayed_nonce_count_is_refused() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    let accepted = carol.challenge.clone();
    clinic.take_events();
    // The same bytes again (an attacker who captured them).
    let replay = clinic.send(&carol.last.clone(), carol.source);
    assert_eq!(replay.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        replay.decision,
        Decision::Replayed {
            user: "1003".into()
        }
    );
    assert!(challenges(&replay.response).iter().all(|c| c.stale));
    // A new CSeq with a count already used.
    carol.nc = 0;
    let reused = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(
        reused.decision,
        Decision::Replayed {
            user: "1003".into()
        }
    );
    // A count above the highest, on the same nonce, is fine.
    carol.challenge = accepted;
    carol.nc = 5;
    let next = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(next.response.status, StatusCode::OK);
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Refreshed {
                user: "1003".into()
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
}

#[test]
fn an_interval_below_min_expires_gets_423() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let outcome = carol.register(&mut clinic, &[PHONE], Some(30));
    assert_eq!(outcome.response.status, StatusCode::INTERVAL_TOO_BRIEF);
    assert_eq!(
        header_values(&outcome.response, &HeaderName::MinExpires),
        ["60"]
    );
    assert!(!clinic.registrar.is_registered("1003"));
    let contact_param = carol.send(
        &mut clinic,
        &["<sip:1003@192.0.2.10:5062>;expires=59"],
        None,
    );
    assert_eq!(
        contact_param.response.status,
        StatusCode::INTERVAL_TOO_BRIEF
    );
    let exactly = carol.send(&mut clinic, &[PHONE], Some(60));
    assert_eq!(exactly.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&exactly.response),
        ["<sip:1003@192.0.2.10:5062>;expires=60"]
    );
}

#[test]
fn expiries_are_clamped_and_chosen_contact_first() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let long = carol.register(&mut clinic, &[PHONE], Some(7200));
    assert_eq!(
        contacts(&long.response),
        ["<sip:1003@192.0.2.10:5062>;expires=3600"]
    );
    // The contact's own expires wins over the Expires header.
    let mixed = carol.send(
        &mut clinic,
        &[
            "<sip:1003@192.0.2.10:5062>;expires=100",
            "<sip:1003@192.0.2.10:5070>",
        ],
        Some(3000),
    );
    assert_eq!(
        contacts(&mixed.response),
        [
            "<sip:1003@192.0.2.10:5062>;expires=100",
            "<sip:1003@192.0.2.10:5070>;expires=3000"
        ]
    );
    // Overlarge values (RFC 4475 §3.1.2.4) saturate, then are clamped.
    let huge = carol.send(
        &mut clinic,
        &["<sip:1003@192.0.2.10:5062>;expires=280297596632815"],
        None,
    );
    assert_eq!(huge.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&huge.response)[0],
        "<sip:1003@192.0.2.10:5062>;expires=3600"
    );
}

#[test]
fn several_contacts_per_agent() {
    let mut clinic = Clinic::standard();
    let mut desk = Agent::local("1005");
    let outcome = desk.register(
        &mut clinic,
        &[
            "\"Desk\" <sip:1005@192.0.2.20:5062>;q=0.5",
            "<sip:1005@192.0.2.21:5062;transport=tcp>",
        ],
        None,
    );
    assert_eq!(outcome.response.status, StatusCode::OK);
    let mut mobile = Agent::new("1005", peer("203.0.113.9:40000"));
    mobile.call_id = "mobile".into();
    clinic.advance(Duration::from_secs(10));
    let second = mobile.register(&mut clinic, &["<sip:1005@203.0.113.9:40000>"], Some(600));
    assert_eq!(second.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&second.response),
        [
            "<sip:1005@203.0.113.9:40000>;expires=600",
            "<sip:1005@192.0.2.21:5062;transport=tcp>;expires=3590",
            "\"Desk\" <sip:1005@192.0.2.20:5062>;q=0.5;expires=3590",
        ]
    );
    let ring: Vec<(String, SocketAddr)> = clinic
        .registrar
        .bindings("1005")
        .iter()
        .map(|b| (b.uri().to_string(), b.source.address))
        .collect();
    assert_eq!(
        ring,
        [
            (
                "sip:1005@203.0.113.9:40000".into(),
                "203.0.113.9:40000".parse().unwrap()
            ),
            (
                "sip:1005@192.0.2.21:5062;transport=tcp".into(),
                "127.0.0.1:5062".parse().unwrap()
            ),
            (
                "sip:1005@192.0.2.20:5062".into(),
                "127.0.0.1:5062".parse().unwrap()
            ),
        ]
    );
    assert_eq!(clinic.registrar.bindings("1005")[2].q, Some(500));
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Registered {
                user: "1005".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1005".into()
            },
            RegistrarEvent::Registered {
                user: "1005".into(),
                first: false
            },
            RegistrarEvent::BindingsChanged {
                user: "1005".into()
            },
        ]
    );
}

#[test]
fn a_refresh_is_not_a_first_registration() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE], Some(600));
    clinic.take_events();
    clinic.advance(Duration::from_secs(500));
    // (The nonce is 500 s old by now: a stale challenge comes first.)
    let refresh = carol.register(&mut clinic, &[PHONE], Some(600));
    assert_eq!(refresh.response.status, StatusCode::OK);
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Refreshed {
                user: "1003".into()
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(1100)),
        "the deadline moved"
    );
    clinic.advance(Duration::from_secs(200));
    assert!(
        clinic.registrar.is_registered("1003"),
        "not expired at 700 s"
    );
}

#[test]
fn unregister_with_expires_zero() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let other = "<sip:1003@192.0.2.10:5070>";
    carol.register(&mut clinic, &[PHONE, other], None);
    clinic.take_events();
    let one = carol.send(&mut clinic, &["<sip:1003@192.0.2.10:5062>;expires=0"], None);
    assert_eq!(
        contacts(&one.response),
        ["<sip:1003@192.0.2.10:5070>;expires=3600"]
    );
    assert_eq!(
        clinic.take_events(),
        [RegistrarEvent::BindingsChanged {
            user: "1003".into()
        }]
    );
    let last = carol.send(&mut clinic, &[other], Some(0));
    assert_eq!(last.response.status, StatusCode::OK);
    assert!(contacts(&last.response).is_empty());
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Unregistered {
                user: "1003".into(),
                reason: UnregisterReason::Removed
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
    assert!(!clinic.registrar.is_registered("1003"));
    assert_eq!(clinic.registrar.poll_timeout(), None);
    // Removing what is not there changes nothing.
    let again = carol.send(&mut clinic, &[other], Some(0));
    assert_eq!(again.response.status, StatusCode::OK);
    assert!(clinic.take_events().is_empty());
}

#[test]
fn unregister_with_the_wildcard() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE, "<sip:1003@192.0.2.10:5070>"], None);
    clinic.take_events();
    for (contacts, expires, reason) in [
        (&["*"][..], None, "Contact * needs Expires: 0"),
        (&["*"][..], Some(60), "Contact * needs Expires: 0"),
        (
            &["*", PHONE][..],
            Some(0),
            "Contact * must be the only contact",
        ),
    ] {
        let outcome = carol.send(&mut clinic, contacts, expires);
        assert_eq!(outcome.response.status, StatusCode::BAD_REQUEST);
        assert_eq!(&*outcome.response.reason, reason);
        assert_eq!(outcome.decision, Decision::Rejected);
    }
    assert_eq!(clinic.registrar.bindings("1003").len(), 2);
    let all = carol.send(&mut clinic, &["*"], Some(0));
    assert_eq!(all.response.status, StatusCode::OK);
    assert!(contacts(&all.response).is_empty());
    assert!(!clinic.registrar.is_registered("1003"));
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Unregistered {
                user: "1003".into(),
                reason: UnregisterReason::Removed
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
}

#[test]
fn expiry_unregisters_at_the_right_virtual_time() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(
        &mut clinic,
        &[
            "<sip:1003@192.0.2.10:5062>;expires=120",
            "<sip:1003@192.0.2.10:5070>;expires=300",
        ],
        None,
    );
    clinic.events.clear();
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(120))
    );
    clinic.advance(Duration::from_secs(119));
    assert!(clinic.events.is_empty());
    clinic.advance(Duration::from_secs(3600));
    assert_eq!(
        clinic.events,
        [
            (
                Duration::from_secs(120),
                RegistrarEvent::BindingsChanged {
                    user: "1003".into()
                }
            ),
            (
                Duration::from_secs(300),
                RegistrarEvent::Unregistered {
                    user: "1003".into(),
                    reason: UnregisterReason::Expired
                }
            ),
            (
                Duration::from_secs(300),
                RegistrarEvent::BindingsChanged {
                    user: "1003".into()
                }
            ),
        ]
    );
    assert!(!clinic.registrar.is_registered("1003"));
    assert_eq!(clinic.registrar.poll_timeout(), None);
}

#[test]
fn cseq_and_call_id_ordering() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE], Some(600));
    let stored = carol.cseq;
    clinic.take_events();
    for cseq in [stored - 1, stored] {
        carol.cseq = cseq - 1;
        let outcome = carol.send(&mut clinic, &[PHONE], Some(1200));
        assert_eq!(
            outcome.response.status,
            StatusCode::SERVER_INTERNAL_ERROR,
            "CSeq {cseq}"
        );
        assert_eq!(outcome.decision, Decision::Rejected);
    }
    carol.cseq = stored - 1;
    let wildcard = carol.send(&mut clinic, &["*"], Some(0));
    assert_eq!(wildcard.response.status, StatusCode::SERVER_INTERNAL_ERROR);
    assert!(clinic.take_events().is_empty(), "nothing changed");
    assert_eq!(clinic.registrar.bindings("1003")[0].cseq, stored);
    // Another Call-ID (the phone restarted) replaces the binding, whatever
    // its CSeq.
    carol.call_id = "after-reboot".into();
    carol.cseq = 0;
    let rebooted = carol.register(&mut clinic, &[PHONE], Some(900));
    assert_eq!(rebooted.response.status, StatusCode::OK);
    let binding = &clinic.registrar.bindings("1003")[0];
    assert_eq!(
        (binding.call_id.as_str(), binding.cseq),
        ("after-reboot", 1)
    );
    assert_eq!(
        contacts(&rebooted.response),
        ["<sip:1003@192.0.2.10:5062>;expires=900"]
    );
}

#[test]
fn a_register_without_contact_is_a_query() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let empty = carol.register(&mut clinic, &[], None);
    assert_eq!(empty.response.status, StatusCode::OK);
    assert!(contacts(&empty.response).is_empty());
    carol.send(&mut clinic, &[PHONE], Some(600));
    clinic.take_events();
    clinic.advance(Duration::from_secs(100));
    let query = carol.send(&mut clinic, &[], None);
    assert_eq!(query.response.status, StatusCode::OK);
    assert_eq!(
        query.decision,
        Decision::Accepted {
            user: "1003".into()
        }
    );
    assert_eq!(
        contacts(&query.response),
        ["<sip:1003@192.0.2.10:5062>;expires=500"]
    );
    assert_eq!(
        header_values(&query.response, &HeaderName::Date),
        ["Mon, 02 Mar 2026 09:01:40 GMT"]
    );
    assert!(clinic.take_events().is_empty());
    // A query needs credentials like anything else.
    let stranger = clinic.send(
        &register_text("1003", "1003", "x", 1, &[], None, None),
        peer("127.0.0.1:9"),
    );
    assert_eq!(stranger.response.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn export_and_restore_keep_the_remaining_lifetime() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &["<sip:1003@192.0.2.10:5062>;q=0.7"], None);
    let mut grace = Agent::new(
        "1007",
        Peer {
            transport: TransportKind::Tcp,
            address: "192.0.2.30:50123".parse().unwrap(),
            connection: Some(crate::peer::ConnectionId(4)),
        },
    );
    grace.register(
        &mut clinic,
        &["<sip:1007@192.0.2.30:5060;transport=tcp>"],
        Some(600),
    );
    clinic.advance(Duration::from_secs(600));
    assert!(
        !clinic.registrar.is_registered("1007"),
        "Grace's binding expired"
    );
    let mut grace = Agent::new(
        "1007",
        Peer {
            transport: TransportKind::Tcp,
            address: "192.0.2.30:50124".parse().unwrap(),
            connection: Some(crate::peer::ConnectionId(5)),
        },
    );
    grace.register(
        &mut clinic,
        &["<sip:1007@192.0.2.30:5060;transport=tcp>"],
        Some(1200),
    );
    let stored = clinic.registrar.export(clinic.now, clinic.wall());
    assert_eq!(
        stored,
        [
            StoredBinding {
                user: "1003".into(),
                contact: "<sip:1003@192.0.2.10:5062>;q=0.7".into(),
                transport: StoredTransport::Udp,
                source: "127.0.0.1:5062".parse().unwrap(),
                call_id: "reg-1003".into(),
                cseq: 2,
                expires_at_unix: WALL + 3600,
            },
            StoredBinding {
                user: "1007".into(),
                contact: "<sip:1007@192.0.2.30:5060;transport=tcp>".into(),
                transport: StoredTransport::Tcp,
                source: "192.0.2.30:50124".parse().unwrap(),
                call_id: "reg-1007".into(),
                cseq: 2,
                expires_at_unix: WALL + 600 + 1200,
            },
        ]
    );
    // What the daemon writes to disk and reads back.
    let json = serde_json::to_string(&stored).unwrap();
    assert!(json.contains(r#""transport":"udp""#), "{json}");
    let read: Vec<StoredBinding> = serde_json::from_str(&json).unwrap();
    assert_eq!(read, stored);

    // The daemon comes back 1000 s later (wall clock), on a new monotonic
    // clock: Carol had 3000 s left, so 2000 s now; Grace had 1200 s left,
    // so 200 s now. A binding of a user no longer configured and one that
    // ran out are left out.
    let mut extra = read.clone();
    extra.push(StoredBinding {
        user: "2001".into(),
        ..read[0].clone()
    });
    extra.push(StoredBinding {
        expires_at_unix: WALL + 1000,
        contact: "<sip:1003@192.0.2.10:5099>".into(),
        ..read[0].clone()
    });
    let mut restarted = Clinic::standard();
    restarted.wall_base = WALL + 1600;
    let summary = restarted
        .registrar
        .restore(restarted.now, restarted.wall(), extra);
    assert_eq!(
        summary,
        RestoreSummary {
            restored: 2,
            expired: 1,
            refused: 1
        }
    );
    restarted.drain();
    assert_eq!(
        restarted.take_events(),
        [
            RegistrarEvent::Registered {
                user: "1003".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
            RegistrarEvent::Registered {
                user: "1007".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1007".into()
            },
        ]
    );
    let carol_binding = &restarted.registrar.bindings("1003")[0];
    assert_eq!(
        carol_binding.expires_at,
        restarted.now + Duration::from_secs(2000)
    );
    assert_eq!(carol_binding.q, Some(700));
    assert_eq!(carol_binding.source, peer("127.0.0.1:5062"));
    let grace_binding = &restarted.registrar.bindings("1007")[0];
    assert_eq!(
        grace_binding.expires_at,
        restarted.now + Duration::from_secs(200)
    );
    assert_eq!(grace_binding.source.transport, TransportKind::Tcp);
    assert_eq!(
        grace_binding.source.connection, None,
        "the old connection is gone"
    );
    // The restored Call-ID and CSeq still order requests: CSeq 2 of
    // reg-1003 is not above the stored 2.
    let mut carol = Agent::local("1003");
    let old = carol.register(&mut restarted, &[PHONE], None);
    assert_eq!(old.response.status, StatusCode::SERVER_INTERNAL_ERROR);
    restarted.advance(Duration::from_secs(200));
    assert!(!restarted.registrar.is_registered("1007"));
    restarted.advance(Duration::from_secs(1799));
    assert!(restarted.registrar.is_registered("1003"));
    restarted.advance(Duration::from_secs(1));
    assert!(!restarted.registrar.is_registered("1003"));
    assert_eq!(
        restarted.events.last(),
        Some(&(
            Duration::from_secs(2000),
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            }
        ))
    );
}

/// Flood tests send from 127.0.0.2 with trust switched off for it.
fn flood_config() -> RegistrarConfig {
    let mut config = RegistrarConfig::new(REALM);
    config.trusted.untrusted = vec!["127.0.0.2".parse().unwrap()];
    config
}

#[test]
fn failures_slow_then_ban_then_the_ban_lifts() {
    let mut clinic = Clinic::new(flood_config());
    let mut attacker = Agent::new("1003", peer("127.0.0.2:5099"));
    attacker.password = "guess".into();
    attacker.send(&mut clinic, &[PHONE], None);
    let mut delays = Vec::new();
    for _ in 0..10 {
        let outcome = attacker.send(&mut clinic, &[PHONE], None);
        assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
        delays.push(outcome.send_after.map(|d| d.as_millis()));
    }
    assert_eq!(
        delays,
        [
            None,
            None,
            None,
            None,
            Some(500),
            Some(1000),
            Some(2000),
            Some(4000),
            Some(8000),
            Some(8000)
        ]
    );
    // Banned: even the right password gets a bare 403, at once.
    attacker.password = "demo-1003".into();
    let banned = attacker.send(&mut clinic, &[PHONE], None);
    assert_eq!(banned.response.status, StatusCode::FORBIDDEN);
    assert!(
        !banned
            .response
            .headers
            .contains(&HeaderName::WwwAuthenticate)
    );
    assert_eq!(
        banned.decision,
        Decision::Banned {
            until: clinic.start + Duration::from_secs(60)
        }
    );
    assert_eq!(banned.send_after, None);
    let fresh = clinic.send(
        &register_text("1003", "1003", "new", 1, &[PHONE], None, None),
        peer("127.0.0.2:6000"),
    );
    assert!(
        matches!(fresh.decision, Decision::Banned { .. }),
        "per address, any port"
    );
    // Meanwhile 127.0.0.1 registers as usual.
    let mut carol = Agent::local("1003");
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert_eq!(outcome.send_after, None);
    // An untrusted source elsewhere is not affected either.
    let mut bob = Agent::new("1002", peer("198.51.100.2:5062"));
    let outcome = bob.register(&mut clinic, &["<sip:1002@198.51.100.2:5062>"], None);
    assert_eq!(
        (outcome.response.status, outcome.send_after),
        (StatusCode::OK, None)
    );
    // At 60 s the ban lifts; the points decayed meanwhile.
    clinic.advance(Duration::from_secs(59));
    assert!(matches!(
        attacker.send(&mut clinic, &[PHONE], None).decision,
        Decision::Banned { .. }
    ));
    clinic.advance(Duration::from_secs(1));
    attacker.call_id = "after-ban".into();
    let lifted = attacker.register(&mut clinic, &[PHONE], None);
    assert_eq!(lifted.response.status, StatusCode::OK);
    assert_eq!(lifted.send_after, None);
}

#[test]
fn trusted_sources_are_exempt() {
    let mut clinic = Clinic::new(flood_config());
    let mut local = Agent::local("1003");
    local.password = "guess".into();
    local.send(&mut clinic, &[PHONE], None);
    for _ in 0..30 {
        let outcome = local.send(&mut clinic, &[PHONE], None);
        assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
        assert_eq!(outcome.send_after, None);
    }
    local.password = "demo-1003".into();
    assert_eq!(
        local.send(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    // The trunk address configured as trusted is exempt too.
    let mut config = flood_config();
    config.trusted.addresses = vec!["203.0.113.50".parse().unwrap()];
    let mut clinic = Clinic::new(config);
    let mut trunk = Agent::new("1001", peer("203.0.113.50:5060"));
    trunk.password = "guess".into();
    trunk.send(&mut clinic, &[PHONE], None);
    for _ in 0..15 {
        assert_eq!(trunk.send(&mut clinic, &[PHONE], None).send_after, None);
    }
}

#[test]
fn sha256_credentials_are_accepted_when_offered() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.algorithm = Algorithm::Sha256;
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert!(carol.last.contains("algorithm=SHA-256"), "{}", carol.last);
    // A user stored as HA1s only: SHA-256 works, MD5 (no HA1) is refused
    // like a wrong password.
    let sha_only = Secret::Ha1 {
        md5: None,
        sha256: Some(digest::ha1(Algorithm::Sha256, "1004", REALM, "demo-1004").to_uppercase()),
    };
    let mut clinic =
        Clinic::with_users(RegistrarConfig::new(REALM), vec![("1004".into(), sha_only)]);
    let mut dan = Agent::local("1004");
    let md5 = dan.register(&mut clinic, &["<sip:1004@192.0.2.40>"], None);
    assert_eq!(md5.response.status, StatusCode::FORBIDDEN);
    dan.algorithm = Algorithm::Sha256;
    dan.challenge = None;
    let sha = dan.register(&mut clinic, &["<sip:1004@192.0.2.40>"], None);
    assert_eq!(sha.response.status, StatusCode::OK);
}

#[test]
fn the_algorithm_order_is_configurable() {
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms = vec![Algorithm::Sha256, Algorithm::Md5];
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    let first = carol.send(&mut clinic, &[PHONE], None);
    let order: Vec<Algorithm> = challenges(&first.response)
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(order, [Algorithm::Sha256, Algorithm::Md5]);

    // SHA-256 only: MD5 credentials (a forced answer) are challenged again.
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms = vec![Algorithm::Sha256];
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    let first = carol.send(&mut clinic, &[PHONE], None);
    let offered = challenges(&first.response);
    assert_eq!(offered.len(), 1);
    let mut downgraded = offered[0].clone();
    downgraded.algorithm = Algorithm::Md5;
    carol.challenge = Some(downgraded);
    let outcome = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.decision, Decision::Challenged { stale: false });
    // -sess variants can be offered and are checked with the same HA1.
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms = vec![Algorithm::Md5Sess];
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    carol.algorithm = Algorithm::Md5Sess;
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
}

#[test]
fn credentials_for_another_agent_are_forbidden_and_not_counted() {
    let mut clinic = Clinic::new(flood_config());
    let mut carol = Agent::new("1003", peer("127.0.0.2:5062"));
    carol.to_user = "1004".into();
    for _ in 0..12 {
        let outcome = carol.register(&mut clinic, &["<sip:1004@192.0.2.10>"], None);
        assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
        assert_eq!(
            outcome.decision,
            Decision::Forbidden {
                username: "1003".into(),
                reason: ForbiddenReason::OtherAor
            }
        );
        assert_eq!(outcome.send_after, None);
    }
    assert!(!clinic.registrar.is_registered("1004"));
}

fn torture(name: &str) -> String {
    let path = format!(
        "{}/tests/data/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    String::from_utf8(std::fs::read(path).unwrap()).unwrap()
}

/// `text` with an Authorization header for `user` inserted after the
/// request line, answering `challenge`.
fn with_credentials(text: &str, user: &str, password: &str, challenge: &Challenge) -> String {
    let credentials = Credentials::answer(
        challenge,
        user,
        password,
        "REGISTER",
        "sip:example.com",
        "c",
        1,
    );
    let line_end = text.find("\r\n").unwrap() + 2;
    format!(
        "{}Authorization: {}\r\n{}",
        &text[..line_end],
        credentials.to_params(),
        &text[line_end..]
    )
}

#[test]
fn rfc4475_register_messages() {
    let mut clinic = Clinic::with_users(
        RegistrarConfig::new(REALM),
        vec![
            ("user".into(), Secret::Password("pw".into())),
            ("watson".into(), Secret::Password("pw".into())),
        ],
    );
    let source = peer("127.0.0.1:5060");
    // §3.3.4: a non-SIP AOR.
    let unksm2 = clinic.send(&torture("unksm2"), source);
    assert_eq!(unksm2.response.status, StatusCode::BAD_REQUEST);
    assert_eq!(&*unksm2.response.reason, "AOR must be a SIP or SIPS URI");
    // §3.3.7: an unknown authorization scheme is challenged.
    let regaut01 = clinic.send(&torture("regaut01"), source);
    assert_eq!(regaut01.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(regaut01.decision, Decision::Challenged { stale: false });
    let challenge = &challenges(&regaut01.response)[0];
    // §3.3.14: the escaped Route stays part of the contact.
    let regescrt = with_credentials(&torture("regescrt"), "user", "pw", challenge);
    let outcome = clinic.send(&regescrt, source);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&outcome.response),
        ["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"]
    );
    // §3.3.12 and §3.3.13: a contact parameter and a URI parameter of
    // the same name make two bindings; the URI parameter is kept.
    let mut challenge = challenge.clone();
    challenge.nonce = clinic.registrar.nonces.issue(clinic.now, REALM);
    let cparam01 = with_credentials(&torture("cparam01"), "watson", "pw", &challenge);
    let outcome = clinic.send(&cparam01, source);
    assert_eq!(
        contacts(&outcome.response),
        ["<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"]
    );
    // §3.3.13: a URI parameter is kept in the binding.
    challenge.nonce = clinic.registrar.nonces.issue(clinic.now, REALM);
    let cparam02 = with_credentials(&torture("cparam02"), "watson", "pw", &challenge);
    let outcome = clinic.send(&cparam02, source);
    assert_eq!(
        contacts(&outcome.response),
        [
            "<sip:+19725552222@gw1.example.net;unknownparam>;expires=3600",
            "<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"
        ]
    );
}

#[test]
fn malformed_registers_get_400() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.send(&mut clinic, &[PHONE], None);
    for (contact, reason) in [
        (
            "<sip:1003@192.0.2.10>;expires=soon",
            "Bad expires parameter in Contact",
        ),
        ("<sip:1003@192.0.2.10>;q=2", "Bad q parameter in Contact"),
        ("<tel:+15550100>", "Contact must be a SIP or SIPS URI"),
    ] {
        let outcome = carol.send(&mut clinic, &[contact], None);
        assert_eq!(
            outcome.response.status,
            StatusCode::BAD_REQUEST,
            "{contact}"
        );
        assert_eq!(&*outcome.response.reason, reason);
    }
    let no_user = clinic.send(
        &register_text("1003", "1003", "x", 1, &[PHONE], None, None)
            .replace("To: <sip:1003@127.0.0.1>", "To: <sip:127.0.0.1>"),
        peer("127.0.0.1:9"),
    );
    assert_eq!(&*no_user.response.reason, "AOR has no user part");
    let bad_digest = clinic.send(
        &register_text(
            "1003",
            "1003",
            "x",
            1,
            &[PHONE],
            None,
            Some("Digest realm=\"frontdesk\""),
        ),
        peer("127.0.0.1:9"),
    );
    assert_eq!(bad_digest.response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        &*bad_digest.response.reason,
        "Bad Authorization header: Digest parameter username is missing"
    );
    // Credentials for another realm are ignored: a challenge.
    let elsewhere = clinic.send(
        &register_text(
            "1003",
            "1003",
            "x",
            2,
            &[PHONE],
            None,
            Some("Digest username=\"1003\", realm=\"elsewhere\", nonce=\"n\", uri=\"sip:x\", response=\"0\""),
        ),
        peer("127.0.0.1:9"),
    );
    assert_eq!(elsewhere.decision, Decision::Challenged { stale: false });
    let options = parse(
        &register_text("1003", "1003", "x", 3, &[], None, None).replace("REGISTER", "OPTIONS"),
    );
    let outcome =
        clinic
            .registrar
            .handle_register(clinic.now, clinic.wall(), &options, peer("127.0.0.1:9"));
    assert_eq!(outcome.response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        header_values(&outcome.response, &HeaderName::Allow),
        ["REGISTER"]
    );
}

#[test]
fn the_oldest_contact_goes_beyond_the_limit() {
    let mut config = RegistrarConfig::new(REALM);
    config.max_contacts = 2;
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    for port in [5060, 5061, 5062] {
        clinic.advance(Duration::from_secs(1));
        let contact = format!("<sip:1003@192.0.2.10:{port}>");
        let outcome = carol.register(&mut clinic, &[&contact], None);
        assert_eq!(outcome.response.status, StatusCode::OK);
    }
    let uris: Vec<String> = clinic
        .registrar
        .bindings("1003")
        .iter()
        .map(|b| b.uri().to_string())
        .collect();
    assert_eq!(
        uris,
        ["sip:1003@192.0.2.10:5062", "sip:1003@192.0.2.10:5061"]
    );
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(3602)),
        "the evicted binding's deadline went with it"
    );
}

#[test]
fn removing_a_user_from_the_configuration_unregisters_it() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE], None);
    let mut alice = Agent::local("1001");
    alice.register(&mut clinic, &["<sip:1001@192.0.2.11>"], None);
    clinic.take_events();
    let remaining: Vec<(String, Secret)> = agents()
        .into_iter()
        .filter(|(user, _)| user != "1003")
        .collect();
    clinic.registrar.set_users(remaining).unwrap();
    clinic.drain();
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Unregistered {
                user: "1003".into(),
                reason: UnregisterReason::Deconfigured
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
    assert_eq!(clinic.registrar.users(), ["1001"]);
    assert!(!clinic.registrar.knows("1003"));
    assert_eq!(
        clinic.registrar.poll_timeout(),
        clinic
            .registrar
            .bindings("1001")
            .first()
            .map(|b| b.expires_at)
    );
}

#[test]
fn bad_configurations_are_refused() {
    let mut rng = StdRng::seed_from_u64(1);
    let now = Instant::now();
    let build = |config: RegistrarConfig, users: Vec<(String, Secret)>, rng: &mut StdRng| {
        Registrar::new(config, users, rng, now).map(|_| ())
    };
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms.clear();
    assert_eq!(
        build(config, agents(), &mut rng),
        Err(RegistrarError::NoAlgorithms)
    );
    let mut config = RegistrarConfig::new(REALM);
    config.min_expires = 4000;
    assert!(matches!(
        build(config, agents(), &mut rng),
        Err(RegistrarError::Expires { .. })
    ));
    assert_eq!(
        build(RegistrarConfig::new(""), agents(), &mut rng),
        Err(RegistrarError::EmptyRealm)
    );
    let bad = Secret::Ha1 {
        md5: Some("abc".into()),
        sha256: None,
    };
    assert_eq!(
        build(
            RegistrarConfig::new(REALM),
            vec![("1001".into(), bad)],
            &mut rng
        ),
        Err(RegistrarError::BadHa1 {
            user: "1001".into(),
            algorithm: Algorithm::Md5
        })
    );
    assert_eq!(
        format!("{:?}", Secret::Password("demo-1001".into())),
        "Secret::Password(..)"
    );
}
