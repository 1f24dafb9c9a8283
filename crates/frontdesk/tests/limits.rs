//! Issue 17 on SIP, end to end: one untrusted source cannot take the
//! clinic down. The attackers are other loopback addresses (127.0.0.2 …)
//! made untrusted in each test's copy of the demo clinic, with the limits
//! lowered there; the tests assert behaviour (answered or dropped, 503
//! with Retry-After, a closed connection), never throughput.
//!
//! Every wait is bounded. A "dropped" assertion reads for a bounded
//! quiet period: what was not answered within it is not answered.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use support::call::{RtpSink, free_udp_port, open_clinic};
use support::sipp::Sipp;
use support::{Daemon, Launch};
use tokio_rustls::rustls;

const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long any one awaited answer may take.
const BOUND: Duration = Duration::from_secs(10);
/// Silence this long after the last datagram ends a read of responses.
const QUIET: Duration = Duration::from_millis(800);

/// The open-all-hours demo clinic with `untrusted` networks and `limits`
/// (TOML tables) added.
fn dialplan(dir: &Path, untrusted: &str, limits: &str) -> PathBuf {
    let untrusted = untrusted.to_string();
    let limits = limits.to_string();
    open_clinic(dir, move |text| {
        assert_eq!(text.matches("\n[trust]\n").count(), 1, "one [trust]");
        text.replacen(
            "\n[trust]\n",
            &format!("\n[trust]\nuntrusted = {untrusted}\n"),
            1,
        ) + "\n"
            + &limits
    })
}

fn start(untrusted: &str, limits: &str) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a directory for the dialplan");
    let plan = dialplan(dir.path(), untrusted, limits);
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

/// A UDP SIP peer on a loopback address of the test's choice.
struct Peer {
    socket: UdpSocket,
    local: SocketAddr,
}

impl Peer {
    fn on(ip: IpAddr) -> Peer {
        let socket = UdpSocket::bind((ip, 0)).expect("bind a loopback address");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let local = socket.local_addr().expect("its address");
        Peer { socket, local }
    }

    fn send(&self, to: SocketAddr, text: &str) {
        self.socket.send_to(text.as_bytes(), to).expect("send");
    }

