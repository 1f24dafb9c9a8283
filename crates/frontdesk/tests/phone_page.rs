//! Issue 23 end to end with a page made in Rust (tests/support/page.rs:
//! str0m, as a browser offers): the real daemon, SIPp patients, RTP peers.
//! The page signs in as 1003 and switches its phone on: 1003 is available
//! with device `browser`. A patient presses 3 (pediatrics): the page rings
//! with the department, answers, and each side hears the other's audio
//! through the relay; the page hangs up and the patient gets BYE. A page
//! that goes away during a call sends the patient back to the queue, where
//! another agent (a SIP phone) takes them; the browser device is gone. A
//! page that goes away while it rings is a miss at once, and the call
//! goes to the next agent.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::call::open_clinic;
use support::page::Page;
use support::people::{STEP_BOUND, answering_agent, patient, press_when_heard, wait_agent_state};
use support::phone::{FILL, RtpPeer};
use support::{Daemon, Launch, TOKEN};

/// The page's voice: a byte no prompt and no peer sends.
const VOICE: u8 = 0x33;

fn daemon(dir: &std::path::Path) -> Daemon {
    let plan = open_clinic(dir, |text| text);
    Launch::new()
        .dialplan(plan)
        .args(["--phone-away-after", "1"])
        .start()
}

fn agent(daemon: &Daemon, id: &str) -> Value {
    let agents = daemon.get("/api/agents", Some(TOKEN)).json();
    agents["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == id))
        .cloned()
        .expect("the agent")
}

fn wait_devices(daemon: &Daemon, id: &str, devices: Value) {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let found = agent(daemon, id);
        if found["devices"] == devices {
            return;
        }
        assert!(Instant::now() < deadline, "{id}: {found:#}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn call(daemon: &Daemon, id: &str) -> Value {
    daemon.get(&format!("/api/calls/{id}"), Some(TOKEN)).json()
}

/// The newest call's id once it waits in pediatrics.
fn waiting_call(daemon: &Daemon) -> String {
    let found = support::call::wait_for_call(daemon, STEP_BOUND, |call| {
        call["department"] == "pediatrics" && call["outcome"] == "in_progress"
    });
    found["id"].as_str().expect("an id").to_string()
}

#[test]
fn the_page_takes_a_call_hears_and_is_heard_then_hangs_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = daemon(dir.path());
    let page = Page::start(&daemon, "1003", "demo-1003");
    page.wait_connected();
    wait_devices(&daemon, "1003", json!(["browser"]));
    wait_agent_state(&daemon, "1003", "available");

    let audio = RtpPeer::start(0, false);
    let run = patient(&daemon, "caller-hungup.xml", "+15550100", &audio, 0);
    press_when_heard(&audio, '3');
    let id = waiting_call(&daemon);
    let ringing = page.expect("ringing");
    assert!(
        ringing["from"]
            .as_str()
            .is_some_and(|from| from.starts_with("Pediatrics · ")),
        "{ringing}"
    );
    let call_id = ringing["call"].clone();
    page.send(json!({"type": "answer", "call": call_id}));
    page.expect("connected");
    page.say(VOICE);
    assert!(page.wait_heard(FILL, 25), "the page heard no patient");
    assert!(
        audio.wait_until(STEP_BOUND, |audio| audio.uniform(VOICE) >= 25),
        "the patient heard no agent\n{}",
        daemon.stderr()
    );
    let record = call(&daemon, &id);
    assert_eq!(record["agent"], "1003", "{record:#}");
    wait_agent_state(&daemon, "1003", "on_call");

    page.send(json!({"type": "hangup", "call": call_id}));
    page.expect("ended");
    run.join().expect("the patient").assert_all_succeeded(1);
    // Wrap-up, then available again, with the page's phone still on.
    wait_agent_state(&daemon, "1003", "available");
    assert_eq!(agent(&daemon, "1003")["devices"], json!(["browser"]));
}

#[test]
fn a_page_gone_during_a_call_sends_the_patient_back_to_the_queue() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = daemon(dir.path());
    let page = Page::start(&daemon, "1003", "demo-1003");
    page.wait_connected();
    wait_devices(&daemon, "1003", json!(["browser"]));

    // The patient talks for 20 s after the IVR answered, then hangs up.
    let audio = RtpPeer::start(0, false);
    let run = patient(&daemon, "caller.xml", "+15550100", &audio, 20_000);
    press_when_heard(&audio, '3');
    let id = waiting_call(&daemon);
    let ringing = page.expect("ringing");
    page.send(json!({"type": "answer", "call": ringing["call"]}));
    page.expect("connected");
    page.say(VOICE);
    assert!(audio.wait_until(STEP_BOUND, |audio| audio.uniform(VOICE) >= 10));

    // The tab is closed.
    drop(page);
    wait_devices(&daemon, "1003", json!([]));
    // Back in the queue: a blind transfer to pediatrics on the timeline,
    // with why.
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let record = call(&daemon, &id);
        let transferred = record["events"].as_array().and_then(|events| {
            events
                .iter()
                .find(|event| event["kind"] == "transferred")
                .cloned()
        });
        if let Some(event) = transferred {
            assert_eq!(event["detail"]["to"], "pediatrics", "{event:#}");
            assert_eq!(
                event["detail"]["note"], "the agent's browser phone was lost",
                "{event:#}"
            );
            assert_eq!(record["outcome"], "in_progress", "{record:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not back in the queue: {record:#}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    // Another pediatrics agent, on a SIP phone, takes the patient.
    let frank_audio = RtpPeer::start(0, false);
    let frank = answering_agent(&daemon, "1006", &frank_audio);
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let record = call(&daemon, &id);
        if record["agent"] == "1006" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "1006 did not take it: {record:#}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    run.join().expect("the patient").assert_all_succeeded(1);
    frank.join().expect("1006").assert_all_succeeded(1);
    let record = call(&daemon, &id);
    assert_eq!(record["outcome"], "connected", "{record:#}");
}

#[test]
fn a_page_gone_while_ringing_sends_the_call_to_the_next_agent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = daemon(dir.path());
    let page = Page::start(&daemon, "1003", "demo-1003");
    page.wait_connected();
    wait_devices(&daemon, "1003", json!(["browser"]));

    let audio = RtpPeer::start(0, false);
    let run = patient(&daemon, "caller.xml", "+15550100", &audio, 8_000);
    press_when_heard(&audio, '3');
    let id = waiting_call(&daemon);
    page.expect("ringing");
    // The tab is closed while it rings: the offer to 1003 fails at once
    // (480), not after the ring timeout.
    drop(page);
    wait_devices(&daemon, "1003", json!([]));
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let record = call(&daemon, &id);
        let missed = record["events"].as_array().is_some_and(|events| {
            events
                .iter()
                .any(|event| event["kind"] == "no_answer" && event["detail"]["agent"] == "1003")
        });
        if missed {
            assert_eq!(record["outcome"], "in_progress", "{record:#}");
            break;
        }
        assert!(Instant::now() < deadline, "no miss for 1003: {record:#}");
        std::thread::sleep(Duration::from_millis(25));
    }
    // The next agent takes the call.
    let frank_audio = RtpPeer::start(0, false);
    let frank = answering_agent(&daemon, "1006", &frank_audio);
    let deadline = Instant::now() + STEP_BOUND;
    while call(&daemon, &id)["agent"] != "1006" {
        assert!(Instant::now() < deadline, "1006 did not take it");
        std::thread::sleep(Duration::from_millis(25));
    }
    run.join().expect("the patient").assert_all_succeeded(1);
    frank.join().expect("1006").assert_all_succeeded(1);
}
