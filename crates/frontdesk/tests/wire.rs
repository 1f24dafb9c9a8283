//! Issue 18's wire tests against the real daemon, over loopback only:
//!
//! - responses go where RFC 3261 §18.2.2 says: over UDP to the request's
//!   source address (`received`) and the Via's sent-by port (5060 when it
//!   has none), or the source port with `rport`; over TCP on the
//!   connection. A sent-by that is a host name is never resolved, so the
//!   RFC 4475 REGISTERs whose Via names `saturn.example.com` or
//!   `host5.example.com` are answered; their sent-by port is set to the
//!   test's socket so that nothing leaves loopback;
//! - over the wire, each of the 50 RFC 4475 messages is answered with its
//!   own response (its Call-ID or, without one, its branch) when it is a
//!   request, and dropped when it is a response or has no Via;
//! - control characters where the grammar allows none (a NUL in the
//!   Request-URI, raw in a header value) get 400, and the daemon serves on.
//!
//! Every wait is for a datagram or a message, bounded; absence is checked
//! by what arrives first: a probe's answer must come before anything else.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::torture::{foreign_hosts, loopback_only};
use support::{Daemon, Launch, repo_root};

/// How long one expected answer may take.
const ANSWER_BOUND: Duration = Duration::from_secs(10);

#[test]
fn a_register_whose_via_names_a_host_without_rport_is_answered_at_the_source_address_and_via_port()
{
    let daemon = Launch::new().start();
    // Two REGISTERs of RFC 4475 with one branch and one sent-by each, sent
    // one after the other from one socket, as they were when the second
    // went unanswered.
    for pair in [["cparam01", "cparam02"], ["escnull", "regescrt"]] {
        // The sent-by's port becomes a socket of ours; its host name stays.
        let receiver = Udp::bind();
        let port = receiver.local_addr().port();
        let sender = Udp::bind();
        for name in pair {
            let text = String::from_utf8(torture(name)).expect("a text message");
            let message = text
                .replacen(
                    "saturn.example.com:5060;",
                    &format!("saturn.example.com:{port};"),
                    1,
                )
                .replacen(
                    "host5.example.com;",
                    &format!("host5.example.com:{port};"),
                    1,
                );
            assert_ne!(message, text, "{name}: the Via was rewritten");
            sender.send_to(message.as_bytes(), daemon.sip());

            let answer = receiver.expect(daemon.sip());
            assert_eq!(status(&answer), 401, "{name}: {answer}");
            assert_eq!(
                call_id(&answer),
                call_id(&message),
                "{name}: its own answer"
            );
            let via = header(&answer, "Via").unwrap_or_default();
            assert!(
                via.contains(&format!(":{port};")) && via.contains(";received=127.0.0.1"),
                "{name}: {via}"
            );
        }
        // Nothing went to the requests' source port: the first thing it
        // gets is the answer to a probe sent now.
        probe_first(&sender, &daemon, pair[1]);
    }
}

#[test]
fn a_register_over_tcp_is_answered_on_its_connection_whatever_its_via_says() {
    let daemon = Launch::new().start();
    let mut stream = TcpStream::connect_timeout(&daemon.sip(), ANSWER_BOUND).expect("connect");
    stream
        .set_read_timeout(Some(ANSWER_BOUND))
        .expect("a read timeout");
    let register = "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/TCP phone.example.com:9;branch=z9hG4bKtcp-host\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:1001@127.0.0.1>;tag=tcp1\r\n\
        To: <sip:1001@127.0.0.1>\r\n\
        Call-ID: tcp-host-via@test\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:1001@127.0.0.1:9;transport=tcp>\r\n\
        Content-Length: 0\r\n\r\n";
    stream.write_all(register.as_bytes()).expect("write");
    let answer = read_message(&mut stream);
    assert_eq!(status(&answer), 401, "{answer}");
    assert_eq!(call_id(&answer).as_deref(), Some("tcp-host-via@test"));
}

