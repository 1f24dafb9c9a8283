//! One test per RFC 4475 torture message (`tests/data/rfc4475/`), asserting
//! what the corpus README says each deserves.
//!
//! Accepted messages: the top-Via branch, From tag, To tag, Call-ID, CSeq
//! and body length are checked against values read off the message bytes
//! (hard-coded here, not computed by the parser under test), and the message
//! must print and parse back to itself. Refused messages: the response the
//! RFC names, from the framing ([`ParseError::status`]) or from
//! [`validate::request`]; responses that are malformed are dropped.

mod support;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use sip::message::validate::{self, Policy, Rejection, ValidRequest};
use sip::message::{
    Contact, Frame, HeaderName, Headers, Host, KeepAlive, Limits, Message, Method, ParseError,
    ParseErrorKind, Request, Response, StatusCode, StreamFramer, Uri, parse_datagram,
};
use support::{assert_round_trip, torture, torture_names};

// ---------------------------------------------------------------------------
// What a message must look like

/// The core of a message: what a transaction and a dialog key on.
#[derive(Debug, PartialEq)]
struct Core {
    branch: Option<String>,
    from_tag: Option<String>,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    method: Method,
    body: usize,
}

fn core(
    branch: Option<&str>,
    from_tag: Option<&str>,
    to_tag: Option<&str>,
    call_id: &str,
    cseq: u32,
    method: &str,
    body: usize,
) -> Core {
    Core {
        branch: branch.map(str::to_owned),
        from_tag: from_tag.map(str::to_owned),
        to_tag: to_tag.map(str::to_owned),
        call_id: call_id.to_owned(),
        cseq,
        method: Method::from_token(method),
        body,
    }
}

/// The core as the typed header views decode it.
fn core_of(headers: &Headers, body: &Bytes) -> Core {
    let via = headers.top_via().expect("top Via decodes");
    let from = headers.from().expect("From decodes");
    let to = headers.to().expect("To decodes");
    let cseq = headers.cseq().expect("CSeq decodes");
    Core {
        branch: via.branch().map(str::to_owned),
        from_tag: from.tag().map(str::to_owned),
        to_tag: to.tag().map(str::to_owned),
        call_id: headers.call_id().expect("Call-ID decodes").to_string(),
        cseq: cseq.seq,
        method: cseq.method,
        body: body.len(),
    }
}

/// The core as [`validate::request`] handed it over.
fn core_of_valid(valid: &ValidRequest) -> Core {
    Core {
        branch: valid.via.branch().map(str::to_owned),
        from_tag: valid.from.tag().map(str::to_owned),
        to_tag: valid.to.tag().map(str::to_owned),
        call_id: valid.call_id.to_string(),
        cseq: valid.cseq.seq,
        method: valid.cseq.method.clone(),
        body: valid.request.body.len(),
    }
}

// ---------------------------------------------------------------------------
// Outcomes

/// Parses a corpus message as a UDP datagram; it must frame and parse, and
/// it must survive print → parse.
fn parsed(name: &str) -> Message {
    let message = match parse_datagram(torture(name), &Limits::default()) {
        Ok(Frame::Message(message)) => message,
        other => panic!("{name}: expected a message, got {other:?}"),
    };
    assert_round_trip(&message);
    message
}

fn parsed_request(name: &str) -> Request {
    match parsed(name) {
        Message::Request(request) => request,
        Message::Response(response) => panic!("{name}: expected a request, got {response:?}"),
    }
}

fn parsed_response(name: &str) -> Response {
    match parsed(name) {
        Message::Response(response) => response,
        Message::Request(request) => panic!("{name}: expected a response, got {request:?}"),
    }
}

/// A request fit to act on: parsed, validated, and printable.
fn accepted(name: &str, expected: Core) -> ValidRequest {
    let request = parsed_request(name);
    assert_eq!(core_of(&request.headers, &request.body), expected, "{name}");
    let valid = match validate::request(request, &Policy::default()) {
        Ok(valid) => valid,
        Err((_, rejection)) => panic!("{name}: refused with {rejection:?}"),
    };
    assert_eq!(core_of_valid(&valid), expected, "{name}");
    valid
}

/// A request that parses but is refused by validation with `status`. The
/// refusal is printed as an answer and must itself parse.
fn refused_by_validation(name: &str, status: u16) -> (Request, Rejection) {
    let request = parsed_request(name);
    let (request, rejection) = match validate::request(request, &Policy::default()) {
        Ok(valid) => panic!("{name}: accepted, expected {status}: {valid:?}"),
        Err(refused) => refused,
    };
    assert_eq!(rejection.status.as_u16(), status, "{name}: {rejection:?}");
    assert!(
        rejection.answer,
        "{name}: a refused non-ACK request is answered"
    );
    assert!(
        !rejection.reason.is_empty(),
        "{name}: the reason is precise"
    );
    let answer = answer(&request.headers, &rejection);
    assert_eq!(answer.status.as_u16(), status);
    (request, rejection)
}

/// Builds the response a rejection asks for, as the transaction layer will,
/// prints it, and parses the print back.
fn answer(headers: &Headers, rejection: &Rejection) -> Response {
    let mut response = Response::to_request(headers, rejection.status, Some("fd-reject"))
        .with_reason(&rejection.reason);
    if !rejection.unsupported.is_empty() {
        let tags: Vec<&str> = rejection.unsupported.iter().map(|t| &**t).collect();
        response
            .headers
            .push(HeaderName::Unsupported, tags.join(", "));
    }
    match support::parse_message(Message::Response(response.clone()).encode()) {
        Message::Response(printed) => {
            assert_eq!(printed.status, rejection.status);
            assert_eq!(printed.reason, response.reason);
            printed
        }
        Message::Request(request) => panic!("an answer printed as a request: {request:?}"),
    }
}

/// A message refused by the framing or the start line. Returns the error.
fn refused_by_parser(name: &str, status: u16) -> ParseError {
    let error = match parse_datagram(torture(name), &Limits::default()) {
        Ok(frame) => panic!("{name}: parsed, expected a refusal: {frame:?}"),
        Err(error) => error,
    };
    assert_eq!(error.status().as_u16(), status, "{name}: {error:?}");
    error
}

