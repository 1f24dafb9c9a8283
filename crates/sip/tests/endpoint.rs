//! The transport and endpoint on real loopback sockets: core answers,
//! retransmission absorption, final responses retransmitted until ACK,
//! TCP framing (pipelining, garbage, limits) and robustness. Timers are
//! shortened (T1 = 20 ms); no assertion is about elapsed wall-clock time.
#![cfg(feature = "runtime")]

#[path = "support/sockets.rs"]
mod sockets;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use sip::TransportKind;
use sip::endpoint::{self, EndpointConfig, EndpointHandle};
use sip::message::{HeaderName, Method, Response, StatusCode};
use sip::transaction::{self, Event, SentBy, TimerValues};
use sip::transport::{self, TransportConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the test application does with a new request.
#[derive(Clone, Copy)]
enum App {
    /// Answers everything with this status.
    Answer(u16),
    /// Rings (180) and waits.
    Ring,
    /// Never reads its queue (an application that cannot keep up).
    Stall,
}

struct Server {
    address: SocketAddr,
    shutdown: CancellationToken,
    requests: mpsc::UnboundedReceiver<String>,
    _runtime: tokio::runtime::Runtime,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn server_with(app: App, transport_config: TransportConfig) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let (seen_tx, requests) = mpsc::unbounded_channel();
    let address = runtime.block_on(async {
        let (udp, tcp) = sockets::udp_and_tcp().await;
        let address = udp.local_addr().unwrap();
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let transport =
            transport::start(udp, tcp, transport_config, inbound_tx, shutdown.clone()).unwrap();
        let config = EndpointConfig {
            transaction: transaction::Config {
                timers: TimerValues {
                    t1: Duration::from_millis(20),
                    t2: Duration::from_millis(160),
                    t4: Duration::from_millis(200),
                },
                sent_by: vec![SentBy {
                    transport: TransportKind::Udp,
                    host: sip::message::Host::V4(std::net::Ipv4Addr::LOCALHOST),
                    port: address.port(),
                }],
                seed: 1,
            },
            allow: vec![Method::Invite, Method::Bye, Method::Register, Method::Info],
            supported: vec!["replaces"],
            product: "frontdesk-test".into(),
            admission: None,
        };
        let (app_tx, app_rx) = mpsc::channel(64);
        let (handle, _task) =
            endpoint::start(config, transport, inbound_rx, app_tx, shutdown.clone());
        tokio::spawn(application(app, handle, app_rx, seen_tx));
        address
    });
    Server {
        address,
        shutdown,
        requests,
        _runtime: runtime,
    }
}

fn server(app: App) -> Server {
    server_with(app, TransportConfig::default())
}

async fn application(
    app: App,
    endpoint: EndpointHandle,
    mut events: mpsc::Receiver<Event>,
    seen: mpsc::UnboundedSender<String>,
) {
    if let App::Stall = app {
        // Holds the queue open and full.
        let _queue = events;
        return std::future::pending().await;
    }
    while let Some(event) = events.recv().await {
        let Event::Request {
            transaction,
            request,
            ..
        } = event
        else {
            let _ = seen.send(
                format!("{event:?}")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
            continue;
        };
        let _ = seen.send(request.request.method.to_string());
        let status = match app {
            App::Answer(status) => status,
            App::Ring => 180,
            App::Stall => unreachable!("never reads"),
        };
        let mut response = Response::to_request(
            &request.request.headers,
            StatusCode::new(status).unwrap(),
            Some("app"),
        );
        if status == 200 {
            response
                .headers
                .push(HeaderName::Contact, "<sip:app@127.0.0.1>");
        }
        endpoint.respond(transaction, response).unwrap();
    }
}

fn udp_client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket
}

fn request(method: &str, branch: &str, extra: &str, client: SocketAddr) -> String {
    format!(
        "{method} sip:frontdesk@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client};branch=z9hG4bK{branch};rport\r\n\
         From: <sip:tester@127.0.0.1>;tag=t1\r\n\
         To: <sip:frontdesk@127.0.0.1>\r\n\
         Call-ID: {branch}@test\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

fn receive(socket: &UdpSocket) -> Option<String> {
    let mut buffer = [0u8; 65536];
    socket
        .recv(&mut buffer)
        .ok()
        .map(|n| String::from_utf8_lossy(&buffer[..n]).into_owned())
}

fn receive_all(socket: &UdpSocket, wait: Duration) -> Vec<String> {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut all = Vec::new();
    while let Some(message) = receive(socket) {
        all.push(message);
    }
    all
}

fn status_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

#[test]
fn options_over_udp_gets_200_with_allow_accept_supported() {
    let server = server(App::Answer(200));
    let client = udp_client();
    let me = client.local_addr().unwrap();
    client
        .send_to(
            request("OPTIONS", "opt1", "", me).as_bytes(),
            server.address,
        )
        .unwrap();
    let response = receive(&client).expect("a response");
    assert_eq!(status_line(&response), "SIP/2.0 200 OK");
    assert!(
        response.contains("\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, INFO\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nAccept: application/sdp\r\n"));
    assert!(response.contains("\r\nSupported: replaces\r\n"));
    assert!(response.contains("received=127.0.0.1"));
    assert!(response.contains(&format!("rport={}", me.port())));
}

#[test]
fn pipelined_requests_on_one_tcp_connection_are_all_answered_in_order() {
    let server = server(App::Answer(200));
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = stream.local_addr().unwrap();
    let mut pipeline = String::new();
    for n in 0..3 {
        pipeline.push_str(&request("OPTIONS", &format!("pipe{n}"), "", me).replace("/UDP", "/TCP"));
    }
    // Written in two pieces that split a message in the middle.
    let (first, second) = pipeline.split_at(pipeline.len() / 2 + 7);
    stream.write_all(first.as_bytes()).unwrap();
    stream.flush().unwrap();
    std::thread::yield_now();
    stream.write_all(second.as_bytes()).unwrap();
    let mut received = String::new();
    let mut buffer = [0u8; 8192];
    while received.matches("SIP/2.0 200 OK").count() < 3 {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "connection closed early: {received}");
        received.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    let order: Vec<usize> = (0..3)
        .map(|n| received.find(&format!("branch=z9hG4bKpipe{n}")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "answered in order");
}

#[test]
fn a_retransmitted_request_is_absorbed_and_answered_again() {
    let mut server = server(App::Answer(200));
    let client = udp_client();
    let me = client.local_addr().unwrap();
    let register = request(
        "REGISTER",
        "reg1",
        "Contact: <sip:tester@127.0.0.1>\r\n",
        me,
    );
    client.send_to(register.as_bytes(), server.address).unwrap();
    let first = receive(&client).unwrap();
    client.send_to(register.as_bytes(), server.address).unwrap();
    let second = receive(&client).unwrap();
    assert_eq!(first, second, "the same response, byte for byte");
    let seen: Vec<String> = std::iter::from_fn(|| server.requests.try_recv().ok()).collect();
    assert_eq!(seen, vec!["REGISTER"], "the application saw one request");
}

#[test]
fn a_new_request_past_a_full_application_queue_gets_503_with_retry_after() {
    let server = server(App::Stall);
    let client = udp_client();
    let me = client.local_addr().unwrap();
    // The test application's queue holds 64 and is never read: those 64
    // wait unanswered, the 65th is refused.
    for n in 0..64 {
        let register = request(
            "REGISTER",
            &format!("queued{n}"),
            "Contact: <sip:tester@127.0.0.1>\r\n",
            me,
        );
        client.send_to(register.as_bytes(), server.address).unwrap();
    }
    let refused = request(
        "REGISTER",
        "refused",
        "Contact: <sip:tester@127.0.0.1>\r\n",
        me,
    );
    client.send_to(refused.as_bytes(), server.address).unwrap();
    let response = receive(&client).expect("a response to the 65th");
    assert_eq!(status_line(&response), "SIP/2.0 503 Service Unavailable");
    assert!(response.contains("branch=z9hG4bKrefused"), "{response}");
    assert!(response.contains("\r\nRetry-After: 5\r\n"), "{response}");
    // Its retransmission is answered from the transaction, the same bytes.
    client.send_to(refused.as_bytes(), server.address).unwrap();
    assert_eq!(receive(&client).as_deref(), Some(response.as_str()));
    // Nothing for the 64 in the queue.
    assert_eq!(
        receive_all(&client, Duration::from_millis(100)),
        Vec::<String>::new()
    );
}

#[test]
fn a_final_response_is_retransmitted_until_ack() {
    let server = server(App::Answer(486));
    let client = udp_client();
    let me = client.local_addr().unwrap();
    client
        .send_to(
            request("INVITE", "inv486", "", me).as_bytes(),
            server.address,
        )
        .unwrap();
    // T1 = 20 ms: without an ACK, Timer G keeps resending the 486.
    let before_ack: Vec<String> = receive_all(&client, Duration::from_millis(200));
    let busy: Vec<&String> = before_ack
        .iter()
        .filter(|m| m.starts_with("SIP/2.0 486"))
        .collect();
    assert!(busy.len() >= 3, "486 retransmitted: {before_ack:?}");
    assert!(before_ack.iter().any(|m| m.starts_with("SIP/2.0 100")));
    let to = busy[0].lines().find(|l| l.starts_with("To:")).unwrap();
    let ack = request("ACK", "inv486", "", me).replace("To: <sip:frontdesk@127.0.0.1>", to);
    client.send_to(ack.as_bytes(), server.address).unwrap();
    // Drain what was in flight, then nothing more comes.
    let _ = receive_all(&client, Duration::from_millis(100));
    assert!(
        receive_all(&client, Duration::from_millis(300)).is_empty(),
        "retransmissions stopped"
    );
}

#[test]
fn a_2xx_is_retransmitted_until_its_ack() {
    let server = server(App::Answer(200));
    let client = udp_client();
    let me = client.local_addr().unwrap();
    client
        .send_to(
            request(
                "INVITE",
                "inv200",
                "Contact: <sip:tester@127.0.0.1>\r\n",
                me,
            )
            .as_bytes(),
            server.address,
        )
        .unwrap();
    let copies: Vec<String> = receive_all(&client, Duration::from_millis(150))
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0 200"))
        .collect();
    assert!(copies.len() >= 2, "2xx retransmitted: {copies:?}");
    let to = copies[0].lines().find(|l| l.starts_with("To:")).unwrap();
    // The 2xx ACK has its own branch.
    let ack = request("ACK", "ack200", "", me)
        .replace("To: <sip:frontdesk@127.0.0.1>", to)
        .replace("Call-ID: ack200@test", "Call-ID: inv200@test");
    client.send_to(ack.as_bytes(), server.address).unwrap();
    let _ = receive_all(&client, Duration::from_millis(100));
    assert!(
        receive_all(&client, Duration::from_millis(400)).is_empty(),
        "2xx retransmissions stopped"
    );
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let server = server(App::Ring);
    let client = udp_client();
    let me = client.local_addr().unwrap();
    client
        .send_to(
            request("INVITE", "tocancel", "", me).as_bytes(),
            server.address,
        )
        .unwrap();
    let ringing = receive_all(&client, Duration::from_millis(100));
    assert!(ringing.iter().any(|m| m.starts_with("SIP/2.0 180")));
    client
        .send_to(
            request("CANCEL", "tocancel", "", me).as_bytes(),
            server.address,
        )
        .unwrap();
    let after = receive_all(&client, Duration::from_millis(100));
    assert!(
        after
            .iter()
            .any(|m| m.starts_with("SIP/2.0 200") && m.contains("CSeq: 1 CANCEL")),
        "{after:?}"
    );
    let terminated = after
        .iter()
        .find(|m| m.starts_with("SIP/2.0 487"))
        .expect("487");
    assert!(terminated.contains("CSeq: 1 INVITE") && terminated.contains("tag=app"));
}

#[test]
fn core_answers_for_what_the_application_does_not_serve() {
    let server = server(App::Answer(200));
    let client = udp_client();
    let me = client.local_addr().unwrap();
    // Each request's answer is found by its Call-ID: the 483 to the INVITE
    // below is retransmitted at T1 until an ACK, which this test never
    // sends, so it can arrive while a later request waits for its answer.
    let answer = |text: &str| {
        client.send_to(text.as_bytes(), server.address).unwrap();
        let call_id = text
            .lines()
            .find(|line| line.starts_with("Call-ID:"))
            .unwrap()
            .to_string();
        receive_all(&client, Duration::from_millis(150))
            .into_iter()
            .find(|m| !m.starts_with("SIP/2.0 100") && m.lines().any(|line| line == call_id))
    };
    let ask = |text: String| {
        answer(&text)
            .map(|m| status_line(&m).to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        ask(request("SUBSCRIBE", "sub", "", me)),
        "SIP/2.0 405 Method Not Allowed"
    );
    assert_eq!(
        ask(request("FROB", "frob", "", me)),
        "SIP/2.0 501 Not Implemented"
    );
    let bye = request("BYE", "bye", "", me).replace(
        "To: <sip:frontdesk@127.0.0.1>",
        "To: <sip:frontdesk@127.0.0.1>;tag=gone",
    );
    assert_eq!(ask(bye), "SIP/2.0 481 Call/Transaction Does Not Exist");
    let hops = request("INVITE", "hops", "", me).replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(ask(hops), "SIP/2.0 483 Too Many Hops");
    let bad_from = request("OPTIONS", "badfrom", "", me).replace(
        "From: <sip:tester@127.0.0.1>;tag=t1",
        "From: Bell, Alexander <sip:a@b>;tag=1",
    );
    assert_eq!(
        ask(bad_from),
        "SIP/2.0 400 Bad From header: display name holds characters that need quotes"
    );
    let version = request("OPTIONS", "version", "", me).replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    assert_eq!(ask(version), "SIP/2.0 505 SIP version not supported");
    let required = request(
        "OPTIONS",
        "required",
        "Require: nothingSupportsThis\r\n",
        me,
    );
    let extension = answer(&required).unwrap();
    assert_eq!(status_line(&extension), "SIP/2.0 420 Bad Extension");
    assert!(extension.contains("\r\nUnsupported: nothingSupportsThis\r\n"));
}

#[test]
fn garbage_truncated_and_oversized_datagrams_leave_the_daemon_serving() {
    let server = server(App::Answer(200));
    let client = udp_client();
    let me = client.local_addr().unwrap();
    let options = request("OPTIONS", "after", "", me);
    let junk: Vec<Vec<u8>> = vec![
        vec![0xff; 1200],
        b"\x00\x01\x02 not sip at all".to_vec(),
        options.as_bytes()[..options.len() / 2].to_vec(),
        options
            .replace("Content-Length: 0", "Content-Length: 9999")
            .into_bytes(),
        format!(
            "OPTIONS sip:x SIP/2.0\r\nX-Big: {}\r\n\r\n",
            "a".repeat(65_000)
        )
        .into_bytes(),
        b"SIP/2.0 4294967301 Big\r\nVia: SIP/2.0/UDP x\r\n\r\n".to_vec(),
    ];
    for datagram in &junk {
        client.send_to(datagram, server.address).unwrap();
    }
    client.send_to(options.as_bytes(), server.address).unwrap();
    let answers = receive_all(&client, Duration::from_millis(300));
    assert!(
        answers
            .iter()
            .any(|m| m.starts_with("SIP/2.0 200") && m.contains("z9hG4bKafter")),
        "{answers:?}"
    );
    // The only other answer is the 400 for the Content-Length beyond the datagram.
    let others: Vec<&str> = answers
        .iter()
        .filter(|m| !m.contains("z9hG4bKafter"))
        .map(|m| status_line(m))
        .collect();
    assert!(
        others.iter().all(|s| s.starts_with("SIP/2.0 400")),
        "{others:?}"
    );
}

#[test]
fn broken_streams_are_closed_and_others_keep_working() {
    let server = server(App::Answer(200));
    // Garbage: the connection is closed.
    let mut garbage = TcpStream::connect(server.address).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    garbage
        .write_all(b"this is not SIP\r\nat all\r\n\r\n")
        .unwrap();
    let mut sink = Vec::new();
    let _ = garbage.read_to_end(&mut sink);
    // A request without Content-Length on a stream: 400, then closed.
    let mut unframed = TcpStream::connect(server.address).unwrap();
    unframed
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = unframed.local_addr().unwrap();
    let without_length = request("OPTIONS", "nolen", "", me)
        .replace("/UDP", "/TCP")
        .replace("Content-Length: 0\r\n", "");
    unframed.write_all(without_length.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = unframed.read_to_string(&mut answer);
    assert!(
        answer.starts_with("SIP/2.0 400 Content-Length is required"),
        "{answer}"
    );
    // An oversized message: closed.
    let mut huge = TcpStream::connect(server.address).unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let oversized = request("OPTIONS", "huge", "", me)
        .replace("/UDP", "/TCP")
        .replace("Content-Length: 0", "Content-Length: 100000");
    huge.write_all(oversized.as_bytes()).unwrap();
    let mut rest = Vec::new();
    let _ = huge.read_to_end(&mut rest);
    // Meanwhile UDP and a fresh TCP connection work.
    let client = udp_client();
    let me = client.local_addr().unwrap();
    client
        .send_to(
            request("OPTIONS", "alive", "", me).as_bytes(),
            server.address,
        )
        .unwrap();
    assert_eq!(status_line(&receive(&client).unwrap()), "SIP/2.0 200 OK");
    let mut fresh = TcpStream::connect(server.address).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = fresh.local_addr().unwrap();
    fresh
        .write_all(
            request("OPTIONS", "fresh", "", me)
                .replace("/UDP", "/TCP")
                .as_bytes(),
        )
        .unwrap();
    let mut buffer = [0u8; 4096];
    let n = fresh.read(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("SIP/2.0 200 OK"));
}

#[test]
fn connection_limit_idle_timeout_and_slow_messages() {
    let config = TransportConfig {
        max_connections: 2,
        idle_timeout: Duration::from_millis(300),
        message_timeout: Duration::from_millis(200),
        ..TransportConfig::default()
    };
    let server = server_with(App::Answer(200), config);
    let first = TcpStream::connect(server.address).unwrap();
    let mut second = TcpStream::connect(server.address).unwrap();
    // A third connection over the limit is closed at once.
    let mut third = TcpStream::connect(server.address).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = [0u8; 16];
    assert_eq!(
        third.read(&mut buffer).unwrap_or(0),
        0,
        "over the limit: closed"
    );
    // A message that trickles in and never completes: closed.
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    second
        .write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP")
        .unwrap();
    assert_eq!(
        second.read(&mut buffer).unwrap_or(0),
        0,
        "slow message: closed"
    );
    // An idle connection: closed.
    let mut idle = first;
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(idle.read(&mut buffer).unwrap_or(0), 0, "idle: closed");
    // With the slots free again a new connection is served.
    let mut fresh = TcpStream::connect(server.address).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = fresh.local_addr().unwrap();
    fresh
        .write_all(
            request("OPTIONS", "again", "", me)
                .replace("/UDP", "/TCP")
                .as_bytes(),
        )
        .unwrap();
    let mut answer = [0u8; 4096];
    let n = fresh.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("SIP/2.0 200 OK"));
}

#[test]
fn crlf_ping_on_a_stream_gets_a_pong() {
    let server = server(App::Answer(200));
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    stream.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
}
