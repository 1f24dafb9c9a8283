//! Issue 18 end to end: admission control. With thresholds lowered for
//! the test, a new call past them gets `503` with `Retry-After` before any
//! transaction exists for it, the calls admitted complete, and a call to
//! an urgent line gets through while routine ones are refused.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::call::{open_clinic, with_ringing_number};
use support::phone::RtpPeer;
use support::raw::RawCall;
use support::sipp::Sipp;
use support::{Daemon, Launch};

const BOUND: Duration = Duration::from_secs(30);

fn daemon(args: &[&str]) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), with_ringing_number);
    let daemon = Launch::new()
        .dialplan(plan)
        .args(args.iter().copied())
        .start();
    (dir, daemon)
}

/// A counter or gauge of `/metrics`, summed over its series.
fn metric(daemon: &Daemon, name: &str) -> f64 {
    daemon
        .get("/metrics", None)
        .body
        .lines()
        .filter(|line| {
            line.split(['{', ' '])
                .next()
                .is_some_and(|series| series == name)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn wait_metric(daemon: &Daemon, name: &str, done: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done(metric(daemon, name)) {
        assert!(
            Instant::now() < deadline,
            "{name} = {}",
            metric(daemon, name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_refused(refusal: &str, retry_after: u32) {
    assert!(refusal.starts_with("SIP/2.0 503"), "{refusal}");
    assert!(
        refusal.contains(&format!("\r\nRetry-After: {retry_after}\r\n")),
        "{refusal}"
    );
}

#[test]
fn past_the_calls_in_set_up_new_calls_get_503_and_an_urgent_one_gets_through() {
    let (_dir, daemon) = daemon(&["--max-calls-in-setup", "1", "--overload-retry-after", "9"]);
    // The one place: a call to the number that rings 3 s before answering.
    let audio = RtpPeer::start(0, false);
    let target = daemon.sip();
    let port = audio.port().to_string();
    let ringing = std::thread::spawn(move || {
        Sipp::new("caller.xml", target)
            .calls(1)
            .args([
                "-s",
                "+15550199",
                "-set",
                "rtp_port",
                &port,
                "-set",
                "dtmf",
                "0",
                "-d",
                "500",
            ])
            .run()
    });
    wait_metric(&daemon, "frontdesk_calls_in_setup", |n| n >= 1.0);
    let media: SocketAddr = format!("127.0.0.1:{}", audio.port())
        .parse()
        .expect("an address");
    // A routine call past the limit: refused at once, with Retry-After.
    let refused = RawCall::try_invite(&daemon, "+15550100", media, 1)
        .err()
        .expect("a routine call past the limit is refused");
    assert_refused(&refused, 9);
    // An urgent line is admitted ahead of routine ones.
    let urgent = RawCall::invite(&daemon, "+15550111", media, 2);
    urgent.ack_and_hang_up();
    // The admitted call completes: answered after its ring, then hung up.
    ringing
        .join()
        .expect("the ringing call")
        .assert_all_succeeded(1);
    // (Not the newest call: the urgent one came after it.)
    let deadline = Instant::now() + BOUND;
    let ended = loop {
        let ended = support::call::calls(&daemon)
            .into_iter()
            .find(|call| call["source"] == "ring-test" && call["outcome"] != "in_progress");
        if let Some(call) = ended {
            break call;
        }
        assert!(Instant::now() < deadline, "the ringing call did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(ended["ended_at"].is_string(), "{ended:#}");
    wait_metric(&daemon, "frontdesk_calls_in_setup", |n| n == 0.0);
    // Its place is back: a routine call is admitted again.
    RawCall::invite(&daemon, "+15550100", media, 3).ack_and_hang_up();
    let refused_total = metric(&daemon, "frontdesk_calls_refused_total");
    assert_eq!(refused_total, 1.0, "one refusal, counted");
    // Nothing of the refused call reached the application: no record.
    let calls = support::call::calls(&daemon);
    assert_eq!(calls.len(), 3, "{calls:#?}");
}

#[test]
fn above_the_admission_rate_new_calls_get_503_before_any_transaction() {
    let (_dir, daemon) = daemon(&["--max-call-rate", "1"]);
    let audio = RtpPeer::start(0, false);
    let media: SocketAddr = format!("127.0.0.1:{}", audio.port())
        .parse()
        .expect("an address");
    // At 1 call/s the bucket holds two: the third call at once is refused.
    let first = RawCall::invite(&daemon, "+15550100", media, 1);
    let second = RawCall::invite(&daemon, "+15550100", media, 2);
    let refused = RawCall::try_invite(&daemon, "+15550100", media, 3)
        .err()
        .expect("the third call in a burst is refused");
    assert_refused(&refused, 5);
    // Urgent lines may take the bucket below empty.
    let urgent = RawCall::invite(&daemon, "+15550111", media, 4);
    for call in [first, second, urgent] {
        call.ack_and_hang_up();
    }
    assert_eq!(support::call::calls(&daemon).len(), 3);
}
