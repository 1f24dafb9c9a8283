//! Two transaction layers on a lossy, reordering in-memory link, driven by
//! a virtual clock that jumps to the earliest deadline of all parties
//! (STYLE.md "Deterministic time"). No sleeps, no sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::message::validate::{self, Policy};
use crate::message::{
    Frame, HeaderName, Limits, Message, Request, Response, StatusCode, Uri, parse_datagram,
};
use crate::peer::TransportKind;

const UAC: usize = 0;
const UAS: usize = 1;

struct Party {
    layer: TransactionLayer,
    address: SocketAddr,
    events: Vec<(Duration, Event)>,
    sent: Vec<(Duration, Bytes)>,
}

struct Packet {
    deliver_at: Instant,
    from: usize,
    bytes: Bytes,
}

/// What to do with each packet put on the link.
type LinkPolicy = Box<dyn FnMut(usize, &Bytes, &mut SmallRng) -> Option<Duration>>;

/// The transaction user of one side: reacts to one event.
type User = Box<dyn FnMut(&mut TransactionLayer, Instant, &Event)>;

struct Pair {
    start: Instant,
    now: Instant,
    parties: [Party; 2],
    link: Vec<Packet>,
    policy: LinkPolicy,
    users: [User; 2],
    rng: SmallRng,
    transport: TransportKind,
}

fn party(port: u16, transport: TransportKind, seed: u64) -> Party {
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    Party {
        layer: TransactionLayer::new(Config {
            timers: TimerValues::default(),
            sent_by: vec![SentBy {
                transport,
                host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
                port,
            }],
            seed,
        }),
        address,
        events: Vec::new(),
        sent: Vec::new(),
    }
}

/// 10 ms one way, nothing lost.
fn perfect() -> LinkPolicy {
    Box::new(|_, _, _| Some(Duration::from_millis(10)))
}

fn idle() -> User {
    Box::new(|_, _, _| {})
}

impl Pair {
    fn new(transport: TransportKind, policy: LinkPolicy, uac: User, uas: User) -> Self {
        let start = Instant::now();
        Pair {
            start,
            now: start,
            parties: [party(5061, transport, 1), party(5062, transport, 2)],
            link: Vec::new(),
            policy,
            users: [uac, uas],
            rng: SmallRng::seed_from_u64(7),
            transport,
        }
    }

