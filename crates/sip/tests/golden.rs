//! Golden messages (`tests/data/golden/*.sip`, byte-exact, see the README
//! there): what SIPp and our peers send, parsed into typed values; and what
//! we build (responses from `Response::to_request`, a request from typed
//! headers), printed and compared byte for byte.

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use sip::message::validate::{self, Policy, ValidRequest};
use sip::message::{
    AuthParams, CSeq, Contact, DisplayName, HeaderName, Host, Message, Method, NameAddr, Request,
    Response, StatusCode, Transport, Uri, Via,
};
use support::{assert_round_trip, golden, parse_message};

const GOLDEN_INPUTS: [&str; 6] = [
    "invite_sdp",
    "register_digest",
    "ok_record_route",
    "unauthorized_two_challenges",
    "cancel",
    "options_ipv6",
];

fn request(name: &str) -> Request {
    match parse_message(golden(name)) {
        Message::Request(request) => request,
        Message::Response(response) => panic!("{name} is a response: {response:?}"),
    }
}

fn response(name: &str) -> Response {
    match parse_message(golden(name)) {
        Message::Response(response) => response,
        Message::Request(request) => panic!("{name} is a request: {request:?}"),
    }
}

fn valid(name: &str) -> ValidRequest {
    validate::request(request(name), &Policy::default())
        .unwrap_or_else(|(_, rejection)| panic!("{name} refused: {rejection:?}"))
}

/// Compares printed bytes with a golden file, showing both as text.
fn assert_bytes(printed: &Bytes, name: &str) {
    let expected = golden(name);
    assert!(
        printed == &expected,
        "{name}: printed\n{}\nexpected\n{}",
        String::from_utf8_lossy(printed),
        String::from_utf8_lossy(&expected)
    );
}

fn header<'a>(message: &'a Response, name: &HeaderName) -> &'a [u8] {
    message.headers.get(name).map_or(&b""[..], |v| &v[..])
}

