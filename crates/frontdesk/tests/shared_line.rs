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

mod support;

use std::time::Duration;

use serde_json::Value;
use support::call::{calls, free_udp_port, metric, open_clinic, poll, wait_for_call};
use support::people::{self, press_when_heard, wait_agent_state};
use support::phone::{RtpPeer, register};
use support::redis::RedisServer;
use support::{Daemon, Launch, TOKEN};

const BOUND: Duration = Duration::from_secs(30);

fn node(dir: &std::path::Path, name: &str, redis: &RedisServer) -> Daemon {
    let plan = open_clinic(dir, |text| text);
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
    let port = free_udp_port();
    let args: Vec<String> = [
        "-p",
        &port.to_string(),
        "-d",
        "200",
        "-set",
        "rtp_port",
        &audio.port().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let target = daemon.sip();
    let run = std::thread::spawn(move || {
        support::sipp::Sipp::new("agent.xml", target)
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
