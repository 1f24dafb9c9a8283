//! Issue 24, queue positions shared across nodes: two nodes (`--node-id a`
//! and `b` on free ports of 127.0.0.1) and one redis-server. Agent 1003
//! has one phone, registered with b (a rings it through the shared
//! binding), and is away; a patient waits for pediatrics on node a, then one on node b;
//! `/api/cluster` shows the line (one on each node). 1003 is made
//! available through node b, which hears of it first and would win the
//! race for her: its claim is refused because a's caller is ahead
//! (`frontdesk_claims_behind_total`), a's caller gets her, and b's caller
//! only once she is free again. Every wait polls a condition under a
//! bound; `--line-yield` is long so that b cannot take her by timing out.
//!
//! The same with a callback entry in a's place: a's patient presses 1 and
//! `#` and hangs up; their entry stays in pediatrics' shared line (a's
//! member in `/api/cluster`); b's later caller waits live. 1003 available
//! through b: a dials the callback first (her phone, then the carrier's
//! trunk, a SIPp UAS, for the patient), and b's caller gets her after
//! (b's own claim, when it reaches Redis first, is refused `behind` the
//! entry; without the entry in the line it would have been granted).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::call::{
    calls, free_udp_port, metric, open_clinic, poll, wait_for_call, with_carrier_trunk,
};
use support::people::{self, press_when_heard, wait_agent_state};
use support::phone::{RtpPeer, register};
use support::redis::RedisServer;
use support::{Daemon, Launch, TOKEN};

const BOUND: Duration = Duration::from_secs(30);

fn node(dir: &std::path::Path, name: &str, redis: &RedisServer) -> Daemon {
    node_with(open_clinic(dir, |text| text), name, redis)
}

fn node_with(plan: std::path::PathBuf, name: &str, redis: &RedisServer) -> Daemon {
    Launch::new()
        .dialplan(plan)
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
            "--line-yield",
            "10000",
        ])
        .start()
}

/// 1003's one phone, registered with `daemon` (the other node rings it
/// through the shared binding), answering `calls` calls in turn.
fn carol(
    daemon: &Daemon,
    audio: &RtpPeer,
    calls: u64,
) -> std::thread::JoinHandle<support::sipp::SippRun> {
    carol_with(daemon, audio, calls, "agent.xml", 200)
}

/// [`carol`] with `scenario` (`agent.xml`: rings `delay_ms`, answers,
/// waits for our BYE; `agent-hangup.xml`: answers, talks `delay_ms`,
/// hangs up).
fn carol_with(
    daemon: &Daemon,
    audio: &RtpPeer,
    calls: u64,
    scenario: &'static str,
    delay_ms: u64,
) -> std::thread::JoinHandle<support::sipp::SippRun> {
    let port = free_udp_port();
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
    let target = daemon.sip();
    let run = std::thread::spawn(move || {
        support::sipp::Sipp::new(scenario, target)
            .calls(calls)
            .args(args)
            .run()
    });
    people::wait_port_taken(port);
    register(daemon.sip(), "1003", port, 3600);
    run
}

