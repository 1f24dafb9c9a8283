//! The endpoint's core in virtual time: every decision the module docs
//! list, admission control included. A [`Harness`] feeds the core parsed
//! datagrams, plays the driver (an owner table and an application with a
//! bounded queue) and moves a virtual clock from deadline to deadline.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::core::{Dispatch, EndpointCore, PERMIT_LIFETIME};
use super::counters::Direction;
use super::{AdmissionSetup, EndpointConfig};
use crate::message::validate::ValidRequest;
use crate::message::{
    Frame, HeaderName, Host, Limits, Message, Method, NameAddr, Request, Response, SipUri,
    StatusCode, Uri, parse_datagram,
};
use crate::overload::{AdmissionConfig, CallClass};
use crate::peer::{Peer, TransportKind};
use crate::transaction::{self, Event, SentBy, TimerValues, Transmit};

const T1: Duration = Duration::from_millis(20);

/// Where our test peers send from.
fn phone() -> Peer {
    Peer::udp("127.0.0.1:5070".parse().expect("an address"))
}

fn config(admission: Option<AdmissionSetup>) -> EndpointConfig {
    EndpointConfig {
        transaction: transaction::Config {
            timers: TimerValues {
                t1: T1,
                t2: Duration::from_millis(160),
                t4: Duration::from_millis(200),
            },
            sent_by: vec![SentBy {
                transport: TransportKind::Udp,
                host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
                port: 5060,
            }],
            seed: 1,
        },
        allow: vec![Method::Invite, Method::Bye, Method::Register, Method::Info],
        supported: vec!["replaces"],
        product: "frontdesk-test".into(),
        admission,
    }
}

/// Admission with small thresholds; requests to `sip:urgent@...` are
/// urgent.
fn admission(max_in_setup: u32, max_rate: f64) -> AdmissionSetup {
    AdmissionSetup {
        config: AdmissionConfig {
            max_in_setup,
            urgent_reserve: 1,
            target_lag: Duration::from_millis(20),
            max_rate,
            min_rate: 5.0,
            interval: Duration::from_millis(100),
            retry_after: 9,
        },
        classify: Arc::new(|invite: &ValidRequest| match &invite.request.uri {
            Uri::Sip(uri) if uri.user.as_deref() == Some("urgent") => CallClass::Urgent,
            _ => CallClass::Routine,
        }),
    }
}

/// A request from [`phone`]; `to_tag` puts it inside a dialog.
fn request(method: &str, id: &str, to_tag: Option<&str>, extra: &str) -> String {
    request_to("frontdesk", method, id, to_tag, extra)
}