/// A request refused by the parser with its headers still available, so it
/// can be answered: the answer copies its Call-ID.
fn refused_with_headers(name: &str, status: u16, call_id: &str) -> ParseError {
    let error = refused_by_parser(name, status);
    let headers = error
        .request_headers
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: the request headers are available: {error:?}"));
    assert_eq!(headers.call_id().expect("Call-ID decodes"), call_id);
    let rejection = Rejection {
        status: error.status(),
        reason: error.to_string(),
        unsupported: Vec::new(),
        answer: true,
    };
    let response = answer(headers, &rejection);
    assert_eq!(response.headers.call_id().unwrap(), call_id);
    error
}

/// A response that must be dropped: it parses but its core headers do not
/// decode, so `validate::response` discards it.
fn discarded_response(name: &str) -> Response {
    let response = parsed_response(name);
    let kept = response.clone();
    assert!(
        validate::response(response).is_err(),
        "{name}: a malformed response is discarded"
    );
    kept
}

/// Feeds the corpus bytes to a stream framer, in chunks of 7 bytes.
fn stream(name: &str) -> Vec<Result<Frame, ParseError>> {
    let bytes = torture(name);
    let mut framer = StreamFramer::new(Limits::default());
    let mut frames = Vec::new();
    for chunk in bytes.chunks(7) {
        framer.extend(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => frames.push(Ok(frame)),
                Ok(None) => break,
                Err(error) => {
                    frames.push(Err(error));
                    return frames;
                }
            }
        }
    }
    frames
}

fn sip_uri(uri: &Uri) -> &sip::message::SipUri {
    uri.as_sip()
        .unwrap_or_else(|| panic!("expected a SIP URI: {uri:?}"))
}

fn contact_uris(headers: &Headers) -> Vec<Uri> {
    headers
        .contacts()
        .expect("Contact decodes")
        .iter()
        .map(|c| c.address().expect("not a wildcard").uri.clone())
        .collect()
}

// ---------------------------------------------------------------------------
// The corpus itself

#[test]
fn corpus_is_intact() {
    let sums = support::fixture("rfc4475", "SHA256SUMS");
    let sums = std::str::from_utf8(&sums).expect("SHA256SUMS is text");
    let mut checked = Vec::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, file) = line.split_once("  ").expect("`<hash>  <file>` lines");
        let actual = Sha256::digest(support::fixture("rfc4475", file));
        let actual: String = actual.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            actual, hash,
            "{file} changed: its bytes are data, never edit them"
        );
        checked.push(file.trim_end_matches(".dat").to_owned());
    }
    checked.sort();
    assert_eq!(checked.len(), 50);
    assert_eq!(checked, torture_names(), "SHA256SUMS lists every .dat file");
}

#[test]
fn no_message_panics_as_a_datagram_or_on_a_stream() {
    for name in torture_names() {
        let outcome = parse_datagram(torture(&name), &Limits::default());
        if let Ok(Frame::Message(Message::Request(request))) = outcome {
            let _ = validate::request(request, &Policy::default());
        } else if let Ok(Frame::Message(Message::Response(response))) = outcome {
            let _ = validate::response(response);
        }
        let _ = stream(&name);
    }
}

// ---------------------------------------------------------------------------
// §3.1.1 Valid messages: the parser must accept them

/// §3.1.1.1: folding, LWS around `:` and `;`, compact and odd-case names.
#[test]
fn wsinv() {
    let valid = accepted(
        "wsinv",
        core(
            Some("390skdjuw"),
            Some("98asjd8"),
            Some("1918181833n"),
            "wsinv.ndaksdj@192.0.2.1",
            9,
            "INVITE",
            150,
        ),
    );
    let request = &valid.request;
    assert_eq!(request.method, Method::Invite);
    let uri = sip_uri(&request.uri);
    assert_eq!(uri.user.as_deref(), Some("vivekg"));
    assert_eq!(uri.host.to_string(), "chair-dnrc.example.com");
    assert_eq!(uri.params.get("unknownparam"), Some(None));
    assert_eq!(valid.max_forwards, Some(68));
    assert_eq!(
        valid.from.display.as_ref().unwrap().text(),
        r#"J Rosenberg \""#
    );

    let vias = request.headers.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport.as_str(), "UDP");
    assert_eq!(vias[0].host.to_string(), "192.0.2.2");
    assert_eq!(vias[1].transport.as_str(), "TCP");
    assert_eq!(vias[1].host.to_string(), "spindle.example.com");
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host.to_string(), "192.168.255.111");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));

    let contacts = request.headers.contacts().unwrap();
    let contact = contacts[0].address().unwrap();
    assert_eq!(
        contact.display.as_ref().unwrap().text(),
        r#"Quoted string """#
    );
    assert_eq!(contact.params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.params.get("secondparam"), Some(None));
    assert_eq!(contact.params.get("q"), Some(Some("0.33")));

    let routes = request.headers.routes().unwrap();
    assert_eq!(routes.len(), 1);
    let route = sip_uri(&routes[0].uri);
    assert!(route.params.contains("lr"));
    assert_eq!(route.params.get("unknownwith"), Some(Some("value")));
    assert_eq!(route.params.get("unknown-no-value"), Some(None));

    assert!(
        request
            .headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp")
    );
    assert_eq!(
        request.headers.get(&HeaderName::Subject).map(|v| &v[..]),
        Some(&b""[..]),
        "`s :` is an empty Subject"
    );
    assert_eq!(
        request
            .headers
            .get(&HeaderName::from_token("NewFangledHeader"))
            .map(|v| &v[..]),
        Some(&b"newfangled value\r\n continued newfangled value"[..])
    );
    assert_eq!(
        request
            .headers
            .get(&HeaderName::from_token("UnknownHeaderWithUnusualValue"))
            .map(|v| &v[..]),
        Some(&b";;,,;;,;"[..])
    );
}