    fn peer_of(&self, index: usize) -> Peer {
        Peer {
            transport: self.transport,
            address: self.parties[index].address,
            connection: self
                .transport
                .is_reliable()
                .then_some(crate::peer::ConnectionId(1)),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves transmits onto the link and events to the users.
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            for index in 0..2 {
                while let Some(transmit) = self.parties[index].layer.poll_transmit() {
                    progressed = true;
                    let elapsed = self.elapsed();
                    self.parties[index]
                        .sent
                        .push((elapsed, transmit.bytes.clone()));
                    if let Some(delay) = (self.policy)(index, &transmit.bytes, &mut self.rng) {
                        self.link.push(Packet {
                            deliver_at: self.now + delay,
                            from: index,
                            bytes: transmit.bytes,
                        });
                    }
                }
                while let Some(event) = self.parties[index].layer.poll_event() {
                    progressed = true;
                    let now = self.now;
                    (self.users[index])(&mut self.parties[index].layer, now, &event);
                    let elapsed = self.elapsed();
                    self.parties[index].events.push((elapsed, event));
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Advances the clock to the next packet or timer, but not past
    /// `until`; `false` when nothing is due before then.
    fn step(&mut self, until: Instant) -> bool {
        self.drain();
        let next_packet = self.link.iter().map(|p| p.deliver_at).min();
        let next_timer = (0..2)
            .filter_map(|i| self.parties[i].layer.poll_timeout())
            .min();
        let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
            return false;
        };
        if next > until {
            self.now = self.now.max(until);
            return false;
        }
        self.now = self.now.max(next);
        let now = self.now;
        let mut due = Vec::new();
        let mut index = 0;
        while index < self.link.len() {
            if self.link[index].deliver_at <= now {
                due.push(self.link.swap_remove(index));
            } else {
                index += 1;
            }
        }
        due.sort_by_key(|p| p.deliver_at);
        for packet in due {
            let to = 1 - packet.from;
            let source = self.peer_of(packet.from);
            deliver(&mut self.parties[to].layer, now, packet.bytes, source);
        }
        for party in &mut self.parties {
            party.layer.handle_timeout(now);
        }
        self.drain();
        true
    }

    /// Runs until `limit` after the start (or until nothing is left to do).
    fn run(&mut self, limit: Duration) {
        let until = self.start + limit;
        while self.step(until) {}
    }

    fn events(&self, index: usize) -> Vec<&Event> {
        self.parties[index].events.iter().map(|(_, e)| e).collect()
    }

    /// Times (ms since start) at which `index` sent a message starting with `prefix`.
    fn sent_times(&self, index: usize, prefix: &str) -> Vec<u128> {
        self.parties[index]
            .sent
            .iter()
            .filter(|(_, bytes)| bytes.starts_with(prefix.as_bytes()))
            .map(|(at, _)| at.as_millis())
            .collect()
    }
}

fn deliver(layer: &mut TransactionLayer, now: Instant, bytes: Bytes, source: Peer) {
    match parse_datagram(bytes, &Limits::default()) {
        Ok(Frame::Message(Message::Request(request))) => {
            let valid =
                validate::request(request, &Policy::default()).expect("test requests are valid");
            layer.handle_request(now, valid, source);
        }
        Ok(Frame::Message(Message::Response(response))) => {
            let valid = validate::response(response).expect("test responses are valid");
            layer.handle_response(now, valid, source);
        }
        other => panic!("unexpected frame {other:?}"),
    }
}

fn request(method: Method, call: &str) -> Request {
    let uri = Uri::parse("sip:frontdesk@127.0.0.1:5062").unwrap();
    let mut request = Request::new(method.clone(), uri);
    request
        .headers
        .push(HeaderName::From, "<sip:caller@127.0.0.1:5061>;tag=caller1");
    request
        .headers
        .push(HeaderName::To, "<sip:frontdesk@127.0.0.1:5062>");
    request.headers.push(HeaderName::CallId, call);
    request
        .headers
        .push(HeaderName::CSeq, format!("1 {method}"));
    request
}

/// A UAS that answers every request with `status` at once.
fn answering(status: u16) -> User {
    Box::new(move |layer, now, event| {
        if let Event::Request {
            transaction,
            request,
            ..
        } = event
        {
            let status = StatusCode::new(status).unwrap();
            let response = Response::to_request(&request.request.headers, status, Some("uas1"));
            layer.respond(now, *transaction, response).unwrap();
        }
    })
}

/// A UAC that ACKs every 2xx to INVITE (end to end, as a dialog does).
fn acking() -> User {
    Box::new(|layer, _now, event| {
        if let Event::Response {
            response, source, ..
        } = event
            && response.response.status.is_success()
            && response.cseq.method == Method::Invite
        {
            let mut ack = Request::new(
                Method::Ack,
                Uri::parse("sip:frontdesk@127.0.0.1:5062").unwrap(),
            );
            for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
                if let Some(value) = response.response.headers.get(&name) {
                    ack.headers.push_raw(name, value.clone());
                }
            }
            ack.headers
                .push(HeaderName::CSeq, format!("{} ACK", response.cseq.seq));
            layer.send_ack(ack, *source);
        }
    })
}

fn count<F: Fn(&Event) -> bool>(events: &[&Event], predicate: F) -> usize {
    events.iter().filter(|e| predicate(e)).count()
}

fn is_response(status: u16) -> impl Fn(&Event) -> bool {
    move |event| matches!(event, Event::Response { response, .. } if response.response.status.as_u16() == status)
}

fn starts(bytes: &Bytes, prefix: &str) -> bool {
    bytes.starts_with(prefix.as_bytes())
}

fn send(pair: &mut Pair, request: Request) -> ClientTransactionId {
    let destination = pair.peer_of(UAS);
    let now = pair.now;
    pair.parties[UAC]
        .layer
        .send_request(now, request, destination)
        .unwrap()
}

#[test]
fn non_invite_completes_then_timers_k_and_j_clean_up() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), answering(200));
    send(&mut pair, request(Method::Options, "k-and-j"));
    pair.run(Duration::from_secs(60));
    let uac = pair.events(UAC);
    assert_eq!(count(&uac, is_response(200)), 1);
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Request { .. })),
        1
    );
    assert_eq!(
        pair.sent_times(UAC, "OPTIONS"),
        vec![0],
        "no retransmission once answered"
    );
    assert!(pair.parties[UAC].layer.is_empty());
    assert!(pair.parties[UAS].layer.is_empty());
}

