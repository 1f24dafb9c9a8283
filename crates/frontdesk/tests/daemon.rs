//! `frontdesk run` end to end: the real binary on free ports.

mod support;

use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;
use support::{Launch, TOKEN, repo_root};

/// How long a daemon that refuses to start may take to say so.
const REFUSAL_BOUND: Duration = Duration::from_secs(30);
/// How long a log line or a metric may take to show up.
const EVENT_BOUND: Duration = Duration::from_secs(10);

#[test]
fn health_answers_ok_once_sip_listens_on_udp_and_tcp() {
    let daemon = Launch::new().start();
    let response = daemon.get("/api/health", None);
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"status": "ok"}));
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{response:?}"
    );

    // Both SIP sockets are bound on the printed address.
    let sip = daemon.sip();
    assert_ne!(sip.port(), 0);
    TcpStream::connect_timeout(&sip, EVENT_BOUND).expect("SIP over TCP listens");
    let error = UdpSocket::bind(sip).expect_err("SIP over UDP holds the port");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn the_readme_command_serves_the_demo_clinic_from_the_repository_root() {
    // `cargo run --release -- run`, on free ports and a temporary data dir.
    let daemon = Launch::new().default_dialplan().start();
    assert_eq!(
        daemon.get("/api/health", None).json(),
        json!({"status": "ok"})
    );
    daemon.wait_for_log(
        |line| {
            line.contains(
                "dialplan dialplans/clinic.toml loaded: clinic \"Riverside Family Health\"",
            )
        },
        EVENT_BOUND,
    );
}

#[test]
fn the_api_needs_the_admin_token() {
    let daemon = Launch::new().start();
    for token in [None, Some("wrong-token"), Some("test-tokenx"), Some("")] {
        let response = daemon.get("/api/agents", token);
        assert_eq!(response.status, 401, "token {token:?}: {response:?}");
        assert_eq!(
            response.json(),
            json!({"error": "missing or invalid admin token"})
        );
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    }
    // The right token passes the check.
    let response = daemon.get("/api/agents", Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.json()["agents"].is_array(), "{response:?}");
}

#[test]
fn unknown_routes_answer_404_in_the_error_shape() {
    let daemon = Launch::new().start();
    for path in ["/nowhere", "/api/health/extra", "/metrics/x"] {
        let response = daemon.get(path, Some(TOKEN));
        assert_eq!(response.status, 404, "{path}: {response:?}");
        assert_eq!(response.json(), json!({"error": "not found"}), "{path}");
    }
}

#[test]
fn metrics_are_prometheus_text_without_a_token() {
    let daemon = Launch::new().start();
    let response = daemon.get("/metrics", None);
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{response:?}"
    );
    let lines: Vec<&str> = response.body.lines().collect();
    assert!(lines.contains(&"frontdesk_up 1"), "{}", response.body);
    let build = format!(
        "frontdesk_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(lines.contains(&build.as_str()), "{}", response.body);
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let mut daemon = Launch::new().start();
    let status = daemon.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; the log:\n{}",
        daemon.stderr()
    );
    // Everything is released.
    UdpSocket::bind(daemon.sip()).expect("the SIP UDP port is free again");
}

#[test]
fn sigint_exits_zero_too() {
    let mut daemon = Launch::new().start();
    let status = daemon.stop_with(Signal::SIGINT);
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; the log:\n{}",
        daemon.stderr()
    );
}

