//! The daemon's SIP transports end to end (issue 3): the real `frontdesk`
//! binary on free ports, driven by SIPp and by raw loopback sockets.
//!
//! - OPTIONS over UDP and TCP with SIPp: exit status 0 and SIPp's own
//!   counters (every call created succeeded, none failed);
//! - pipelined and split requests on one TCP connection, answered in order;
//! - a retransmitted UDP request is absorbed: the same response again, byte
//!   for byte (the responses carry random tags and nonces, so a request
//!   handled twice would be answered differently);
//! - an INVITE's final response is retransmitted until the ACK, then stops;
//! - garbage, truncated, oversized and trickling datagrams and streams, and
//!   every RFC 4475 torture message, leave the daemon serving others;
//! - the core answers: 501, 405 with Allow, 481, 483.
//!
//! The daemon runs with the default timers (T1 = 500 ms, T2 = 4 s). Every
//! wait is for an event, bounded by a deadline; no assertion is about
//! elapsed time. Nothing is sent anywhere but loopback: the torture
//! messages' Via, Contact, Route and SDP addresses are rewritten to
//! 127.0.0.1 first, and Via to the test's own socket.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::json;
use support::sipp::{Sipp, SippTransport};
use support::torture::{foreign_hosts, loopback_only};
use support::{Daemon, Launch, repo_root};

/// How long one expected answer may take.
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// RFC 3261's default T2: the longest gap between two retransmissions.
const T2: Duration = Duration::from_secs(4);
/// How long a connection the daemon should close may stay open: its
/// message timeout is 10 s.
const CLOSE_BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- SIPp

#[test]
fn options_over_udp_with_sipp_all_succeed() {
    let daemon = Launch::new().start();
    let run = Sipp::new("options.xml", daemon.sip())
        .transport(SippTransport::Udp)
        .calls(300)
        .rate(300)
        .run();
    run.assert_all_succeeded(300);
}

#[test]
fn options_over_tcp_with_sipp_all_succeed() {
    let daemon = Launch::new().start();
    let run = Sipp::new("options.xml", daemon.sip())
        .transport(SippTransport::Tcp)
        .calls(300)
        .rate(300)
        .run();
    run.assert_all_succeeded(300);
}

// ---------------------------------------------------------------- TCP framing

#[test]
fn pipelined_requests_on_one_tcp_connection_are_answered_in_order() {
    let daemon = Launch::new().start();
    let mut stream = SipStream::connect(daemon.sip());
    let me = stream.local_addr();
    let options =
        |branch: &str| request("OPTIONS", &daemon_uri(&daemon), "TCP", me, branch, "", "");

    // Five requests in one write.
    let pipeline: String = (0..5).map(|n| options(&format!("pipe{n}"))).collect();
    stream.write(pipeline.as_bytes());
    for n in 0..5 {
        let response = stream.expect_message();
        assert_eq!(status(&response), 200, "{response}");
        assert_eq!(branch_of(&response), format!("z9hG4bKpipe{n}"), "in order");
    }

    // Messages split inside a header line and inside a body. Each write
    // ends with a complete message, whose answer shows the daemon has read
    // that far before the rest of the split message is sent.
    let body = "OPTIONS sip:not-a-request SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n\r\n";
    let with_body = request(
        "OPTIONS",
        &daemon_uri(&daemon),
        "TCP",
        me,
        "split-body",
        "Content-Type: text/plain\r\n",
        body,
    );
    let head_split = options("split-head");
    let in_head = head_split.find("CSeq:").expect("a CSeq line") + 3;
    let in_body = with_body.len() - body.len() + 20;
    let writes = [
        format!("{}{}", options("split-a"), &head_split[..in_head]),
        format!("{}{}", &head_split[in_head..], &with_body[..in_body]),
        format!(
            "{}{}{}",
            &with_body[in_body..],
            options("split-b"),
            options("split-c")
        ),
    ];
    let expected = [
        vec!["split-a"],
        vec!["split-head"],
        vec!["split-body", "split-b", "split-c"],
    ];
    for (bytes, branches) in writes.iter().zip(expected) {
        stream.write(bytes.as_bytes());
        for branch in branches {
            let response = stream.expect_message();
            assert_eq!(status(&response), 200, "{response}");
            assert_eq!(branch_of(&response), format!("z9hG4bK{branch}"), "in order");
        }
    }
    // The body was a body: nothing answered "sip:not-a-request".
    assert!(stream.nothing_within(Duration::from_millis(300)));
}

