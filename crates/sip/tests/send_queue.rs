//! Sending to a TCP peer with no connection, many messages at once (issue
//! 19): the transport opens one connection to the peer, not one per
//! message or per sender, and what is sent meanwhile waits in the
//! connection's one queue and leaves in the order it was sent. The peer is
//! a plain listener on loopback; every wait is bounded.
#![cfg(feature = "runtime")]

#[path = "support/sockets.rs"]
mod sockets;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use sip::endpoint::{self, EndpointConfig, EndpointHandle};
use sip::message::{HeaderName, Host, Method, NameAddr, Request, SipUri, Uri};
use sip::transaction::{self, SentBy, TimerValues};
use sip::transport::{self, TransportConfig, TransportHandle};
use sip::{Peer, TransportKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The transport and the endpoint on their own runtime (two workers, so
/// sends from several threads really run at once).
struct Server {
    transport: TransportHandle,
    endpoint: EndpointHandle,
    shutdown: CancellationToken,
    runtime: tokio::runtime::Runtime,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn server() -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sip-test-worker")
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let (transport, endpoint) = runtime.block_on(async {
        let (udp, tcp) = sockets::udp_and_tcp().await;
        let address = udp.local_addr().unwrap();
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let transport = transport::start(
            udp,
            tcp,
            TransportConfig::default(),
            inbound_tx,
            shutdown.clone(),
        )
        .unwrap();
        let config = EndpointConfig {
            transaction: transaction::Config {
                timers: TimerValues::default(),
                sent_by: vec![SentBy {
                    transport: TransportKind::Tcp,
                    host: Host::V4(Ipv4Addr::LOCALHOST),
                    port: address.port(),
                }],
                seed: 1,
            },
            allow: vec![Method::Invite, Method::Bye],
            supported: vec![],
            product: "frontdesk-test".into(),
            admission: None,
        };
        let (app_tx, _app_rx) = mpsc::channel(64);
        let (endpoint, _task) = endpoint::start(
            config,
            transport.clone(),
            inbound_rx,
            app_tx,
            shutdown.clone(),
        );
        (transport, endpoint)
    });
    Server {
        transport,
        endpoint,
        shutdown,
        runtime,
    }
}

/// A peer listening on loopback that no one has connected to yet.
fn listener() -> (TcpListener, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = Peer {
        transport: TransportKind::Tcp,
        address: listener.local_addr().unwrap(),
        connection: None,
    };
    (listener, peer)
}

/// The one connection the transport opens, read until `count` messages
/// (each ending in an empty line) came in; each message's first line, and
/// the connection (kept open: the transport forgets a closed one).
fn accept_and_read(listener: &TcpListener, count: usize) -> (Vec<String>, TcpStream) {
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    let mut buffer = [0u8; 65536];
    while text.matches("\r\n\r\n").count() < count {
        let n = stream.read(&mut buffer).expect("the rest within 10 s");
        assert!(n > 0, "the connection closed early");
        text.push_str(std::str::from_utf8(&buffer[..n]).unwrap());
    }
    let lines = text
        .split_terminator("\r\n\r\n")
        .map(|message| message.lines().next().unwrap_or("").to_owned())
        .collect();
    (lines, stream)
}

/// No second connection was opened to the listener.
fn no_second_connection(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(error) => panic!("{error}"),
        Ok((_, from)) => panic!("a second connection from {from}"),
    }
}

#[test]
fn many_senders_at_once_to_a_tcp_peer_open_one_connection_and_each_keeps_its_order() {
    let server = server();
    let (listener, peer) = listener();
    const SENDERS: usize = 4;
    const EACH: usize = 100;
    // Four threads send to the peer at the same time, before any
    // connection to it exists.
    std::thread::scope(|scope| {
        for sender in 0..SENDERS {
            let transport = server.transport.clone();
            let runtime = server.runtime.handle().clone();
            scope.spawn(move || {
                let _runtime = runtime.enter();
                for n in 0..EACH {
                    let bytes = Bytes::from(format!("message {sender} {n}\r\n\r\n"));
                    transport.enqueue(peer, bytes, None).expect("taken");
                }
            });
        }
    });
    // Every send was taken before the connection was up: one connection
    // (its attempt) holds them all.
    assert_eq!(server.transport.connection_count_of(TransportKind::Tcp), 1);
    let (lines, _open) = accept_and_read(&listener, SENDERS * EACH);
    assert_eq!(lines.len(), SENDERS * EACH);
    let mut next = [0usize; SENDERS];
    for line in &lines {
        let mut words = line.split(' ').skip(1);
        let sender: usize = words.next().unwrap().parse().unwrap();
        let n: usize = words.next().unwrap().parse().unwrap();
        assert_eq!(n, next[sender], "sender {sender} out of order: {lines:?}");
        next[sender] += 1;
    }
    assert_eq!(next, [EACH; SENDERS]);
    assert_eq!(server.transport.connection_count_of(TransportKind::Tcp), 1);
    no_second_connection(&listener);
}

fn options_to(peer: Peer, call_id: &str) -> Request {
    let target = Uri::Sip(SipUri::new(
        Some("agent"),
        Host::V4(Ipv4Addr::LOCALHOST),
        Some(peer.address.port()),
    ));
    let mut options = Request::new(Method::Options, target.clone());
    let mut from = NameAddr::new(Uri::Sip(SipUri::new(
        Some("frontdesk"),
        Host::V4(Ipv4Addr::LOCALHOST),
        None,
    )));
    from.params.set("tag", Some("fd"));
    options.headers.push(HeaderName::From, from);
    options.headers.push(HeaderName::To, NameAddr::new(target));
    options.headers.push(HeaderName::CallId, call_id);
    options.headers.push(HeaderName::CSeq, "1 OPTIONS");
    options
}

#[test]
fn the_endpoint_sends_a_burst_to_a_new_tcp_peer_in_order_on_one_connection() {
    let server = server();
    let (listener, peer) = listener();
    const RAW: usize = 200;
    const REQUESTS: usize = 20;
    // Client transactions started from many tasks at once, and messages
    // outside any transaction sent one after the other without waiting:
    // all before the endpoint's first send has a connection to go on.
    let requests: Vec<_> = (0..REQUESTS)
        .map(|n| {
            let endpoint = server.endpoint.clone();
            server.runtime.spawn(async move {
                endpoint
                    .send_request(options_to(peer, &format!("burst{n}@test")), peer)
                    .await
            })
        })
        .collect();
    for n in 0..RAW {
        let bytes = Bytes::from(format!("raw {n}\r\n\r\n"));
        server.endpoint.send_raw(peer, bytes).expect("running");
    }
    for started in requests {
        let started = server.runtime.block_on(started).expect("the task ran");
        assert!(matches!(started, Ok(Ok(_))), "{started:?}");
    }
    let (lines, _open) = accept_and_read(&listener, RAW + REQUESTS);
    // The endpoint's messages leave in the order it was given them.
    let raw: Vec<usize> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("raw "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(raw, (0..RAW).collect::<Vec<_>>());
    let options = lines
        .iter()
        .filter(|line| line.starts_with("OPTIONS sip:agent@127.0.0.1:"))
        .count();
    assert_eq!(options, REQUESTS, "{lines:?}");
    assert_eq!(server.transport.connection_count_of(TransportKind::Tcp), 1);
    no_second_connection(&listener);
}

/// Panics on the transport's tasks (a spawned task's panic fails no test
/// by itself), counted from the first call on, for every test here.
fn count_task_panics() -> &'static std::sync::atomic::AtomicUsize {
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("sip-test-worker") {
                PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            default(info);
        }));
    });
    &PANICS
}

#[test]
fn a_connection_the_peer_closes_is_forgotten_and_the_next_send_opens_another() {
    let panics = count_task_panics();
    let server = server();
    let (listener, peer) = listener();
    // Opening a connection starts a task on the server's runtime.
    let _runtime = server.runtime.enter();
    server
        .transport
        .enqueue(peer, Bytes::from_static(b"first\r\n\r\n"), None)
        .expect("taken");
    let (lines, open) = accept_and_read(&listener, 1);
    assert_eq!(lines, ["first"]);
    // The peer closes: the transport's reader sees the end, its writer
    // ends, and the connection is forgotten.
    drop(open);
    // At most 2,000 looks 5 ms apart (10 s).
    let mut looks = 0;
    while server.transport.connection_count_of(TransportKind::Tcp) > 0 {
        looks += 1;
        assert!(looks < 2_000, "never forgotten");
        std::thread::sleep(Duration::from_millis(5));
    }
    server
        .transport
        .enqueue(peer, Bytes::from_static(b"second\r\n\r\n"), None)
        .expect("taken");
    let (lines, _open) = accept_and_read(&listener, 1);
    assert_eq!(lines, ["second"]);
    assert_eq!(panics.load(std::sync::atomic::Ordering::SeqCst), 0);
}