#[test]
fn timer_k_is_t4_and_timer_j_is_64_t1() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), answering(200));
    send(&mut pair, request(Method::Options, "k-vs-j"));
    pair.run(Duration::from_millis(5_000));
    assert_eq!(
        pair.parties[UAC].layer.len(),
        (0, 1),
        "client still in Completed before T4"
    );
    pair.run(Duration::from_millis(5_100));
    assert_eq!(
        pair.parties[UAC].layer.len(),
        (0, 0),
        "Timer K = T4 after the 200"
    );
    assert_eq!(
        pair.parties[UAS].layer.len(),
        (1, 0),
        "server absorbs retransmissions for 64*T1"
    );
    pair.run(Duration::from_millis(32_100));
    assert_eq!(pair.parties[UAS].layer.len(), (0, 0), "Timer J = 64*T1");
}

#[test]
fn timer_e_doubles_to_t2_and_timer_f_times_out() {
    let policy: LinkPolicy = Box::new(|_, _, _| None);
    let mut pair = Pair::new(TransportKind::Udp, policy, idle(), idle());
    send(&mut pair, request(Method::Options, "lost"));
    pair.run(Duration::from_secs(60));
    assert_eq!(
        pair.sent_times(UAC, "OPTIONS"),
        vec![
            0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    let events = &pair.parties[UAC].events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, Duration::from_secs(32));
    assert!(matches!(events[0].1, Event::Timeout { .. }));
    assert!(pair.parties[UAC].layer.is_empty());
}

#[test]
fn lost_requests_are_retransmitted_and_delivered_once() {
    let mut drops = 2;
    let policy: LinkPolicy = Box::new(move |from, bytes, _| {
        if from == UAC && starts(bytes, "OPTIONS") && drops > 0 {
            drops -= 1;
            return None;
        }
        Some(Duration::from_millis(10))
    });
    let mut pair = Pair::new(TransportKind::Udp, policy, idle(), answering(200));
    send(&mut pair, request(Method::Options, "two-lost"));
    pair.run(Duration::from_secs(40));
    assert_eq!(pair.sent_times(UAC, "OPTIONS"), vec![0, 500, 1_500]);
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Request { .. })),
        1
    );
    assert_eq!(count(&pair.events(UAC), is_response(200)), 1);
}

#[test]
fn a_retransmitted_request_gets_the_stored_response_again() {
    // The first 200 is lost: the client retransmits, the server absorbs the
    // retransmission and sends the same response again; its TU sees one
    // request.
    let mut drops = 1;
    let policy: LinkPolicy = Box::new(move |from, bytes, _| {
        if from == UAS && starts(bytes, "SIP/2.0 200") && drops > 0 {
            drops -= 1;
            return None;
        }
        Some(Duration::from_millis(10))
    });
    let mut pair = Pair::new(TransportKind::Udp, policy, idle(), answering(200));
    send(&mut pair, request(Method::Register, "absorb"));
    pair.run(Duration::from_secs(40));
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Request { .. })),
        1
    );
    let responses: Vec<&Bytes> = pair.parties[UAS].sent.iter().map(|(_, b)| b).collect();
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0], responses[1], "byte-identical retransmission");
    assert_eq!(count(&pair.events(UAC), is_response(200)), 1);
}