// ---------------------------------------------------------------- retransmissions

#[test]
fn a_retransmitted_udp_request_is_absorbed_and_answered_again_byte_for_byte() {
    let daemon = Launch::new().start();
    let client = UdpClient::new(daemon.sip());
    let me = client.local_addr();

    // OPTIONS: the core answers 200 with a random To tag.
    let options = request("OPTIONS", &daemon_uri(&daemon), "UDP", me, "again", "", "");
    client.send(options.as_bytes());
    let first = client.expect();
    assert_eq!(status(&first), 200, "{first}");
    client.send(options.as_bytes());
    let second = client.expect();
    assert_eq!(first, second, "the same 200, byte for byte");
    // Handling a request anew answers differently (a fresh To tag), so the
    // equality above means the copy was absorbed, not handled twice.
    let fresh = request("OPTIONS", &daemon_uri(&daemon), "UDP", me, "fresh", "", "");
    client.send(fresh.as_bytes());
    let fresh_answer = client.expect();
    assert_ne!(header(&first, "To"), header(&fresh_answer, "To"));

    // REGISTER without credentials: a 401 with a random To tag and nonce.
    let uri = daemon_uri(&daemon);
    let register = request(
        "REGISTER",
        &uri,
        "UDP",
        me,
        "reg-again",
        &format!("Contact: <sip:1001@{me}>\r\nExpires: 60\r\n"),
        "",
    )
    .replace(
        "From: <sip:tester@127.0.0.1>",
        &format!("From: <sip:1001@{}>", daemon.sip().ip()),
    )
    .replace(
        &format!("To: <{uri}>"),
        &format!("To: <sip:1001@{}>", daemon.sip().ip()),
    );
    client.send(register.as_bytes());
    let challenge = client.expect();
    assert_eq!(status(&challenge), 401, "{challenge}");
    assert!(
        header(&challenge, "WWW-Authenticate").is_some_and(|v| v.contains("nonce=")),
        "{challenge}"
    );
    client.send(register.as_bytes());
    let again = client.expect();
    assert_eq!(challenge, again, "the same 401, byte for byte");
    let fresh = register.replace("z9hG4bKreg-again", "z9hG4bKreg-fresh");
    client.send(fresh.as_bytes());
    let fresh_challenge = client.expect();
    assert_eq!(status(&fresh_challenge), 401, "{fresh_challenge}");
    assert_ne!(
        header(&challenge, "WWW-Authenticate"),
        header(&fresh_challenge, "WWW-Authenticate"),
        "a new challenge has a new nonce"
    );

    // A non-INVITE server transaction answers once per request copy: no
    // further datagram comes (a second handling would have sent one).
    assert_eq!(
        client.all_within(Duration::from_millis(1200)),
        Vec::<String>::new()
    );
}

#[test]
fn an_invite_final_response_is_retransmitted_until_ack() {
    let daemon = Launch::new().start();
    let client = UdpClient::new(daemon.sip());
    let me = client.local_addr();
    // A number no dialplan entry serves: a non-2xx final answer.
    let uri = format!("sip:+19999999999@{}", daemon.sip());
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
    let invite = request(
        "INVITE",
        &uri,
        "UDP",
        me,
        "unknown-number",
        &format!("Contact: <sip:tester@{me}>\r\nContent-Type: application/sdp\r\n"),
        sdp,
    );
    client.send(invite.as_bytes());

    // Timer G resends the final response (T1 = 500 ms: at 0.5 s, 1.5 s...).
    let mut finals = Vec::new();
    let deadline = Instant::now() + ANSWER_BOUND;
    while finals.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(message) = client.receive(left) else {
            panic!("fewer than 3 copies of the final response: {finals:?}");
        };
        match status(&message) {
            100..=199 => {}
            300..=699 => finals.push(message),
            other => panic!("an INVITE to an unknown number got {other}: {message}"),
        }
    }
    assert!(
        finals.iter().all(|copy| *copy == finals[0]),
        "every copy is the same response: {finals:?}"
    );
    let to = header(&finals[0], "To").expect("a To header");
    assert!(to.contains(";tag="), "{to}");

    // The ACK for a non-2xx final response is part of the INVITE
    // transaction: same branch, the To tag of the response (§17.1.1.3).
    let ack = request("ACK", &uri, "UDP", me, "unknown-number", "", "")
        .replace(&format!("To: <{uri}>"), &format!("To: {to}"));
    client.send(ack.as_bytes());
    // Copies sent before the ACK arrived are still on their way.
    let _ = client.all_within(Duration::from_millis(300));
    // Then nothing for more than two of the longest retransmission gaps.
    let late = client.all_within(2 * T2 + Duration::from_millis(500));
    assert!(late.is_empty(), "retransmitted after the ACK: {late:?}");
}

