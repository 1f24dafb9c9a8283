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
        let start = crate::epoch();
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
fn a_host_name_via_is_answered_at_the_source_address_and_its_port_or_5060() {
    // §18.2.2 without rport: `received` (the source address, the host name
    // is never resolved) and the sent-by port, 5060 when there is none.
    for (sent_by, expected) in [
        ("saturn.example.com:5070", "127.0.0.1:5070"),
        ("host5.example.com", "127.0.0.1:5060"),
    ] {
        let Party { mut layer, .. } = party(5062, TransportKind::Udp, 3);
        let mut register = request(Method::Register, &format!("via-{sent_by}"));
        register.headers.push_front(
            HeaderName::Via,
            format!("SIP/2.0/UDP {sent_by};branch=z9hG4bKkdjuw"),
        );
        register.headers.push(HeaderName::MaxForwards, 70);
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        let now = crate::epoch();
        deliver(&mut layer, now, register.encode(), source);
        let Some(Event::Request {
            transaction,
            request,
            ..
        }) = layer.poll_event()
        else {
            panic!("{sent_by}: a request");
        };
        let challenge = Response::to_request(
            &request.request.headers,
            StatusCode::new(401).unwrap(),
            Some("t"),
        );
        layer.respond(now, transaction, challenge).unwrap();
        let transmit = layer.poll_transmit().expect("the 401");
        assert_eq!(
            transmit.peer,
            Peer::udp(expected.parse().unwrap()),
            "{sent_by}"
        );
        let text = String::from_utf8_lossy(&transmit.bytes).into_owned();
        assert!(
            text.contains(&format!(
                "Via: SIP/2.0/UDP {sent_by};branch=z9hG4bKkdjuw;received=127.0.0.1\r\n"
            )),
            "{text}"
        );
    }
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

// ---------------------------------------------------------------- Timer J state

/// One layer on its own, fed REGISTERs as a registrar's endpoint is.
struct Registrar {
    layer: TransactionLayer,
    start: Instant,
    source: Peer,
}

impl Registrar {
    fn new() -> Self {
        let Party { layer, .. } = party(5060, TransportKind::Udp, 7);
        Registrar {
            layer,
            start: crate::epoch(),
            source: Peer::udp("127.0.0.1:5061".parse().unwrap()),
        }
    }

    fn register_bytes(branch: &str, call_id: &str, user: u32) -> Bytes {
        Bytes::from(format!(
            "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK{branch};rport\r\n\
             From: <sip:{user}@127.0.0.1>;tag=3157SIPpTagReg{call_id}\r\n\
             To: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: {call_id}@127.0.0.1\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:{user}@127.0.0.1:5099>\r\n\
             Expires: 3600\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    }

    /// Delivers `bytes` at `at` after the start; returns the requests the
    /// TU saw and the bytes the layer sent.
    fn deliver(&mut self, at: Duration, bytes: Bytes) -> (Vec<Event>, Vec<Bytes>) {
        let now = self.start + at;
        self.layer.handle_timeout(now);
        deliver(&mut self.layer, now, bytes, self.source);
        let events = std::iter::from_fn(|| self.layer.poll_event()).collect();
        (events, self.sent())
    }

    fn sent(&mut self) -> Vec<Bytes> {
        std::iter::from_fn(|| self.layer.poll_transmit())
            .map(|t| {
                assert_eq!(t.peer, self.source, "responses follow rport");
                t.bytes
            })
            .collect()
    }

    /// A 401 as the registrar makes it: a tag and a nonce of its own.
    fn challenge(&mut self, at: Duration, event: &Event, n: u64) -> Bytes {
        let Event::Request {
            transaction,
            request,
            ..
        } = event
        else {
            panic!("a request: {event:?}");
        };
        let mut rng = SmallRng::seed_from_u64(n);
        let tag: String = (0..16)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
            .collect();
        let nonce: String = (0..4)
            .map(|_| format!("{:016x}", rng.random::<u64>()))
            .collect();
        let mut response = Response::to_request(
            &request.request.headers,
            StatusCode::new(401).unwrap(),
            Some(&tag),
        );
        response.headers.push(
            HeaderName::WwwAuthenticate,
            format!(
                "Digest realm=\"frontdesk\", nonce=\"{nonce}\", opaque=\"1dab1d1653895a76\", \
                 algorithm=MD5, qop=\"auth\""
            ),
        );
        response.headers.push(HeaderName::Server, "frontdesk/0.1.0");
        self.layer
            .respond(self.start + at, *transaction, response)
            .unwrap();
        let mut sent = self.sent();
        assert_eq!(sent.len(), 1);
        sent.remove(0)
    }
}

#[test]
fn a_retransmission_within_timer_j_gets_the_same_response_and_the_state_goes_at_timer_j() {
    let mut registrar = Registrar::new();
    let register = Registrar::register_bytes("j1", "j1", 1001);
    let (events, sent) = registrar.deliver(Duration::ZERO, register.clone());
    assert_eq!((events.len(), sent.len()), (1, 0));
    let challenge = registrar.challenge(Duration::from_millis(1), &events[0], 1);
    assert_eq!(
        registrar.layer.len(),
        (1, 0),
        "completed, waiting out Timer J"
    );

    // Copies up to the end of Timer J get the very same bytes; the TU
    // hears of none of them.
    for at in [500, 1_500, 16_000, 32_000] {
        let (events, sent) = registrar.deliver(Duration::from_millis(at), register.clone());
        assert!(events.is_empty(), "at {at} ms: {events:?}");
        assert_eq!(sent, std::slice::from_ref(&challenge), "at {at} ms");
    }
    let deadline = registrar.layer.poll_timeout().expect("Timer J is armed");
    assert_eq!(
        deadline - registrar.start,
        Duration::from_millis(32_001),
        "64 x T1 after the 401"
    );
    registrar.layer.handle_timeout(deadline);
    assert!(registrar.layer.is_empty(), "the state goes with Timer J");
    assert_eq!(registrar.layer.poll_timeout(), None);
    // Later, the same bytes are a new request.
    let (events, sent) = registrar.deliver(Duration::from_millis(32_002), register);
    assert_eq!((events.len(), sent.len()), (1, 0));
}

#[test]
fn requests_that_share_a_branch_but_not_a_call_id_are_two_transactions() {
    // RFC 4475's cparam01 and cparam02 (and escnull and regescrt): one
    // branch and sent-by for two different REGISTERs.
    let mut registrar = Registrar::new();
    let (first, _) = registrar.deliver(
        Duration::ZERO,
        Registrar::register_bytes("kdjuw", "cparam01", 1001),
    );
    let first_answer = registrar.challenge(Duration::ZERO, &first[0], 1);
    let (second, sent) = registrar.deliver(
        Duration::from_millis(150),
        Registrar::register_bytes("kdjuw", "cparam02", 1001),
    );
    assert_eq!(second.len(), 1, "the second request reaches the TU");
    assert!(
        sent.is_empty(),
        "and is not answered with the first one's 401"
    );
    let second_answer = registrar.challenge(Duration::from_millis(150), &second[0], 2);
    assert!(String::from_utf8_lossy(&first_answer).contains("Call-ID: cparam01@"));
    assert!(String::from_utf8_lossy(&second_answer).contains("Call-ID: cparam02@"));
    // A CSeq of its own makes a request of its own too.
    let next = String::from_utf8_lossy(&Registrar::register_bytes("kdjuw", "cparam02", 1001))
        .replace("CSeq: 1 ", "CSeq: 2 ");
    let (third, _) = registrar.deliver(Duration::from_millis(300), Bytes::from(next));
    assert_eq!(third.len(), 1);
}

#[test]
fn completed_registrations_keep_little_state_each() {
    // 2,000 registrations' challenges, as a registrar under load makes
    // them: what Timer J keeps is a small delta per response.
    let mut registrar = Registrar::new();
    let mut sent = Vec::new();
    for n in 0..2_000u32 {
        let at = Duration::from_micros(u64::from(n) * 100);
        let register =
            Registrar::register_bytes(&format!("-{n}-0"), &format!("{n}-3157"), 1001 + n % 7);
        let (events, _) = registrar.deliver(at, register.clone());
        let challenge = registrar.challenge(at, &events[0], u64::from(n));
        sent.push((register, challenge));
    }
    assert_eq!(registrar.layer.len(), (2_000, 0));
    let per_entry = registrar.layer.completed.retained_bytes() / 2_000;
    let response_size = sent.iter().map(|(_, c)| c.len()).sum::<usize>() / 2_000;
    assert!(
        per_entry * 3 <= response_size,
        "{per_entry} bytes kept per {response_size}-byte response"
    );
    assert!(registrar.layer.completed.templates_alive() <= 2);
    // Every one of them still answers its retransmission exactly.
    for (n, (register, challenge)) in sent.iter().enumerate().step_by(97) {
        let (events, again) = registrar.deliver(Duration::from_secs(1), register.clone());
        assert!(events.is_empty());
        assert_eq!(again, std::slice::from_ref(challenge), "registration {n}");
    }
    registrar
        .layer
        .handle_timeout(registrar.start + Duration::from_secs(33));
    assert!(registrar.layer.is_empty());
    assert_eq!(registrar.layer.completed.retained_bytes(), 0);
    assert_eq!(
        registrar.layer.completed.templates_alive(),
        1,
        "the latest 401's"
    );
}