#[test]
fn provisional_response_moves_timer_e_to_t2() {
    let uas: User = Box::new(|layer, now, event| {
        if let Event::Request {
            transaction,
            request,
            ..
        } = event
        {
            let trying = Response::to_request(&request.request.headers, StatusCode::TRYING, None);
            layer.respond(now, *transaction, trying).unwrap();
        }
    });
    // Responses after the first provisional are never sent: the client
    // keeps retransmitting at T2 until Timer F.
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), uas);
    send(&mut pair, request(Method::Options, "proceeding"));
    pair.run(Duration::from_secs(40));
    let times = pair.sent_times(UAC, "OPTIONS");
    assert_eq!(&times[..4], &[0, 500, 4_500, 8_500]);
    assert!(times.windows(2).skip(1).all(|w| w[1] - w[0] == 4_000));
    // Each retransmission is absorbed and answered with the stored 100,
    // and each provisional is news for the client's TU.
    assert_eq!(count(&pair.events(UAC), is_response(100)), times.len());
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Request { .. })),
        1
    );
    assert_eq!(
        count(&pair.events(UAC), |e| matches!(e, Event::Timeout { .. })),
        1
    );
}

#[test]
fn timer_a_doubles_without_cap_and_timer_b_times_out() {
    let policy: LinkPolicy = Box::new(|_, _, _| None);
    let mut pair = Pair::new(TransportKind::Udp, policy, idle(), idle());
    send(&mut pair, request(Method::Invite, "invite-lost"));
    pair.run(Duration::from_secs(60));
    assert_eq!(
        pair.sent_times(UAC, "INVITE"),
        vec![0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    let events = &pair.parties[UAC].events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, Duration::from_secs(32));
    assert!(matches!(events[0].1, Event::Timeout { .. }));
}

#[test]
fn the_100_trying_stops_invite_retransmissions() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), idle());
    send(&mut pair, request(Method::Invite, "trying"));
    pair.run(Duration::from_secs(20));
    assert_eq!(pair.sent_times(UAC, "INVITE"), vec![0]);
    assert_eq!(pair.sent_times(UAS, "SIP/2.0 100"), vec![10]);
    assert_eq!(count(&pair.events(UAC), is_response(100)), 1);
    // In Proceeding the client waits for the TU (ring timeout, CANCEL):
    // Timer B no longer applies.
    assert_eq!(pair.parties[UAC].layer.len(), (0, 1));
}

#[test]
fn non_2xx_is_acked_by_the_transaction_and_timer_g_retransmits_until_ack() {
    // The first two ACKs are lost: Timer G retransmits the 486 at T1 and
    // 2*T1, each retransmission is ACKed again by the client transaction.
    let mut drops = 2;
    let policy: LinkPolicy = Box::new(move |from, bytes, _| {
        if from == UAC && starts(bytes, "ACK") && drops > 0 {
            drops -= 1;
            return None;
        }
        Some(Duration::from_millis(10))
    });
    let mut pair = Pair::new(TransportKind::Udp, policy, idle(), answering(486));
    send(&mut pair, request(Method::Invite, "busy"));
    pair.run(Duration::from_secs(60));
    assert_eq!(pair.sent_times(UAS, "SIP/2.0 486"), vec![10, 510, 1_510]);
    assert_eq!(pair.sent_times(UAC, "ACK"), vec![20, 520, 1_520]);
    assert_eq!(
        count(&pair.events(UAC), is_response(486)),
        1,
        "one event for all copies"
    );
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Ack { .. })),
        0
    );
    // The ACK shares the INVITE's branch and carries the response's To tag.
    let ack = &pair.parties[UAC]
        .sent
        .iter()
        .find(|(_, b)| starts(b, "ACK"))
        .unwrap()
        .1;
    let invite = &pair.parties[UAC].sent[0].1;
    let branch = |bytes: &Bytes| match parse_datagram(bytes.clone(), &Limits::default()).unwrap() {
        Frame::Message(message) => message
            .headers()
            .top_via()
            .unwrap()
            .branch()
            .unwrap()
            .to_string(),
        _ => unreachable!(),
    };
    assert_eq!(branch(ack), branch(invite));
    assert!(String::from_utf8_lossy(ack).contains("tag=uas1"));
    assert!(pair.parties[UAC].layer.is_empty() && pair.parties[UAS].layer.is_empty());
}