// ---------------------------------------------------------------- core answers

#[test]
fn core_answers_501_405_481_and_483() {
    let daemon = Launch::new().start();
    let client = UdpClient::new(daemon.sip());
    let me = client.local_addr();
    let uri = daemon_uri(&daemon);
    let final_answer = |text: String| -> String {
        client.send(text.as_bytes());
        let deadline = Instant::now() + ANSWER_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = client
                .receive(left)
                .unwrap_or_else(|| panic!("no final answer to:\n{text}"));
            if status(&message) >= 200 {
                return message;
            }
        }
    };

    let unknown = final_answer(request("FROBNICATE", &uri, "UDP", me, "frob", "", ""));
    assert_eq!(status_line(&unknown), "SIP/2.0 501 Not Implemented");

    let subscribe = final_answer(request(
        "SUBSCRIBE",
        &uri,
        "UDP",
        me,
        "sub",
        "Event: presence\r\n",
        "",
    ));
    assert_eq!(status_line(&subscribe), "SIP/2.0 405 Method Not Allowed");
    let allow = header(&subscribe, "Allow").expect("405 carries Allow");
    let allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
    for method in ["INVITE", "ACK", "CANCEL", "OPTIONS", "BYE", "REGISTER"] {
        assert!(allowed.contains(&method), "{method} in {allow}");
    }
    assert!(!allowed.contains(&"SUBSCRIBE"), "{allow}");

    let bye = request("BYE", &uri, "UDP", me, "bye", "", "").replace(
        &format!("To: <{uri}>"),
        &format!("To: <{uri}>;tag=no-such-dialog"),
    );
    let gone = final_answer(bye);
    assert_eq!(
        status_line(&gone),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    assert!(branch_of(&gone).ends_with("bye"));

    let hops = request("INVITE", &uri, "UDP", me, "hops", "", "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    let too_many = final_answer(hops);
    assert_eq!(status_line(&too_many), "SIP/2.0 483 Too Many Hops");
    let to = header(&too_many, "To").expect("a To header");
    let ack = request("ACK", &uri, "UDP", me, "hops", "", "")
        .replace(&format!("To: <{uri}>"), &format!("To: {to}"));
    client.send(ack.as_bytes());
}

// ---------------------------------------------------------------- robustness

#[test]
fn junk_datagrams_and_streams_leave_the_daemon_serving_others() {
    let daemon = Launch::new().start();
    let sip = daemon.sip();
    let uri = daemon_uri(&daemon);

    // Held open while everything else happens: a slowloris that trickles a
    // header line byte by byte, and connections that stop mid-message.
    let trickler = Trickler::start(sip);
    let stalled: Vec<TcpStream> = (0..20)
        .map(|n| {
            let mut stream = TcpStream::connect_timeout(&sip, ANSWER_BOUND).expect("connect");
            let me = stream.local_addr().expect("local address");
            let partial = request("OPTIONS", &uri, "TCP", me, &format!("stall{n}"), "", "");
            stream
                .write_all(&partial.as_bytes()[..partial.len() / 2])
                .expect("write half a request");
            stream
        })
        .collect();

    // Datagrams.
    let client = UdpClient::new(sip);
    let me = client.local_addr();
    let options = request("OPTIONS", &uri, "UDP", me, "whole", "", "");
    let half = request("OPTIONS", &uri, "UDP", me, "half", "", "");
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let oversized_line = format!(
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbigline\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(64_900)
    );
    let many_headers = format!(
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKmany\r\n{}\r\n",
        "X-Filler: 0123456789012345678901234567890123456789012345678\r\n".repeat(1_300)
    );
    let junk: Vec<Vec<u8>> = vec![
        (0..1400).map(|_| random.byte()).collect(),
        (0..65_000).map(|_| random.byte()).collect(),
        b"\x00\x01\x02 not SIP at all".to_vec(),
        half.as_bytes()[..half.len() / 2].to_vec(),
        oversized_line.into_bytes()[..65_000].to_vec(),
        many_headers.into_bytes()[..65_000].to_vec(),
        b"SIP/2.0 4294967301 Huge\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n".to_vec(),
        b"\r\n\r\n".to_vec(),
    ];
    for datagram in &junk {
        client.send(datagram);
    }
    // Content-Length beyond the end of the datagram: 400 (RFC 3261 §18.3).
    let short = request("OPTIONS", &uri, "UDP", me, "short-body", "", "")
        .replace("Content-Length: 0", "Content-Length: 500");
    client.send(short.as_bytes());
    client.send(options.as_bytes());
    let mut answers: Vec<String> = Vec::new();
    let deadline = Instant::now() + ANSWER_BOUND;
    while !answers.iter().any(|a| branch_of(a).ends_with("whole")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = client
            .receive(left)
            .unwrap_or_else(|| panic!("no 200 for the OPTIONS after the junk: {answers:?}"));
        answers.push(answer);
    }
    let by_branch = |suffix: &str| {
        answers
            .iter()
            .find(|a| branch_of(a).ends_with(suffix))
            .map(|a| status_line(a).to_string())
    };
    assert_eq!(by_branch("whole").as_deref(), Some("SIP/2.0 200 OK"));
    assert!(
        by_branch("short-body").is_some_and(|s| s.starts_with("SIP/2.0 400 ")),
        "{answers:?}"
    );
    // The junk got nothing but error responses (the half message, say).
    for answer in answers.iter().filter(|a| !branch_of(a).ends_with("whole")) {
        assert!((400..500).contains(&status(answer)), "{answer}");
    }

    // Streams: garbage is closed.
    let mut garbage = SipStream::connect(sip);
    let noise: Vec<u8> = (0..4000).map(|_| random.byte()).collect();
    garbage.write(b"this is not SIP\r\nat all\r\n\r\n");
    garbage.write(&noise);
    garbage.expect_closed();
    // A request without Content-Length on a stream: 400, then closed.
    let mut unframed = SipStream::connect(sip);
    let without_length = request(
        "OPTIONS",
        &uri,
        "TCP",
        unframed.local_addr(),
        "nolen",
        "",
        "",
    )
    .replace("Content-Length: 0\r\n", "");
    unframed.write(without_length.as_bytes());
    let answer = unframed.expect_message();
    assert_eq!(status(&answer), 400, "{answer}");
    unframed.expect_closed();
    // A Content-Length beyond the message size limit: closed.
    let mut huge = SipStream::connect(sip);
    let oversized = request("OPTIONS", &uri, "TCP", huge.local_addr(), "huge", "", "")
        .replace("Content-Length: 0", "Content-Length: 100000");
    huge.write(oversized.as_bytes());
    huge.write(&vec![b'x'; 10_000]);
    huge.expect_closed_after_any_answer();

    // Meanwhile SIPp over UDP and over TCP, and a fresh raw connection.
    Sipp::new("options.xml", sip)
        .transport(SippTransport::Udp)
        .calls(100)
        .rate(200)
        .run()
        .assert_all_succeeded(100);
    Sipp::new("options.xml", sip)
        .transport(SippTransport::Tcp)
        .calls(100)
        .rate(200)
        .run()
        .assert_all_succeeded(100);
    let mut fresh = SipStream::connect(sip);
    let fresh_options = request("OPTIONS", &uri, "TCP", fresh.local_addr(), "fresh", "", "");
    fresh.write(fresh_options.as_bytes());
    assert_eq!(status(&fresh.expect_message()), 200);

    // The slowloris is cut off by the daemon's message timeout, not by us.
    trickler.expect_closed_by_daemon();
    drop(stalled);
    let health = daemon.get("/api/health", None);
    assert_eq!(health.json(), json!({"status": "ok"}));
}

#[test]
fn every_rfc4475_torture_message_leaves_the_daemon_serving() {
    let daemon = Launch::new().start();
    let client = UdpClient::new(daemon.sip());
    let me = client.local_addr();
    let folder = repo_root().join("crates/sip/tests/data/rfc4475");
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .expect("the RFC 4475 folder")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".dat"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 50, "the whole RFC 4475 archive: {names:?}");

    let mut answered = 0;
    for name in &names {
        let original = std::fs::read(folder.join(name)).expect("a torture message");
        let message = loopback_only(&original, me);
        let strays = foreign_hosts(&message);
        assert!(strays.is_empty(), "{name} still names {strays:?}");
        client.send(&message);
        // Whatever comes back is a SIP response, sent to us.
        for answer in client.all_within(Duration::from_millis(150)) {
            assert!(
                answer.starts_with("SIP/2.0 ") && (100..700).contains(&status(&answer)),
                "{name} got a non-response: {answer:?}"
            );
            answered += 1;
        }
    }
    // Most of them are requests the daemon answers (with 400, 501, 481,
    // 404/480 ...): the messages reached it and the answers came back here.
    assert!(answered >= 25, "only {answered} answers");

    let fresh = UdpClient::new(daemon.sip());
    let options = request(
        "OPTIONS",
        &daemon_uri(&daemon),
        "UDP",
        fresh.local_addr(),
        "after-torture",
        "",
        "",
    );
    fresh.send(options.as_bytes());
    assert_eq!(status(&fresh.expect()), 200);
    let health = daemon.get("/api/health", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));
}

