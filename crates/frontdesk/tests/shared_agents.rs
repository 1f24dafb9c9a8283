//! Issue 24, agents shared through Redis: two daemons (`--node-id a` on
//! 127.0.0.11, `b` on 127.0.0.12) and one redis-server, no Kamailio. An
//! agent registered with node b only is rung by node a, their state and
//! their un-REGISTER reach a, a reload of a is followed by b, and with
//! Redis killed each node goes on alone (an alert on both), then resyncs.
//! Every wait polls a condition under a bound; periods are shortened by
//! flags.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use support::call::{free_udp_port, open_clinic, poll, wait_for_call};
use support::people::{agent, patient, press_when_heard, sipp_phone, wait_agent_state};
use support::phone::{FILL, RtpPeer, register};
use support::redis::RedisServer;
use support::{Daemon, Launch, TOKEN};

const BOUND: Duration = Duration::from_secs(30);

fn node(name: &str, ip: &str, plan: &std::path::Path, redis: &RedisServer) -> Daemon {
    Launch::new()
        .dialplan(plan)
        .sip(format!("{ip}:0"))
        .args([
            "--node-id",
            name,
            "--redis",
            &redis.url(),
            "--cluster-resync",
            "2",
            "--cluster-heartbeat",
            "200",
            "--cluster-timeout",
            "300",
        ])
        .start()
}

fn has_alert(daemon: &Daemon, kind: &str) -> bool {
    let body = daemon.get("/api/alerts", Some(TOKEN)).json();
    body["alerts"]
        .as_array()
        .is_some_and(|alerts| alerts.iter().any(|a| a["kind"] == kind))
}

fn wait_alert(daemon: &Daemon, kind: &str, raised: bool) {
    poll(daemon, "/api/alerts", |body: &Value| {
        body["alerts"]
            .as_array()
            .is_some_and(|alerts| alerts.iter().any(|a| a["kind"] == kind) == raised)
    });
}

fn wait_remote(daemon: &Daemon, id: &str) {
    poll(daemon, "/api/agents", |_| {
        let now = agent(daemon, id);
        now["devices"] == serde_json::json!(["remote"]) && now["state"] == "available"
    });
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

/// A patient calls `daemon`, presses 3 (pediatrics: 1003) and talks;
/// audio both ways.
fn call_through(daemon: &Daemon, audio: &RtpPeer) {
    let patient_audio = RtpPeer::start(0, false);
    let call = patient(daemon, "caller.xml", "+15550100", &patient_audio, 1500);
    press_when_heard(&patient_audio, '3');
    assert!(
        audio.wait_until(BOUND, |p| p.relayed(FILL) >= 20),
        "the agent heard {}",
        audio.relayed(FILL)
    );
    assert!(
        patient_audio.wait_until(BOUND, |p| p.relayed(FILL) >= 20),
        "the patient heard {}",
        patient_audio.relayed(FILL)
    );
    call.join().expect("caller thread").assert_all_succeeded(1);
}

#[test]
fn an_agent_registered_with_one_node_is_shared_with_the_other_and_survives_redis_going() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let a = node("a", "127.0.0.11", &plan, &redis);
    let b = node("b", "127.0.0.12", &plan, &redis);

    // Both nodes see each other.
    for daemon in [&a, &b] {
        poll(daemon, "/api/cluster", |body| {
            body["redis"] == "up"
                && body["nodes"]
                    .as_array()
                    .is_some_and(|n| n.iter().filter(|n| n["alive"] == true).count() == 2)
        });
    }

    // 1003 registers with b only; a rings them and the call bridges.
    let audio = RtpPeer::start(0, false);
    let port = free_udp_port();
    let phone = carol(&b, port, &audio);
    wait_agent_state(&b, "1003", "available");
    assert_eq!(agent(&b, "1003")["devices"], serde_json::json!(["sip"]));
    wait_remote(&a, "1003");
    call_through(&a, &audio);
    phone.join().expect("agent phone").assert_all_succeeded(1);
    let call = wait_for_call(&a, BOUND, |call| call["agent"] == "1003");
    assert!(call["connected_at"].is_string(), "{call:#}");
    wait_agent_state(&a, "1003", "available");

    // Away on b is away on a; available again likewise.
    set_state(&b, "1003", "away");
    wait_agent_state(&a, "1003", "away");
    set_state(&b, "1003", "available");
    wait_agent_state(&a, "1003", "available");

    // Un-REGISTER on b: offline on a.
    register(b.sip(), "1003", port, 0);
    wait_agent_state(&b, "1003", "offline");
    wait_agent_state(&a, "1003", "offline");

    // A reload of a is followed by b, with the same dialplan.
    let before = b.get("/api/cluster", Some(TOKEN)).json()["reloads_from_others"]
        .as_u64()
        .unwrap_or(0);
    a.signal(Signal::SIGHUP);
    let after = poll(&b, "/api/cluster", |body| {
        body["reloads_from_others"].as_u64().unwrap_or(0) > before
    });
    assert_eq!(
        after["dialplan_hash"],
        a.get("/api/cluster", Some(TOKEN)).json()["dialplan_hash"]
    );
    assert!(!has_alert(&b, "dialplan_mismatch"));

    // Redis killed: both raise the alert; b's own agent still takes calls.
    let audio = RtpPeer::start(0, false);
    let phone = carol(&b, free_udp_port(), &audio);
    wait_agent_state(&b, "1003", "available");
    wait_remote(&a, "1003");
    redis.kill();
    wait_alert(&a, "cluster_store_down", true);
    wait_alert(&b, "cluster_store_down", true);
    call_through(&b, &audio);
    phone.join().expect("agent phone").assert_all_succeeded(1);

    // Back (empty): the alerts clear, b writes its binding again, and
    // notes flow again (away on b reaches a).
    redis.restart();
    wait_alert(&a, "cluster_store_down", false);
    wait_alert(&b, "cluster_store_down", false);
    wait_redis(&redis, &["HGET", "frontdesk:presence:1003", "b"], |out| {
        out.contains("sip:1003@127.0.0.1:")
    });
    wait_remote(&a, "1003");
    set_state(&b, "1003", "away");
    wait_agent_state(&a, "1003", "away");
}

/// An answering agent phone (`agent.xml`) on `port`, registered with
/// `daemon` as 1003, whose audio is `audio`.
fn carol(
    daemon: &Daemon,
    port: u16,
    audio: &RtpPeer,
) -> std::thread::JoinHandle<support::sipp::SippRun> {
    let args = ["-d", "0", "-set", "rtp_port", &audio.port().to_string()]
        .map(String::from)
        .to_vec();
    let phone = sipp_phone(daemon, "agent.xml", port, args);
    register(daemon.sip(), "1003", port, 3600);
    phone
}

/// Polls Redis until `wanted` holds on `redis-cli args`' output.
fn wait_redis(redis: &RedisServer, args: &[&str], wanted: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        let out = redis.cli(args);
        if wanted(&out) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "redis-cli {args:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(50)); // poll interval, bounded
    }
}