#[test]
fn timer_h_gives_up_when_no_ack_comes() {
    let policy: LinkPolicy = Box::new(|from, bytes, _| {
        (from == UAS || !starts(bytes, "ACK")).then_some(Duration::from_millis(10))
    });
    let mut pair = Pair::new(TransportKind::Udp, policy, idle(), answering(603));
    send(&mut pair, request(Method::Invite, "no-ack"));
    pair.run(Duration::from_millis(32_000));
    assert_eq!(pair.parties[UAS].layer.len(), (1, 0));
    pair.run(Duration::from_millis(32_020));
    assert_eq!(
        pair.parties[UAS].layer.len(),
        (0, 0),
        "Timer H = 64*T1 after the 603"
    );
    let times = pair.sent_times(UAS, "SIP/2.0 603");
    assert_eq!(&times[..5], &[10, 510, 1_510, 3_510, 7_510]);
    assert!(
        times.windows(2).skip(4).all(|w| w[1] - w[0] == 4_000),
        "capped at T2"
    );
}

#[test]
fn timer_i_and_d_end_the_completed_states() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), answering(480));
    send(&mut pair, request(Method::Invite, "i-and-d"));
    pair.run(Duration::from_millis(5_000));
    assert_eq!(
        pair.parties[UAS].layer.len(),
        (1, 0),
        "Confirmed until Timer I"
    );
    pair.run(Duration::from_millis(5_100));
    assert_eq!(
        pair.parties[UAS].layer.len(),
        (0, 0),
        "Timer I = T4 after the ACK"
    );
    assert_eq!(
        pair.parties[UAC].layer.len(),
        (0, 1),
        "Completed until Timer D"
    );
    pair.run(Duration::from_millis(32_100));
    assert_eq!(pair.parties[UAC].layer.len(), (0, 0), "Timer D = 32 s");
}

#[test]
fn a_2xx_is_retransmitted_until_its_ack_arrives() {
    // The first two 200s are lost: the server retransmits at T1 then 2*T1;
    // the third reaches the client, whose TU ACKs it end to end.
    let mut drops = 2;
    let policy: LinkPolicy = Box::new(move |from, bytes, _| {
        if from == UAS && starts(bytes, "SIP/2.0 200") && drops > 0 {
            drops -= 1;
            return None;
        }
        Some(Duration::from_millis(10))
    });
    let mut pair = Pair::new(TransportKind::Udp, policy, acking(), answering(200));
    send(&mut pair, request(Method::Invite, "two-hundred"));
    pair.run(Duration::from_secs(60));
    assert_eq!(pair.sent_times(UAS, "SIP/2.0 200"), vec![10, 510, 1_510]);
    assert_eq!(pair.sent_times(UAC, "ACK"), vec![1_520]);
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Ack { .. })),
        1
    );
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::AckTimeout { .. })),
        0
    );
    // The 2xx ACK is a new transaction-less request with its own branch.
    let ack = &pair.parties[UAC]
        .sent
        .iter()
        .find(|(_, b)| starts(b, "ACK"))
        .unwrap()
        .1;
    let invite = &pair.parties[UAC].sent[0].1;
    assert_ne!(
        String::from_utf8_lossy(ack)
            .lines()
            .find(|l| l.starts_with("Via")),
        String::from_utf8_lossy(invite)
            .lines()
            .find(|l| l.starts_with("Via"))
    );
    assert!(pair.parties[UAC].layer.is_empty() && pair.parties[UAS].layer.is_empty());
}