#[test]
fn torture_rewrite_leaves_only_loopback_in_routing_headers_and_keeps_framing() {
    let me: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
    let message = b"INVITE sip:joe@example.com SIP/2.0\r\n\
        v :  SIP/2.0/UDP host1.example.com:5060;branch=z9hG4bKa.b;received=192.0.2.1\r\n\
        Via: SIP/2.0/TCP\r\n  [2001:db8::9:1]:5070;branch=z9hG4bKc, SIP/2.0/UDP 192.0.2.5\r\n\
        Route: <sip:services.example.com;lr>\r\n\
        m: \"J. Rosenberg\" <sip:j.user@host.example.net:5061>\r\n\
        Call-ID: a@192.0.2.1\r\n\
        l: 22\r\n\
        \r\n\
        c=IN IP4 192.0.2.150\r\n\
        INVITE trailing";
    let rewritten = loopback_only(message, me);
    let text = String::from_utf8(rewritten.clone()).expect("text");
    assert!(foreign_hosts(&rewritten).is_empty(), "{text}");
    assert!(
        text.contains("v :  SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa.b;received=192.0.2.1\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\n  127.0.0.1:40000;branch=z9hG4bKc, SIP/2.0/UDP 127.0.0.1:40000\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Route: <sip:127.0.0.1:40000;lr>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("m: \"J. Rosenberg\" <sip:j.user@127.0.0.1:40000>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Call-ID: a@192.0.2.1\r\n"),
        "not a routing header"
    );
    // The body's address is two bytes shorter, so is the Content-Length;
    // the bytes beyond it stay outside it.
    assert!(
        text.contains("l: 20\r\n\r\nc=IN IP4 127.0.0.1\r\nINVITE trailing"),
        "{text}"
    );
}

