//! REGISTER with digest auth per second, over TLS with connection reuse or
//! over UDP, with the same client: the load generator for BENCHMARKS.md's
//! "SIP over TLS" (Debian's SIPp is built without TLS).
//!
//! `--connections N` workers, each with its own TLS connection (opened once,
//! then reused for every registration) or its own UDP socket, register
//! closed-loop until `--seconds` are over: REGISTER → 401 → REGISTER with
//! credentials (`sip::digest::Credentials::answer`) → 200 is one
//! registration. Worker `i` signs in as agent `1001 + i % 7` (password
//! `demo-<id>`, the demo clinic's), each registration with a new Call-ID,
//! as `bench/register.sh` does with SIPp. It prints one line per second and
//! a summary with the rate, latency percentiles and failures.
//!
//! ```sh
//! cargo build --release -p frontdesk --example tls_register_load
//! target/release/examples/tls_register_load --transport tls --server 127.0.0.1:5061 \
//!     --ca certs/frontdesk.crt --connections 32 --seconds 20
//! target/release/examples/tls_register_load --transport udp --server 127.0.0.1:5060 \
//!     --connections 32 --seconds 20
//! ```
//!
//! Over UDP a lost datagram is retransmitted after 500 ms (T1), up to
//! three times, and counted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use sip::digest::{Challenge, Credentials};
use sip::message::{Frame, Limits, Message, Response, StreamFramer, parse_datagram};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tls,
}

#[derive(Debug, Clone)]
struct Options {
    transport: Transport,
    server: SocketAddr,
    ca: Option<PathBuf>,
    connections: usize,
    seconds: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: tls_register_load --transport tls|udp --server ADDR [--ca PEM] \
         [--connections N] [--seconds S]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut options = Options {
        transport: Transport::Tls,
        server: "127.0.0.1:5061".parse().expect("an address"),
        ca: None,
        connections: 32,
        seconds: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--transport" => {
                options.transport = match value.as_str() {
                    "tls" => Transport::Tls,
                    "udp" => Transport::Udp,
                    _ => usage(),
                }
            }
            "--server" => options.server = value.parse().unwrap_or_else(|_| usage()),
            "--ca" => options.ca = Some(PathBuf::from(value)),
            "--connections" => options.connections = value.parse().unwrap_or_else(|_| usage()),
            "--seconds" => options.seconds = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if options.transport == Transport::Tls && options.ca.is_none() {
        eprintln!("--transport tls needs --ca (the server's certificate, PEM)");
        usage();
    }
    options
}

/// Counters shared by the workers.
#[derive(Debug, Default)]
struct Totals {
    registered: AtomicU64,
    failed: AtomicU64,
    retransmissions: AtomicU64,
}

/// One way to exchange a request for its final response.
trait Exchange {
    async fn exchange(&mut self, request: &str) -> Result<Response, String>;
}

struct TlsExchange {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    framer: StreamFramer,
}

impl Exchange for TlsExchange {
    async fn exchange(&mut self, request: &str) -> Result<Response, String> {
        self.stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match self.framer.next_frame().map_err(|e| e.to_string())? {
                Some(Frame::Message(Message::Response(response)))
                    if !response.status.is_provisional() =>
                {
                    return Ok(response);
                }
                Some(_) => continue,
                None => {}
            }
            let read = tokio::time::timeout(
                Duration::from_secs(10),
                self.stream.read_buf(self.framer.buffer_mut()),
            )
            .await
            .map_err(|_| "no answer within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("the server closed the connection".into());
            }
        }
    }
}

struct UdpExchange {
    socket: UdpSocket,
    server: SocketAddr,
    totals: Arc<Totals>,
}

impl Exchange for UdpExchange {
    async fn exchange(&mut self, request: &str) -> Result<Response, String> {
        let mut buffer = vec![0u8; 65536];
        for attempt in 0..4 {
            if attempt > 0 {
                self.totals.retransmissions.fetch_add(1, Ordering::Relaxed);
            }
            self.socket
                .send_to(request.as_bytes(), self.server)
                .await
                .map_err(|e| e.to_string())?;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            loop {
                let Ok(received) =
                    tokio::time::timeout_at(deadline, self.socket.recv(&mut buffer)).await
                else {
                    break;
                };
                let length = received.map_err(|e| e.to_string())?;
                let datagram = Bytes::copy_from_slice(&buffer[..length]);
                if let Ok(Frame::Message(Message::Response(response))) =
                    parse_datagram(datagram, &Limits::default())
                    && !response.status.is_provisional()
                {
                    return Ok(response);
                }
            }
        }
        Err("no answer after 3 retransmissions".into())
    }
}