    fn options(&self, to: SocketAddr, id: &str) {
        let me = self.local;
        self.send(
            to,
            &format!(
                "OPTIONS sip:frontdesk@{to} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch=z9hG4bK{id};rport\r\n\
                 From: <sip:probe@{me}>;tag={id}\r\n\
                 To: <sip:frontdesk@{to}>\r\n\
                 Call-ID: {id}@limits-test\r\n\
                 CSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
        );
    }

    /// A patient's INVITE to the main line, offering PCMU at a port that
    /// nobody reads (a flood call that sends no RTP).
    fn invite(&self, to: SocketAddr, id: &str) {
        let me = self.local;
        let ip = me.ip();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        self.send(
            to,
            &format!(
                "INVITE sip:+15550100@{to} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch=z9hG4bK{id};rport\r\n\
                 From: <sip:+13125550142@{ip}>;tag={id}\r\n\
                 To: <sip:+15550100@{to}>\r\n\
                 Call-ID: {id}@limits-test\r\n\
                 CSeq: 1 INVITE\r\n\
                 Contact: <sip:caller@{me}>\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Type: application/sdp\r\n\
                 Content-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            ),
        );
    }

    /// Every datagram received until none came for [`QUIET`] (or `bound`
    /// passed).
    fn responses(&self, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        let mut last = Instant::now();
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 65_536];
        while Instant::now() < deadline && last.elapsed() < QUIET {
            if let Ok((n, _)) = self.socket.recv_from(&mut buffer) {
                received.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
                last = Instant::now();
            }
        }
        received
    }

    /// Sends OPTIONS every 200 ms until one is answered 200; panics after
    /// `bound`.
    fn options_until_answered(&self, to: SocketAddr, bound: Duration) {
        let deadline = Instant::now() + bound;
        let mut buffer = vec![0u8; 65_536];
        for n in 0.. {
            assert!(Instant::now() < deadline, "not answered within {bound:?}");
            self.options(to, &format!("poll{n}"));
            let sent = Instant::now();
            while sent.elapsed() < Duration::from_millis(200) {
                if let Ok((len, _)) = self.socket.recv_from(&mut buffer)
                    && status(&String::from_utf8_lossy(&buffer[..len])) == 200
                {
                    return;
                }
            }
        }
    }
}

fn status(message: &str) -> u16 {
    message
        .strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn call_id(message: &str) -> String {
    header(message, "Call-ID").unwrap_or_default().to_string()
}

/// A sample's value on `/metrics` (0 when absent), e.g.
/// `frontdesk_sip_bans_total` or `frontdesk_sip_dropped_total{reason="scanner"}`.
fn metric(daemon: &Daemon, sample: &str) -> f64 {
    daemon
        .get("/metrics", None)
        .body
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `sample` reaches `at_least` (metrics are published every
/// 250 ms).
fn wait_metric(daemon: &Daemon, sample: &str, at_least: f64) {
    let deadline = Instant::now() + BOUND;
    loop {
        let value = metric(daemon, sample);
        if value >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sample} = {value}, not {at_least} within {BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A patient from 127.0.0.1 (trusted) calls the main line with SIPp:
/// answered, IVR heard, hung up: the call succeeds.
fn legitimate_call(daemon: &Daemon) {
    let sink = RtpSink::start();
    let run = Sipp::new("caller.xml", daemon.sip())
        .calls(1)
        .args([
            "-s",
            "+15550100",
            "-set",
            "rtp_port",
            &sink.port().to_string(),
            "-d",
            "500",
            "-mp",
            &free_udp_port().to_string(),
        ])
        .run();
    run.assert_all_succeeded(1);
}

// ----- 1. calls per source --------------------------------------------------

#[test]
fn a_legitimate_caller_gets_through_while_one_source_floods_invites() {
    // Three calls at once from an untrusted source; the rate limit out of
    // the way, so that the call limit is what acts.
    let (_dir, daemon) = start(
        r#"["127.0.0.2"]"#,
        "[limits.sip]\ncalls = 3\nrate = 10000\nburst = 10000\n",
    );
    let flooder = Peer::on(FLOODER);
    let invites = 60;
    for n in 0..invites {
        flooder.invite(daemon.sip(), &format!("flood{n}"));
    }
    let responses = flooder.responses(BOUND);
    let refused: std::collections::HashSet<String> = responses
        .iter()
        .filter(|r| status(r) == 503)
        .inspect(|r| {
            let retry: u32 = header(r, "Retry-After")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("503 without Retry-After: {r}"));
            assert!(retry > 0, "{r}");
        })
        .map(|r| call_id(r))
        .collect();
    let served: std::collections::HashSet<String> = responses
        .iter()
        .filter(|r| matches!(status(r), 101..=299))
        .map(|r| call_id(r))
        .collect();
    assert!(served.len() <= 3, "{} flood calls served", served.len());
    assert_eq!(
        refused.len() + served.len(),
        invites,
        "every INVITE answered, each once: {responses:#?}"
    );
    // The patient gets through, media ports and all.
    legitimate_call(&daemon);
    wait_metric(
        &daemon,
        "frontdesk_calls_refused_total{reason=\"per_source\"}",
        (invites - 3) as f64,
    );
}

// ----- 2. rate per source, bans that expire ---------------------------------

#[test]
fn a_source_over_its_rate_is_dropped_silently_and_its_ban_expires() {
    let (_dir, daemon) = start(
        r#"["127.0.0.2"]"#,
        "[limits.sip]\nrate = 5\nburst = 10\nban = \"5s\"\n",
    );
    let flooder = Peer::on(FLOODER);
    for n in 0..300 {
        flooder.options(daemon.sip(), &format!("flood{n}"));
    }
    let answered = flooder
        .responses(BOUND)
        .iter()
        .filter(|r| status(r) == 200)
        .count();
    // The burst, and what the rate refilled while the flood was sent.
    assert!((1..=12).contains(&answered), "{answered} of 300 answered");
    wait_metric(&daemon, "frontdesk_sip_bans_total", 1.0);
    wait_metric(
        &daemon,
        "frontdesk_sip_dropped_total{reason=\"over_rate\"}",
        200.0,
    );
    // Banned: what it sends now is dropped too (counted, unanswered) …
    let dropped = metric(&daemon, "frontdesk_sip_dropped_total{reason=\"over_rate\"}");
    flooder.options(daemon.sip(), "during-ban");
    wait_metric(
        &daemon,
        "frontdesk_sip_dropped_total{reason=\"over_rate\"}",
        dropped + 1.0,
    );
    assert!(metric(&daemon, "frontdesk_sip_banned_sources") >= 1.0);
    // … while a trusted peer is answered, and a legitimate call goes
    // through.
    let phone = Peer::on(LOOPBACK);
    phone.options_until_answered(daemon.sip(), BOUND);
    legitimate_call(&daemon);
    // … and the ban expires: the source is served again.
    flooder.options_until_answered(daemon.sip(), BOUND);
}

// ----- 6. trust ranges are ranges -------------------------------------------

#[test]
fn an_untrusted_cidr_entry_covers_its_whole_range() {
    let (_dir, daemon) = start(
        r#"["127.0.0.40/29"]"#,
        "[limits.sip]\nrate = 1\nburst = 2\nban = \"60s\"\n",
    );
    let answered = |host: u8| {
        let peer = Peer::on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)));
        for n in 0..5 {
            peer.options(daemon.sip(), &format!("h{host}n{n}"));
        }
        peer.responses(BOUND)
            .iter()
            .filter(|r| status(r) == 200)
            .count()
    };
    for host in 40..48 {
        assert_eq!(answered(host), 2, "127.0.0.{host} is in 127.0.0.40/29");
    }
    assert_eq!(answered(39), 5, "127.0.0.39 is outside: trusted loopback");
    assert_eq!(answered(48), 5, "127.0.0.48 is outside: trusted loopback");
}

// ----- 5. TCP and TLS slots per source --------------------------------------

/// Opens `count` TCP connections from `from` to `to` and returns how many
/// the daemon closed at once (EOF or reset within [`BOUND`]) and the ones
/// still open after a quiet second.
fn hold_connections(from: IpAddr, to: SocketAddr, count: usize) -> (usize, Vec<TcpStream>) {
    let streams: Vec<TcpStream> = (0..count)
        .map(|_| support::http::connect_from(from, to).expect("connect"))
        .collect();
    let mut closed = 0;
    let mut open = Vec::new();
    for mut stream in streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("a read timeout");
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => closed += 1,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                open.push(stream)
            }
            Ok(_) | Err(_) => closed += 1,
        }
    }
    (closed, open)
}

