//! The browser phone's user agent against the daemon's messages, written
//! by hand: ringing, answering, both hang-ups, CANCEL, a second call while
//! busy, hold, transfer, and a page that goes away ringing or talking.

use std::net::SocketAddr;

use bytes::Bytes;
use media::codec::Codec;
use serde_json::Value;
use sip::Peer;
use sip::message::validate::{Policy, ValidRequest};
use sip::message::{Frame, Limits, Message, parse_datagram};
use sip::transaction::{Event, ServerTransactionId};

use super::*;

const DAEMON: &str = "127.0.0.1:5070";
const RELAY: &str = "127.0.0.1:31000";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

fn request(text: &str) -> Box<ValidRequest> {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let wire = Bytes::from(format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n")));
    match parse_datagram(wire, &Limits::default()) {
        Ok(Frame::Message(Message::Request(request))) => Box::new(
            sip::message::validate::request(request, &Policy::default())
                .unwrap_or_else(|(_, rejection)| panic!("invalid: {}", rejection.reason)),
        ),
        other => panic!("not a request: {other:?}"),
    }
}

fn offer() -> String {
    let relay = addr(RELAY);
    format!(
        "v=0\r\no=f 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = relay.ip(),
        port = relay.port()
    )
}

fn invite(call_id: &str) -> Box<ValidRequest> {
    let sdp = offer();
    request(&format!(
        "INVITE sip:b-1@127.0.0.1:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP {DAEMON};branch=z9hG4bK{call_id}\n\
         From: \"Pediatrics · main-line · waited 0:42\" <sip:frontdesk@127.0.0.1>;tag=fd1\n\
         To: <sip:1003@127.0.0.1>\n\
         Call-ID: {call_id}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:frontdesk@{DAEMON}>\n\
         Max-Forwards: 70\n\
         X-Frontdesk-Queue: pediatrics\n\
         Content-Type: application/sdp\n\
         Content-Length: {}\n\n{sdp}",
        sdp.len()
    ))
}

fn in_dialog(method: &str, call_id: &str, seq: u32) -> Box<ValidRequest> {
    request(&format!(
        "{method} sip:b-1@127.0.0.1:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP {DAEMON};branch=z9hG4bK{method}{seq}\n\
         From: <sip:frontdesk@127.0.0.1>;tag=fd1\n\
         To: <sip:1003@127.0.0.1>;tag=theirs\n\
         Call-ID: {call_id}\n\
         CSeq: {seq} {method}\n\
         Max-Forwards: 70\n\
         Content-Length: 0\n\n"
    ))
}

struct Phone {
    ua: PhoneUa,
    actions: Vec<UaAction>,
    next: u64,
}

impl Phone {
    fn new() -> Phone {
        Phone {
            ua: PhoneUa::new(
                "<sip:b-1@127.0.0.1:5080>".into(),
                addr("127.0.0.1:32000"),
                Codec::Pcmu,
                7,
            ),
            actions: Vec::new(),
            next: 1,
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.ua.poll_action() {
            self.actions.push(action);
        }
    }

    fn transaction(&mut self) -> ServerTransactionId {
        self.next += 1;
        ServerTransactionId::from_raw(self.next)
    }

    fn sip(&mut self, request: Box<ValidRequest>) -> ServerTransactionId {
        let transaction = self.transaction();
        self.ua.sip(Event::Request {
            transaction,
            request,
            source: Peer::udp(addr(DAEMON)),
        });
        self.drain();
        transaction
    }

    fn page(&mut self, command: PageCommand) {
        self.ua.page(command);
        self.drain();
    }

    fn statuses(&self, of: ServerTransactionId) -> Vec<u16> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                UaAction::Respond {
                    transaction,
                    response,
                } if *transaction == of => Some(response.status.as_u16()),
                _ => None,
            })
            .collect()
    }

    fn pages(&self) -> Vec<Value> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                UaAction::Page(message) => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    fn sent(&self, method: &str) -> Vec<Request> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                UaAction::Send { request, .. } if request.method.as_str() == method => {
                    Some(request.clone())
                }
                _ => None,
            })
            .collect()
    }

    fn media(&self) -> Vec<Option<SocketAddr>> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                UaAction::Media(target) => Some(*target),
                _ => None,
            })
            .collect()
    }

    /// A call rung and answered on the page.
    fn talking() -> Phone {
        let mut phone = Phone::new();
        let invite = phone.sip(invite("c1"));
        phone.page(PageCommand::Answer("p1".into()));
        assert_eq!(phone.statuses(invite), [180, 200]);
        phone.ua.sip(Event::Ack {
            transaction: invite,
            ack: in_dialog("ACK", "c1", 1),
            source: Peer::udp(addr(DAEMON)),
        });
        phone
    }
}