// ---------------------------------------------------------------- messages

fn daemon_uri(daemon: &Daemon) -> String {
    format!("sip:{}", daemon.sip())
}

/// A request from `local` over `transport` ("UDP" or "TCP"), with its
/// Call-ID and From tag derived from `branch`.
fn request(
    method: &str,
    uri: &str,
    transport: &str,
    local: SocketAddr,
    branch: &str,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
         From: <sip:tester@127.0.0.1>;tag=from-{branch}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {branch}@frontdesk-transport-test\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn status_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

/// The status code of a response; 0 for anything else.
fn status(message: &str) -> u16 {
    message
        .strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The value of the first header named `name` (long form, exact case).
fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let head = message.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .skip(1)
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// The branch of the top Via.
fn branch_of(message: &str) -> String {
    header(message, "Via")
        .and_then(|via| {
            via.split(';')
                .find_map(|p| p.trim().strip_prefix("branch="))
        })
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------- sockets

/// A UDP socket on loopback that talks to the daemon.
struct UdpClient {
    socket: UdpSocket,
    daemon: SocketAddr,
}

impl UdpClient {
    fn new(daemon: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        Self { socket, daemon }
    }

    fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    fn send(&self, bytes: &[u8]) {
        self.socket
            .send_to(bytes, self.daemon)
            .expect("send a datagram");
    }

    /// The next datagram within `bound`.
    fn receive(&self, bound: Duration) -> Option<String> {
        if bound.is_zero() {
            return None;
        }
        self.socket
            .set_read_timeout(Some(bound))
            .expect("set a read timeout");
        let mut buffer = vec![0u8; 65_536];
        match self.socket.recv_from(&mut buffer) {
            Ok((length, from)) => {
                assert_eq!(from, self.daemon, "a datagram from elsewhere");
                Some(String::from_utf8_lossy(&buffer[..length]).into_owned())
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                None
            }
            Err(error) => panic!("receive: {error}"),
        }
    }

    /// The next datagram; panics if none comes within [`ANSWER_BOUND`].
    fn expect(&self) -> String {
        self.receive(ANSWER_BOUND)
            .unwrap_or_else(|| panic!("no answer within {ANSWER_BOUND:?}"))
    }

    /// Every datagram that arrives within `window`.
    fn all_within(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        std::iter::from_fn(|| self.receive(deadline.saturating_duration_since(Instant::now())))
            .collect()
    }
}

/// A TCP connection to the daemon that reads SIP messages framed by
/// Content-Length.
struct SipStream {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// What reading a stream gave.
#[derive(Debug)]
enum Read1 {
    Message(String),
    Closed,
    TimedOut,
}

impl SipStream {
    fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&address, ANSWER_BOUND).expect("connect");
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// One message from the buffer, if a whole one is there.
    fn take_message(&mut self) -> Option<String> {
        let end = self.buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
        let length: usize = head
            .split("\r\n")
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                let name = name.trim();
                (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if self.buffer.len() < end + length {
            return None;
        }
        let message: Vec<u8> = self.buffer.drain(..end + length).collect();
        Some(String::from_utf8_lossy(&message).into_owned())
    }

    fn read_within(&mut self, bound: Duration) -> Read1 {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(message) = self.take_message() {
                return Read1::Message(message);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read1::TimedOut;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set a read timeout");
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read1::Closed,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Read1::TimedOut;
                }
                // The daemon closed with our bytes unread: a reset.
                Err(error) if error.kind() == ErrorKind::ConnectionReset => return Read1::Closed,
                Err(error) => panic!("read: {error}"),
            }
        }
    }

    fn expect_message(&mut self) -> String {
        match self.read_within(ANSWER_BOUND) {
            Read1::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn nothing_within(&mut self, window: Duration) -> bool {
        matches!(self.read_within(window), Read1::TimedOut)
    }

    /// Asserts the daemon closes the connection, sending nothing first.
    fn expect_closed(&mut self) {
        match self.read_within(CLOSE_BOUND) {
            Read1::Closed => {}
            other => panic!("expected the daemon to close the connection, got {other:?}"),
        }
    }

    /// Asserts the daemon closes the connection, after at most an error
    /// response.
    fn expect_closed_after_any_answer(&mut self) {
        let deadline = Instant::now() + CLOSE_BOUND;
        loop {
            match self.read_within(deadline.saturating_duration_since(Instant::now())) {
                Read1::Closed => return,
                Read1::Message(message) if status(&message) >= 400 => {}
                other => panic!("expected the daemon to close the connection, got {other:?}"),
            }
        }
    }
}

/// A slowloris: a request whose header line grows by one byte every
/// 100 ms, on a thread, until the daemon closes the connection.
struct Trickler {
    closed: std::sync::mpsc::Receiver<std::io::Result<usize>>,
}

impl Trickler {
    fn start(address: SocketAddr) -> Self {
        let mut writer = TcpStream::connect_timeout(&address, ANSWER_BOUND).expect("connect");
        let mut reader = writer.try_clone().expect("clone the stream");
        let me = writer.local_addr().expect("local address");
        let (send, closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            // Blocks until the daemon closes (or resets) the connection.
            let _ = send.send(reader.read(&mut buffer));
        });
        std::thread::spawn(move || {
            let start = format!(
                "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKslow\r\nX-Slow: "
            );
            if writer.write_all(start.as_bytes()).is_err() {
                return;
            }
            // The pace of the attack, not a wait for an event.
            while writer.write_all(b"a").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { closed }
    }

    fn expect_closed_by_daemon(self) {
        match self.closed.recv_timeout(CLOSE_BOUND) {
            Ok(Ok(0)) => {}
            Ok(Err(error)) if error.kind() == ErrorKind::ConnectionReset => {}
            Ok(other) => panic!("the slowloris got {other:?} instead of a close"),
            Err(_) => panic!("the slowloris still open after {CLOSE_BOUND:?}"),
        }
    }
}

/// A small deterministic generator for junk bytes.
struct XorShift(u64);

impl XorShift {
    fn byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.to_be_bytes()[0]
    }
}