#[test]
fn one_address_holding_tcp_connections_does_not_refuse_other_phones() {
    let (_dir, daemon) = start(r#"["127.0.0.2"]"#, "[limits.sip]\nconnections = 3\n");
    let (closed, open) = hold_connections(FLOODER, daemon.sip(), 12);
    assert_eq!((closed, open.len()), (9, 3), "three slots for 127.0.0.2");
    // A phone elsewhere connects and is answered over TCP.
    let mut phone = TcpStream::connect(daemon.sip()).expect("connect");
    phone.set_read_timeout(Some(BOUND)).expect("a read timeout");
    let me = phone.local_addr().expect("its address");
    let to = daemon.sip();
    phone
        .write_all(
            format!(
                "OPTIONS sip:frontdesk@{to} SIP/2.0\r\n\
                 Via: SIP/2.0/TCP {me};branch=z9hG4bKtcp1\r\n\
                 From: <sip:probe@{me}>;tag=tcp1\r\n\
                 To: <sip:frontdesk@{to}>\r\n\
                 Call-ID: tcp1@limits-test\r\n\
                 CSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("write");
    let mut buffer = [0u8; 4096];
    let n = phone.read(&mut buffer).expect("an answer");
    assert_eq!(status(&String::from_utf8_lossy(&buffer[..n])), 200);
    wait_metric(
        &daemon,
        "frontdesk_sip_connections_refused_total{reason=\"per_source\"}",
        9.0,
    );
    // Closing one of its connections gives 127.0.0.2 its slot back.
    drop(open);
    let deadline = Instant::now() + BOUND;
    loop {
        let (_, open) = hold_connections(FLOODER, daemon.sip(), 1);
        if open.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the slots never came back");
    }
}

#[test]
fn never_started_tls_handshakes_from_one_address_do_not_block_legitimate_tls() {
    let dir = tempfile::tempdir().expect("a directory");
    let made = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["certs", "dev"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("frontdesk certs dev");
    assert!(made.success());
    let cert = dir.path().join("certs/frontdesk.crt");
    let key = dir.path().join("certs/frontdesk.key");
    // A long handshake timeout: the held handshakes stay held for the
    // whole test, so what lets the phone in is the per-source slots.
    let plan = dialplan(
        dir.path(),
        r#"["127.0.0.2"]"#,
        "[limits.sip]\nconnections = 4\nhandshake_timeout = \"60s\"\n",
    );
    let daemon = Launch::new().dialplan(plan).sips(&cert, &key).start();
    // 300 connections that never send a ClientHello.
    let (closed, open) = hold_connections(FLOODER, daemon.sips(), 300);
    assert_eq!((closed, open.len()), (296, 4));
    // A phone elsewhere completes its handshake and is answered, while
    // 127.0.0.2 still holds its four.
    assert_eq!(tls_options(daemon.sips(), &cert), 200);
    drop(open);
}

/// One OPTIONS over a fresh TLS connection trusting `ca`; the status.
fn tls_options(server: SocketAddr, ca: &Path) -> u16 {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("the certificate file") {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect_timeout(&server, BOUND).expect("connect");
    tcp.set_read_timeout(Some(BOUND)).expect("a read timeout");
    let me = tcp.local_addr().expect("its address");
    let connection =
        rustls::ClientConnection::new(Arc::new(config), ServerName::IpAddress(server.ip().into()))
            .expect("a client connection");
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream
        .write_all(
            format!(
                "OPTIONS sip:frontdesk@{server} SIP/2.0\r\n\
                 Via: SIP/2.0/TLS {me};branch=z9hG4bKtls1\r\n\
                 From: <sip:probe@{me}>;tag=tls1\r\n\
                 To: <sip:frontdesk@{server}>\r\n\
                 Call-ID: tls1@limits-test\r\n\
                 CSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("write over TLS");
    let mut buffer = [0u8; 4096];
    let n = stream.read(&mut buffer).expect("an answer over TLS");
    status(&String::from_utf8_lossy(&buffer[..n]))
}

// ----- scanners: sipvicious ---------------------------------------------------

/// Runs sipvicious' `svwar` (an INVITE scan of a few extensions and the
/// main number) from 127.0.0.1 against `daemon`; its output. Its `-b`
/// does not set the source address, so it always sends from 127.0.0.1.
fn svwar(daemon: &Daemon) -> String {
    let mut child = Command::new("svwar")
        .args([
            "-m",
            "INVITE",
            "-e",
            "1000-1003,5550100",
            "--maximumtime",
            "5",
        ])
        .args(["-p", &daemon.sip().port().to_string(), "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot start svwar ({error}); install sipvicious (tests/run does)")
        });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait for svwar").is_some() {
            break;
        }
        if Instant::now() > deadline {
            // Ours: started above, killed by its own id.
            let _ = child.kill();
            panic!("svwar still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("svwar's output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn svwar_finds_nothing_because_scanners_are_dropped() {
    // Against a daemon that trusts 127.0.0.1, svwar finds the main number:
    // the scan works, so finding nothing below means something.
    let (_open_dir, open) = start("[]", "");
    let found = svwar(&open);
    assert!(found.contains("5550100"), "svwar found nothing: {found}");
    drop(open);
    // With 127.0.0.1 untrusted, its `friendly-scanner` requests are
    // dropped and the source banned: svwar finds nothing.
    let (_dir, daemon) = start(r#"["127.0.0.1"]"#, "");
    let found = svwar(&daemon);
    assert!(
        !found.contains("5550100"),
        "svwar found the clinic: {found}"
    );
    assert!(found.contains("found nothing"), "{found}");
    wait_metric(
        &daemon,
        "frontdesk_sip_dropped_total{reason=\"scanner\"}",
        1.0,
    );
    // Legitimate traffic from elsewhere is served (127.0.0.3, trusted
    // loopback).
    Peer::on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))).options_until_answered(daemon.sip(), BOUND);
}

// ----- 7. data at rest ----------------------------------------------------------

#[test]
fn the_data_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("a directory");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("the data directory");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    let set = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    // What an older frontdesk left: world-readable.
    std::fs::write(data.join("pseudonym.key"), [7u8; 32]).expect("an old key");
    set(&data.join("pseudonym.key"), 0o644);
    set(&data, 0o755);
    let plan_dir = tempfile::tempdir().expect("a directory for the dialplan");
    let plan = open_clinic(plan_dir.path(), |text| text);
    let daemon = Launch::new().dialplan(plan).data(&data).start();
    // An agent registers (bindings.json) and a patient calls (the
    // journal's -wal and -shm).
    support::phone::register(daemon.sip(), "1003", free_udp_port(), 300);
    legitimate_call(&daemon);
    let expected = [
        "pseudonym.key",
        "journal.db",
        "journal.db-wal",
        "journal.db-shm",
        "bindings.json",
    ];
    let deadline = Instant::now() + BOUND;
    while !expected.iter().all(|name| data.join(name).exists()) {
        assert!(Instant::now() < deadline, "files missing in {data:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mode(&data), 0o700, "the data directory");
    for entry in std::fs::read_dir(&data).expect("list the data directory") {
        let path = entry.expect("an entry").path();
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{path:?}");
    }
}

// ----- 4. sign-in lockout over REGISTER ---------------------------------------

impl Peer {
    /// REGISTER `user` with `password` (digest, after one challenge): the
    /// final status, and whether that answer carried a challenge.
    fn register(&self, to: SocketAddr, user: &str, password: &str, id: &str) -> (u16, bool) {
        let me = self.local;
        let uri = format!("sip:{to}");
        let request = |cseq: u32, authorization: Option<String>| {
            format!(
                "REGISTER {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch=z9hG4bK{id}{cseq};rport\r\n\
                 From: <sip:{user}@{to}>;tag={id}\r\n\
                 To: <sip:{user}@{to}>\r\n\
                 Call-ID: {id}@limits-test\r\n\
                 CSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:{user}@{me}>\r\n\
                 Expires: 300\r\n\
                 Max-Forwards: 70\r\n\
                 {auth}Content-Length: 0\r\n\r\n",
                auth = authorization
                    .map(|a| format!("Authorization: {a}\r\n"))
                    .unwrap_or_default(),
            )
        };
        let answer = |text: String| -> String {
            self.send(to, &text);
            let deadline = Instant::now() + BOUND;
            let mut buffer = vec![0u8; 65_536];
            loop {
                assert!(Instant::now() < deadline, "no answer to REGISTER");
                if let Ok((n, _)) = self.socket.recv_from(&mut buffer) {
                    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    if status(&text) >= 200 {
                        return text;
                    }
                }
            }
        };
        let first = answer(request(1, None));
        let challenged = |text: &str| header(text, "WWW-Authenticate").is_some();
        if status(&first) != 401 {
            return (status(&first), challenged(&first));
        }
        let value = header(&first, "WWW-Authenticate").expect("a challenge");
        let params = sip::message::AuthParams::parse(&bytestring::ByteString::from(value))
            .expect("digest parameters");
        let challenge = sip::digest::Challenge::from_params(&params).expect("a digest challenge");
        let credentials = sip::digest::Credentials::answer(
            &challenge, user, password, "REGISTER", &uri, "0a4f113b", 1,
        );
        let last = answer(request(2, Some(credentials.to_params().to_string())));
        (status(&last), challenged(&last))
    }
}

#[test]
fn a_colleagues_success_does_not_reset_an_accounts_register_lockout() {
    // 127.0.0.2 .. .5 untrusted; the account lock after 3 failures, the
    // per-source limits far away.
    let (_dir, daemon) = start(
        r#"["127.0.0.2/31", "127.0.0.4/31"]"#,
        "[limits.sign_in]\nlock_after = 3\nslow_after = 50\nban_after = 100\n",
    );
    let sip = daemon.sip();
    let dans_phone = Peer::on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)));
    assert_eq!(dans_phone.register(sip, "1004", "demo-1004", "dan1").0, 200);
    // An agent who knows their own password guesses Dan's.
    let guesser = Peer::on(FLOODER);
    for n in 0..3 {
        let (status, _) = guesser.register(sip, "1004", "guess", &format!("g{n}"));
        assert_eq!(status, 403);
    }
    assert_eq!(guesser.register(sip, "1003", "demo-1003", "own").0, 200);
    // Dan's account stays locked for them: 403, no challenge to try.
    assert_eq!(
        guesser.register(sip, "1004", "demo-1004", "after"),
        (403, false)
    );
    let fresh = Peer::on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
    assert_eq!(
        fresh.register(sip, "1004", "demo-1004", "fresh"),
        (403, false)
    );
    // Dan's phone refreshes as usual.
    assert_eq!(dans_phone.register(sip, "1004", "demo-1004", "dan2").0, 200);
    let deadline = Instant::now() + BOUND;
    while metric(&daemon, "frontdesk_register_locked_total") < 2.0 {
        assert!(Instant::now() < deadline, "locked REGISTERs not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stream_over_its_rate_is_closed() {
    let (_dir, daemon) = start(
        r#"["127.0.0.2"]"#,
        "[limits.sip]\nrate = 1\nburst = 3\nban = \"60s\"\n",
    );
    let mut stream = support::http::connect_from(FLOODER, daemon.sip()).expect("connect");
    let me = stream.local_addr().expect("its address");
    let to = daemon.sip();
    for n in 0..20 {
        let _ = stream.write_all(
            format!(
                "OPTIONS sip:frontdesk@{to} SIP/2.0\r\n\
                 Via: SIP/2.0/TCP {me};branch=z9hG4bKs{n}\r\n\
                 From: <sip:probe@{me}>;tag=s{n}\r\n\
                 To: <sip:frontdesk@{to}>\r\n\
                 Call-ID: s{n}@limits-test\r\n\
                 CSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        );
    }
    stream
        .set_read_timeout(Some(BOUND))
        .expect("a read timeout");
    let mut answers = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answers.extend_from_slice(&buffer[..n]),
        }
    }
    let answered = String::from_utf8_lossy(&answers)
        .matches("SIP/2.0 200 ")
        .count();
    // At most the burst is answered (an answer still on its way when the
    // connection closes may be lost), and the stream is closed.
    assert!((1..=3).contains(&answered), "{answered} answered");
    // Banned: a new connection is closed at once.
    let (closed, open) = hold_connections(FLOODER, daemon.sip(), 1);
    assert_eq!((closed, open.len()), (1, 0));
}

#[test]
fn trust_and_limits_change_on_reload() {
    let dir = tempfile::tempdir().expect("a directory for the dialplan");
    let plan = dialplan(
        dir.path(),
        r#"["127.0.0.2"]"#,
        "[limits.sip]\nrate = 1\nburst = 2\nban = \"60s\"\n",
    );
    let daemon = Launch::new().dialplan(&plan).start();
    let flooder = Peer::on(FLOODER);
    for n in 0..10 {
        flooder.options(daemon.sip(), &format!("r{n}"));
    }
    let answered = flooder
        .responses(BOUND)
        .iter()
        .filter(|r| status(r) == 200)
        .count();
    assert_eq!(answered, 2, "banned after its burst");
    // The operator trusts it after all: SIGHUP, and it is served at once,
    // its ban notwithstanding.
    let text = std::fs::read_to_string(&plan).expect("the dialplan");
    std::fs::write(
        &plan,
        text.replace("untrusted = [\"127.0.0.2\"]", "untrusted = []"),
    )
    .expect("rewrite the dialplan");
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    flooder.options_until_answered(daemon.sip(), BOUND);
}