/// §3.1.1.2: every valid character; the method is unknown (501 at a UAS).
#[test]
fn intmeth() {
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    let (request, rejection) = refused_by_validation("intmeth", 501);
    assert!(rejection.unsupported.is_empty());
    assert_eq!(request.method, Method::from_token(method));
    assert!(request.method.is_extension());
    assert_eq!(
        core_of(&request.headers, &request.body),
        core(
            Some("z9hG4bK-.!%66*_+`'~"),
            Some("_token~1'+`*%!-."),
            None,
            r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#,
            139122385,
            method,
            0,
        )
    );
    let uri = sip_uri(&request.uri);
    assert_eq!(
        uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(uri.host.to_string(), "example.com");

    let to = request.headers.to().unwrap();
    assert_eq!(
        to.display.as_ref().unwrap().text(),
        "BEL:\u{7} NUL:\u{0} DEL:\u{7f}"
    );
    assert_eq!(
        sip_uri(&to.uri).user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    let from = request.headers.from().unwrap();
    assert_eq!(
        from.display.as_ref().unwrap().text(),
        "token1~` token2'+_ token3*%!.-"
    );
    assert_eq!(
        from.params.get("fromParam''~+*_!.-%"),
        Some(Some("\"работающий\""))
    );
    assert_eq!(request.headers.max_forwards(), Ok(Some(255)));
    assert_eq!(
        request
            .headers
            .get(&HeaderName::from_token("extensionHeader-!.%*+_`'~"))
            .map(|v| &v[..]),
        Some("\u{feff}大停電".as_bytes())
    );
}

/// §3.1.1.3: escapes stand for the character, undone exactly once.
#[test]
fn esc01() {
    let valid = accepted(
        "esc01",
        core(
            Some("z9hG4bKkdjuw"),
            Some("938"),
            None,
            "esc01.239409asdfakjkn23onasd0-3234",
            234234,
            "INVITE",
            150,
        ),
    );
    let uri = sip_uri(&valid.request.uri);
    assert_eq!(uri.user.as_deref(), Some("sips%3Auser%40example.com"));
    assert_eq!(
        uri.user_unescaped().as_deref(),
        Some(&b"sips:user@example.com"[..])
    );
    assert_eq!(uri.host.to_string(), "example.net");
    assert_eq!(
        sip_uri(&valid.to.uri).user_unescaped().as_deref(),
        Some(&b"user"[..])
    );
    assert_eq!(
        sip_uri(&valid.from.uri).user_unescaped().as_deref(),
        Some(&b"I have spaces"[..])
    );

    let contacts = contact_uris(&valid.request.headers);
    assert_eq!(contacts.len(), 1);
    let contact = sip_uri(&contacts[0]);
    assert_eq!(contact.user_unescaped().as_deref(), Some(&b"caller"[..]));
    assert_eq!(contact.host.to_string(), "host5.example.net");
    assert!(contact.params.contains("lr"), "%6C%72 is lr");
    let value = contact
        .params
        .get("name")
        .flatten()
        .expect("n%61me is name");
    assert_eq!(value, "v%61lue%25%34%31", "kept as written");
    assert_eq!(
        &*sip::message::uri::unescape(value),
        b"value%41",
        "unescaped once, never twice (not valueA)"
    );
    assert!(
        valid
            .request
            .headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp"),
        "`C:` is the compact Content-Type"
    );
}

/// §3.1.1.4: `%00` in user parts; unescaping keeps the NULs.
#[test]
fn escnull() {
    let valid = accepted(
        "escnull",
        core(
            Some("z9hG4bKkdjuw"),
            Some("839923423"),
            None,
            "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
            14398234,
            "REGISTER",
            0,
        ),
    );
    for address in [&valid.to, &valid.from] {
        assert_eq!(
            sip_uri(&address.uri).user_unescaped().as_deref(),
            Some(&b"null-\0-null"[..])
        );
    }
    let contacts = contact_uris(&valid.request.headers);
    let users: Vec<Vec<u8>> = contacts
        .iter()
        .map(|uri| sip_uri(uri).user_unescaped().unwrap().into_owned())
        .collect();
    assert_eq!(
        users,
        [b"\0".to_vec(), b"\0\0".to_vec()],
        "two distinct contacts"
    );
}

/// §3.1.1.5: `%` that is not an escape: unknown method, unknown header.
#[test]
fn esc02() {
    let (request, _) = refused_by_validation("esc02", 501);
    assert_eq!(request.method, Method::from_token("RE%47IST%45R"));
    assert_ne!(request.method, Method::Register);
    assert_eq!(
        core_of(&request.headers, &request.body),
        core(
            Some("z9hG4bK209%fzsnel234"),
            Some("f232jadfj23"),
            None,
            "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
            29344,
            "RE%47IST%45R",
            0,
        )
    );
    let hosts: Vec<String> = contact_uris(&request.headers)
        .iter()
        .map(|uri| sip_uri(uri).host.to_string())
        .collect();
    assert_eq!(
        hosts,
        ["host1.example.com", "host3.example.com"],
        "two Contacts, not three"
    );
    assert_eq!(
        request
            .headers
            .get(&HeaderName::from_token("C%6Fntact"))
            .map(|v| &v[..]),
        Some(&b"<sip:alias2@host2.example.com>"[..])
    );
    assert_eq!(
        request.headers.to().unwrap().display.unwrap().text(),
        "%Z%45"
    );
}

/// §3.1.1.6: no LWS between a token display name and `<`.
#[test]
fn lwsdisp() {
    let valid = accepted(
        "lwsdisp",
        core(
            Some("z9hG4bKkdjuw"),
            Some("323"),
            None,
            "lwsdisp.1234abcd@funky.example.com",
            60,
            "OPTIONS",
            0,
        ),
    );
    assert_eq!(valid.from.display.as_ref().unwrap().text(), "caller");
    assert_eq!(sip_uri(&valid.from.uri).user.as_deref(), Some("caller"));
}

/// §3.1.1.7: long values; 34 Vias under every spelling of Via and v.
#[test]
fn longreq() {
    let tag = format!("12{}424", "982".repeat(50));
    let call_id = format!("longreq.one{}longcallid", "really".repeat(20));
    let valid = accepted(
        "longreq",
        core(None, Some(&tag), None, &call_id, 3882340, "INVITE", 150),
    );
    let headers = &valid.request.headers;
    let vias = headers.vias().unwrap();
    assert_eq!(vias.len(), 34);
    let hosts: Vec<String> = vias.iter().map(|v| v.host.to_string()).collect();
    let mut expected: Vec<String> = (1..=33)
        .rev()
        .map(|n| format!("sip{n}.example.com"))
        .collect();
    expected.push("host.example.com".into());
    assert_eq!(hosts, expected);
    assert!(vias.iter().all(|v| v.transport.as_str() == "TCP"));
    let last = &vias[33];
    assert_eq!(last.received(), Some("192.0.2.5"));
    assert_eq!(
        last.branch(),
        Some(format!("very{}branchvalue", "long".repeat(50)).as_str())
    );
    assert_eq!(
        valid.to.display.as_ref().unwrap().text(),
        format!("I have a user name of {} proportion", "extreme".repeat(10))
    );
    let to = sip_uri(&valid.to.uri);
    assert_eq!(to.port, Some(6000));
    assert_eq!(
        to.params.get("unknownparam1"),
        Some(Some(format!("very{}value", "long".repeat(20)).as_str()))
    );
    assert_eq!(
        to.params.get(&format!("longparam{}", "name".repeat(25))),
        Some(Some("shortvalue"))
    );
    assert_eq!(
        to.params.get(&format!(
            "very{}ParameterNameWithNoValue",
            "long".repeat(25)
        )),
        Some(None)
    );
    let from_user = "amazinglylongcallername".repeat(5);
    assert_eq!(sip_uri(&valid.from.uri).user.as_deref(), Some(&*from_user));
    assert_eq!(
        valid
            .from
            .params
            .get(&format!("unknownheaderparam{}", "name".repeat(20))),
        Some(Some(
            format!("unknowheaderparam{}", "value".repeat(15)).as_str()
        ))
    );
    assert_eq!(
        valid
            .from
            .params
            .get(&format!("unknownValueless{}", "paramname".repeat(10))),
        Some(None)
    );
    let unknown = HeaderName::from_token(&format!("Unknown-{}-Name", "Long".repeat(20)));
    assert!(headers.contains(&unknown));
    assert_eq!(
        sip_uri(&contact_uris(headers)[0]).user.as_deref(),
        Some(&*from_user)
    );
}

/// §3.1.1.8: extra octets after a Content-Length 0 REGISTER are ignored.
#[test]
fn dblreq() {
    let valid = accepted(
        "dblreq",
        core(
            Some("z9hG4bKkdjuw23492"),
            Some("43251j3j324"),
            None,
            "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
            8,
            "REGISTER",
            0,
        ),
    );
    assert_eq!(valid.request.method, Method::Register);
    assert!(
        valid.request.body.is_empty(),
        "trailing bytes are not the body"
    );
    let printed = Message::Request(valid.request.clone()).encode();
    let printed = String::from_utf8_lossy(&printed);
    assert!(
        !printed.contains("INVITE"),
        "nothing of the trailing request is forwarded"
    );
    assert!(!printed.contains("joe@example.com"));

    // On a stream the same bytes are the REGISTER, a CRLF keep-alive (the
    // empty line between them), then the INVITE; its Content-Length (150)
    // is 5 bytes short of what follows, so the framing is then lost.
    let frames = stream("dblreq");
    let kinds: Vec<String> = frames
        .iter()
        .map(|frame| match frame {
            Ok(Frame::Message(Message::Request(request))) => request.method.to_string(),
            Ok(Frame::KeepAlive(keep_alive)) => format!("{keep_alive:?}"),
            Ok(Frame::Message(Message::Response(response))) => panic!("{response:?}"),
            Err(error) => format!("{:?}", error.kind),
        })
        .collect();
    assert_eq!(
        kinds,
        ["REGISTER", "Pong", "INVITE", "MissingContentLength"]
    );
    let Ok(Frame::Message(Message::Request(invite))) = &frames[2] else {
        unreachable!("checked above")
    };
    assert_eq!(invite.body.len(), 150);
}

/// §3.1.1.9: `;` in the Request-URI user part, with an escaped `@`.
#[test]
fn semiuri() {
    let valid = accepted(
        "semiuri",
        core(
            Some("z9hG4bKkdjuw"),
            Some("33242"),
            None,
            "semiuri.0ha0isndaksdj",
            8,
            "OPTIONS",
            0,
        ),
    );
    let uri = sip_uri(&valid.request.uri);
    assert_eq!(uri.user.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(
        uri.user_unescaped().as_deref(),
        Some(&b"user;par=u@example.net"[..])
    );
    assert_eq!(uri.host.to_string(), "example.com");
    assert!(uri.params.is_empty(), "the `;par` belongs to the user part");
    let accept: Vec<&Bytes> = valid
        .request
        .headers
        .all(&HeaderName::Accept)
        .map(|h| &h.value)
        .collect();
    assert_eq!(accept.len(), 1, "a folded header is one header");
    assert!(accept[0].ends_with(b"message/sip, message/sipfrag"));
}

/// §3.1.1.10: UDP, SCTP, TLS, an unknown transport and TCP.
#[test]
fn transports() {
    let valid = accepted(
        "transports",
        core(
            Some("z9hG4bKkdjuw"),
            Some("323"),
            None,
            "transports.kijh4akdnaqjkwendsasfdj",
            60,
            "OPTIONS",
            0,
        ),
    );
    let vias = valid.request.headers.vias().unwrap();
    let seen: Vec<(String, String, Option<String>)> = vias
        .iter()
        .map(|v| {
            (
                v.transport.as_str().to_owned(),
                v.host.to_string(),
                v.branch().map(str::to_owned),
            )
        })
        .collect();
    let expected = [
        ("UDP", "t1.example.com", "z9hG4bKkdjuw"),
        ("SCTP", "t2.example.com", "z9hG4bKklasjdhf"),
        ("TLS", "t3.example.com", "z9hG4bK2980unddj"),
        ("UNKNOWN", "t4.example.com", "z9hG4bKasd0f3en"),
        ("TCP", "t5.example.com", "z9hG4bK0a9idfnee"),
    ]
    .map(|(t, h, b)| (t.to_owned(), h.to_owned(), Some(b.to_owned())));
    assert_eq!(seen, expected);
    assert!(vias[0].transport == sip::message::Transport::Udp);
    assert!(vias[4].transport == sip::message::Transport::Tcp);
}

/// §3.1.1.11: a binary multipart body of exactly Content-Length (553) bytes.
#[test]
fn mpart01() {
    let valid = accepted(
        "mpart01",
        core(
            Some("z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-"),
            Some("2fb0dcc9"),
            None,
            "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
            1,
            "MESSAGE",
            553,
        ),
    );
    assert_eq!(valid.request.method, Method::Message);
    assert_eq!(valid.via.rport(), Some(None));
    let body = &valid.request.body;
    assert!(body.starts_with(b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\n"));
    assert!(body.ends_with(b"\r\n--7a9cbec02ceef655--\r\n"));
    assert!(body.contains(&0), "the binary part holds NUL");
    assert!(
        body.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'),
        "and a bare CR"
    );
    assert!(
        body.windows(2).any(|w| w[0] != b'\r' && w[1] == b'\n'),
        "and a bare LF"
    );
    let file = torture("mpart01");
    assert_eq!(
        &file[file.len() - 553..],
        &body[..],
        "the body is the file's tail"
    );
    let content_type = valid.request.headers.content_type().unwrap().unwrap();
    assert!(content_type.is("multipart", "mixed"));
    assert_eq!(
        content_type.params.get("boundary"),
        Some(Some("7a9cbec02ceef655"))
    );
    assert_eq!(valid.request.headers.routes().unwrap().len(), 1);
}

/// §3.1.1.12: a reason phrase in UTF-8.
#[test]
fn unreason() {
    let response = parsed_response("unreason");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        &*response.reason,
        "= 2**3 * 5**2 но сто девяносто девять - простое"
    );
    assert_eq!(
        core_of(&response.headers, &response.body),
        core(
            Some("z9hG4bK1324923"),
            Some("11141343"),
            Some("2229"),
            "unreason.1234ksdfak3j2erwedfsASdf",
            35,
            "INVITE",
            154,
        )
    );
    assert!(validate::response(response).is_ok());
}

/// §3.1.1.13: `SIP/2.0 100 ` with an empty reason phrase.
#[test]
fn noreason() {
    let response = parsed_response("noreason");
    assert_eq!(response.status, StatusCode::TRYING);
    assert_eq!(&*response.reason, "");
    assert_eq!(
        core_of(&response.headers, &response.body),
        core(
            Some("z9hG4bK2398ndaoe"),
            Some("39ansfi3"),
            Some("902jndnke3"),
            "noreason.asndj203insdf99223ndf",
            35,
            "INVITE",
            0,
        )
    );
    let printed = Message::Response(response.clone()).encode();
    assert!(printed.starts_with(b"SIP/2.0 100 \r\n"));
    assert!(validate::response(response).is_ok());
}

// ---------------------------------------------------------------------------
// §3.1.2 Invalid messages

/// §3.1.2.1: empty `;` and `,` elements in Via and Contact → 400.
#[test]
fn badinv01() {
    let (_, rejection) = refused_by_validation("badinv01", 400);
    assert!(rejection.reason.contains("Via"), "{rejection:?}");
}

/// §3.1.2.2: Content-Length larger than the datagram → 400 on UDP; a
/// stream waits for the missing bytes.
#[test]
fn clerr() {
    let error = refused_with_headers("clerr", 400, "clerr.0ha0isndaksdjweiafasdk3");
    assert_eq!(error.kind, ParseErrorKind::BodyTruncated);
    let frames = stream("clerr");
    assert!(
        frames.is_empty(),
        "a stream waits for 9999 bytes: {frames:?}"
    );
}

/// §3.1.2.3: negative Content-Length → refused, on UDP and on a stream.
#[test]
fn ncl() {
    let error = refused_with_headers("ncl", 400, "ncl.0ha0isndaksdj2193423r542w35");
    assert!(matches!(error.kind, ParseErrorKind::BadContentLength(_)));
    let frames = stream("ncl");
    assert!(
        matches!(
            frames.as_slice(),
            [Err(ParseError {
                kind: ParseErrorKind::BadContentLength(_),
                request_headers: Some(_)
            })]
        ),
        "{frames:?}"
    );
}

/// §3.1.2.4: CSeq beyond 2³²−1 → 400 (Max-Forwards 300 and a huge Expires
/// are not what refuses it).
#[test]
fn scalar02() {
    let (request, rejection) = refused_by_validation("scalar02", 400);
    assert!(rejection.reason.contains("CSeq"), "{rejection:?}");
    assert!(request.headers.cseq().is_err());
    assert_eq!(
        request.headers.expires(),
        Ok(Some(u32::MAX)),
        "Expires saturates"
    );
    assert!(request.headers.max_forwards().is_err());
}

/// §3.1.2.5: a response with overlarge scalars is dropped.
#[test]
fn scalarlg() {
    let response = discarded_response("scalarlg");
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers.cseq().is_err());
}

/// §3.1.2.6: unterminated quoted string in To → 400.
#[test]
fn quotbal() {
    let (_, rejection) = refused_by_validation("quotbal", 400);
    assert!(rejection.reason.contains("To"), "{rejection:?}");
}

/// §3.1.2.7: `<>` around the Request-URI → 400, headers kept for the answer.
#[test]
fn ltgtruri() {
    let error = refused_with_headers("ltgtruri", 400, "ltgtruri.1@192.0.2.5");
    assert!(matches!(error.kind, ParseErrorKind::BadStartLine(_)));
}

/// §3.1.2.8: LWS inside the Request-URI → 400.
#[test]
fn lwsruri() {
    let error = refused_with_headers(
        "lwsruri",
        400,
        "lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423",
    );
    assert!(matches!(error.kind, ParseErrorKind::BadStartLine(_)));
}

/// §3.1.2.9: extra SP between the request-line elements: tolerated, and
/// never forwarded.
#[test]
fn lwsstart() {
    let valid = accepted(
        "lwsstart",
        core(
            Some("z9hG4bKkdjuw3923"),
            Some("8814"),
            None,
            "lwsstart.dfknq234oi243099adsdfnawe3@example.com",
            1893884,
            "INVITE",
            150,
        ),
    );
    let printed = Message::Request(valid.request).encode();
    assert!(printed.starts_with(b"INVITE sip:user@example.com SIP/2.0\r\n"));
}

/// §3.1.2.10: SP after the version: tolerated, and never forwarded.
#[test]
fn trws() {
    let valid = accepted(
        "trws",
        core(
            Some("z9hG4bK299342093"),
            Some("329429089"),
            None,
            "trws.oicu34958239neffasdhr2345r",
            238923,
            "OPTIONS",
            0,
        ),
    );
    let printed = Message::Request(valid.request).encode();
    assert!(printed.starts_with(b"OPTIONS sip:remote-target@example.com SIP/2.0\r\n"));
}

/// §3.1.2.11: escaped headers in the Request-URI → 400.
#[test]
fn escruri() {
    let (request, rejection) = refused_by_validation("escruri", 400);
    assert!(rejection.reason.contains("Request-URI"), "{rejection:?}");
    assert_eq!(
        sip_uri(&request.uri).headers.as_deref(),
        Some("Route=%3Csip:example.com%3E"),
        "kept escaped, never turned into a header"
    );
    assert!(!request.headers.contains(&HeaderName::Route));
}

/// §3.1.2.12: a Date in EST: malformed, but Date does not matter here.
#[test]
fn baddate() {
    let valid = accepted(
        "baddate",
        core(
            Some("z9hG4bKkdjuw"),
            Some("2234923"),
            None,
            "baddate.239423mnsadf3j23lj42--sedfnm234",
            1392934,
            "INVITE",
            150,
        ),
    );
    assert_eq!(
        valid.request.headers.get(&HeaderName::Date).map(|v| &v[..]),
        Some(&b"Fri, 01 Jan 2010 16:00:00 EST"[..])
    );
}

/// §3.1.2.13: a Contact URI with an escaped header outside `<>` → 400.
#[test]
fn regbadct() {
    let (_, rejection) = refused_by_validation("regbadct", 400);
    assert!(rejection.reason.contains("Contact"), "{rejection:?}");
}

/// §3.1.2.14: spaces inside `< >`: tolerated (the parser does not break).
#[test]
fn badaspec() {
    let valid = accepted(
        "badaspec",
        core(
            Some("z9hG4bKkdju43234"),
            Some("433423"),
            None,
            "badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3",
            3923239,
            "OPTIONS",
            0,
        ),
    );
    assert_eq!(valid.to.uri.to_string(), "sip:t.watson@example.org");
    assert_eq!(valid.to.display.as_ref().unwrap().text(), "Watson, Thomas");
    assert_eq!(
        valid.from.display.as_ref().unwrap().text(),
        "Bell, Alexander"
    );
}

/// §3.1.2.15: an unquoted display name with a comma → 400. The file ends
/// right after its last header line: the end of the datagram ends the head.
#[test]
fn baddn() {
    let (request, rejection) = refused_by_validation("baddn", 400);
    assert!(rejection.reason.contains("From"), "{rejection:?}");
    assert_eq!(
        request.headers.call_id().unwrap(),
        "baddn.31415@c.example.com"
    );
    assert!(request.body.is_empty());
    assert!(
        stream("baddn").is_empty(),
        "a stream waits for the empty line"
    );
}

/// §3.1.2.16: SIP/7.0 → 505.
#[test]
fn badvers() {
    let error = refused_with_headers("badvers", 505, "badvers.31417@c.example.com");
    assert_eq!(error.kind, ParseErrorKind::VersionNotSupported);
    assert_eq!(error.status(), StatusCode::VERSION_NOT_SUPPORTED);
}

/// §3.1.2.17: OPTIONS with `CSeq: 8 INVITE` → 400.
#[test]
fn mismatch01() {
    let (request, rejection) = refused_by_validation("mismatch01", 400);
    assert!(rejection.reason.contains("CSeq"), "{rejection:?}");
    assert_eq!(
        core_of(&request.headers, &request.body),
        core(
            Some("z9hG4bKkdjuw"),
            Some("34525"),
            None,
            "mismatch01.dj0234sxdfl3",
            8,
            "INVITE",
            0,
        )
    );
}

/// §3.1.2.18: an unknown method with a CSeq mismatch → 501 (preferred).
#[test]
fn mismatch02() {
    let (request, _) = refused_by_validation("mismatch02", 501);
    assert_eq!(request.method, Method::from_token("NEWMETHOD"));
    assert_eq!(request.body.len(), 138);
}

/// §3.1.2.19: status code 4294967301 → the response is dropped (no
/// overflow, nothing to answer).
#[test]
fn bigcode() {
    let error = refused_by_parser("bigcode", 400);
    assert!(matches!(error.kind, ParseErrorKind::BadStartLine(_)));
    assert!(
        error.request_headers.is_none(),
        "a response is never answered"
    );
}

// ---------------------------------------------------------------------------
// §3.2 Transaction-layer semantics

/// §3.2.1: the branch is just the magic cookie: parses; the transaction
/// layer sees it is not an RFC 3261 branch.
#[test]
fn badbranch() {
    let valid = accepted(
        "badbranch",
        core(
            Some("z9hG4bK"),
            Some("33242"),
            None,
            "badbranch.sadonfo23i420jv0as0derf3j3n",
            8,
            "OPTIONS",
            0,
        ),
    );
    assert!(!valid.via.has_rfc3261_branch());
}

// ---------------------------------------------------------------------------
// §3.3 Application-layer semantics: syntactically valid

/// §3.3.1: no Call-ID, From, To, Max-Forwards → 400.
#[test]
fn insuf() {
    let (request, rejection) = refused_by_validation("insuf", 400);
    assert!(rejection.reason.starts_with("Missing"), "{rejection:?}");
    assert_eq!(
        request.headers.top_via().unwrap().branch(),
        Some("z9hG4bKkdj.insuf")
    );
    let cseq = request.headers.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (193942, Method::Invite));
    assert_eq!(request.body.len(), 152);
    assert!(request.headers.call_id().is_err());
    assert!(request.headers.from().is_err());
    assert!(request.headers.to().is_err());
    assert_eq!(request.headers.max_forwards(), Ok(None));
}

/// §3.3.2: an unknown Request-URI scheme → 416.
#[test]
fn unkscm() {
    let (request, _) = refused_by_validation("unkscm", 416);
    assert_eq!(request.uri.scheme(), "nobodyKnowsThisScheme");
    assert_eq!(
        request.uri.to_string(),
        "nobodyKnowsThisScheme:totallyopaquecontent"
    );
    assert_eq!(
        core_of(&request.headers, &request.body),
        core(
            Some("z9hG4bKkdjuw39234"),
            Some("384"),
            None,
            "unkscm.nasdfasser0q239nwsdfasdkl34",
            3923423,
            "OPTIONS",
            0,
        )
    );
}

/// §3.3.3: a known but atypical scheme (`soap.beep`), never served → 416.
#[test]
fn novelsc() {
    let (request, _) = refused_by_validation("novelsc", 416);
    assert_eq!(request.uri.scheme(), "soap.beep");
    assert_eq!(
        core_of(&request.headers, &request.body),
        core(
            Some("z9hG4bKkdjuw39234"),
            Some("384"),
            None,
            "novelsc.asdfasser0q239nwsdfasdkl34",
            3923423,
            "OPTIONS",
            0,
        )
    );
}

/// §3.3.4: unknown schemes in To, From and Contact parse; refusing them is
/// the registrar's business (400: an AOR must be SIP or SIPS).
#[test]
fn unksm2() {
    let valid = accepted(
        "unksm2",
        core(
            Some("z9hG4bKkdjuw"),
            Some("3234233"),
            None,
            "unksm2.daksdj@hyphenated-host.example.com",
            234902,
            "REGISTER",
            0,
        ),
    );
    assert_eq!(valid.to.uri.to_string(), "isbn:2983792873");
    assert_eq!(valid.from.uri.to_string(), "http://www.example.com");
    let contacts = contact_uris(&valid.request.headers);
    assert_eq!(contacts[0].scheme(), "name");
    assert_eq!(contacts[0].to_string(), "name:John_Smith");
    assert!(valid.to.uri.as_sip().is_none());
}

/// §3.3.5: Require with unknown option tags → 420 listing both of them.
#[test]
fn bext01() {
    let (request, rejection) = refused_by_validation("bext01", 420);
    assert_eq!(
        rejection.unsupported,
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    assert_eq!(
        core_of(&request.headers, &request.body),
        core(
            Some("z9hG4bKkdjuw"),
            Some("242etr"),
            None,
            "bext01.0ha0isndaksdj",
            8,
            "OPTIONS",
            0,
        )
    );
    let response = answer(&request.headers, &rejection);
    assert_eq!(
        response
            .headers
            .get(&HeaderName::Unsupported)
            .map(|v| &v[..]),
        Some(&b"nothingSupportsThis, nothingSupportsThisEither"[..])
    );
    assert_eq!(response.headers.to().unwrap().tag(), Some("fd-reject"));
    // Supporting the tags lets the request through.
    let policy = Policy {
        supported: &["nothingSupportsThis", "nothingSupportsThisEither"],
        ..Policy::default()
    };
    assert!(validate::request(request, &policy).is_ok());
}

/// §3.3.6: an unknown Content-Type parses (415 is the endpoint's call).
#[test]
fn invut() {
    let valid = accepted(
        "invut",
        core(
            Some("z9hG4bKkdjuw"),
            Some("8392034"),
            None,
            "invut.0ha0isndaksdjadsfij34n23d",
            235448,
            "INVITE",
            40,
        ),
    );
    let content_type = valid.request.headers.content_type().unwrap().unwrap();
    assert!(content_type.is("application", "unknownformat"));
    assert_eq!(
        &valid.request.body[..],
        b"<audio>\r\n <pcmu port=\"443\"/>\r\n</audio>\r\n"
    );
}

/// §3.3.7: an unknown authorization scheme parses.
#[test]
fn regaut01() {
    let valid = accepted(
        "regaut01",
        core(
            Some("z9hG4bKkdjuw"),
            Some("87321hj23128"),
            None,
            "regaut01.0ha0isndaksdj",
            9338,
            "REGISTER",
            0,
        ),
    );
    let credentials = valid.request.headers.authorizations().unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(&*credentials[0].scheme, "NoOneKnowsThisScheme");
    assert!(!credentials[0].is_digest());
    assert_eq!(credentials[0].get("opaque-data"), Some("here"));
}

/// §3.3.8: two Call-IDs, CSeqs, Froms, Tos and Max-Forwards → 400.
#[test]
fn multi01() {
    let (request, rejection) = refused_by_validation("multi01", 400);
    assert!(rejection.reason.contains("more than once"), "{rejection:?}");
    assert!(request.headers.call_id().is_err());
    assert!(request.headers.cseq().is_err());
    assert!(request.headers.from().is_err());
    assert!(request.headers.to().is_err());
    assert!(request.headers.max_forwards().is_err());
    assert_eq!(request.body.len(), 154);
}

/// §3.3.9: two different Content-Lengths: framing is ambiguous → refused on
/// UDP (answer 400) and on a stream.
#[test]
fn mcl01() {
    let error = refused_with_headers("mcl01", 400, "mcl01.fhn2323orihawfdoa3o4r52o3irsdf");
    assert!(matches!(error.kind, ParseErrorKind::BadContentLength(_)));
    let frames = stream("mcl01");
    assert!(
        matches!(
            frames.as_slice(),
            [Err(ParseError {
                kind: ParseErrorKind::BadContentLength(_),
                ..
            })]
        ),
        "{frames:?}"
    );
}

/// §3.3.10: a 200 with a broadcast Via sent-by parses (dropping it is the
/// endpoint's or proxy's decision, made on the typed Via).
#[test]
fn bcast() {
    let response = parsed_response("bcast");
    assert_eq!(
        core_of(&response.headers, &response.body),
        core(
            Some("z9hG4bK1324923"),
            Some("11141343"),
            Some("2229"),
            "bcast.0384840201234ksdfak3j2erwedfsASdf",
            35,
            "INVITE",
            154,
        )
    );
    let vias = response.headers.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].host, Host::V4("255.255.255.255".parse().unwrap()));
    assert!(validate::response(response).is_ok());
}

/// §3.3.11: Max-Forwards 0 is a legal request.
#[test]
fn zeromf() {
    let valid = accepted(
        "zeromf",
        core(
            Some("z9hG4bKkdjuw2349i"),
            Some("3ghsd41"),
            None,
            "zeromf.jfasdlfnm2o2l43r5u0asdfas",
            39234321,
            "OPTIONS",
            0,
        ),
    );
    assert_eq!(valid.max_forwards, Some(0));
}

/// §3.3.12: `unknownparam` outside `<>` is a contact parameter.
#[test]
fn cparam01() {
    let valid = accepted(
        "cparam01",
        core(
            Some("z9hG4bKkdjuw"),
            Some("DkfVgjkrtMwaerKKpe"),
            None,
            "cparam01.70710@saturn.example.com",
            2,
            "REGISTER",
            0,
        ),
    );
    let contacts = valid.request.headers.contacts().unwrap();
    assert_eq!(contacts.len(), 1);
    let Contact::Address(address) = &contacts[0] else {
        panic!("not a wildcard")
    };
    assert_eq!(address.params.get("unknownparam"), Some(None));
    let uri = sip_uri(&address.uri);
    assert!(uri.params.is_empty());
    assert_eq!(uri.user.as_deref(), Some("+19725552222"));
    assert_eq!(uri.host.to_string(), "gw1.example.net");
}

/// §3.3.13: `unknownparam` inside `<>` is a URI parameter, kept.
#[test]
fn cparam02() {
    let valid = accepted(
        "cparam02",
        core(
            Some("z9hG4bKkdjuw"),
            Some("838293"),
            None,
            "cparam02.70710@saturn.example.com",
            3,
            "REGISTER",
            0,
        ),
    );
    let contacts = valid.request.headers.contacts().unwrap();
    let address = contacts[0].address().unwrap();
    assert!(address.params.is_empty());
    let uri = sip_uri(&address.uri);
    assert_eq!(uri.params.get("unknownparam"), Some(None));
    assert_eq!(
        address.uri.to_string(),
        "sip:+19725552222@gw1.example.net;unknownparam"
    );
}

/// §3.3.14: the escaped Route stays part of the contact URI.
#[test]
fn regescrt() {
    let valid = accepted(
        "regescrt",
        core(
            Some("z9hG4bKkdjuw"),
            Some("8"),
            None,
            "regescrt.k345asrl3fdbv@192.0.2.1",
            14398234,
            "REGISTER",
            0,
        ),
    );
    let contacts = contact_uris(&valid.request.headers);
    assert_eq!(contacts.len(), 1, "`M:` is the compact Contact");
    let uri = sip_uri(&contacts[0]);
    assert_eq!(
        uri.headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert_eq!(
        contacts[0].to_string(),
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
    assert!(!valid.request.headers.contains(&HeaderName::Route));
}

/// §3.3.15: an INVITE whose Accept excludes SDP parses (406 or 400 is the
/// endpoint's answer).
#[test]
fn sdp01() {
    let valid = accepted(
        "sdp01",
        core(
            Some("z9hG4bKkdjuw"),
            Some("234"),
            None,
            "sdp01.ndaksdj9342dasdd",
            8,
            "INVITE",
            150,
        ),
    );
    assert_eq!(
        valid
            .request
            .headers
            .get(&HeaderName::Accept)
            .map(|v| &v[..]),
        Some(&b"text/nobodyKnowsThis"[..])
    );
}

// ---------------------------------------------------------------------------
// §3.4 Backward compatibility

/// §3.4.1: RFC 2543 syntax: no branch, no From tag, no Max-Forwards, no
/// Content-Length (the body is the rest of the datagram: 105 bytes).
#[test]
fn inv2543() {
    let valid = accepted(
        "inv2543",
        core(
            None,
            None,
            None,
            "inv2543.1717@ift.client.example.com",
            56,
            "INVITE",
            105,
        ),
    );
    assert_eq!(valid.max_forwards, None);
    assert!(!valid.request.headers.contains(&HeaderName::ContentLength));
    assert!(valid.request.body.starts_with(b"v=0\r\n"));
    assert!(valid.request.body.ends_with(b"m=audio 49217 RTP/AVP 0\r\n"));
    // Without `<>`, `;user=phone` is a To parameter; inside them (From), a
    // URI parameter.
    assert_eq!(valid.to.params.get("user"), Some(Some("phone")));
    assert!(sip_uri(&valid.to.uri).params.is_empty());
    assert_eq!(
        sip_uri(&valid.from.uri).params.get("user"),
        Some(Some("phone"))
    );
    assert!(valid.from.params.is_empty());
    // A stream cannot frame a message without Content-Length.
    let frames = stream("inv2543");
    assert!(
        matches!(
            frames.as_slice(),
            [Err(ParseError {
                kind: ParseErrorKind::MissingContentLength,
                request_headers: Some(_)
            })]
        ),
        "{frames:?}"
    );
}

// ---------------------------------------------------------------------------
// Not in any section

/// `test.dat`: no SIP version and a header line without a colon: refused
/// with 400, no panic.
#[test]
fn test_dat() {
    let error = refused_by_parser("test", 400);
    assert!(
        matches!(
            error.kind,
            ParseErrorKind::BadStartLine(_) | ParseErrorKind::BadHeaderLine(_)
        ),
        "{error:?}"
    );
    let frames = stream("test");
    assert!(
        matches!(frames.as_slice(), [Err(_)]),
        "refused on a stream too: {frames:?}"
    );
}

/// The keep-alive between dblreq's two requests is the only one in the
/// corpus; a bare CRLF datagram is a keep-alive, never a message.
#[test]
fn keep_alive_datagrams_are_not_messages() {
    assert_eq!(
        parse_datagram(Bytes::from_static(b"\r\n\r\n"), &Limits::default()),
        Ok(Frame::KeepAlive(KeepAlive::Ping))
    );
}
