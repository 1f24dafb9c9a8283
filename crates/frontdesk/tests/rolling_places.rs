//! Issue 24, a rolling restart loses no waiting caller's place: two nodes
//! (`--node-id a` and `b` on free ports of 127.0.0.1, each its own
//! `--data`), one redis-server, `--shutdown-grace 12` so that a drain takes
//! seconds, not half a minute. One agent (1003, SIPp `agent-hangup.xml`:
//! answers, talks 3 s, hangs up; registered with b) for more patients than
//! she can take, so callers wait on both nodes; the carrier's trunk is a
//! SIPp UAS (`agent.xml`), so a callback can be dialed.
//!
//! 1. Three patients wait on a, three on b (`/api/cluster` shows callers
//!    of both nodes in pediatrics' shared line).
//! 2. SIGTERM a: while it drains, 1003 keeps serving callers in the
//!    cluster's order; at two fifths of the grace each caller still
//!    waiting on a keeps their place (a callback entry, told so, hung up).
//!    a restarts on the same data: its entries are back in routing (and in
//!    the shared line), dialed in their turn.
//! 3. Two more patients on b; with callers waiting on b, SIGTERM b, then
//!    restart it likewise.
//! 4. Every patient's call succeeded (SIPp: answered, then our BYE; none
//!    dropped), and each was either bridged to 1003 or kept their place:
//!    outcome `overflowed`, the step `callback` `drain`, and one callback
//!    row in its node's journal whose `enqueued_at` is the call's own
//!    queue time. a's kept callers were called back after its restart
//!    (their rows `connected`). A monitor on the claim stream finds no
//!    agent held twice.
//!
//! Printed for BENCHMARKS.md (not asserted): each drain's length, and how
//! many callers were bridged and kept.

mod support;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cluster::claims::{find_violations, holdings};
use ivr::jiff::Timestamp;
use nix::sys::signal::Signal;
use serde_json::Value;
use support::call::{calls, free_udp_port, open_clinic, poll, with_carrier_trunk};
use support::cluster::ClaimMonitor;
use support::people::{self, press_when_heard, wait_agent_state, wait_port_taken};
use support::phone::{RtpPeer, register};
use support::redis::RedisServer;
use support::sipp::{Sipp, SippRun};
use support::{Daemon, Launch, STOP_BOUND, TOKEN};

/// `--shutdown-grace`, seconds: waiting callers keep their place at 4.8 s.
const GRACE: &str = "12";
/// How far a callback's `enqueued_at` may be from its call's `queued` step
/// (routing enters the call, then the call journals the step).
const SAME_TIME_MS: i64 = 1_000;
/// Every wait polls its condition within this.
const BOUND: Duration = Duration::from_secs(30);

fn node(data: &Path, plan: &Path, name: &str, redis: &RedisServer) -> Daemon {
    Launch::new()
        .dialplan(plan)
        .data(data.join(name))
        .sip("127.0.0.1:0")
        .args([
            "--node-id",
            name,
            "--redis",
            &redis.url(),
            "--claim-lease",
            "2",
            "--cluster-heartbeat",
            "200",
            "--shutdown-grace",
            GRACE,
        ])
        .start()
}

/// A SIPp UAS on `port` running `scenario` for up to 100 calls, each
/// answered at once (`-d`: what the scenario does with it), until stopped
/// by its process id ([`stop`]).
fn uas(scenario: &str, port: u16, delay_ms: u64, audio: &RtpPeer) -> (JoinHandle<SippRun>, u32) {
    let (pid_to, pid) = mpsc::channel();
    let args: Vec<String> = [
        "-p",
        &port.to_string(),
        "-d",
        &delay_ms.to_string(),
        "-set",
        "rtp_port",
        &audio.port().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let (scenario, target) = (
        scenario.to_string(),
        "127.0.0.1:9".parse().expect("an address"),
    );
    let run = std::thread::spawn(move || {
        Sipp::new(&scenario, target)
            .calls(100)
            .pid_to(pid_to)
            .args(args)
            .run()
    });
    wait_port_taken(port);
    let pid = pid.recv_timeout(STOP_BOUND).expect("SIPp's process id");
    (run, pid)
}

/// Stops a SIPp of this test, by its own process id.
fn stop(run: JoinHandle<SippRun>, pid: u32) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits i32"));
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let _ = run.join();
}