#[test]
fn a_2xx_never_acked_raises_ack_timeout_after_64_t1() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), answering(200));
    send(&mut pair, request(Method::Invite, "never-acked"));
    pair.run(Duration::from_secs(60));
    let timeouts: Vec<Duration> = pair.parties[UAS]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::AckTimeout { .. }))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(timeouts, vec![Duration::from_millis(32_010)]);
    let times = pair.sent_times(UAS, "SIP/2.0 200");
    assert_eq!(&times[..4], &[10, 510, 1_510, 3_510]);
    // Every copy reached the client: each one is passed up (to be ACKed).
    assert_eq!(count(&pair.events(UAC), is_response(200)), times.len());
}

#[test]
fn a_180_overtaken_by_the_200_is_ignored() {
    let uas: User = Box::new(|layer, now, event| {
        if let Event::Request {
            transaction,
            request,
            ..
        } = event
        {
            let ringing =
                Response::to_request(&request.request.headers, StatusCode::RINGING, Some("uas1"));
            layer.respond(now, *transaction, ringing).unwrap();
            let ok = Response::to_request(&request.request.headers, StatusCode::OK, Some("uas1"));
            layer.respond(now, *transaction, ok).unwrap();
        }
    });
    // The 180 takes 50 ms, everything else 10 ms: the 200 arrives first.
    let policy: LinkPolicy = Box::new(|_, bytes, _| {
        Some(Duration::from_millis(if starts(bytes, "SIP/2.0 180") {
            50
        } else {
            10
        }))
    });
    let mut pair = Pair::new(TransportKind::Udp, policy, acking(), uas);
    send(&mut pair, request(Method::Invite, "reordered"));
    pair.run(Duration::from_secs(40));
    let statuses: Vec<u16> = pair
        .events(UAC)
        .iter()
        .filter_map(|e| match e {
            Event::Response { response, .. } => Some(response.response.status.as_u16()),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![100, 200]);
}

/// A UAS that rings and waits (so the caller can CANCEL).
fn ringing() -> User {
    Box::new(|layer, now, event| {
        if let Event::Request {
            transaction,
            request,
            ..
        } = event
            && request.request.method == Method::Invite
        {
            let ringing =
                Response::to_request(&request.request.headers, StatusCode::RINGING, Some("uas1"));
            layer.respond(now, *transaction, ringing).unwrap();
        }
    })
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), ringing());
    let invite = send(&mut pair, request(Method::Invite, "cancelled"));
    pair.run(Duration::from_millis(100));
    let now = pair.now;
    pair.parties[UAC].layer.cancel(now, invite).unwrap();
    pair.run(Duration::from_secs(60));
    assert_eq!(pair.sent_times(UAC, "CANCEL").len(), 1);
    assert_eq!(
        pair.sent_times(UAS, "SIP/2.0 200").len(),
        1,
        "200 to the CANCEL"
    );
    assert_eq!(
        pair.sent_times(UAS, "SIP/2.0 487").len(),
        1,
        "487 to the INVITE"
    );
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Cancelled { .. })),
        1
    );
    let uac = pair.events(UAC);
    assert_eq!(count(&uac, is_response(487)), 1);
    assert_eq!(
        count(&uac, is_response(200)),
        0,
        "the CANCEL's own 200 is not news"
    );
    assert_eq!(pair.sent_times(UAC, "ACK").len(), 1, "the 487 is ACKed");
    // The 487 carries the tag of the 180 (same early dialog).
    let terminated = pair.parties[UAS]
        .sent
        .iter()
        .find(|(_, b)| starts(b, "SIP/2.0 487"))
        .unwrap();
    assert!(String::from_utf8_lossy(&terminated.1).contains("tag=uas1"));
    assert!(pair.parties[UAC].layer.is_empty() && pair.parties[UAS].layer.is_empty());
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    // The 100 Trying is lost, so the client is still in Calling when the TU
    // cancels; the CANCEL goes out with the first provisional (the 180).
    let mut drops = 1;
    let policy: LinkPolicy = Box::new(move |from, bytes, _| {
        if from == UAS && starts(bytes, "SIP/2.0 100") && drops > 0 {
            drops -= 1;
            return None;
        }
        Some(Duration::from_millis(10))
    });
    let uas: User = Box::new(|layer, now, event| {
        if let Event::Request {
            transaction,
            request,
            ..
        } = event
            && request.request.method == Method::Invite
        {
            // Rings only on the retransmission's absorbed 100... ring at once.
            let ringing =
                Response::to_request(&request.request.headers, StatusCode::RINGING, Some("uas1"));
            layer.respond(now, *transaction, ringing).unwrap();
        }
    });
    let mut pair = Pair::new(TransportKind::Udp, policy, idle(), uas);
    let invite = send(&mut pair, request(Method::Invite, "early-cancel"));
    let now = pair.now;
    pair.parties[UAC].layer.cancel(now, invite).unwrap();
    pair.run(Duration::from_secs(60));
    let cancels = pair.sent_times(UAC, "CANCEL");
    assert_eq!(cancels, vec![20], "sent when the 180 arrived, not before");
    assert_eq!(count(&pair.events(UAC), is_response(487)), 1);
}