#[test]
fn the_page_rings_then_answers_with_our_rtp_in_the_browsers_codec() {
    let mut phone = Phone::new();
    let invite = phone.sip(invite("c1"));
    assert_eq!(phone.statuses(invite), [180]);
    let pages = phone.pages();
    assert_eq!(pages[0]["type"], "ringing");
    assert_eq!(pages[0]["call"], "p1");
    assert_eq!(pages[0]["from"], "Pediatrics · main-line · waited 0:42");
    phone.page(PageCommand::Answer("p1".into()));
    assert_eq!(phone.statuses(invite), [180, 200]);
    let ok = phone
        .actions
        .iter()
        .find_map(|action| match action {
            UaAction::Respond { response, .. } if response.status.as_u16() == 200 => {
                Some(String::from_utf8_lossy(&response.body).into_owned())
            }
            _ => None,
        })
        .expect("a 200");
    assert!(ok.contains("m=audio 32000 RTP/AVP 0\r\n"), "{ok}");
    assert!(!ok.contains("telephone-event"), "{ok}");
    assert_eq!(phone.media(), [Some(addr(RELAY))]);
    assert_eq!(phone.pages().last().unwrap()["type"], "connected");
}

#[test]
fn the_daemons_bye_ends_it_and_the_pages_hang_up_sends_bye() {
    let mut phone = Phone::talking();
    let bye = phone.sip(in_dialog("BYE", "c1", 2));
    assert_eq!(phone.statuses(bye), [200]);
    assert_eq!(phone.pages().last().unwrap()["type"], "ended");
    assert_eq!(phone.media().last(), Some(&None));

    let mut phone = Phone::talking();
    phone.page(PageCommand::Hangup("p1".into()));
    let byes = phone.sent("BYE");
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].uri.to_string(), format!("sip:frontdesk@{DAEMON}"));
    assert_eq!(phone.pages().last().unwrap()["type"], "ended");
    // A command for a call that is over changes nothing.
    phone.page(PageCommand::Hangup("p1".into()));
    assert_eq!(phone.sent("BYE").len(), 1);
}

#[test]
fn a_cancel_stops_the_ringing_and_a_second_call_while_busy_gets_486() {
    let mut phone = Phone::new();
    let first = phone.sip(invite("c1"));
    let second = phone.sip(invite("c2"));
    assert_eq!(phone.statuses(second), [486]);
    phone.ua.sip(Event::Cancelled {
        transaction: first,
        call_id: "c1".into(),
    });
    phone.drain();
    let last = phone.pages().last().cloned().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["reason"].as_str()),
        (Some("stopped"), Some("cancelled"))
    );
    // Free again.
    let third = phone.sip(invite("c3"));
    assert_eq!(phone.statuses(third), [180]);
}

#[test]
fn decline_refuses_603() {
    let mut phone = Phone::new();
    let invite = phone.sip(invite("c1"));
    phone.page(PageCommand::Decline("p1".into()));
    assert_eq!(phone.statuses(invite), [180, 603]);
}

#[test]
fn hold_is_a_sendonly_reinvite_and_transfer_a_refer_without_subscription() {
    let mut phone = Phone::talking();
    phone.page(PageCommand::Hold("p1".into(), true));
    let reinvites = phone.sent("INVITE");
    assert_eq!(reinvites.len(), 1);
    let body = String::from_utf8_lossy(&reinvites[0].body).into_owned();
    assert!(body.contains("a=sendonly"), "{body}");
    assert_eq!(phone.pages().last().unwrap()["on"], true);
    // Holding twice sends nothing more.
    phone.page(PageCommand::Hold("p1".into(), true));
    assert_eq!(phone.sent("INVITE").len(), 1);

    phone.page(PageCommand::Transfer("p1".into(), "cardiology".into()));
    let refers = phone.sent("REFER");
    assert_eq!(refers.len(), 1);
    let refer_to = refers[0].headers.get(&HeaderName::ReferTo).unwrap();
    assert_eq!(
        &refer_to[..],
        format!("<sip:cardiology@{DAEMON}>").as_bytes()
    );
    let sub = refers[0]
        .headers
        .get(&HeaderName::Other(ByteString::from_static("Refer-Sub")))
        .unwrap();
    assert_eq!(&sub[..], b"false");
    // A target that is not a plain id is refused on the page, not sent.
    let mut phone = Phone::talking();
    phone.page(PageCommand::Transfer("p1".into(), "a@b;c".into()));
    assert!(phone.sent("REFER").is_empty());
    assert_eq!(phone.pages().last().unwrap()["ok"], false);
}

#[test]
fn a_page_gone_while_ringing_refuses_480_and_while_talking_sends_the_patient_back() {
    let mut phone = Phone::new();
    let invite = phone.sip(invite("c1"));
    phone.ua.page_gone();
    phone.drain();
    assert_eq!(phone.statuses(invite), [180, 480]);

    let mut phone = Phone::talking();
    phone.ua.page_gone();
    phone.drain();
    let refers = phone.sent("REFER");
    assert_eq!(refers.len(), 1, "back to the queue, not a BYE");
    assert!(phone.sent("BYE").is_empty());
    let refer_to = refers[0].headers.get(&HeaderName::ReferTo).unwrap();
    assert_eq!(
        &refer_to[..],
        format!("<sip:pediatrics@{DAEMON}>").as_bytes()
    );
    // The daemon then ends our leg.
    let bye = phone.sip(in_dialog("BYE", "c1", 2));
    assert_eq!(phone.statuses(bye), [200]);
}

#[test]
fn requests_for_no_call_get_481() {
    let mut phone = Phone::new();
    let bye = phone.sip(in_dialog("BYE", "nothing", 2));
    assert_eq!(phone.statuses(bye), [481]);
}
