//! Issue 17 on the admin and agent HTTP listener, end to end: idle and
//! slow connections are closed, a held request costs kilobytes, one
//! address holds a few connections at most, and the agent page's sign-in
//! is limited per untrusted source and per account, so that neither a
//! colleague's success nor an attacker's failures decide for a real
//! agent. Thresholds are lowered in each test's dialplan; the untrusted
//! sources are other loopback addresses.
//!
//! Every wait is bounded; behaviour is asserted (408, 413, 429 with
//! Retry-After, a closed connection), never timing.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::Duration;

use support::call::open_clinic;
use support::http::{Response, connect_from, request_from};
use support::{Daemon, Launch};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const FRESH: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
const DANS_BROWSER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
/// How long the daemon may take to close or answer.
const BOUND: Duration = Duration::from_secs(10);

/// The open demo clinic with 127.0.0.2, .4 and .5 untrusted and `limits`
/// appended.
fn start(dir: &Path, limits: &str) -> Daemon {
    let limits = limits.to_string();
    let plan = open_clinic(dir, move |text| {
        text.replacen(
            "\n[trust]\n",
            "\n[trust]\nuntrusted = [\"127.0.0.2\", \"127.0.0.4\", \"127.0.0.5\"]\n",
            1,
        ) + "\n"
            + &limits
    });
    Launch::new().dialplan(plan).start()
}

/// The daemon's resident memory, in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(daemon: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid()))
        .expect("the daemon's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Reads what the daemon sends until it closes the connection (within
/// [`BOUND`]); panics if it stays open.
fn read_until_closed(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(BOUND))
        .expect("a read timeout");
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return String::from_utf8_lossy(&text).into_owned(),
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&text).into_owned();
            }
            Err(error) => panic!("still open after {BOUND:?}: {error}"),
        }
    }
}

fn status_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn login(daemon: &Daemon, from: IpAddr, user: &str, password: &str) -> Response {
    let body = format!(r#"{{"user":"{user}","password":"{password}"}}"#);
    request_from(
        from,
        daemon.http(),
        "POST",
        "/agent/login",
        None,
        Some(&body),
    )
    .expect("POST /agent/login")
}

fn metric(daemon: &Daemon, sample: &str) -> f64 {
    daemon
        .get("/metrics", None)
        .body
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

// ----- 3. timeouts and caps ---------------------------------------------------

#[test]
fn idle_and_slow_connections_are_closed_and_held_bodies_cost_kilobytes() {
    let dir = tempfile::tempdir().expect("a directory");
    let daemon = start(
        dir.path(),
        "[limits.http]\nheader_timeout = \"1s\"\nbody_timeout = \"2s\"\nidle_timeout = \"3s\"\nconnections = 400\n",
    );
    let http = daemon.http();

    // A connection that sends nothing, and one whose headers never end.
    let mut idle = TcpStream::connect(http).expect("connect");
    let mut slow = TcpStream::connect(http).expect("connect");
    slow.write_all(b"POST /agent/login HTTP/1.1\r\nHost: x\r\n")
        .expect("half the headers");
    assert_eq!(read_until_closed(&mut idle), "", "idle: closed unanswered");
    let answer = read_until_closed(&mut slow);
    assert!(
        answer.is_empty() || status_line(&answer).contains(" 408 "),
        "{answer}"
    );

    // A body over the cap is refused at once, before it is read.
    let mut big = TcpStream::connect(http).expect("connect");
    big.write_all(
        b"POST /agent/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
    )
    .expect("headers");
    let _ = big.write_all(&[b' '; 65_536]);
    let answer = read_until_closed(&mut big);
    assert!(status_line(&answer).contains(" 413 "), "{answer}");

    // 200 sign-ins whose bodies never finish: the daemon's memory stays
    // flat (each holds at most the 1 KiB login body, a task and hyper's
    // buffers), /api/health answers meanwhile, and each is answered 408
    // and closed when its body is late.
    let before = rss_kib(&daemon);
    let mut held: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = TcpStream::connect(http).expect("connect");
            stream
                .write_all(
                    b"POST /agent/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
                )
                .expect("headers");
            stream.write_all(&[b' '; 900]).expect("most of the body");
            stream
        })
        .collect();
    assert_eq!(daemon.get("/api/health", None).status, 200);
    let during = rss_kib(&daemon);
    assert!(
        during < before + 20 * 1024,
        "RSS grew from {before} KiB to {during} KiB for 200 held requests"
    );
    for stream in &mut held {
        let answer = read_until_closed(stream);
        assert!(status_line(&answer).contains(" 408 "), "{answer}");
    }
}