#[test]
fn cancel_for_an_unknown_invite_gets_481() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), idle());
    let mut cancel = request(Method::Cancel, "nothing-to-cancel");
    cancel.headers.push_front(
        HeaderName::Via,
        "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKnothere;rport",
    );
    cancel.headers.push(HeaderName::MaxForwards, 70);
    let destination = pair.peer_of(UAS);
    pair.parties[UAC]
        .layer
        .send_raw(destination, cancel.encode());
    pair.run(Duration::from_secs(1));
    assert_eq!(pair.sent_times(UAS, "SIP/2.0 481").len(), 1);
    assert!(pair.events(UAS).is_empty());
}

#[test]
fn late_cancel_is_refused_locally() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), acking(), answering(200));
    let invite = send(&mut pair, request(Method::Invite, "late"));
    pair.run(Duration::from_millis(100));
    let now = pair.now;
    assert_eq!(
        pair.parties[UAC].layer.cancel(now, invite),
        Err(TransactionError::TooLateToCancel)
    );
}

#[test]
fn reliable_transports_never_retransmit_and_clean_up_at_once() {
    let mut pair = Pair::new(TransportKind::Tcp, perfect(), idle(), answering(200));
    send(&mut pair, request(Method::Options, "tcp"));
    pair.run(Duration::from_millis(100));
    assert_eq!(pair.sent_times(UAC, "OPTIONS"), vec![0]);
    assert!(pair.parties[UAC].layer.is_empty(), "Timer K = 0 on TCP");
    assert!(pair.parties[UAS].layer.is_empty(), "Timer J = 0 on TCP");

    let mut busy = Pair::new(TransportKind::Tcp, perfect(), idle(), answering(486));
    send(&mut busy, request(Method::Invite, "tcp-busy"));
    busy.run(Duration::from_millis(100));
    assert_eq!(
        busy.sent_times(UAS, "SIP/2.0 486"),
        vec![10],
        "no Timer G on TCP"
    );
    assert!(busy.parties[UAC].layer.is_empty(), "Timer D = 0 on TCP");
    assert!(busy.parties[UAS].layer.is_empty(), "Timer I = 0 on TCP");
}

#[test]
fn a_2xx_for_no_transaction_is_passed_up_as_stray() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), idle());
    let mut invite = request(Method::Invite, "stray");
    invite.headers.push_front(
        HeaderName::Via,
        "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKgone",
    );
    let ok = Response::to_request(&invite.headers, StatusCode::OK, Some("x"));
    let destination = pair.peer_of(UAC);
    pair.parties[UAS].layer.send_raw(destination, ok.encode());
    pair.run(Duration::from_secs(1));
    assert_eq!(
        count(&pair.events(UAC), |e| matches!(e, Event::Stray2xx { .. })),
        1
    );
}