/// One registration: REGISTER, 401, REGISTER with credentials, 200.
async fn register(
    exchange: &mut impl Exchange,
    transport: Transport,
    local: SocketAddr,
    server: SocketAddr,
    agent: &str,
    serial: u64,
) -> Result<(), String> {
    let (via, uri) = match transport {
        Transport::Tls => ("TLS", format!("sip:{server};transport=tls")),
        Transport::Udp => ("UDP", format!("sip:{server}")),
    };
    let port = local.port();
    let request = |cseq: u32, authorization: Option<&str>| {
        format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{via} {local};branch=z9hG4bK{port}x{serial}x{cseq};rport\r\n\
             From: <sip:{agent}@{server}>;tag={port}x{serial}\r\n\
             To: <sip:{agent}@{server}>\r\n\
             Call-ID: load-{port}-{serial}@bench\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{agent}@{local};transport={transport}>\r\n\
             Expires: 3600\r\n\
             Max-Forwards: 70\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            transport = via.to_ascii_lowercase(),
            auth = authorization
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default(),
        )
    };
    let challenge = exchange.exchange(&request(1, None)).await?;
    if challenge.status.as_u16() != 401 {
        return Err(format!("expected 401, got {}", challenge.status));
    }
    let params = challenge
        .headers
        .www_authenticates()
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("401 without a challenge")?;
    let challenge = Challenge::from_params(&params).map_err(|e| e.to_string())?;
    let credentials = Credentials::answer(
        &challenge,
        agent,
        &format!("demo-{agent}"),
        "REGISTER",
        &uri,
        &format!("{port:x}{serial:x}"),
        1,
    );
    let header = credentials.to_params().to_string();
    let done = exchange.exchange(&request(2, Some(&header))).await?;
    if done.status.as_u16() != 200 {
        return Err(format!("expected 200, got {}", done.status));
    }
    Ok(())
}

async fn worker(
    index: usize,
    options: Options,
    tls: Option<Arc<rustls::ClientConfig>>,
    totals: Arc<Totals>,
    until: Instant,
) -> Vec<Duration> {
    let agent = format!("{}", 1001 + index % 7);
    let mut latencies = Vec::new();
    match options.transport {
        Transport::Tls => {
            let tcp = TcpStream::connect(options.server)
                .await
                .expect("connect to the server");
            tcp.set_nodelay(true).expect("nodelay");
            let local = tcp.local_addr().expect("an address");
            let name = ServerName::IpAddress(options.server.ip().into());
            let config = tls.expect("a TLS config");
            let stream = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .expect("the TLS handshake");
            let mut exchange = TlsExchange {
                stream,
                framer: StreamFramer::new(Limits::default()),
            };
            run(
                &mut exchange,
                &options,
                local,
                &agent,
                &totals,
                until,
                &mut latencies,
            )
            .await;
        }
        Transport::Udp => {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a UDP socket");
            let local = socket.local_addr().expect("an address");
            let mut exchange = UdpExchange {
                socket,
                server: options.server,
                totals: Arc::clone(&totals),
            };
            run(
                &mut exchange,
                &options,
                local,
                &agent,
                &totals,
                until,
                &mut latencies,
            )
            .await;
        }
    }
    latencies
}

async fn run(
    exchange: &mut impl Exchange,
    options: &Options,
    local: SocketAddr,
    agent: &str,
    totals: &Totals,
    until: Instant,
    latencies: &mut Vec<Duration>,
) {
    let mut serial = 0u64;
    while Instant::now() < until {
        serial += 1;
        let started = Instant::now();
        match register(
            exchange,
            options.transport,
            local,
            options.server,
            agent,
            serial,
        )
        .await
        {
            Ok(()) => {
                totals.registered.fetch_add(1, Ordering::Relaxed);
                latencies.push(started.elapsed());
            }
            Err(error) => {
                let failed = totals.failed.fetch_add(1, Ordering::Relaxed);
                if failed < 5 {
                    eprintln!("registration failed: {error}");
                }
                if options.transport == Transport::Tls {
                    // A broken connection stays broken: this worker stops.
                    return;
                }
            }
        }
    }
}

fn client_config(ca: &PathBuf) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read --ca") {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let tls = options.ca.as_ref().map(client_config);
        let totals = Arc::new(Totals::default());
        let started = Instant::now();
        let until = started + Duration::from_secs(options.seconds);
        let mut workers = Vec::new();
        for index in 0..options.connections {
            workers.push(tokio::spawn(worker(
                index,
                options.clone(),
                tls.clone(),
                Arc::clone(&totals),
                until,
            )));
        }
        let progress = Arc::clone(&totals);
        let reporter = tokio::spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = progress.registered.load(Ordering::Relaxed);
                println!(
                    "{:>4} s  {:>7} reg/s",
                    started.elapsed().as_secs(),
                    now - last
                );
                last = now;
            }
        });
        let mut latencies = Vec::new();
        for worker in workers {
            latencies.extend(worker.await.expect("a worker"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        reporter.abort();
        latencies.sort();
        let registered = totals.registered.load(Ordering::Relaxed);
        println!(
            "transport={} connections={} seconds={:.1} registered={} rate={:.0}/s \
             failed={} retransmissions={} p50={:.2}ms p90={:.2}ms p99={:.2}ms",
            match options.transport {
                Transport::Tls => "tls",
                Transport::Udp => "udp",
            },
            options.connections,
            elapsed,
            registered,
            registered as f64 / elapsed,
            totals.failed.load(Ordering::Relaxed),
            totals.retransmissions.load(Ordering::Relaxed),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.9),
            percentile(&latencies, 0.99),
        );
    });
}
