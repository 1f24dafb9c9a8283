//! The people of call tests: agents' phones (SIPp UAS scenarios registered
//! with digest auth), patients (SIPp callers with an RTP peer of the test
//! as their audio), and the agent states the API reports.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::call::free_udp_port;
use super::phone::{RtpPeer, register};
use super::sipp::{Sipp, SippRun};
use super::{Daemon, TOKEN};

/// How long tests wait for a person's or the daemon's next step.
pub const STEP_BOUND: Duration = Duration::from_secs(30);

/// Waits until SIPp has bound `port` (it does at start).
pub fn wait_port_taken(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("sipp did not bind port {port}");
}

/// A phone: SIPp running `scenario` (one call) on `port` with `args`,
/// ready (its port bound) when this returns. Not registered.
pub fn sipp_phone(
    daemon: &Daemon,
    scenario: &str,
    port: u16,
    args: Vec<String>,
) -> JoinHandle<SippRun> {
    let target = daemon.sip();
    let scenario = scenario.to_string();
    let mut all = vec!["-p".to_string(), port.to_string()];
    all.extend(args);
    let run = std::thread::spawn(move || Sipp::new(&scenario, target).calls(1).args(all).run());
    wait_port_taken(port);
    run
}

/// An agent's phone: SIPp running `scenario` (one call) on a free port of
/// its own, with `extra` arguments, registered as `agent` with its Contact
/// there. Answering scenarios get their audio port from `-set rtp_port`
/// in `extra`.
pub fn agent_phone(
    daemon: &Daemon,
    agent: &str,
    scenario: &str,
    extra: &[String],
) -> JoinHandle<SippRun> {
    let port = free_udp_port();
    let mut args = vec!["-d".to_string(), "0".to_string()];
    args.extend(extra.iter().cloned());
    let run = sipp_phone(daemon, scenario, port, args);
    register(daemon.sip(), agent, port, 3600);
    run
}

/// An answering agent phone (`agent.xml`) whose audio is `audio`.
pub fn answering_agent(daemon: &Daemon, agent: &str, audio: &RtpPeer) -> JoinHandle<SippRun> {
    agent_phone(
        daemon,
        agent,
        "agent.xml",
        &[
            "-set".to_string(),
            "rtp_port".to_string(),
            audio.port().to_string(),
        ],
    )
}

/// A patient calling `number` with `scenario` (`caller.xml`: hangs up
/// `talk_ms` + 2 s after the answer; `caller-hungup.xml`: waits for our
/// BYE), whose audio is `peer`.
pub fn patient(
    daemon: &Daemon,
    scenario: &str,
    number: &str,
    peer: &RtpPeer,
    talk_ms: u64,
) -> JoinHandle<SippRun> {
    let target = daemon.sip();
    let args: Vec<String> = [
        "-s",
        number,
        "-set",
        "rtp_port",
        &peer.port().to_string(),
        "-set",
        "dtmf",
        "0",
        "-d",
        &talk_ms.to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let scenario = scenario.to_string();
    std::thread::spawn(move || Sipp::new(&scenario, target).calls(1).args(args).run())
}

/// The patient's peer presses `digit` once it hears the IVR.
pub fn press_when_heard(peer: &RtpPeer, digit: char) {
    assert!(
        peer.wait_until(STEP_BOUND, RtpPeer::heard),
        "the patient heard no prompt"
    );
    peer.press(digit);
}

/// An agent as `GET /api/agents` shows it.
pub fn agent(daemon: &Daemon, id: &str) -> Value {
    let body: Value =
        serde_json::from_str(&daemon.get("/api/agents", Some(TOKEN)).body).expect("JSON");
    body["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until agent `id` is in `state`.
pub fn wait_agent_state(daemon: &Daemon, id: &str, state: &str) {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let now = agent(daemon, id);
        if now["state"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "agent {id} is {}, not {state}\n{}",
            now["state"],
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
