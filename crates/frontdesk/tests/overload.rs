//! Issue 18 end to end: admission control. With the threshold lowered for
//! the test, a new call past it gets `503` with `Retry-After` before any
//! transaction exists for it, the calls admitted complete, and a call to
//! an urgent line gets through while routine ones are refused. (The bound
//! on calls in set-up and the lag-driven rate are unit-tested in virtual
//! time in `sip::overload`; under real load in BENCHMARKS.md.)

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
fn past_the_admission_threshold_new_calls_get_503_and_an_urgent_one_gets_through() {
    // One new call a second, a bucket of two: the third call at once is
    // past the threshold.
    let (_dir, daemon) = daemon(&["--max-call-rate", "1", "--overload-retry-after", "9"]);
    // An admitted call that takes a while: the number rings 3 s first.
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
    wait_metric(&daemon, "frontdesk_calls_admitted_total", |n| n >= 1.0);
    let media: SocketAddr = format!("127.0.0.1:{}", audio.port())
        .parse()
        .expect("an address");
    let second = RawCall::invite(&daemon, "+15550100", media, 1);
    // A routine call past the threshold: refused at once, with Retry-After.
    let refused = RawCall::try_invite(&daemon, "+15550100", media, 2)
        .err()
        .expect("a routine call past the threshold is refused");
    assert_refused(&refused, 9);
    // An urgent line is admitted ahead of routine ones.
    let urgent = RawCall::invite(&daemon, "+15550111", media, 3);
    urgent.ack_and_hang_up();
    second.ack_and_hang_up();
    // The admitted calls complete: the ringing one answered after its ring,
    // then hung up by its caller.
    ringing
        .join()
        .expect("the ringing call")
        .assert_all_succeeded(1);
    let deadline = Instant::now() + BOUND;
    while !support::call::calls(&daemon)
        .iter()
        .all(|call| call["outcome"] != "in_progress")
    {
        assert!(Instant::now() < deadline, "a call did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(&daemon, "frontdesk_calls_refused_total"), 1.0);
    // Nothing of the refused call reached the application: no record.
    let calls = support::call::calls(&daemon);
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert!(
        calls
            .iter()
            .any(|call| call["source"] == "urgent-care-campaign"),
        "{calls:#?}"
    );
}

/// Each thread's name, nice value and scheduling policy, from
/// `/proc/PID/task/*/stat`.
fn thread_niceness(pid: u32) -> Vec<(String, i32, u32)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the daemon's threads");
    let mut threads = Vec::new();
    for task in tasks.flatten() {
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // The fields after the `(comm)`: state is the 3rd field, nice the
        // 19th, policy the 41st (proc_pid_stat(5)).
        let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        let nice = fields[16].parse().expect("a nice field");
        let policy = fields[38].parse().expect("a policy field");
        threads.push((comm.trim().to_string(), nice, policy));
    }
    threads
}

#[test]
fn the_sip_front_end_runs_ahead_of_the_call_threads() {
    let (_dir, daemon) = daemon(&["--worker-nice", "7"]);
    let threads = thread_niceness(daemon.pid());
    let front: Vec<_> = threads
        .iter()
        .filter(|(name, ..)| name == "sip-front")
        .collect();
    let workers: Vec<_> = threads
        .iter()
        .filter(|(name, ..)| name == "tokio-rt-worker")
        .collect();
    assert_eq!(front.len(), 1, "{threads:?}");
    assert!(!workers.is_empty(), "{threads:?}");
    let base = front[0].1;
    assert!(
        workers
            .iter()
            .all(|(_, nice, _)| *nice == (base + 7).min(19)),
        "{threads:?}"
    );
    // And the journal's writer keeps the front end's priority: it must
    // keep up with the calls it records.
    assert!(
        threads
            .iter()
            .filter(|(name, ..)| name == "records-journal")
            .all(|(_, nice, _)| *nice == base),
        "{threads:?}"
    );
    // Work no caller waits for (the webhooks' delivery) runs below the
    // calls, whatever --worker-nice says.
    let background: Vec<_> = threads
        .iter()
        .filter(|(name, ..)| name == "background")
        .collect();
    // Its runtime's thread and the blocking threads it started.
    assert!(!background.is_empty(), "{threads:?}");
    assert!(
        background
            .iter()
            .all(|(_, nice, policy)| *nice == (base + 10).min(19) && *policy == SCHED_OTHER),
        "{threads:?}"
    );
    // The webhooks' POSTs run in the idle class: a call's thread woken
    // while one runs takes the CPU at once.
    let sending: Vec<_> = threads
        .iter()
        .filter(|(name, ..)| name == "webhook-send")
        .collect();
    assert_eq!(sending.len(), 1, "{threads:?}");
    assert_eq!(sending[0].2, SCHED_IDLE, "{threads:?}");
    // Nothing else is.
    assert!(
        threads
            .iter()
            .filter(|(name, ..)| name != "webhook-send")
            .all(|(_, _, policy)| *policy == SCHED_OTHER),
        "{threads:?}"
    );
}

/// `sched(7)`'s policy numbers, as `/proc/PID/task/*/stat` shows them.
const SCHED_OTHER: u32 = 0;
const SCHED_IDLE: u32 = 5;
