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

mod auth;
mod bindings;
mod limits;
mod path;

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
    /// Header lines a proxy on the way adds (`Path: ...`).
    extra: Vec<String>,
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
            extra: Vec::new(),
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
        let text = register_text(
            &self.user,
            &self.to_user,
            &self.call_id,
            self.cseq,
            contacts,
            expires,
            authorization.as_deref(),
        );
        let extra: String = self.extra.iter().map(|h| format!("{h}\r\n")).collect();
        text.replacen("Content-Length:", &format!("{extra}Content-Length:"), 1)
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

/// Flood tests send from 127.0.0.2 with trust switched off for it.
fn flood_config() -> RegistrarConfig {
    let mut config = RegistrarConfig::new(REALM);
    config.trusted = TrustedSources::default().with_untrusted(vec!["127.0.0.2".parse().unwrap()]);
    config
}