/// A patient of `daemon` for pediatrics (presses 3) who stays until we
/// hang up (`caller-hungup.xml`: after their agent hangs up, or after
/// their place is kept).
fn patient(daemon: &Daemon) -> (JoinHandle<SippRun>, RtpPeer) {
    let audio = RtpPeer::start(0, false);
    let call = people::patient(daemon, "caller-hungup.xml", "+15550100", &audio, 0);
    press_when_heard(&audio, '3');
    (call, audio)
}

/// `/api/cluster`'s count of pediatrics callers (and callback entries)
/// in line on `node`.
fn waiting_on(body: &Value, node: &str) -> u64 {
    body["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|line| line["queue"] == "pediatrics"))
        .and_then(|line| line["nodes"][node].as_u64())
        .unwrap_or(0)
}

/// SIGTERM, the drain, the exit; then the same node again on its data.
/// Returns the new daemon and how long the drain took.
fn restart(
    mut old: Daemon,
    data: &Path,
    plan: &Path,
    name: &str,
    redis: &RedisServer,
) -> (Daemon, Duration) {
    let started = Instant::now();
    old.signal(Signal::SIGTERM);
    let status = old.wait_exit(STOP_BOUND);
    let drained = started.elapsed();
    assert!(status.success(), "{name} exits 0: {status:?}");
    drop(old);
    (node(data, plan, name, redis), drained)
}

/// The RFC 3339 time `text`, in Unix milliseconds.
fn millis(text: &Value) -> i64 {
    let at: Timestamp = text.as_str().expect("a time").parse().expect("RFC 3339");
    at.as_millisecond()
}

/// How one pediatrics call of `daemon` ended: bridged (`true`) or with
/// its place kept (`false`, checked against the node's journal); panics
/// on anything else.
fn bridged_or_kept(daemon: &Daemon, journal: &Path, id: &str) -> bool {
    let call = daemon.get(&format!("/api/calls/{id}"), Some(TOKEN)).json();
    if call["connected_at"].is_string() {
        return true;
    }
    assert_eq!(call["outcome"], "overflowed", "{call:#}");
    let events = call["events"].as_array().cloned().unwrap_or_default();
    let step = |kind: &str| events.iter().find(|event| event["kind"] == kind).cloned();
    let queued = step("queued").unwrap_or_else(|| panic!("never queued: {call:#}"));
    let drain = events
        .iter()
        .find(|event| event["kind"] == "callback" && event["detail"]["step"] == "drain");
    assert!(drain.is_some(), "no drain step: {call:#}");
    let reader = records::Reader::open(journal).expect("the journal opens");
    let rows = reader.callbacks_of_call(id).expect("read the callbacks");
    assert_eq!(rows.len(), 1, "one callback row for {id}: {rows:?}");
    let row = &rows[0];
    assert_eq!(row.queue, "pediatrics");
    assert_eq!(row.number, "+13125550142", "the caller's own number");
    let kept = row.enqueued_at.as_millisecond();
    assert!(
        (kept - millis(&queued["at"])).abs() <= SAME_TIME_MS,
        "the callback keeps the call's queue time: {row:?} vs {queued:#}"
    );
    false
}

/// Every pediatrics call `daemon` journalled: how many were bridged, and
/// the ids of those that kept their place.
fn outcomes(daemon: &Daemon, journal: &Path) -> (usize, Vec<String>) {
    let (mut bridged, mut kept) = (0, Vec::new());
    for call in calls(daemon) {
        if call["department"] != "pediatrics" {
            continue;
        }
        let id = call["id"].as_str().expect("an id");
        if bridged_or_kept(daemon, journal, id) {
            bridged += 1;
        } else {
            kept.push(id.to_string());
        }
    }
    (bridged, kept)
}

/// Waits until the callback of each call in `kept` was dialed by its node
/// after the restart and the patient (the trunk) answered.
fn called_back(journal: &Path, kept: &[String]) {
    let reader = records::Reader::open(journal).expect("the journal opens");
    let deadline = Instant::now() + BOUND;
    for id in kept {
        loop {
            let rows = reader.callbacks_of_call(id).expect("read the callbacks");
            if rows
                .iter()
                .any(|row| row.state == records::CallbackState::Connected)
            {
                break;
            }
            assert!(Instant::now() < deadline, "{id} not called back: {rows:?}");
            std::thread::sleep(Duration::from_millis(100)); // a poll interval, bounded
        }
    }
}

#[test]
fn a_rolling_restart_keeps_every_waiting_callers_place() {
    let redis = RedisServer::start();
    let monitor = ClaimMonitor::start(&redis);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data: PathBuf = dir.path().join("nodes");
    let trunk_port = free_udp_port();
    let plan = open_clinic(dir.path(), |text| with_carrier_trunk(text, trunk_port));
    let a = node(&data, &plan, "a", &redis);
    let b = node(&data, &plan, "b", &redis);
    let trunk_audio = RtpPeer::start(0, false);
    let trunk = uas("agent.xml", trunk_port, 0, &trunk_audio);
    let phone_audio = RtpPeer::start(0, false);
    let phone_port = free_udp_port();
    let phone = uas("agent-hangup.xml", phone_port, 3_000, &phone_audio);
    register(b.sip(), "1003", phone_port, 3600);
    wait_agent_state(&b, "1003", "available");
    wait_agent_state(&a, "1003", "available");

    // 1. Callers wait on both nodes.
    let mut patients = Vec::new();
    for _ in 0..3 {
        patients.push(patient(&a));
        patients.push(patient(&b));
    }
    let line = poll(&a, "/api/cluster", |body| {
        waiting_on(body, "a") >= 2 && waiting_on(body, "b") >= 1
    });
    eprintln!("rolling_places: before a's restart: {}", line["lines"]);

    // 2. a drains (1003 still serves, in the cluster's order), restarts.
    let (a, a_drain) = restart(a, &data, &plan, "a", &redis);
    // She is busy by now, on and off: a knows her phone (through b).
    poll(&a, "/api/agents", |_| {
        people::agent(&a, "1003")["devices"] == serde_json::json!(["remote"])
    });

    // 3. More callers on b; with some waiting there, b drains, restarts.
    for _ in 0..2 {
        patients.push(patient(&b));
    }
    let line = poll(&a, "/api/cluster", |body| waiting_on(body, "b") >= 2);
    eprintln!("rolling_places: before b's restart: {}", line["lines"]);
    let (b, b_drain) = restart(b, &data, &plan, "b", &redis);
    register(b.sip(), "1003", phone_port, 3600);

    // 4. No call dropped: every patient was answered and hung up by us.
    let count = patients.len();
    for (call, _audio) in patients {
        call.join().expect("a patient").assert_all_succeeded(1);
    }
    let a_journal = data.join("a").join("journal.db");
    let (a_bridged, a_kept) = outcomes(&a, &a_journal);
    let (b_bridged, b_kept) = outcomes(&b, &data.join("b").join("journal.db"));
    eprintln!(
        "rolling_places: drains {a_drain:?} (a), {b_drain:?} (b); a: {a_bridged} bridged, \
         {} kept; b: {b_bridged} bridged, {} kept",
        a_kept.len(),
        b_kept.len()
    );
    assert_eq!(
        a_bridged + a_kept.len() + b_bridged + b_kept.len(),
        count,
        "every patient's call is journalled on its node"
    );
    assert!(
        !a_kept.is_empty() && !b_kept.is_empty(),
        "each drain kept some place"
    );
    // a came back first: its callbacks were dialed in their turn (1003
    // rang, then the trunk answered for the patient).
    called_back(&a_journal, &a_kept);

    let changes = monitor.changes();
    assert!(!monitor.fell_behind(), "the monitor fell behind the stream");
    let violations = find_violations(&holdings(&changes));
    assert!(violations.is_empty(), "agents held twice: {violations:?}");
    drop(monitor);
    stop(phone.0, phone.1);
    stop(trunk.0, trunk.1);
}