#[test]
fn sighup_reloads_the_dialplan_and_keeps_the_running_one_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::copy_clinic_into(dir.path());
    let daemon = Launch::new().dialplan(&path).start();
    let reloads = |result: &str| {
        let wanted = format!("frontdesk_dialplan_reloads_total{{result=\"{result}\"}} ");
        daemon
            .get("/metrics", None)
            .body
            .lines()
            .find_map(|line| line.strip_prefix(wanted.as_str())?.parse::<u64>().ok())
            .unwrap_or(0)
    };

    std::fs::write(&path, "[clinic\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    let error = daemon.wait_for_log(|line| line.contains("clinic.toml:1:"), EVENT_BOUND);
    assert!(error.contains(&format!("{}:1:", path.display())), "{error}");
    daemon.wait_for_log(
        |line| line.contains("the running dialplan stays"),
        EVENT_BOUND,
    );
    assert_eq!(reloads("refused"), 1);
    assert_eq!(daemon.get("/api/health", None).status, 200);

    std::fs::copy(support::clinic_dialplan(), &path).unwrap();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for_log(|line| line.contains("reloaded"), EVENT_BOUND);
    assert_eq!(reloads("ok"), 1);
}

#[test]
fn a_dialplan_with_a_syntax_error_is_refused_with_its_position() {
    let path = repo_root().join("crates/frontdesk/tests/data/syntax-error.toml");
    let finished = Launch::new().dialplan(&path).run_to_exit(REFUSAL_BOUND);
    assert_eq!(finished.status.code(), Some(1), "{finished:?}");
    let position = format!("{}:5:13: ", path.display());
    assert!(
        finished
            .stderr
            .lines()
            .any(|line| line.starts_with(&position)),
        "no line starting with {position:?}:\n{}",
        finished.stderr
    );
    assert!(!finished.stdout.contains("listening"), "{finished:?}");
}

#[test]
fn sips_without_a_certificate_is_refused_clearly() {
    // No certs/ in the daemon's folder: the default paths name nothing.
    let finished = Launch::new()
        .args(["--sips", "127.0.0.1:0"])
        .run_to_exit(REFUSAL_BOUND);
    assert_eq!(finished.status.code(), Some(1), "{finished:?}");
    assert!(
        finished
            .stderr
            .contains("cannot read the certificate chain certs/frontdesk.crt")
            && finished.stderr.contains("frontdesk certs dev"),
        "{}",
        finished.stderr
    );
    assert!(!finished.stdout.contains("listening"), "{finished:?}");
}

#[test]
fn a_taken_sip_port_is_refused_clearly() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let finished = Launch::new().sip(addr).run_to_exit(REFUSAL_BOUND);
    assert_eq!(finished.status.code(), Some(1), "{finished:?}");
    assert!(
        finished
            .stderr
            .contains(&format!("cannot listen for SIP on udp {addr}")),
        "{}",
        finished.stderr
    );
}

#[test]
fn without_a_token_one_is_made_and_printed_once_with_the_dashboard_address() {
    let daemon = Launch::new().without_token().start();
    let prefix = format!("dashboard http://{}/?token=", daemon.http());
    let line = daemon.wait_for_log(|line| line.contains(&prefix), EVENT_BOUND);
    let token = line.split_once(&prefix).unwrap().1.trim();
    assert_eq!(token.len(), 64, "{line}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    assert_eq!(daemon.stderr().matches(token).count(), 1);

    assert_eq!(daemon.get("/api/agents", None).status, 401);
    assert_eq!(daemon.get("/api/agents", Some(TOKEN)).status, 401);
    assert_eq!(daemon.get("/api/agents", Some(token)).status, 200);
}

#[test]
fn the_token_can_come_from_the_environment() {
    let daemon = Launch::new()
        .without_token()
        .env("FRONTDESK_ADMIN_TOKEN", "from-the-env")
        .start();
    assert_eq!(daemon.get("/api/agents", Some("from-the-env")).status, 200);
    assert_eq!(daemon.get("/api/agents", Some(TOKEN)).status, 401);
    assert!(!daemon.stderr().contains("?token="), "{}", daemon.stderr());
}

#[test]
fn the_data_directory_is_created() {
    let launch = Launch::new();
    let data = launch.data_dir().join("nested/var");
    let daemon = launch.data(&data).start();
    assert!(data.is_dir(), "{} missing", data.display());
    drop(daemon);
}