#[test]
fn every_rfc4475_message_is_answered_with_its_own_response_or_dropped_over_the_wire() {
    let daemon = Launch::new().start();
    let folder = repo_root().join("crates/sip/tests/data/rfc4475");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .expect("the RFC 4475 folder")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".dat").map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(names.len(), 50, "the whole RFC 4475 archive");

    // One socket for all, as a peer sending them in turn would: answers to
    // earlier messages (an INVITE's final response is retransmitted until
    // an ACK that never comes) arrive among the later ones, so each
    // message waits for its own.
    let client = Udp::bind();
    let me = client.local_addr();
    let mut handled = Vec::new();
    let mut unanswered = Vec::new();
    for name in &names {
        let message = loopback_only(&torture(name), me);
        assert!(foreign_hosts(&message).is_empty(), "{name}");
        let text = String::from_utf8_lossy(&message).into_owned();
        let mine = |answer: &str| match call_id(&text) {
            Some(id) => call_id(answer) == Some(id),
            None => branch(answer) == branch(&text),
        };
        client.send_to(&message, daemon.sip());
        if !text.starts_with("SIP/") && has_via(&text) {
            // A request: answered with a response of its own.
            match client.first_matching(daemon.sip(), |answer| mine(answer)) {
                Some(answer) if status(&answer) >= 100 => handled.push(name.clone()),
                other => unanswered.push(format!("{name}: {other:?}")),
            }
        } else {
            // A response, or a request without a Via: dropped. A probe sent
            // after it is answered, and nothing about it came before.
            let probe_call = format!("probe-{name}@wire-test");
            client.send_to(probe(me, &daemon, &probe_call).as_bytes(), daemon.sip());
            let mut about_it = Vec::new();
            let answered = client.first_matching(daemon.sip(), |answer| {
                if mine(answer) {
                    about_it.push(first_line(answer).to_string());
                }
                call_id(answer).as_deref() == Some(probe_call.as_str())
            });
            assert!(
                answered.is_some(),
                "{name}: the probe after it went unanswered"
            );
            if about_it.is_empty() {
                handled.push(name.clone());
            } else {
                unanswered.push(format!("{name}: answered {about_it:?}"));
            }
        }
    }
    assert!(
        unanswered.is_empty(),
        "not as RFC 4475 expects: {unanswered:#?}"
    );
    assert_eq!(handled.len(), 50, "{handled:?}");
}