#[test]
fn rfc2543_requests_without_a_cookie_are_matched_by_their_fields() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), answering(200));
    let mut old = request(Method::Options, "rfc2543");
    old.headers
        .push_front(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5061");
    old.headers.push(HeaderName::MaxForwards, 70);
    let bytes = old.encode();
    let destination = pair.peer_of(UAS);
    pair.parties[UAC].layer.send_raw(destination, bytes.clone());
    pair.run(Duration::from_millis(500));
    pair.parties[UAC].layer.send_raw(destination, bytes);
    pair.run(Duration::from_secs(1));
    assert_eq!(
        count(&pair.events(UAS), |e| matches!(e, Event::Request { .. })),
        1
    );
    assert_eq!(
        pair.sent_times(UAS, "SIP/2.0 200").len(),
        2,
        "the copy gets the same answer"
    );
}

#[test]
fn received_and_rport_are_filled_and_responses_follow_them() {
    let mut pair = Pair::new(TransportKind::Udp, perfect(), idle(), answering(200));
    // Our Via says 127.0.0.1:5061 with rport; pretend it came from elsewhere.
    let mut options = request(Method::Options, "rport");
    options.headers.push_front(
        HeaderName::Via,
        "SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKrport;rport",
    );
    options.headers.push(HeaderName::MaxForwards, 70);
    let parsed = match parse_datagram(options.encode(), &Limits::default()).unwrap() {
        Frame::Message(Message::Request(r)) => validate::request(r, &Policy::default()).unwrap(),
        _ => unreachable!(),
    };
    let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
    let now = pair.now;
    pair.parties[UAS].layer.handle_request(now, parsed, source);
    pair.drain();
    let transmit_peer = pair.parties[UAS].sent.last().unwrap();
    let text = String::from_utf8_lossy(&transmit_peer.1).to_string();
    assert!(
        text.contains(
            "Via: SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKrport;rport=40000;received=127.0.0.1"
        ),
        "{text}"
    );
}

#[test]
fn lossy_reordering_link_loses_and_duplicates_nothing() {
    // 25 % loss and 0–400 ms jitter both ways, many transactions of both
    // kinds: each request reaches the server TU at most once, and each
    // client transaction ends exactly once (final response or timeout).
    for seed in 0..20u64 {
        let policy: LinkPolicy = Box::new(|_, _, rng: &mut SmallRng| {
            if rng.random_bool(0.25) {
                None
            } else {
                Some(Duration::from_millis(rng.random_range(1..400)))
            }
        });
        let mut pair = Pair::new(TransportKind::Udp, policy, acking(), answering(200));
        pair.rng = SmallRng::seed_from_u64(seed);
        let mut ids = Vec::new();
        for n in 0..10 {
            let method = if n % 2 == 0 {
                Method::Invite
            } else {
                Method::Options
            };
            ids.push(send(
                &mut pair,
                request(method, &format!("lossy-{seed}-{n}")),
            ));
        }
        pair.run(Duration::from_secs(120));
        let uas = pair.events(UAS);
        let requests = count(&uas, |e| matches!(e, Event::Request { .. }));
        assert!(
            requests <= 10,
            "seed {seed}: {requests} requests for 10 sent"
        );
        for id in ids {
            let finals = pair
                .events(UAC)
                .iter()
                .filter(|e| match e {
                    Event::Response {
                        transaction,
                        response,
                        ..
                    } => *transaction == id && response.response.status.is_final(),
                    Event::Timeout { transaction, .. } => *transaction == id,
                    _ => false,
                })
                .count();
            assert!(finals >= 1, "seed {seed}: transaction {id:?} never ended");
            let timeouts = count(
                &pair.events(UAC),
                |e| matches!(e, Event::Timeout { transaction, .. } if *transaction == id),
            );
            assert!(timeouts <= 1);
        }
        assert!(
            pair.parties[UAC].layer.is_empty(),
            "seed {seed}: client left transactions"
        );
        assert!(
            pair.parties[UAS].layer.is_empty(),
            "seed {seed}: server left transactions"
        );
    }
}
