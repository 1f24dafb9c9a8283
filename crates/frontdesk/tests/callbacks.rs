//! Issue 22 end to end, callbacks that keep the caller's place (virtual
//! hold): the real daemon, patients (SIPp), the pediatrics agent's phone
//! (SIPp, registered) and the carrier's trunk (a SIPp UAS on a free port
//! written into the test's dialplan copy), with RTP peers of the test on
//! every side.
//!
//! * A patient presses 1, keys another number and `#`, and hangs up: the
//!   callback keeps their place, ahead of a later caller who holds live.
//!   When the agent signs in, their phone rings first (for the callback,
//!   not the live caller), then the trunk gets the INVITE for the keyed
//!   number, and the two hear each other; the call's timeline shows the
//!   callback accepted and then connected, with the whole wait.
//! * A patient whose line is busy is tried again after `retry_every`
//!   (shortened to a second), `retries` times, and then the callback is a
//!   `callback` lead for the desk.
//! * A callback survives a restart (kill -9) with its place: after it, a
//!   new caller still comes second.

mod support;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::{callback_steps, free_udp_port, metric, open_clinic, poll, with_carrier_trunk};
use support::people::{STEP_BOUND, answering_agent, patient, press_when_heard, sipp_phone};
use support::phone::{FILL, RtpPeer, register};
use support::sipp::{Sipp, SippRun};
use support::{Daemon, Launch, TOKEN};

/// The number the patients key for their callback (trunk-auth.xml and
/// trunk-busy.xml check it).
const CALL_BACK: &str = "+13125550199";