#[test]
fn one_address_holds_a_few_http_connections_at_most() {
    let dir = tempfile::tempdir().expect("a directory");
    // Long header and idle timeouts: the held connections stay held for
    // the whole test, so what closes the others is the per-source cap.
    let daemon = start(
        dir.path(),
        "[limits.http]\nconnections_per_source = 4\nheader_timeout = \"60s\"\nidle_timeout = \"60s\"\n",
    );
    let mut streams: Vec<TcpStream> = (0..10)
        .map(|_| connect_from(ATTACKER, daemon.http()).expect("connect"))
        .collect();
    let mut closed = 0;
    for stream in &mut streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("a read timeout");
        let mut byte = [0u8; 1];
        if matches!(stream.read(&mut byte), Ok(0)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 6, "four connections for 127.0.0.2");
    // Everyone else is served.
    assert_eq!(daemon.get("/api/health", None).status, 200);
    let other = request_from(FRESH, daemon.http(), "GET", "/api/health", None, None)
        .expect("GET /api/health from 127.0.0.4");
    assert_eq!(other.status, 200);
    assert!(
        metric(
            &daemon,
            "frontdesk_http_connections_refused_total{reason=\"per_source\"}"
        ) >= 6.0
    );
}

// ----- 4. sign-in lockout ---------------------------------------------------------

#[test]
fn a_colleagues_success_does_not_reset_an_accounts_lockout() {
    let dir = tempfile::tempdir().expect("a directory");
    // The account lock after 3 failures; the per-source limits far away.
    let daemon = start(
        dir.path(),
        "[limits.sign_in]\nlock_after = 3\nslow_after = 50\nban_after = 100\n",
    );
    // Dan signs in from his browser.
    assert_eq!(
        login(&daemon, DANS_BROWSER, "1004", "demo-1004").status,
        200
    );
    // An agent who knows their own password guesses Dan's.
    for guess in ["demo-1", "demo-2", "demo-3"] {
        assert_eq!(login(&daemon, ATTACKER, "1004", guess).status, 401);
    }
    // Their own sign-in succeeds: it clears nothing of Dan's count.
    assert_eq!(login(&daemon, ATTACKER, "1003", "demo-1003").status, 200);
    let locked = login(&daemon, ATTACKER, "1004", "demo-1004");
    assert_eq!(locked.status, 429, "{locked:?}");
    let retry: u64 = locked
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry >= 1, "{retry}");
    // Locked for any address Dan never signed in from …
    assert_eq!(login(&daemon, FRESH, "1004", "demo-1004").status, 429);
    // … but not for Dan: nobody can lock him out of his page.
    assert_eq!(
        login(&daemon, DANS_BROWSER, "1004", "demo-1004").status,
        200
    );
    // Trusted addresses (loopback) are not limited.
    assert_eq!(login(&daemon, LOOPBACK, "1004", "demo-1004").status, 200);
    assert!(
        metric(
            &daemon,
            "frontdesk_agent_sign_in_refused_total{reason=\"account\"}"
        ) >= 2.0
    );
}

#[test]
fn a_source_that_keeps_failing_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().expect("a directory");
    let daemon = start(
        dir.path(),
        "[limits.sign_in]\nslow_after = 2\nban_after = 3\nfirst_delay = \"100ms\"\nmax_delay = \"200ms\"\n",
    );
    for user in ["1001", "1002", "9999"] {
        assert_eq!(login(&daemon, ATTACKER, user, "guess").status, 401);
    }
    let refused = request_from(
        ATTACKER,
        daemon.http(),
        "POST",
        "/agent/login",
        None,
        Some("not even JSON"),
    )
    .expect("POST /agent/login");
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    // Even the right password, from there.
    assert_eq!(login(&daemon, ATTACKER, "1003", "demo-1003").status, 429);
    // Elsewhere, as usual.
    assert_eq!(login(&daemon, FRESH, "1003", "demo-1003").status, 200);
}