#[test]
fn a_nul_in_a_request_uri_gets_400_and_the_daemon_serves_on() {
    let daemon = Launch::new().start();
    let client = Udp::bind();
    let me = client.local_addr();
    let options = |uri: &str, branch: &str| {
        format!(
            "OPTIONS {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:tester@127.0.0.1>;tag={branch}\r\n\
             To: <sip:1234@127.0.0.1>\r\n\
             Call-ID: {branch}@wire-test\r\n\
             CSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    let host = daemon.sip();
    for (uri, branch) in [
        (format!("sip:12\u{0}34@{host}"), "nul-user"),
        (format!("sip:1234@{host};x=\u{0}"), "nul-param"),
        (format!("sip:1234@{host}?h=\u{7}"), "bel-header"),
        ("tel:+1555\u{1b}0100".to_string(), "esc-tel"),
    ] {
        client.send_to(options(&uri, branch).as_bytes(), host);
        let answer = client.expect(host);
        assert_eq!(status(&answer), 400, "{branch}: {answer}");
        assert!(
            answer.contains(&format!("Call-ID: {branch}@wire-test")),
            "{branch}: {answer}"
        );
    }
    // A NUL in a header value outside a quoted string: 400 too.
    let with_nul_header = options(&format!("sip:1234@{host}"), "nul-subject").replacen(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSubject: a\u{0}b\r\n",
        1,
    );
    client.send_to(with_nul_header.as_bytes(), host);
    assert_eq!(status(&client.expect(host)), 400);
    // The same request without the control character is served.
    client.send_to(
        options(&format!("sip:1234@{host}"), "clean").as_bytes(),
        host,
    );
    assert_eq!(status(&client.expect(host)), 200);
}

// ---------------------------------------------------------------- helpers

fn torture(name: &str) -> Vec<u8> {
    let path = repo_root().join(format!("crates/sip/tests/data/rfc4475/{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// An OPTIONS from `me` with this Call-ID.
fn probe(me: SocketAddr, daemon: &Daemon, call: &str) -> String {
    format!(
        "OPTIONS sip:{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{call};rport\r\n\
         From: <sip:probe@127.0.0.1>;tag=probe\r\n\
         To: <sip:{sip}>\r\n\
         Call-ID: {call}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        sip = daemon.sip(),
    )
}

/// Sends an OPTIONS from `socket` and asserts that its 200 is the first
/// thing `socket` receives: nothing about `what` came before it.
fn probe_first(socket: &Udp, daemon: &Daemon, what: &str) {
    let me = socket.local_addr();
    let call = format!("probe-{}@wire-test", me.port());
    socket.send_to(probe(me, daemon, &call).as_bytes(), daemon.sip());
    let first = socket.expect(daemon.sip());
    assert_eq!(
        call_id(&first).as_deref(),
        Some(call.as_str()),
        "{what}: something came back before the probe's answer: {first}"
    );
}

struct Udp(UdpSocket);

impl Udp {
    fn bind() -> Self {
        Udp(UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket"))
    }

    fn local_addr(&self) -> SocketAddr {
        self.0.local_addr().expect("a local address")
    }

    fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        self.0.send_to(bytes, to).expect("send a datagram");
    }

    /// The first datagram from `from` that `wanted` accepts (each one is
    /// shown to it), or `None` after [`ANSWER_BOUND`].
    fn first_matching(
        &self,
        from: SocketAddr,
        mut wanted: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + ANSWER_BOUND;
        while let Some(datagram) = self.receive(from, deadline) {
            if wanted(&datagram) {
                return Some(datagram);
            }
        }
        None
    }

    /// The next datagram from `from`; panics after [`ANSWER_BOUND`].
    fn expect(&self, from: SocketAddr) -> String {
        self.receive(from, Instant::now() + ANSWER_BOUND)
            .unwrap_or_else(|| panic!("no datagram within {ANSWER_BOUND:?}"))
    }

    /// The next datagram from `from` before `deadline`.
    fn receive(&self, from: SocketAddr, deadline: Instant) -> Option<String> {
        let mut buffer = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.0.set_read_timeout(Some(left)).expect("a read timeout");
            match self.0.recv_from(&mut buffer) {
                Ok((length, source)) => {
                    assert_eq!(source, from, "a datagram from elsewhere");
                    return Some(String::from_utf8_lossy(&buffer[..length]).into_owned());
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) => panic!("receive: {error}"),
            }
        }
    }
}

/// One message read from a stream, framed by its Content-Length.
fn read_message(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end + 4]).into_owned();
            let length: usize = header(&head, "Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return String::from_utf8_lossy(&buffer[..end + 4 + length]).into_owned();
            }
        }
        let read = stream.read(&mut chunk).expect("read an answer");
        assert!(read > 0, "the daemon closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn first_line(message: &str) -> &str {
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

/// The head's header lines as (lower-case name, value), compact names as
/// they are, folded lines not joined (enough for what is looked at here).
fn headers(message: &str) -> impl Iterator<Item = (String, &str)> {
    let head = message.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n").skip(1).filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name.trim().to_ascii_lowercase(), value.trim()))
    })
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers(message).find(|(n, _)| *n == name).map(|(_, v)| v)
}

fn call_id(message: &str) -> Option<String> {
    headers(message)
        .find(|(name, _)| name == "call-id" || name == "i")
        .map(|(_, value)| value.to_string())
}

fn has_via(message: &str) -> bool {
    headers(message).any(|(name, _)| name == "via" || name == "v")
}

/// The branch of the top Via.
fn branch(message: &str) -> Option<String> {
    let (_, via) = headers(message).find(|(name, _)| name == "via" || name == "v")?;
    via.split(';')
        .find_map(|p| p.trim().strip_prefix("branch="))
        .map(|b| b.split(',').next().unwrap_or(b).trim().to_string())
}