/// A patient of `daemon` (its own SIPp port) who presses 3 (pediatrics)
/// and hangs up `call_ms` after the IVR answered (waiting included).
fn patient(
    daemon: &Daemon,
    call_ms: u64,
) -> (std::thread::JoinHandle<support::sipp::SippRun>, RtpPeer) {
    let audio = RtpPeer::start(0, false);
    let args: Vec<String> = [
        "-p",
        &free_udp_port().to_string(),
        "-s",
        "+15550100",
        "-set",
        "rtp_port",
        &audio.port().to_string(),
        "-set",
        "dtmf",
        "0",
        "-d",
        &call_ms.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let target = daemon.sip();
    let call = std::thread::spawn(move || {
        support::sipp::Sipp::new("caller.xml", target)
            .calls(1)
            .args(args)
            .run()
    });
    press_when_heard(&audio, '3');
    (call, audio)
}

fn set_state(daemon: &Daemon, id: &str, state: &str) {
    let response = daemon
        .try_request(
            "PUT",
            &format!("/api/agents/{id}/state"),
            Some(TOKEN),
            Some(&format!(r#"{{"state":"{state}"}}"#)),
        )
        .expect("PUT state");
    assert_eq!(response.status, 200, "{response:?}");
}

/// `/api/cluster`'s count of pediatrics callers waiting on `node`.
fn waiting_on(body: &Value, node: &str) -> u64 {
    body["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|line| line["queue"] == "pediatrics"))
        .and_then(|line| line["nodes"][node].as_u64())
        .unwrap_or(0)
}

#[test]
fn the_caller_first_in_line_across_nodes_gets_the_agent_who_comes_free() {
    let redis = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(dir_a.path(), "a", &redis);
    let b = node(dir_b.path(), "b", &redis);
    let audio = RtpPeer::start(0, false);
    let phone = carol(&b, &audio, 2);
    wait_agent_state(&b, "1003", "available");
    poll(&a, "/api/agents", |_| {
        people::agent(&a, "1003")["devices"] == serde_json::json!(["remote"])
    });
    wait_agent_state(&a, "1003", "available");
    set_state(&b, "1003", "away");
    wait_agent_state(&a, "1003", "away");

    // First a's caller, then b's, both waiting for pediatrics.
    let (first, _first_audio) = patient(&a, 5000);
    poll(&b, "/api/cluster", |body| waiting_on(body, "a") == 1);
    // Long enough to wait for the first call and 1003's wrap-up.
    let (second, _second_audio) = patient(&b, 16_000);
    let line = poll(&a, "/api/cluster", |body| {
        waiting_on(body, "a") == 1 && waiting_on(body, "b") == 1
    });
    assert_eq!(line["lines"][0]["waiting"], 2, "{line:#}");

    // Available through b: b's own caller is not first, a's is.
    set_state(&b, "1003", "available");
    let answered = wait_for_call(&a, BOUND, |call| {
        call["agent"] == "1003" && call["connected_at"].is_string()
    });
    assert!(answered["connected_at"].is_string(), "{answered:#}");
    // b heard of her first unless a's claim beat b's to Redis: then b's
    // claim was refused for the line (without the shared line, b's own
    // caller would have had her).
    let behind = metric(&b, "frontdesk_claims_behind_total").unwrap_or(0.0);
    eprintln!("shared_line: b's claims refused for the line: {behind}");
    // b's caller is still waiting: nobody connected on b.
    assert!(
        calls(&b).iter().all(|call| call["connected_at"].is_null()),
        "{:#?}",
        calls(&b)
    );

    // a's call ends; after her wrap-up b's caller gets her.
    first.join().expect("caller thread").assert_all_succeeded(1);
    wait_for_call(&b, BOUND, |call| {
        call["agent"] == "1003" && call["connected_at"].is_string()
    });
    second
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    phone.join().expect("agent phone").assert_all_succeeded(2);
    // Nobody waits any more, on either node.
    poll(&a, "/api/cluster", |body| {
        waiting_on(body, "a") == 0 && waiting_on(body, "b") == 0
    });
}

#[test]
fn a_callback_keeps_its_place_in_the_shared_line_ahead_of_a_later_caller_elsewhere() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let trunk_port = free_udp_port();
    let plan = open_clinic(dir.path(), |text| with_carrier_trunk(text, trunk_port));
    let a = node_with(plan.clone(), "a", &redis);
    let b = node_with(plan, "b", &redis);
    // The carrier's trunk answers the callback for the patient and waits
    // for our BYE; 1003 answers twice, talking 4 s each time (longer than
    // the callback's whisper).
    let patient_audio = RtpPeer::start(0, false);
    let trunk = people::sipp_phone(
        &a,
        "agent.xml",
        trunk_port,
        [
            "-d",
            "0",
            "-set",
            "rtp_port",
            &patient_audio.port().to_string(),
        ]
        .map(String::from)
        .to_vec(),
    );
    let audio = RtpPeer::start(0, false);
    let phone = carol_with(&b, &audio, 2, "agent-hangup.xml", 4000);
    wait_agent_state(&b, "1003", "available");
    poll(&a, "/api/agents", |_| {
        people::agent(&a, "1003")["devices"] == serde_json::json!(["remote"])
    });
    set_state(&b, "1003", "away");
    wait_agent_state(&a, "1003", "away");

    // a's patient keeps their place for a callback at their own number.
    let first_audio = RtpPeer::start(0, false);
    let first = people::patient(&a, "caller-hungup.xml", "+15550100", &first_audio, 0);
    press_when_heard(&first_audio, '3');
    poll(&b, "/api/cluster", |body| waiting_on(body, "a") == 1);
    let heard = first_audio.received().len();
    first_audio.press('1');
    assert!(
        first_audio.wait_until(BOUND, |audio| audio.received().len() > heard + 10),
        "no number prompt"
    );
    first_audio.press('#');
    first.join().expect("a's patient").assert_all_succeeded(1);
    let queues = poll(&a, "/api/queues", |body| {
        body["queues"]
            .as_array()
            .and_then(|queues| queues.iter().find(|q| q["id"] == "pediatrics"))
            .is_some_and(|queue| queue["callbacks"] == 1)
    });
    assert!(queues.is_object());
    // The entry is in the shared line, as a's.
    poll(&b, "/api/cluster", |body| waiting_on(body, "a") == 1);

    // b's caller comes later and waits live.
    let (second, _second_audio) = {
        let audio = RtpPeer::start(0, false);
        let call = people::patient(&b, "caller-hungup.xml", "+15550100", &audio, 0);
        press_when_heard(&audio, '3');
        (call, audio)
    };
    poll(&a, "/api/cluster", |body| {
        waiting_on(body, "a") == 1 && waiting_on(body, "b") == 1
    });

    // Available through b: a's callback is first in line.
    set_state(&b, "1003", "available");
    trunk.join().expect("the trunk").assert_all_succeeded(1);
    let answered = wait_for_call(&b, BOUND, |call| {
        call["agent"] == "1003" && call["connected_at"].is_string()
    });
    let reader = records::Reader::open(a.data_dir().join("journal.db")).expect("a's journal");
    let rows = reader.waiting_callbacks(10).expect("read");
    assert!(rows.is_empty(), "called back: {rows:?}");
    let called = calls(&a)
        .into_iter()
        .find(|call| call["department"] == "pediatrics")
        .and_then(|call| call["id"].as_str().map(str::to_string))
        .expect("a's call");
    let row = reader
        .callbacks_of_call(&called)
        .expect("read")
        .pop()
        .expect("a's callback row");
    assert_eq!(row.state, records::CallbackState::Connected, "{row:?}");
    let connected_back = row.ended_at.expect("connected at").as_millisecond();
    let connected_live: ivr::jiff::Timestamp = answered["connected_at"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("RFC 3339");
    assert!(
        connected_back < connected_live.as_millisecond(),
        "the callback was served first: {row:?} / {answered:#}"
    );
    let behind = metric(&b, "frontdesk_claims_behind_total").unwrap_or(0.0);
    eprintln!("shared_line: b's claims refused for a's callback: {behind}");
    second.join().expect("b's patient").assert_all_succeeded(1);
    phone.join().expect("agent phone").assert_all_succeeded(2);
}
