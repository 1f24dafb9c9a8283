//! Issue 18's loss test: patients call the real daemon through
//! `bench/lossy-relay` (5 % of SIP and RTP packets lost each way, up to
//! 50 ms of jitter, so packets also overtake each other), press 3 by RFC
//! 4733 and wait in pediatrics. Every call completes (SIPp counts it
//! successful) and every digit is recognised (each call reached
//! pediatrics), while the relay did lose packets of both kinds.
//!
//! The relay is a tool of its own workspace; the test builds it with the
//! cargo that runs the tests (a few seconds, once) into its own folder of
//! the target directory. Loopback only; the relay is this test's own
//! process, stopped by its id.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::call::{RtpSink, calls, free_udp_port, open_clinic};
use support::sipp::Sipp;
use support::{Launch, repo_root};

/// Calls in the run, and their rate: a few seconds of calls overlapping.
const CALLS: u64 = 20;
const RATE: u64 = 10;
/// How long the journal may take to show every call ended.
const RECORD_BOUND: Duration = Duration::from_secs(30);

#[test]
fn calls_through_loss_and_jitter_complete_and_their_digits_are_recognised() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = Launch::new()
        .dialplan(open_clinic(dir.path(), |text| text))
        .start();
    let relay = LossyRelay::start(
        daemon.sip(),
        &["--loss", "0.05", "--jitter-ms", "50", "--seed", "18"],
    );
    let sink = RtpSink::start();
    let run = Sipp::new("caller.xml", relay.address)
        .calls(CALLS)
        .rate(RATE)
        .args([
            "-s",
            "+15550100",
            "-set",
            "rtp_port",
            &sink.port().to_string(),
            "-set",
            "dtmf",
            "1",
            "-d",
            "1000",
            "-mp",
            &free_udp_port().to_string(),
            // A late 100 or 180, overtaken by the 200 on the way, is what a
            // lossy path does: a phone ignores it, and so does SIPp here
            // (it keeps its other default behaviours).
            "-default_behaviors",
            "all,-abortunexp",
        ])
        .run();
    run.assert_all_succeeded(CALLS);

    let deadline = Instant::now() + RECORD_BOUND;
    let ended = loop {
        let list = calls(&daemon);
        if list.len() as u64 == CALLS && list.iter().all(|c| c["outcome"] != "in_progress") {
            break list;
        }
        assert!(Instant::now() < deadline, "calls not all ended: {list:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    for call in &ended {
        assert_eq!(
            call["department"], "pediatrics",
            "the digit was lost: {call:#}"
        );
    }
    assert!(
        !sink.finish().is_empty(),
        "the prompts reached the patients through the relay"
    );
    let stats = relay.stats();
    assert!(
        stats.sip_lost > 0 && stats.rtp_lost > 0,
        "the relay lost nothing: {stats:?}"
    );
}

/// `bench/lossy-relay`, built and started in front of a daemon.
struct LossyRelay {
    child: Child,
    address: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// The relay's last counters.
#[derive(Debug, Default)]
struct Stats {
    sip_lost: u64,
    rtp_lost: u64,
}

impl LossyRelay {
    fn start(server: SocketAddr, impairment: &[&str]) -> Self {
        let binary = build();
        let mut child = Command::new(&binary)
            .args(["--server", &server.to_string(), "--stats-every-s", "1"])
            .args(impairment)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines_in = Arc::clone(&stderr);
        let errors = BufReader::new(child.stderr.take().expect("piped stderr"));
        std::thread::spawn(move || {
            for line in errors.lines().map_while(Result::ok) {
                lines_in.lock().expect("not poisoned").push(line);
            }
        });
        let line = stdout
            .recv_timeout(Duration::from_secs(10))
            .expect("the relay's readiness line");
        let address = line
            .strip_prefix("relay-listening ")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("not a readiness line: {line}"));
        LossyRelay {
            child,
            address,
            stderr,
        }
    }

    /// The counters of the relay's last `stats` line, once one comes after
    /// this call (it prints one a second).
    fn stats(&self) -> Stats {
        let seen = self.stderr.lock().expect("not poisoned").len();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.stderr.lock().expect("not poisoned").clone();
            if let Some(last) = lines[seen.min(lines.len())..]
                .iter()
                .rev()
                .find(|l| l.starts_with("stats "))
            {
                // "stats sip received=.. sent=.. lost=N unrouted=.. rtp received=.. lost=N ..."
                let (sip, rtp) = last.split_once(" rtp ").unwrap_or((last, ""));
                let lost = |part: &str| {
                    part.split_whitespace()
                        .find_map(|field| field.strip_prefix("lost="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                return Stats {
                    sip_lost: lost(sip),
                    rtp_lost: lost(rtp),
                };
            }
            assert!(
                Instant::now() < deadline,
                "no stats from the relay: {lines:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        // Ours, started above: stopped by its own id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds `bench/lossy-relay` (its own workspace and lock file) into
/// `<target>/lossy-relay` with the cargo that runs this test; returns the
/// binary.
fn build() -> PathBuf {
    let frontdesk = PathBuf::from(env!("CARGO_BIN_EXE_frontdesk"));
    // <target>/<profile>/frontdesk
    let target = frontdesk
        .parent()
        .and_then(|profile| profile.parent())
        .expect("the target directory")
        .join("lossy-relay");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = repo_root().join("bench/lossy-relay/Cargo.toml");
    let output = Command::new(cargo)
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build for the relay");
    assert!(
        output.status.success(),
        "building the relay failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target.join("debug/lossy-relay")
}

fn lines(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    receive
}