fn request_to(user: &str, method: &str, id: &str, to_tag: Option<&str>, extra: &str) -> String {
    let to_tag = to_tag.map_or(String::new(), |tag| format!(";tag={tag}"));
    format!(
        "{method} sip:{user}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{id};rport\r\n\
         From: <sip:patient@127.0.0.1>;tag=f{id}\r\n\
         To: <sip:{user}@127.0.0.1>{to_tag}\r\n\
         Call-ID: {id}@phone\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:patient@127.0.0.1:5070>\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

fn with_max_forwards(max_forwards: u8) -> String {
    format!("Max-Forwards: {max_forwards}\r\n")
}

/// The core, a virtual clock, and the driver's part played by hand.
struct Harness {
    core: EndpointCore,
    now: Instant,
    /// Call-IDs with an owner.
    owned: HashSet<String>,
    /// Room in the application's queue.
    application_room: usize,
    /// What owners received.
    owners: VecDeque<Event>,
    /// What the application received.
    application: VecDeque<Event>,
    /// What went out.
    sent: VecDeque<Transmit>,
}

impl Harness {
    fn new(admission: Option<AdmissionSetup>) -> Harness {
        let now = crate::epoch();
        Harness {
            core: EndpointCore::new(config(admission), now),
            now,
            owned: HashSet::new(),
            application_room: 64,
            owners: VecDeque::new(),
            application: VecDeque::new(),
            sent: VecDeque::new(),
        }
    }

    /// `text` arrives from [`phone`] (parsed as the transport would).
    fn receive(&mut self, text: &str) {
        let message = match parse_datagram(Bytes::from(text.to_owned()), &Limits::default()) {
            Ok(Frame::Message(message)) => Ok(message),
            Ok(Frame::KeepAlive(_)) => panic!("not a keep-alive"),
            Err(error) => Err(error),
        };
        self.core.handle_inbound(self.now, phone(), message);
        self.drive();
    }

    /// The driver's turn: sends, and delivers or hands back, until the
    /// core has nothing left.
    fn drive(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(transmit) = self.core.poll_transmit() {
                progressed = true;
                self.sent.push_back(transmit);
            }
            while let Some(dispatch) = self.core.poll_event() {
                progressed = true;
                match dispatch {
                    Dispatch::ToOwner(event) => {
                        if self.owned.contains(&**event.call_id()) {
                            self.owners.push_back(event);
                        } else {
                            self.core.handle_unowned(self.now, event);
                        }
                    }
                    Dispatch::ToApplication(event) => {
                        if self.application_room == 0 {
                            self.core.handle_application_busy(self.now, event);
                        } else {
                            self.application_room -= 1;
                            self.application.push_back(event);
                        }
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Moves the clock by `by`, firing every deadline on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.core.poll_timeout()
            && at <= until
        {
            self.now = self.now.max(at);
            self.core.handle_timeout(self.now);
            self.drive();
        }
        self.now = until;
    }

    /// The responses sent so far, parsed, but for the 100 Trying that an
    /// INVITE transaction sends at once (RFC 3261 §17.2.1).
    fn responses(&mut self) -> Vec<Response> {
        self.sent
            .drain(..)
            .map(
                |transmit| match parse_datagram(transmit.bytes, &Limits::default()) {
                    Ok(Frame::Message(Message::Response(response))) => response,
                    other => panic!("not a response: {other:?}"),
                },
            )
            .filter(|response| response.status != StatusCode::TRYING)
            .collect()
    }

    /// The one response sent since the last look.
    fn response(&mut self) -> Response {
        let mut responses = self.responses();
        assert_eq!(responses.len(), 1, "{responses:#?}");
        responses.remove(0)
    }

    /// The new request the application got, answered by its owner.
    fn application_request(&mut self) -> (transaction::ServerTransactionId, Box<ValidRequest>) {
        match self.application.pop_front() {
            Some(Event::Request {
                transaction,
                request,
                ..
            }) => (transaction, request),
            other => panic!("not a request: {other:?}"),
        }
    }

    fn respond(
        &mut self,
        transaction: transaction::ServerTransactionId,
        request: &ValidRequest,
        status: StatusCode,
    ) {
        let response = Response::to_request(&request.request.headers, status, Some("owner"));
        self.core
            .respond(self.now, transaction, response)
            .expect("the transaction is open");
        self.drive();
    }
}

fn header(response: &Response, name: HeaderName) -> Option<String> {
    response
        .headers
        .get(&name)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

fn status(response: &Response) -> u16 {
    response.status.as_u16()
}

// ---- answered statelessly ------------------------------------------------

#[test]
fn options_outside_a_dialog_get_the_same_stateless_200_for_every_copy() {
    let mut harness = Harness::new(None);
    let options = request("OPTIONS", "opt1", None, &with_max_forwards(70));
    harness.receive(&options);
    harness.receive(&options);
    assert_eq!(harness.sent.len(), 2);
    assert_eq!(harness.sent[0].bytes, harness.sent[1].bytes, "same bytes");
    assert_eq!(harness.sent[0].peer, phone(), "rport: back to the source");
    let ok = harness.responses().remove(0);
    assert_eq!(status(&ok), 200);
    assert_eq!(
        header(&ok, HeaderName::Allow).as_deref(),
        Some("INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, INFO")
    );
    assert_eq!(
        header(&ok, HeaderName::Accept).as_deref(),
        Some("application/sdp")
    );
    assert_eq!(
        header(&ok, HeaderName::Supported).as_deref(),
        Some("replaces")
    );
    assert_eq!(
        header(&ok, HeaderName::Server).as_deref(),
        Some("frontdesk-test")
    );
    assert!(
        header(&ok, HeaderName::Via).is_some_and(|via| via.contains("rport=5070")),
        "{ok:?}"
    );
    // No transaction, no event.
    assert_eq!(harness.core.transactions(), (0, 0));
    assert!(harness.owners.is_empty() && harness.application.is_empty());
    assert_eq!(harness.core.poll_timeout(), None);
    // A different OPTIONS gets a different To tag.
    harness.receive(&request("OPTIONS", "opt2", None, ""));
    let other = harness.response();
    assert_ne!(header(&other, HeaderName::To), header(&ok, HeaderName::To));
    let counters = harness.core.counters();
    assert_eq!(counters.request_count(Direction::In, "OPTIONS"), 3);
    assert_eq!(counters.response_count(Direction::Out, 200), 3);
}

#[test]
fn a_draining_endpoint_answers_options_503_with_retry_after() {
    let mut harness = Harness::new(None);
    harness.receive(&request("OPTIONS", "probe1", None, ""));
    assert_eq!(status(&harness.response()), 200);
    harness.core.start_draining();
    harness.receive(&request("OPTIONS", "probe2", None, ""));
    let busy = harness.response();
    assert_eq!(status(&busy), 503);
    assert_eq!(
        header(&busy, HeaderName::RetryAfter),
        Some(super::core::DRAINING_RETRY_AFTER.to_string())
    );
    // Still stateless: nothing kept.
    assert_eq!(harness.core.transactions(), (0, 0));
}

#[test]
fn options_inside_a_dialog_go_to_the_dialog_owner() {
    let mut harness = Harness::new(None);
    harness.owned.insert("opt3@phone".into());
    harness.receive(&request("OPTIONS", "opt3", Some("ours"), ""));
    assert!(harness.sent.is_empty());
    assert!(matches!(
        harness.owners.pop_front(),
        Some(Event::Request { request, .. }) if request.request.method == Method::Options
    ));
}

#[test]
fn an_unparseable_request_is_answered_400_unless_it_is_an_ack_or_unreadable() {
    let mut harness = Harness::new(None);
    let broken = request("INVITE", "bad1", None, "Subject: a\x00b\r\n");
    harness.receive(&broken);
    let refused = harness.response();
    assert_eq!(status(&refused), 400);
    assert_eq!(&*refused.reason, "Subject header holds a control character");
    // An ACK is never answered; neither is a message without a Call-ID,
    // nor a broken response.
    harness.receive(&request("ACK", "bad2", None, "Subject: a\x00b\r\n"));
    harness.receive("INVITE sip:x@127.0.0.1 SIP/2.0\r\nSubject: a\x00b\r\n\r\n");
    harness.receive("SIP/2.0 200 O\x00K\r\nCall-ID: c\r\n\r\n");
    assert!(harness.sent.is_empty());
    assert_eq!(harness.core.counters().unparseable(), 4);
    assert_eq!(harness.core.transactions(), (0, 0));
}

#[test]
fn invalid_requests_get_the_status_validation_decided_statelessly() {
    let mut harness = Harness::new(None);
    harness.receive(&request("FROB", "inv1", None, ""));
    assert_eq!(status(&harness.response()), 501);
    harness.receive(&request(
        "INVITE",
        "inv2",
        None,
        "Require: 100rel, replaces\r\n",
    ));
    let bad_extension = harness.response();
    assert_eq!(status(&bad_extension), 420);
    assert_eq!(
        header(&bad_extension, HeaderName::Unsupported).as_deref(),
        Some("100rel")
    );
    harness.receive(&request("INVITE", "inv3", None, "").replacen(
        "sip:frontdesk@",
        "mailto:frontdesk@",
        1,
    ));
    assert_eq!(status(&harness.response()), 416);
    assert_eq!(harness.core.transactions(), (0, 0));
    assert!(harness.application.is_empty());
}

// ---- answered through a transaction --------------------------------------

#[test]
fn a_method_the_application_does_not_serve_gets_405_with_allow() {
    let mut harness = Harness::new(None);
    harness.receive(&request("SUBSCRIBE", "sub1", None, ""));
    let refused = harness.response();
    assert_eq!(status(&refused), 405);
    assert_eq!(
        header(&refused, HeaderName::Allow).as_deref(),
        Some("INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, INFO")
    );
    assert!(harness.application.is_empty());
    // Answered through a transaction: a copy gets the same response.
    harness.receive(&request("SUBSCRIBE", "sub1", None, ""));
    let again = harness.response();
    assert_eq!(
        header(&again, HeaderName::To),
        header(&refused, HeaderName::To)
    );
}

#[test]
fn an_invite_with_max_forwards_0_gets_483() {
    let mut harness = Harness::new(None);
    harness.receive(&request("INVITE", "mf0", None, &with_max_forwards(0)));
    let refused = harness.response();
    assert_eq!(status(&refused), 483);
    assert_eq!(
        header(&refused, HeaderName::Server).as_deref(),
        Some("frontdesk-test")
    );
    assert!(harness.application.is_empty());
}

// ---- routing by Call-ID ---------------------------------------------------

#[test]
fn events_go_to_the_owner_of_their_call_id_and_new_requests_to_the_application() {
    let mut harness = Harness::new(None);
    harness.owned.insert("owned@phone".into());
    harness.receive(&request("BYE", "owned", Some("ours"), ""));
    assert_eq!(harness.owners.len(), 1);
    harness.receive(&request("REGISTER", "reg1", None, ""));
    let (transaction, register) = harness.application_request();
    assert_eq!(register.request.method, Method::Register);
    assert!(harness.sent.is_empty());
    harness.respond(transaction, &register, StatusCode::OK);
    let ok = harness.response();
    // The Server header is added when the owner left it out.
    assert_eq!(
        header(&ok, HeaderName::Server).as_deref(),
        Some("frontdesk-test")
    );
}

#[test]
fn a_request_inside_a_dialog_nobody_owns_gets_481() {
    let mut harness = Harness::new(None);
    harness.receive(&request("BYE", "gone", Some("old"), ""));
    assert_eq!(status(&harness.response()), 481);
    assert!(harness.application.is_empty());
}

#[test]
fn a_stray_ack_nobody_owns_is_dropped() {
    let mut harness = Harness::new(None);
    harness.receive(&request("ACK", "stray", Some("old"), ""));
    assert!(harness.sent.is_empty());
    assert!(harness.application.is_empty() && harness.owners.is_empty());
}

#[test]
fn when_the_application_has_no_room_a_new_request_gets_503_with_retry_after() {
    let mut harness = Harness::new(None);
    harness.application_room = 0;
    harness.receive(&request("REGISTER", "busy1", None, ""));
    let busy = harness.response();
    assert_eq!(status(&busy), 503);
    assert_eq!(header(&busy, HeaderName::RetryAfter).as_deref(), Some("5"));
}

// ---- our own requests -----------------------------------------------------

/// An OPTIONS from us to an agent's phone.
fn options_to_agent(call_id: &str) -> Request {
    let target = Uri::Sip(SipUri::new(
        Some("1003"),
        Host::V4(std::net::Ipv4Addr::LOCALHOST),
        Some(5080),
    ));
    let mut options = Request::new(Method::Options, target.clone());
    let mut from = NameAddr::new(Uri::Sip(SipUri::new(
        Some("frontdesk"),
        Host::V4(std::net::Ipv4Addr::LOCALHOST),
        None,
    )));
    from.params.set("tag", Some("us"));
    options.headers.push(HeaderName::From, from);
    options.headers.push(HeaderName::To, NameAddr::new(target));
    options.headers.push(HeaderName::CallId, call_id);
    options.headers.push(HeaderName::CSeq, "1 OPTIONS");
    options
}

fn agent() -> Peer {
    Peer::udp("127.0.0.1:5080".parse().expect("an address"))
}

#[test]
fn a_request_of_ours_is_retransmitted_in_virtual_time_until_timer_f_tells_its_owner() {
    let mut harness = Harness::new(None);
    harness.owned.insert("ping@us".into());
    let transaction = harness
        .core
        .send_request(harness.now, options_to_agent("ping@us"), agent())
        .expect("a new transaction");
    harness.drive();
    let first = harness.sent.pop_front().expect("the request");
    assert_eq!(first.peer, agent());
    assert_eq!(first.transaction, Some(transaction));
    let text = String::from_utf8_lossy(&first.bytes).into_owned();
    assert!(
        text.contains("\r\nUser-Agent: frontdesk-test\r\n"),
        "{text}"
    );
    // Timer E doubles up to T2, Timer F ends it at 64 × T1.
    harness.advance(T1 * 64);
    assert!(
        harness.sent.len() >= 5,
        "{} retransmissions",
        harness.sent.len()
    );
    assert!(harness.sent.iter().all(|again| again.bytes == first.bytes));
    assert!(matches!(
        harness.owners.pop_front(),
        Some(Event::Timeout { transaction: timed_out, .. }) if timed_out == transaction
    ));
    assert_eq!(harness.core.transactions(), (0, 0));
}

#[test]
fn a_transport_error_ends_our_request_and_tells_its_owner() {
    let mut harness = Harness::new(None);
    harness.owned.insert("tcp@us".into());
    let over_tcp = Peer {
        transport: TransportKind::Tcp,
        address: agent().address,
        connection: None,
    };
    let transaction = harness
        .core
        .send_request(harness.now, options_to_agent("tcp@us"), over_tcp)
        .expect("a new transaction");
    harness.drive();
    harness
        .core
        .handle_transport_error(harness.now, transaction);
    harness.drive();
    assert!(matches!(
        harness.owners.pop_front(),
        Some(Event::TransportError { transaction: failed, .. }) if failed == transaction
    ));
    assert_eq!(harness.core.transactions(), (0, 0));
}

#[test]
fn a_response_to_our_request_reaches_its_owner() {
    let mut harness = Harness::new(None);
    harness.owned.insert("answered@us".into());
    harness
        .core
        .send_request(harness.now, options_to_agent("answered@us"), agent())
        .expect("a new transaction");
    harness.drive();
    let sent = harness.sent.pop_front().expect("the request");
    let Ok(Frame::Message(Message::Request(options))) =
        parse_datagram(sent.bytes, &Limits::default())
    else {
        panic!("a request");
    };
    let ok = Response::to_request(&options.headers, StatusCode::OK, Some("phone"));
    harness
        .core
        .handle_inbound(harness.now, agent(), Ok(Message::Response(ok)));
    harness.drive();
    assert!(matches!(
        harness.owners.pop_front(),
        Some(Event::Response { response, .. }) if response.response.status == StatusCode::OK
    ));
    assert_eq!(
        harness.core.counters().response_count(Direction::In, 200),
        1
    );
}

// ---- admission control ----------------------------------------------------

#[test]
fn an_invite_past_the_threshold_gets_a_stateless_503_and_so_does_its_copy() {
    // Two places in set-up.
    let mut harness = Harness::new(Some(admission(2, 1_000.0)));
    harness.receive(&request("INVITE", "in1", None, ""));
    harness.receive(&request("INVITE", "in2", None, ""));
    assert_eq!(harness.application.len(), 2);
    assert_eq!(harness.core.held_permits(), 2);
    assert!(harness.responses().is_empty(), "only 100 Trying");
    let refused = request("INVITE", "in3", None, "");
    harness.receive(&refused);
    harness.receive(&refused);
    assert_eq!(harness.sent.len(), 2);
    assert_eq!(harness.sent[0].bytes, harness.sent[1].bytes, "same bytes");
    let busy = harness.responses().remove(0);
    assert_eq!(status(&busy), 503);
    assert_eq!(header(&busy, HeaderName::RetryAfter).as_deref(), Some("9"));
    assert_eq!(
        header(&busy, HeaderName::Server).as_deref(),
        Some("frontdesk-test")
    );
    // Nothing of it reached the application or the transaction layer.
    assert_eq!(harness.application.len(), 2);
    assert_eq!(harness.core.transactions(), (2, 0));
    let stats = harness.core.admission().expect("admission").stats();
    assert_eq!((stats.admitted, stats.refused_in_setup), (2, 1));
    assert_eq!(stats.refused_retransmission, 1);
}

#[test]
fn a_copy_of_an_admitted_invite_is_absorbed_not_admitted_again() {
    let mut harness = Harness::new(Some(admission(2, 1_000.0)));
    let invite = request("INVITE", "copy", None, "");
    harness.receive(&invite);
    harness.receive(&invite);
    assert_eq!(harness.application.len(), 1);
    let control = harness.core.admission().expect("admission");
    assert_eq!(control.stats().admitted, 1);
    assert_eq!(control.in_setup(), 1);
}

#[test]
fn an_admitted_invite_holds_its_place_until_its_owner_first_answers() {
    let mut harness = Harness::new(Some(admission(1, 1_000.0)));
    harness.receive(&request("INVITE", "first", None, ""));
    let (transaction, invite) = harness.application_request();
    harness.receive(&request("INVITE", "second", None, ""));
    assert_eq!(status(&harness.response()), 503, "no place left");
    // Ringing is the first answer: the place is free.
    harness.respond(transaction, &invite, StatusCode::RINGING);
    assert_eq!(status(&harness.response()), 180);
    assert_eq!(harness.core.held_permits(), 0);
    assert_eq!(harness.core.admission().expect("admission").in_setup(), 0);
    harness.receive(&request("INVITE", "third", None, ""));
    assert!(harness.responses().is_empty(), "admitted");
    assert_eq!(harness.application.len(), 1);
}

#[test]
fn a_cancelled_invite_gives_its_place_back() {
    let mut harness = Harness::new(Some(admission(1, 1_000.0)));
    harness.receive(&request("INVITE", "cx", None, ""));
    assert_eq!(harness.core.held_permits(), 1);
    harness.owned.insert("cx@phone".into());
    harness.receive(&request("CANCEL", "cx", None, ""));
    // 200 to the CANCEL, 487 to the INVITE, and the owner hears of it.
    let statuses: Vec<u16> = harness.responses().iter().map(status).collect();
    assert_eq!(statuses, [200, 487]);
    assert!(matches!(
        harness.owners.pop_front(),
        Some(Event::Cancelled { .. })
    ));
    assert_eq!(harness.core.held_permits(), 0);
    assert_eq!(harness.core.admission().expect("admission").in_setup(), 0);
}

#[test]
fn an_invite_the_core_answers_itself_gives_its_place_back() {
    let mut harness = Harness::new(Some(admission(1, 1_000.0)));
    harness.receive(&request("INVITE", "hops", None, &with_max_forwards(0)));
    assert_eq!(status(&harness.response()), 483);
    assert_eq!(harness.core.admission().expect("admission").in_setup(), 0);
    // The application too full to take one: 503, and the place is back.
    harness.application_room = 0;
    harness.receive(&request("INVITE", "full", None, ""));
    assert_eq!(status(&harness.response()), 503);
    assert_eq!(harness.core.admission().expect("admission").in_setup(), 0);
}

#[test]
fn a_place_never_given_back_expires_after_the_permit_lifetime() {
    let mut harness = Harness::new(Some(admission(1, 1_000.0)));
    harness.receive(&request("INVITE", "lost", None, ""));
    assert_eq!(harness.core.held_permits(), 1);
    // The owner never answers; the core wakes up to look.
    assert!(harness.core.poll_timeout().is_some());
    harness.advance(PERMIT_LIFETIME - Duration::from_secs(2));
    assert_eq!(harness.core.held_permits(), 1);
    harness.advance(Duration::from_secs(4));
    assert_eq!(harness.core.held_permits(), 0);
    assert_eq!(harness.core.admission().expect("admission").in_setup(), 0);
    // Nothing held: no more wake-ups for permits.
    assert_eq!(harness.core.poll_timeout(), None);
}

#[test]
fn an_urgent_line_is_admitted_past_the_threshold_that_refuses_routine_calls() {
    let mut harness = Harness::new(Some(admission(1, 1_000.0)));
    harness.receive(&request("INVITE", "routine1", None, ""));
    harness.receive(&request("INVITE", "routine2", None, ""));
    assert_eq!(status(&harness.response()), 503);
    harness.receive(&request_to("urgent", "INVITE", "urgent1", None, ""));
    assert!(harness.responses().is_empty(), "admitted");
    assert_eq!(harness.application.len(), 2);
    let stats = harness.core.admission().expect("admission").stats();
    assert_eq!(stats.admitted_urgent_over, 1);
}

#[test]
fn a_late_event_loop_cuts_the_admission_rate_and_new_calls_are_refused_for_rate() {
    let mut harness = Harness::new(Some(admission(1_000, 1_000.0)));
    let mut admitted = 0;
    // 1,000 calls/s offered while the loop runs 80 ms late.
    for n in 0..1_000 {
        harness.advance(Duration::from_millis(1));
        harness
            .core
            .observe_lag(harness.now, Duration::from_millis(80));
        harness.receive(&request("INVITE", &format!("lag{n}"), None, ""));
        if let Some(Event::Request {
            transaction,
            request,
            ..
        }) = harness.application.pop_front()
        {
            // Each call is answered at once: set-up is not the limit.
            harness.respond(transaction, &request, StatusCode::RINGING);
            admitted += 1;
        }
        harness.sent.clear();
    }
    let control = harness.core.admission().expect("admission");
    assert!(control.rate() < 1_000.0, "rate {}", control.rate());
    assert!(control.stats().refused_rate > 0);
    assert!(admitted < 1_000);
}