/// Pediatrics in `/api/queues`.
fn pediatrics(json: &Value) -> Value {
    json["queues"]
        .as_array()
        .and_then(|queues| queues.iter().find(|q| q["id"] == "pediatrics"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until pediatrics has `waiting` patients, `callbacks` of them
/// callbacks.
fn wait_pediatrics(daemon: &Daemon, waiting: u64, callbacks: u64) {
    poll(daemon, "/api/queues", |json| {
        let queue = pediatrics(json);
        queue["waiting"] == waiting && queue["callbacks"] == callbacks
    });
}

/// Waits until call `id`'s timeline has the callback steps `steps`.
fn wait_steps(daemon: &Daemon, id: &str, steps: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let found = callback_steps(daemon, id);
        let names: Vec<&str> = found.iter().filter_map(|s| s["step"].as_str()).collect();
        if names == steps {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: steps {names:?}, wanted {steps:?}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ids in `/api/calls` now, newest first.
fn call_ids(daemon: &Daemon) -> Vec<String> {
    daemon.get("/api/calls?limit=20", Some(TOKEN)).json()["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|call| call["id"].as_str().map(str::to_string))
        .collect()
}

fn call(daemon: &Daemon, id: &str) -> Value {
    daemon.get(&format!("/api/calls/{id}"), Some(TOKEN)).json()
}

/// A patient reaches pediatrics (nobody there), presses 1, keys
/// 312-555-0199 and `#`, hears the goodbye and is hung up on: the call's id.
fn asks_for_a_callback(daemon: &Daemon) -> String {
    let before = call_ids(daemon);
    let audio = RtpPeer::start(0, false);
    let run = patient(daemon, "caller-hungup.xml", "+15550100", &audio, 0);
    press_when_heard(&audio, '3');
    let id = new_call_in_pediatrics(daemon, &before);
    // The hold prompt plays; the key is taken at any time while waiting.
    let heard = audio.received().len();
    audio.press('1');
    assert!(
        audio.wait_until(STEP_BOUND, |audio| audio.received().len() > heard + 10),
        "no number prompt"
    );
    for digit in "3125550199#".chars() {
        audio.press(digit);
    }
    run.join().expect("the patient").assert_all_succeeded(1);
    let steps = wait_steps(daemon, &id, &["accepted"]);
    assert_eq!(steps[0]["department"], "pediatrics", "{steps:?}");
    id
}

/// The id of the call not in `before` once it waits in pediatrics.
fn new_call_in_pediatrics(daemon: &Daemon, before: &[String]) -> String {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let calls = daemon.get("/api/calls?limit=20", Some(TOKEN)).json();
        let found = calls["calls"].as_array().into_iter().flatten().find(|c| {
            c["department"] == "pediatrics"
                && c["outcome"] == "in_progress"
                && c["id"]
                    .as_str()
                    .is_some_and(|id| !before.iter().any(|b| b == id))
        });
        if let Some(found) = found {
            return found["id"].as_str().expect("an id").to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no new call in pediatrics: {calls:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A later caller who holds live in pediatrics (hangs up `talk_ms` + 2 s
/// after the IVR answered): the run and the call's id.
fn holds_live(daemon: &Daemon, audio: &RtpPeer, talk_ms: u64) -> (JoinHandle<SippRun>, String) {
    let before = call_ids(daemon);
    let run = patient(daemon, "caller.xml", "+15550100", audio, talk_ms);
    press_when_heard(audio, '3');
    (run, new_call_in_pediatrics(daemon, &before))
}

/// The trunk answers (after a digest challenge), the patient talks 4 s and
/// hangs up; the agent answers; both hear each other through our relay,
/// while the live caller `live` still waits.
fn called_back(daemon: &Daemon, trunk_port: u16, live: &str) {
    let patient_audio = RtpPeer::start(0, false);
    let trunk = sipp_phone(
        daemon,
        "trunk-auth.xml",
        trunk_port,
        [
            "-d",
            "4000",
            "-set",
            "rtp_port",
            &patient_audio.port().to_string(),
        ]
        .map(String::from)
        .to_vec(),
    );
    let agent_audio = RtpPeer::start(0, false);
    let agent = answering_agent(daemon, "1003", &agent_audio);
    assert!(
        agent_audio.wait_until(STEP_BOUND, |p| p.uniform(FILL) >= 25),
        "the agent heard no patient\n{}",
        daemon.stderr()
    );
    assert!(
        patient_audio.wait_until(STEP_BOUND, |p| p.uniform(FILL) >= 25),
        "the patient heard no agent\n{}",
        daemon.stderr()
    );
    // The agent took the callback, not the later caller who holds live.
    let waiting = call(daemon, live);
    assert_eq!(waiting["outcome"], "in_progress", "{waiting:#}");
    assert!(waiting["agent"].is_null(), "{waiting:#}");
    trunk.join().expect("the trunk").assert_all_succeeded(1);
    agent.join().expect("the agent").assert_all_succeeded(1);
}

#[test]
fn a_callback_keeps_its_place_rings_the_agent_first_then_calls_the_patient() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let trunk_port = free_udp_port();
    let plan = open_clinic(dir.path(), |text| with_carrier_trunk(text, trunk_port));
    let daemon = Launch::new().dialplan(plan).start();

    let first = asks_for_a_callback(&daemon);
    wait_pediatrics(&daemon, 1, 1);
    let live_audio = RtpPeer::start(0, false);
    let (live_run, live) = holds_live(&daemon, &live_audio, 15_000);
    wait_pediatrics(&daemon, 2, 1);

    called_back(&daemon, trunk_port, &live);

    // The timeline: accepted with the wait so far, connected with the
    // whole wait since the patient first queued.
    let steps = wait_steps(&daemon, &first, &["accepted", "connected"]);
    let (held, whole) = (steps[0]["wait_ms"].as_u64(), steps[1]["wait_ms"].as_u64());
    assert!(
        held.zip(whole).is_some_and(|(held, whole)| whole > held),
        "{steps:?}"
    );
    assert_eq!(steps[1]["department"], "pediatrics");
    assert_eq!(
        metric(&daemon, "frontdesk_callbacks_total{result=\"connected\"}"),
        Some(1.0)
    );
    // No lead: the patient was called back.
    let leads = daemon.get("/api/leads", Some(TOKEN)).json();
    assert!(
        !leads["leads"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|lead| lead["kind"] == "callback"),
        "{leads:#}"
    );
    live_run.join().expect("the live caller");
    wait_pediatrics(&daemon, 0, 0);
    // The logs name the patients by pseudonym only.
    assert!(!daemon.stderr().contains("3125550199"));
}

#[test]
fn a_busy_patient_is_tried_again_then_the_callback_becomes_a_lead() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let trunk_port = free_udp_port();
    let plan = open_clinic(dir.path(), |text| {
        text.replace(
            "uri = \"sip:127.0.0.1:5062\"",
            &format!("uri = \"sip:127.0.0.1:{trunk_port}\""),
        )
        .replace(
            "retries = 2, retry_every = \"5m\"",
            "retries = 2, retry_every = \"1s\"",
        )
    });
    let daemon = Launch::new().dialplan(plan).start();
    let first = asks_for_a_callback(&daemon);

    // Three tries: the agent answers each, the trunk is busy each time.
    let trunk = std::thread::spawn({
        let target = daemon.sip();
        move || {
            Sipp::new("trunk-busy.xml", target)
                .calls(3)
                .args(["-p".to_string(), trunk_port.to_string()])
                .run()
        }
    });
    support::people::wait_port_taken(trunk_port);
    let agent_audio = RtpPeer::start(0, false);
    let agent_port = free_udp_port();
    let agent = std::thread::spawn({
        let target = daemon.sip();
        let rtp = agent_audio.port().to_string();
        move || {
            Sipp::new("agent.xml", target)
                .calls(3)
                .args([
                    "-p".to_string(),
                    agent_port.to_string(),
                    "-d".to_string(),
                    "0".to_string(),
                    "-set".to_string(),
                    "rtp_port".to_string(),
                    rtp,
                ])
                .run()
        }
    });
    support::people::wait_port_taken(agent_port);
    register(daemon.sip(), "1003", agent_port, 3600);

    let steps = wait_steps(
        &daemon,
        &first,
        &["accepted", "retry", "retry", "exhausted"],
    );
    assert!(steps.iter().all(|s| s["department"] == "pediatrics"));
    trunk.join().expect("the trunk").assert_all_succeeded(3);
    agent.join().expect("the agent").assert_all_succeeded(3);

    // The callback is a lead for the desk, tied to the call.
    let json = poll(&daemon, "/api/leads", |json| {
        json["leads"]
            .as_array()
            .is_some_and(|leads| leads.iter().any(|lead| lead["kind"] == "callback"))
    });
    let lead = json["leads"]
        .as_array()
        .and_then(|leads| leads.iter().find(|lead| lead["kind"] == "callback"))
        .cloned()
        .expect("a callback lead");
    assert_eq!(lead["phone"], CALL_BACK, "{lead:#}");
    assert_eq!(lead["department"], "pediatrics", "{lead:#}");
    assert!(
        lead["message"].as_str().is_some_and(|m| m.contains(&first)),
        "{lead:#}"
    );
    wait_pediatrics(&daemon, 0, 0);
    assert_eq!(
        metric(&daemon, "frontdesk_callbacks_total{result=\"retry\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(&daemon, "frontdesk_callbacks_total{result=\"exhausted\"}"),
        Some(1.0)
    );
}

#[test]
fn a_callback_keeps_its_place_across_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let trunk_port = free_udp_port();
    let plan = open_clinic(dir.path(), |text| with_carrier_trunk(text, trunk_port));
    let mut daemon = Launch::new().dialplan(&plan).data(&data).start();
    let first = asks_for_a_callback(&daemon);
    wait_pediatrics(&daemon, 1, 1);
    // Durable before the patient heard the goodbye's end: in the journal.
    let reader = records::Reader::open(data.join("journal.db")).expect("the journal opens");
    let deadline = Instant::now() + STEP_BOUND;
    while reader.waiting_callbacks(10).expect("read").len() != 1 {
        assert!(Instant::now() < deadline, "the callback is not journalled");
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.stop_with(nix::sys::signal::Signal::SIGKILL);
    drop(daemon);

    let daemon = Launch::new().dialplan(&plan).data(&data).start();
    wait_pediatrics(&daemon, 1, 1);
    let live_audio = RtpPeer::start(0, false);
    let (live_run, live) = holds_live(&daemon, &live_audio, 15_000);
    wait_pediatrics(&daemon, 2, 1);
    called_back(&daemon, trunk_port, &live);
    wait_steps(&daemon, &first, &["accepted", "connected"]);
    live_run.join().expect("the live caller");
    let row = reader.waiting_callbacks(10).expect("read");
    assert!(row.is_empty(), "{row:?}");
}