#[test]
fn golden_files_are_crlf_and_correctly_framed() {
    for name in GOLDEN_INPUTS {
        let bytes = golden(name);
        let text = std::str::from_utf8(&bytes).expect("golden messages are UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("an empty line");
        assert!(
            !head.replace("\r\n", "").contains(['\r', '\n']),
            "{name}: no bare CR or LF in the head"
        );
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length");
        assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{name}");
    }
}

/// Canonical messages (full header names, `": "`, one Content-Length) print
/// back to exactly their bytes, and survive print → parse.
#[test]
fn golden_messages_print_back_byte_for_byte() {
    for name in GOLDEN_INPUTS {
        let message = parse_message(golden(name));
        let printed = assert_round_trip(&message);
        assert_bytes(&printed, name);
    }
}

#[test]
fn invite_with_sdp_as_sipp_sends_it() {
    let valid = valid("invite_sdp");
    let request = &valid.request;
    assert_eq!(request.method, Method::Invite);
    let uri = request.uri.as_sip().unwrap();
    assert!(!uri.secure);
    assert_eq!(uri.user.as_deref(), Some("5550100"));
    assert_eq!(uri.host, Host::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(uri.port, Some(5060));

    assert_eq!(valid.via.transport, Transport::Udp);
    assert_eq!(valid.via.host, Host::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(valid.via.port, Some(5061));
    assert_eq!(valid.via.branch(), Some("z9hG4bK-4242-1-0"));
    assert!(valid.via.has_rfc3261_branch());
    assert_eq!(valid.via.rport(), None);
    assert_eq!(valid.via.sent_by(), "127.0.0.1:5061");

    assert_eq!(valid.from.display.as_ref().unwrap().text(), "sipp caller");
    assert_eq!(valid.from.tag(), Some("4242SIPpTag001"));
    assert_eq!(valid.from.uri.to_string(), "sip:caller@127.0.0.1:5061");
    assert_eq!(valid.to.tag(), None);
    assert_eq!(valid.to.uri.to_string(), "sip:5550100@127.0.0.1:5060");
    assert_eq!(valid.call_id, "1-4242@127.0.0.1");
    assert_eq!(
        valid.cseq,
        CSeq {
            seq: 1,
            method: Method::Invite
        }
    );
    assert_eq!(valid.max_forwards, Some(70));

    let headers = &request.headers;
    let contacts = headers.contacts().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        contacts[0].address().unwrap().uri.to_string(),
        "sip:caller@127.0.0.1:5061"
    );
    assert!(
        headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp")
    );
    assert_eq!(
        headers.get(&HeaderName::Subject).map(|v| &v[..]),
        Some(&b"lab call"[..])
    );
    assert_eq!(
        headers.get(&HeaderName::UserAgent).map(|v| &v[..]),
        Some(&b"lab-sipp-uac"[..])
    );
    assert_eq!(headers.len(), 11);
    assert_eq!(request.body.len(), 210);
    assert!(request.body.starts_with(b"v=0\r\no=caller 53655765"));
    assert!(request.body.ends_with(b"a=ptime:20\r\na=sendrecv\r\n"));
}

#[test]
fn register_with_digest_credentials() {
    let valid = valid("register_digest");
    let request = &valid.request;
    assert_eq!(request.method, Method::Register);
    assert_eq!(request.uri.to_string(), "sip:127.0.0.1:5060");
    assert_eq!(valid.via.rport(), Some(None), "rport asked for");
    assert_eq!(valid.cseq.seq, 2);
    assert_eq!(valid.from.tag(), Some("5151SIPpTagReg1"));
    assert_eq!(
        valid.from.uri.as_sip().unwrap().user.as_deref(),
        Some("1001")
    );
    assert_eq!(request.headers.expires(), Ok(Some(3600)));

    let contacts = request.headers.contacts().unwrap();
    let Contact::Address(contact) = &contacts[0] else {
        panic!("not a wildcard")
    };
    assert_eq!(contact.uri.as_sip().unwrap().port, Some(6001));

    let credentials = request.headers.authorizations().unwrap();
    assert_eq!(credentials.len(), 1);
    let digest = &credentials[0];
    assert!(digest.is_digest());
    let expected = [
        ("username", "1001"),
        ("realm", "frontdesk"),
        ("cnonce", "6b8b4567"),
        ("nc", "00000001"),
        ("qop", "auth"),
        ("uri", "sip:127.0.0.1:5060"),
        ("nonce", "a4f2c1d0e9b8a7f6e5d4c3b2a1f0e9d8"),
        ("response", "7a04c57cd8ad1e5a8a4a4d0cc8fb151a"),
        ("algorithm", "MD5"),
    ];
    let params: Vec<(&str, &str)> = digest
        .params
        .iter()
        .map(|(name, value)| (&**name, &**value))
        .collect();
    assert_eq!(params, expected, "in order, values unquoted");
    assert_eq!(
        digest.get("Response"),
        Some("7a04c57cd8ad1e5a8a4a4d0cc8fb151a")
    );
    // SIPp writes no space after the commas; we print the usual ", ", with
    // qop, nc and algorithm as tokens (credentials).
    assert_eq!(
        digest.to_string(),
        "Digest username=\"1001\", realm=\"frontdesk\", cnonce=\"6b8b4567\", nc=00000001, \
         qop=auth, uri=\"sip:127.0.0.1:5060\", nonce=\"a4f2c1d0e9b8a7f6e5d4c3b2a1f0e9d8\", \
         response=\"7a04c57cd8ad1e5a8a4a4d0cc8fb151a\", algorithm=MD5"
    );
}

#[test]
fn ok_with_record_route() {
    let response = response("ok_record_route");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&*response.reason, "OK");
    let routes = response.headers.record_routes().unwrap();
    let uris: Vec<String> = routes.iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(
        uris,
        [
            "sip:192.0.2.10;lr",
            "sip:proxy.example.net;transport=tcp;lr",
            "sip:127.0.0.1:5060;lr;ftag=4242SIPpTag001",
        ],
        "both headers, every value, in order"
    );
    let second = routes[1].uri.as_sip().unwrap();
    assert_eq!(second.transport().as_deref(), Some("tcp"));
    assert!(second.params.contains("lr"));
    assert!(routes.iter().all(|r| r.params.is_empty()));
    assert_eq!(response.headers.supported().unwrap(), ["timer", "replaces"]);
    assert_eq!(
        header(&response, &HeaderName::Allow),
        b"INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
    );
    let contact = &response.headers.contacts().unwrap()[0];
    assert_eq!(
        contact
            .address()
            .unwrap()
            .uri
            .as_sip()
            .unwrap()
            .transport()
            .as_deref(),
        Some("udp")
    );
    assert_eq!(response.body.len(), 206);

    let valid = validate::response(response).unwrap();
    assert_eq!(valid.via.received(), Some("127.0.0.1"));
    assert_eq!(valid.to.tag(), Some("fd77a01"));
    assert_eq!(valid.from.tag(), Some("4242SIPpTag001"));
    assert_eq!(valid.call_id, "1-4242@127.0.0.1");
    assert_eq!(valid.cseq.method, Method::Invite);
}

#[test]
fn unauthorized_with_sha256_and_md5_challenges() {
    let response = response("unauthorized_two_challenges");
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let challenges = response.headers.www_authenticates().unwrap();
    assert_eq!(challenges.len(), 2);
    let algorithms: Vec<Option<&str>> = challenges.iter().map(|c| c.get("algorithm")).collect();
    assert_eq!(
        algorithms,
        [Some("SHA-256"), Some("MD5")],
        "preference order kept"
    );
    for challenge in &challenges {
        assert!(challenge.is_digest());
        assert_eq!(challenge.get("realm"), Some("frontdesk"));
        assert_eq!(
            challenge.get("nonce"),
            Some("a4f2c1d0e9b8a7f6e5d4c3b2a1f0e9d8")
        );
        assert_eq!(
            challenge.get("opaque"),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert_eq!(challenge.get("qop"), Some("auth"), "unquoted value");
    }
    // A challenge prints as it came: qop stays a quoted list.
    let raw: Vec<&[u8]> = response
        .headers
        .all(&HeaderName::WwwAuthenticate)
        .map(|h| &h.value[..])
        .collect();
    for (challenge, raw) in challenges.iter().zip(raw) {
        assert_eq!(challenge.to_string().as_bytes(), raw);
    }

    let valid = validate::response(response).unwrap();
    assert_eq!(valid.via.rport(), Some(Some(5062)));
    assert_eq!(valid.via.received(), Some("127.0.0.1"));
    assert_eq!(valid.to.tag(), Some("fd1a2b3c4d"));
    assert_eq!(valid.cseq.method, Method::Register);
}

#[test]
fn cancel_matches_its_invite() {
    let cancel = valid("cancel");
    let invite = valid("invite_sdp");
    assert_eq!(cancel.request.method, Method::Cancel);
    assert_eq!(cancel.cseq.method, Method::Cancel);
    // RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq number and
    // top Via as the INVITE it cancels.
    assert_eq!(cancel.request.uri, invite.request.uri);
    assert_eq!(cancel.call_id, invite.call_id);
    assert_eq!(cancel.from, invite.from);
    assert_eq!(cancel.to, invite.to);
    assert_eq!(cancel.cseq.seq, invite.cseq.seq);
    assert_eq!(cancel.via, invite.via);
    assert!(cancel.request.body.is_empty());
}

#[test]
fn options_over_ipv6() {
    let valid = valid("options_ipv6");
    let uri = valid.request.uri.as_sip().unwrap();
    let agent: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let monitor: Ipv6Addr = "2001:db8::9:1".parse().unwrap();
    assert_eq!(uri.host, Host::V6(agent));
    assert_eq!(uri.port, Some(5060));
    assert_eq!(uri.transport().as_deref(), Some("udp"));
    assert_eq!(uri.user.as_deref(), Some("frontdesk"));
    assert_eq!(valid.via.host, Host::V6(monitor));
    assert_eq!(valid.via.port, Some(5070));
    assert_eq!(valid.via.sent_by(), "[2001:db8::9:1]:5070");
    assert_eq!(valid.via.branch(), Some("z9hG4bK-ipv6-opt-1"));
    assert_eq!(valid.via.rport(), Some(None));
    assert_eq!(valid.from.uri.as_sip().unwrap().host, Host::V6(monitor));
    assert_eq!(valid.from.tag(), Some("a6c85cf"));
    assert_eq!(valid.to.uri.as_sip().unwrap().host, Host::V6(agent));
    assert_eq!(valid.call_id, "opt-6f2b1c@2001:db8::9:1");
    assert_eq!(valid.cseq.seq, 63104);
    assert_eq!(valid.cseq.method, Method::Options);
    let contacts = valid.request.headers.contacts().unwrap();
    assert_eq!(
        contacts[0].address().unwrap().uri.to_string(),
        "sip:monitor@[2001:db8::9:1]:5070"
    );
}

// ---------------------------------------------------------------------------
// What we build, printed byte for byte

#[test]
fn trying_copies_the_core_headers_and_adds_no_tag() {
    let invite = request("invite_sdp");
    let trying = Response::to_request(&invite.headers, StatusCode::TRYING, Some("fd77a01"));
    assert_bytes(&Message::Response(trying).encode(), "trying_to_invite");
}

#[test]
fn trying_copies_timestamp_and_nothing_else_does() {
    let mut invite = request("invite_sdp");
    invite.headers.push(HeaderName::Timestamp, "54.7 0.3");
    let trying = Response::to_request(&invite.headers, StatusCode::TRYING, None);
    assert_eq!(
        trying.headers.get(&HeaderName::Timestamp).map(|v| &v[..]),
        Some(&b"54.7 0.3"[..]),
        "RFC 3261 §8.2.6.1"
    );
    let ringing = Response::to_request(&invite.headers, StatusCode::RINGING, None);
    assert!(!ringing.headers.contains(&HeaderName::Timestamp));
    assert!(!ringing.headers.contains(&HeaderName::Subject));
    assert!(!ringing.headers.contains(&HeaderName::ContentType));
}

#[test]
fn ringing_adds_the_to_tag_and_a_contact() {
    let invite = request("invite_sdp");
    let mut ringing = Response::to_request(&invite.headers, StatusCode::RINGING, Some("fd77a01"));
    let contact = NameAddr::new(Uri::parse("sip:5550100@127.0.0.1:5060").unwrap());
    ringing.headers.push(HeaderName::Contact, contact);
    let printed = Message::Response(ringing).encode();
    assert_bytes(&printed, "ringing_to_invite");
    assert_round_trip(&parse_message(printed));
}

#[test]
fn ok_to_cancel() {
    let cancel = request("cancel");
    let ok = Response::to_request(&cancel.headers, StatusCode::OK, Some("fd77a01"));
    assert_bytes(&Message::Response(ok).encode(), "ok_to_cancel");
}

#[test]
fn a_to_tag_already_there_is_kept() {
    let ok = response("ok_record_route");
    let again = Response::to_request(&ok.headers, StatusCode::OK, Some("other"));
    assert_eq!(again.headers.to().unwrap().tag(), Some("fd77a01"));
}

#[test]
fn challenge_built_from_typed_parameters() {
    let register = request("register_digest");
    let mut challenge = Response::to_request(
        &register.headers,
        StatusCode::UNAUTHORIZED,
        Some("fd1a2b3c4d"),
    );
    let digest = |algorithm: &str| {
        AuthParams::new("Digest")
            .with("realm", "frontdesk")
            .with("nonce", "b5e1d2c3a4f50617")
            .with("algorithm", algorithm)
            .with("qop", "auth")
    };
    challenge
        .headers
        .push(HeaderName::WwwAuthenticate, digest("SHA-256"));
    challenge.headers.push(
        HeaderName::WwwAuthenticate,
        digest("MD5").with("stale", "true"),
    );
    assert_bytes(
        &Message::Response(challenge).encode(),
        "challenge_to_register",
    );
}

#[test]
fn request_built_from_typed_headers() {
    let target = Uri::parse("sip:1003@127.0.0.1:6003").unwrap();
    let mut options = Request::new(Method::Options, target.clone());
    let headers = &mut options.headers;
    headers.push(
        HeaderName::Via,
        Via::new(
            Transport::Udp,
            Host::V4(Ipv4Addr::LOCALHOST),
            5060,
            "z9hG4bK-fd-0001",
        ),
    );
    headers.push(HeaderName::MaxForwards, 70);
    let mut from = NameAddr::new(Uri::parse("sip:frontdesk@127.0.0.1").unwrap());
    from.display = Some(DisplayName::quoted("Riverside Family Health"));
    from.params.set("tag", Some("fd-tag-1"));
    headers.push(HeaderName::From, from);
    headers.push(HeaderName::To, NameAddr::new(target));
    headers.push(HeaderName::CallId, "fd-call-0001@127.0.0.1");
    headers.push(
        HeaderName::CSeq,
        CSeq {
            seq: 1,
            method: Method::Options,
        },
    );
    let printed = Message::Request(options).encode();
    assert_bytes(&printed, "options_to_agent");
    let valid = validate::request(
        match parse_message(printed) {
            Message::Request(request) => request,
            Message::Response(_) => unreachable!("printed a request"),
        },
        &Policy::default(),
    )
    .expect("what we build validates");
    assert_eq!(
        valid.from.display.unwrap().text(),
        "Riverside Family Health"
    );
}

#[test]
fn content_length_is_normalised_when_printing() {
    // A stale Content-Length (and a duplicate) print as one, matching the body.
    let mut invite = request("invite_sdp");
    invite.headers.set(HeaderName::ContentLength, 5);
    invite.headers.push(HeaderName::ContentLength, 5);
    invite.body = Bytes::from_static(b"v=0\r\n");
    let printed = Message::Request(invite).encode();
    let text = String::from_utf8_lossy(&printed);
    assert_eq!(text.matches("Content-Length").count(), 1);
    assert!(text.contains("Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"));
    assert!(text.ends_with("\r\n\r\nv=0\r\n"));
}
