//! SIP over TLS on real loopback sockets: the transport's TLS listener and
//! the endpoint behind it, driven by a small rustls client whose root store
//! holds the test certificate (made with rcgen per test).
//!
//! What is refused is asserted by its effect on the client (a failed
//! handshake, a closed connection) and by the server still serving others;
//! no assertion is about elapsed wall-clock time. Every wait is bounded.
#![cfg(feature = "runtime")]

#[path = "support/sockets.rs"]
mod sockets;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sip::endpoint::{self, EndpointConfig, EndpointHandle};
use sip::message::{
    Frame, HeaderName, Host, KeepAlive, Limits, Message, Method, NameAddr, Request, Response,
    SipUri, StatusCode, StreamFramer, Uri,
};
use sip::transaction::{self, Event, SentBy, TimerValues};
use sip::transport::tls::{self, HandshakeLimits, ServerIdentity, TlsGate};
use sip::transport::{self, SendError, TransportConfig, TransportHandle};
use sip::{Peer, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;

/// The bound on every wait for the server.
const BOUND: Duration = Duration::from_secs(10);

/// A certificate and its key, for 127.0.0.1 and localhost.
struct TestCert {
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl TestCert {
    fn new() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("a certificate");
        TestCert {
            der: certified.cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into()),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        tls::server_config(vec![self.der.clone()], self.key.clone_key()).expect("a server config")
    }

    /// A client that trusts this certificate only.
    fn client(&self) -> ClientConfig {
        client_trusting(
            &self.der,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }
}

fn client_trusting(
    der: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(der.clone()).expect("a root");
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// What the test application saw.
#[derive(Debug)]
enum Seen {
    Request {
        method: Method,
        source: Peer,
    },
    Response {
        status: u16,
    },
    /// Timer F: no answer.
    Failed,
    /// The transport could not deliver the request.
    Undelivered,
}

/// The transport (UDP, TCP, TLS) and the endpoint, with an application
/// that answers REGISTER with 200 and then sends OPTIONS back to the
/// registering peer (the way frontdesk rings an agent).
struct Server {
    udp: SocketAddr,
    tls: SocketAddr,
    transport: TransportHandle,
    endpoint: EndpointHandle,
    gate: TlsGate,
    identity: ServerIdentity,
    seen: mpsc::UnboundedReceiver<Seen>,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Server {
    async fn start(cert: &TestCert, limits: HandshakeLimits) -> Server {
        let (udp, tcp) = sockets::udp_and_tcp().await;
        let address = udp.local_addr().unwrap();
        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shutdown = CancellationToken::new();
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let transport = transport::start(
            udp,
            tcp,
            TransportConfig::default(),
            inbound_tx,
            shutdown.clone(),
        )
        .unwrap();
        let identity = ServerIdentity::new(cert.server_config());
        let gate = TlsGate::new(identity.clone(), limits, "sip");
        let tls = transport.serve_tls(tls_listener, gate.clone()).unwrap();
        assert_eq!(transport.tls_local_addr(), Some(tls));
        let host = Host::V4(Ipv4Addr::LOCALHOST);
        let sent_by = [
            (TransportKind::Udp, address.port()),
            (TransportKind::Tcp, address.port()),
            (TransportKind::Tls, tls.port()),
        ]
        .into_iter()
        .map(|(transport, port)| SentBy {
            transport,
            host: host.clone(),
            port,
        })
        .collect();
        let config = EndpointConfig {
            transaction: transaction::Config {
                timers: TimerValues {
                    t1: Duration::from_millis(20),
                    t2: Duration::from_millis(160),
                    t4: Duration::from_millis(200),
                },
                sent_by,
                seed: 7,
            },
            allow: vec![Method::Register, Method::Bye],
            supported: vec![],
            product: "frontdesk-tls-test".into(),
            admission: None,
        };
        let (app_tx, app_rx) = mpsc::channel(64);
        let (endpoint, _task) = endpoint::start(
            config,
            transport.clone(),
            inbound_rx,
            app_tx,
            shutdown.clone(),
        );
        let (seen_tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(application(endpoint.clone(), app_rx, seen_tx));
        Server {
            udp: address,
            tls,
            transport,
            endpoint,
            gate,
            identity,
            seen,
            shutdown,
        }
    }

    async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(BOUND, self.seen.recv())
            .await
            .expect("the application saw something in time")
            .expect("the application runs")
    }
}

async fn application(
    endpoint: EndpointHandle,
    mut events: mpsc::Receiver<Event>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Request {
                transaction,
                request,
                source,
            } => {
                let method = request.request.method.clone();
                let _ = seen.send(Seen::Request {
                    method: method.clone(),
                    source,
                });
                let mut ok =
                    Response::to_request(&request.request.headers, StatusCode::OK, Some("app"));
                ok.headers.push(HeaderName::Contact, "<sip:app@127.0.0.1>");
                endpoint.respond(transaction, ok).unwrap();
                if method == Method::Register {
                    let options = options_to(&request.from.uri, "back@test");
                    let _ = endpoint.send_request(options, source).await;
                }
            }
            Event::Response { response, .. } => {
                let _ = seen.send(Seen::Response {
                    status: response.response.status.as_u16(),
                });
            }
            Event::Timeout { .. } => {
                let _ = seen.send(Seen::Failed);
            }
            Event::TransportError { .. } => {
                let _ = seen.send(Seen::Undelivered);
            }
            _ => {}
        }
    }
}

/// An OPTIONS from the server to `target` (the endpoint adds Via and
/// Max-Forwards).
fn options_to(target: &Uri, call_id: &str) -> Request {
    let mut options = Request::new(Method::Options, target.clone());
    let mut from = NameAddr::new(Uri::Sip(SipUri::new(
        Some("frontdesk"),
        Host::V4(Ipv4Addr::LOCALHOST),
        None,
    )));
    from.params.set("tag", Some("srv"));
    options.headers.push(HeaderName::From, from);
    options
        .headers
        .push(HeaderName::To, NameAddr::new(target.clone()));
    options.headers.push(HeaderName::CallId, call_id);
    options.headers.push(HeaderName::CSeq, "1 OPTIONS");
    options
}

/// A request from the client over `transport` at `me`.
fn request(method: &str, id: &str, transport: &str, me: SocketAddr) -> String {
    format!(
        "{method} sip:frontdesk@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {me};branch=z9hG4bK{id};rport\r\n\
         From: <sip:1003@127.0.0.1>;tag=t{id}\r\n\
         To: <sip:1003@127.0.0.1>\r\n\
         Call-ID: {id}@client\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:1003@{me};transport=tls>\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A SIP client over TLS.
struct Client {
    stream: TlsStream<TcpStream>,
    framer: StreamFramer,
    local: SocketAddr,
}

impl Client {
    async fn connect(server: SocketAddr, config: ClientConfig) -> std::io::Result<Client> {
        let tcp = TcpStream::connect(server).await?;
        let local = tcp.local_addr()?;
        let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
        let stream = tokio::time::timeout(
            BOUND,
            TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .expect("the handshake ends in time")?;
        Ok(Client {
            stream,
            framer: StreamFramer::new(Limits::default()),
            local,
        })
    }

    async fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// The next frame (a message or a keep-alive); `None` when the server
    /// closed the connection.
    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.framer.next_frame().expect("framing") {
                return Some(frame);
            }
            let read = tokio::time::timeout(BOUND, self.stream.read_buf(self.framer.buffer_mut()))
                .await
                .expect("the server answers in time");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    async fn next_message(&mut self) -> Message {
        loop {
            match self.next_frame().await.expect("a message") {
                Frame::Message(message) => return message,
                Frame::KeepAlive(_) => continue,
            }
        }
    }
}

fn status(message: &Message) -> u16 {
    match message {
        Message::Response(response) => response.status.as_u16(),
        Message::Request(request) => panic!("a response, got {}", request.method),
    }
}

fn header(message: &Message, name: HeaderName) -> String {
    let value = message.headers().get(&name).expect("the header");
    String::from_utf8_lossy(value).into_owned()
}

/// Waits until `read` sees the end of `stream` (EOF or an error), within
/// [`BOUND`]; returns what was read before it.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(BOUND, stream.read(&mut buffer))
            .await
            .expect("the server closes the connection in time");
        match read {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buffer[..n]),
        }
    }
}

/// An OPTIONS over a fresh TLS connection gets 200.
async fn assert_served(server: &Server, config: ClientConfig) {
    let mut client = Client::connect(server.tls, config)
        .await
        .expect("the handshake succeeds");
    let me = client.local;
    client.send(&request("OPTIONS", "probe", "TLS", me)).await;
    assert_eq!(status(&client.next_message().await), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_over_tls_1_3_and_1_2_get_200() {
    let cert = TestCert::new();
    let server = Server::start(&cert, HandshakeLimits::default()).await;
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client_trusting(&cert.der, &[version]);
        let mut client = Client::connect(server.tls, config).await.unwrap();
        assert_eq!(
            client.stream.get_ref().1.protocol_version(),
            Some(version.version)
        );
        let me = client.local;
        client.send(&request("OPTIONS", "o1", "TLS", me)).await;
        let response = client.next_message().await;
        assert_eq!(status(&response), 200);
        let via = header(&response, HeaderName::Via);
        assert!(via.starts_with("SIP/2.0/TLS "), "{via}");
        assert!(via.contains(&format!("rport={}", me.port())), "{via}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_and_keep_alives_over_tls_are_answered_in_order() {
    let cert = TestCert::new();
    let server = Server::start(&cert, HandshakeLimits::default()).await;
    let mut client = Client::connect(server.tls, cert.client()).await.unwrap();
    let me = client.local;
    // A keep-alive ping (RFC 5626 §4.4.1) between pipelined requests, all
    // in one write.
    let mut pipeline = String::new();
    for n in 0..3 {
        pipeline.push_str(&request("OPTIONS", &format!("pipe{n}"), "TLS", me));
        if n == 1 {
            pipeline.push_str("\r\n\r\n");
        }
    }
    client.send(&pipeline).await;
    let mut order = Vec::new();
    let mut pongs = 0;
    while order.len() < 3 {
        match client
            .next_frame()
            .await
            .expect("the connection stays open")
        {
            Frame::Message(message) => {
                assert_eq!(status(&message), 200);
                order.push(header(&message, HeaderName::CallId));
            }
            Frame::KeepAlive(KeepAlive::Pong) => pongs += 1,
            Frame::KeepAlive(KeepAlive::Ping) => panic!("the server pinged"),
        }
    }
    assert_eq!(order, ["pipe0@client", "pipe1@client", "pipe2@client"]);
    // The pong may come after the last response.
    while pongs == 0 {
        match client.next_frame().await.expect("the pong") {
            Frame::KeepAlive(KeepAlive::Pong) => pongs += 1,
            other => panic!("expected the pong, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_tls_peer_goes_over_its_own_connection_and_fails_once_it_is_gone() {
    let cert = TestCert::new();
    let mut server = Server::start(&cert, HandshakeLimits::default()).await;
    let mut client = Client::connect(server.tls, cert.client()).await.unwrap();
    let me = client.local;
    client.send(&request("REGISTER", "reg1", "TLS", me)).await;
    let Seen::Request { method, source } = server.next_seen().await else {
        panic!("the REGISTER");
    };
    assert_eq!(method, Method::Register);
    assert_eq!(source.transport, TransportKind::Tls);
    assert_eq!(source.address, me);
    assert!(source.connection.is_some());
    assert_eq!(status(&client.next_message().await), 200);

    // The server's OPTIONS comes on the same connection, with our TLS Via.
    let Message::Request(options) = client.next_message().await else {
        panic!("a request from the server");
    };
    assert_eq!(options.method, Method::Options);
    let via = header(&Message::Request(options.clone()), HeaderName::Via);
    assert!(
        via.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{}", server.tls.port())),
        "{via}"
    );
    let ok = Response::to_request(&options.headers, StatusCode::OK, Some("client"));
    client
        .send(std::str::from_utf8(&ok.encode()).unwrap())
        .await;
    assert!(matches!(
        server.next_seen().await,
        Seen::Response { status: 200 }
    ));

    // Bytes for TLS never leave in clear: the same connection named as TCP
    // is not used (a TCP connection to the client's port is tried and
    // refused: nothing listens there), and the request's transaction hears
    // that the transport could not deliver it.
    let as_tcp = Peer {
        transport: TransportKind::Tcp,
        ..source
    };
    let uri = Uri::Sip(SipUri::new(
        Some("1003"),
        Host::V4(Ipv4Addr::LOCALHOST),
        None,
    ));
    let sent = server
        .endpoint
        .send_request(options_to(&uri, "in-clear@test"), as_tcp)
        .await
        .expect("the endpoint runs");
    assert!(sent.is_ok(), "{sent:?}");
    assert!(matches!(server.next_seen().await, Seen::Undelivered));

    // Once the client is gone, it is unreachable: no new TLS connection is
    // opened to it.
    drop(client);
    let deadline = tokio::time::Instant::now() + BOUND;
    while server.transport.connection_count_of(TransportKind::Tls) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connection forgotten"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let error = server
        .transport
        .enqueue(source, Bytes::from_static(b"OPTIONS x\r\n\r\n"), None)
        .unwrap_err();
    assert!(
        matches!(error, SendError::NoTlsConnection(at) if at == me),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_on_the_tls_port_is_refused_and_others_are_still_served() {
    let cert = TestCert::new();
    let server = Server::start(&cert, HandshakeLimits::default()).await;
    let mut plain = TcpStream::connect(server.tls).await.unwrap();
    let me = plain.local_addr().unwrap();
    plain
        .write_all(request("OPTIONS", "plain", "TCP", me).as_bytes())
        .await
        .unwrap();
    let answer = read_to_close(&mut plain).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("SIP/2.0"),
        "no SIP in clear on the TLS port: {answer:?}"
    );
    assert_served(&server, cert.client()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_and_garbage_handshakes_are_closed_and_others_are_still_served() {
    let cert = TestCert::new();
    let server = Server::start(&cert, HandshakeLimits::default()).await;
    // Connect and close at once.
    for _ in 0..5 {
        drop(TcpStream::connect(server.tls).await.unwrap());
    }
    // A record header that announces a handshake, then garbage.
    let mut garbage = TcpStream::connect(server.tls).await.unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x10, 0xff, 0xff, 0x00, 0x01, 0x02])
        .await
        .unwrap();
    garbage.write_all(&[0xee; 11]).await.unwrap();
    read_to_close(&mut garbage).await;
    // A ClientHello cut short, then the client goes away.
    let mut cut = TcpStream::connect(server.tls).await.unwrap();
    cut.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    drop(cut);
    assert_served(&server, cert.client()).await;
    let deadline = tokio::time::Instant::now() + BOUND;
    while server.gate.handshakes_in_progress() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "handshakes ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trusts_another_authority_fails_the_handshake() {
    let cert = TestCert::new();
    let other = TestCert::new();
    let server = Server::start(&cert, HandshakeLimits::default()).await;
    let error = Client::connect(server.tls, other.client())
        .await
        .err()
        .expect("the handshake fails");
    let reason = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    assert!(
        matches!(
            reason,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
                    | rustls::CertificateError::BadSignature
                    | rustls::CertificateError::BadEncoding
            ))
        ),
        "{error}"
    );
    assert_served(&server, cert.client()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_handshakes_holds_bounded_slots_and_udp_is_still_answered() {
    const SLOTS: usize = 8;
    const FLOOD: usize = 40;
    let cert = TestCert::new();
    let limits = HandshakeLimits {
        // Longer than the test: the slots are freed by the flood leaving,
        // not by the clock.
        timeout: Duration::from_secs(120),
        max_concurrent: SLOTS,
    };
    let server = Server::start(&cert, limits).await;
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    let mut flood = Vec::new();
    for n in 0..FLOOD {
        let stream = TcpStream::connect(server.tls).await.unwrap();
        let (mut reader, writer) = stream.into_split();
        let closed_tx = closed_tx.clone();
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let _ = reader.read(&mut byte).await;
            let _ = closed_tx.send(n);
        });
        flood.push(writer);
    }
    // Every connection beyond the slots is closed by the server at once.
    for _ in 0..FLOOD - SLOTS {
        tokio::time::timeout(BOUND, closed.recv())
            .await
            .expect("connections beyond the slots are closed")
            .unwrap();
    }
    assert_eq!(server.gate.handshakes_in_progress(), SLOTS);

    // UDP callers are answered meanwhile.
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = udp.local_addr().unwrap();
    udp.send_to(request("OPTIONS", "udp1", "UDP", me).as_bytes(), server.udp)
        .await
        .unwrap();
    let mut buffer = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(BOUND, udp.recv_from(&mut buffer))
        .await
        .expect("UDP is answered during the flood")
        .unwrap();
    assert!(buffer[..n].starts_with(b"SIP/2.0 200 OK"));

    // A TLS client finds every slot taken: refused, not queued.
    let refused = Client::connect(server.tls, cert.client()).await;
    assert!(refused.is_err(), "no slot for a handshake during the flood");

    // The flood leaves: its slots are free again.
    drop(flood);
    let deadline = tokio::time::Instant::now() + BOUND;
    while server.gate.handshakes_in_progress() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "slots freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_served(&server, cert.client()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_serves_the_new_certificate_to_new_connections_and_keeps_old_ones() {
    let old = TestCert::new();
    let new = TestCert::new();
    let server = Server::start(&old, HandshakeLimits::default()).await;
    let mut kept = Client::connect(server.tls, old.client()).await.unwrap();

    server.identity.replace(new.server_config());

    // New connections see the new certificate.
    let fresh = Client::connect(server.tls, new.client()).await.unwrap();
    let presented = fresh.stream.get_ref().1.peer_certificates().unwrap();
    assert_eq!(presented[0], new.der);
    assert!(
        Client::connect(server.tls, old.client()).await.is_err(),
        "the old certificate is no longer presented"
    );
    // The connection made before the reload goes on.
    let me = kept.local;
    kept.send(&request("OPTIONS", "kept", "TLS", me)).await;
    assert_eq!(status(&kept.next_message().await), 200);
    assert!(Arc::ptr_eq(
        &server.gate.identity().current(),
        &server.identity.current()
    ));
}

#[test]
fn pem_files_load_and_a_key_that_does_not_fit_is_refused() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let dir = std::env::temp_dir().join(format!("sip-tls-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("c.crt");
    let key_path = dir.join("c.key");
    let wrong_key = dir.join("wrong.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(&wrong_key, other.serialize_pem()).unwrap();
    assert!(tls::load_server_config(&cert_path, &key_path).is_ok());
    let error = tls::load_server_config(&cert_path, &wrong_key).unwrap_err();
    assert!(matches!(error, tls::TlsError::Rejected(_)), "{error}");
    let error = tls::load_server_config(&cert_path, &cert_path).unwrap_err();
    assert!(matches!(error, tls::TlsError::Key { .. }), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
