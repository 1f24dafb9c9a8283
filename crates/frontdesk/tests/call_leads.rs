//! Issue 22 end to end, calls that become leads: a caller who hangs up
//! after waiting past the queue's `abandoned_lead_after` (shortened to a
//! second here) is an `abandoned_call` lead in the queue's department,
//! due within the queue's `respond_within`, tied to the call; the same
//! number reaching an agent answers that lead (contacted), and hanging up
//! again after it reached an agent makes no new one. Callbacks
//! at entry: the key, `#` for the caller's own number (the call ends, the
//! caller keeps their place in the queue, its wait on the record; the
//! dial itself is `callbacks.rs`'s), and a number the trunk's `deny`
//! refuses (an apology heard, a journal step, the caller waits on).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::{callback_steps, open_clinic, poll, wait_for_call};
use support::people::{STEP_BOUND, answering_agent, patient, press_when_heard, wait_agent_state};
use support::phone::RtpPeer;
use support::{Daemon, Launch, TOKEN};

/// The number caller.xml calls from.
const PATIENT: &str = "+13125550142";

fn daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| {
        text.replace(
            "abandoned_lead_after = \"30s\"",
            "abandoned_lead_after = \"1s\"",
        )
    });
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

fn leads_of_kind(json: &Value, kind: &str) -> Vec<Value> {
    json["leads"]
        .as_array()
        .map(|leads| {
            leads
                .iter()
                .filter(|lead| lead["kind"] == kind)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The ids of the calls in `/api/calls` that ended with `outcome`.
fn calls_ended(daemon: &Daemon, outcome: &str, count: usize) -> Vec<String> {
    let json = poll(daemon, "/api/calls?limit=20", |json| {
        json["calls"]
            .as_array()
            .is_some_and(|calls| calls.iter().filter(|c| c["outcome"] == outcome).count() == count)
    });
    json["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["outcome"] == outcome)
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn an_abandoned_wait_is_a_lead_unless_the_number_reached_an_agent() {
    let (_dir, daemon) = daemon();

    // A: pediatrics with nobody signed in; hangs up some seconds into the
    // wait (past the 1 s threshold).
    let audio = RtpPeer::start(0, false);
    let a = patient(&daemon, "caller.xml", "+15550100", &audio, 3000);
    press_when_heard(&audio, '3');
    a.join().expect("A").assert_all_succeeded(1);
    let abandoned = calls_ended(&daemon, "abandoned", 1);

    let json = poll(&daemon, "/api/leads", |json| {
        leads_of_kind(json, "abandoned_call").len() == 1
    });
    let lead = leads_of_kind(&json, "abandoned_call").remove(0);
    let id = lead["id"].as_str().expect("an id").to_string();
    let lead = daemon.get(&format!("/api/leads/{id}"), Some(TOKEN)).json()["lead"].clone();
    assert_eq!(lead["department"], "pediatrics", "{lead:#}");
    assert_eq!(lead["phone"], PATIENT, "{lead:#}");
    assert_eq!(lead["source"], "main-line", "{lead:#}");
    assert_eq!(lead["consent"]["call"], true, "{lead:#}");
    assert!(
        lead["message"]
            .as_str()
            .is_some_and(|m| m.contains(&abandoned[0]) && m.contains("pediatrics")),
        "{lead:#}"
    );
    assert!(
        lead["related"]
            .as_array()
            .is_some_and(|related| related.iter().any(|r| r == abandoned[0].as_str())),
        "the lead names the call: {lead:#}"
    );
    // respond_by = created_at + the queue's respond_within (1 h).
    let at = |key: &str| -> ivr::jiff::Timestamp {
        lead[key].as_str().expect(key).parse().expect("a time")
    };
    assert_eq!(
        at("respond_by").duration_since(at("created_at")).as_secs(),
        3600,
        "{lead:#}"
    );

    // B: the same number reaches Carol in pediatrics.
    let carol_audio = RtpPeer::start(0, false);
    let carol = answering_agent(&daemon, "1003", &carol_audio);
    wait_agent_state(&daemon, "1003", "available");
    let audio = RtpPeer::start(0, false);
    let b = patient(&daemon, "caller.xml", "+15550100", &audio, 1500);
    press_when_heard(&audio, '3');
    b.join().expect("B").assert_all_succeeded(1);
    carol.join().expect("Carol").assert_all_succeeded(1);
    calls_ended(&daemon, "connected", 1);
    // Reaching Carol answered A's lead: contacted, by her.
    let lead = poll(&daemon, &format!("/api/leads/{id}"), |json| {
        json["lead"]["state"] == "contacted"
    })["lead"]
        .clone();
    assert_eq!(lead["owner"], "1003", "{lead:#}");
    assert!(lead["first_contact_at"].is_string(), "{lead:#}");

    // C: the same number gives up on cardiology (nobody there): it reached
    // someone within the window, so no second lead.
    let audio = RtpPeer::start(0, false);
    let c = patient(&daemon, "caller.xml", "+15550100", &audio, 3000);
    press_when_heard(&audio, '2');
    c.join().expect("C").assert_all_succeeded(1);
    calls_ended(&daemon, "abandoned", 2);
    let deadline = Instant::now() + STEP_BOUND;
    let wanted = "frontdesk_call_leads_total{kind=\"abandoned_call\",result=\"reached\"} 1";
    loop {
        let metrics = daemon.get("/metrics", None).body;
        if metrics.contains(wanted) {
            break;
        }
        assert!(Instant::now() < deadline, "no `{wanted}` in\n{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = daemon.get("/api/leads", Some(TOKEN)).json();
    assert_eq!(leads_of_kind(&json, "abandoned_call").len(), 1, "{json:#}");
}

/// Marked talkspurts (each prompt starts one) heard by `peer` so far.
fn talkspurts(peer: &RtpPeer) -> usize {
    peer.received()
        .iter()
        .filter(|(header, _)| header.payload_type == 0 && header.marker)
        .count()
}

/// Waits until `peer` hears a prompt start after the `before`-th.
fn wait_new_prompt(peer: &RtpPeer, before: usize) {
    assert!(
        peer.wait_until(STEP_BOUND, |peer| talkspurts(peer) > before),
        "no new prompt"
    );
}

/// The lengths of the talkspurts `peer` heard, in 20 ms packets.
fn segments(peer: &RtpPeer) -> Vec<usize> {
    let mut lengths: Vec<usize> = Vec::new();
    for (header, _) in peer.received().iter().filter(|(h, _)| h.payload_type == 0) {
        match lengths.last_mut() {
            Some(last) if !header.marker => *last += 1,
            _ => lengths.push(1),
        }
    }
    lengths
}

fn frames(prompt: &str) -> usize {
    let path = support::repo_root().join("dialplans/prompts").join(prompt);
    media::prompt::Prompt::load(&path)
        .unwrap_or_else(|error| panic!("{prompt}: {error}"))
        .frame_count()
}

/// A patient (caller.xml hanging up `talk_ms` + 2 s after the answer, or
/// caller-hungup.xml waiting for our BYE) in the pediatrics queue, nobody
/// signed in: the call's id once it waits.
fn waiting_in_pediatrics(
    daemon: &Daemon,
    scenario: &str,
    audio: &RtpPeer,
    talk_ms: u64,
) -> (std::thread::JoinHandle<support::sipp::SippRun>, String) {
    let run = patient(daemon, scenario, "+15550100", audio, talk_ms);
    press_when_heard(audio, '3');
    let call = wait_for_call(daemon, STEP_BOUND, |call| {
        call["department"] == "pediatrics" && call["outcome"] == "in_progress"
    });
    (run, call["id"].as_str().expect("an id").to_string())
}

#[test]
fn a_callback_to_the_callers_number_keeps_the_place_and_ends_the_call() {
    let (_dir, daemon) = daemon();
    let audio = RtpPeer::start(0, false);
    let (run, id) = waiting_in_pediatrics(&daemon, "caller-hungup.xml", &audio, 0);
    let heard = talkspurts(&audio);
    audio.press('1');
    // "press pound to confirm the number you are calling from …"
    wait_new_prompt(&audio, heard);
    audio.press('#');
    // The goodbye, then our BYE.
    run.join().expect("patient").assert_all_succeeded(1);
    assert!(
        segments(&audio).contains(&frames("callback-accepted.wav")),
        "the goodbye was heard whole: {:?}",
        segments(&audio)
    );
    let call = wait_for_call(&daemon, STEP_BOUND, |call| {
        call["id"] == id.as_str() && call["outcome"] != "in_progress"
    });
    assert_eq!(call["outcome"], "overflowed", "{call:#}");
    let steps = callback_steps(&daemon, &id);
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["step"], "accepted");
    assert_eq!(steps[0]["department"], "pediatrics");
    assert!(
        steps[0]["wait_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{steps:?}"
    );

    // The place is kept (nobody is signed in to call back): one patient
    // waits in pediatrics, a callback; no lead, and not an abandoned call.
    poll(&daemon, "/api/queues", |json| {
        json["queues"].as_array().is_some_and(|queues| {
            queues
                .iter()
                .any(|q| q["id"] == "pediatrics" && q["waiting"] == 1 && q["callbacks"] == 1)
        })
    });
    let json = daemon.get("/api/leads", Some(TOKEN)).json();
    assert!(leads_of_kind(&json, "callback").is_empty(), "{json:#}");
    assert!(
        leads_of_kind(&json, "abandoned_call").is_empty(),
        "{json:#}"
    );
    // The report counts it.
    let report = daemon.get("/api/reports/departments", Some(TOKEN)).json();
    let pediatrics = report["departments"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["id"] == "pediatrics"))
        .cloned()
        .expect("pediatrics");
    assert_eq!(pediatrics["callbacks"]["offered"], 1, "{pediatrics:#}");
    assert_eq!(pediatrics["callbacks"]["accepted"], 1, "{pediatrics:#}");
    assert_eq!(pediatrics["callbacks"]["refused"], 0, "{pediatrics:#}");
    assert!(
        pediatrics["callbacks"]["waited_ms"]["p50"]
            .as_u64()
            .is_some(),
        "{pediatrics:#}"
    );
}

#[test]
fn a_callback_to_a_number_outside_the_trunks_allow_is_refused_with_an_apology() {
    let (_dir, daemon) = daemon();
    let audio = RtpPeer::start(0, false);
    let (run, id) = waiting_in_pediatrics(&daemon, "caller.xml", &audio, 12_000);
    let heard = talkspurts(&audio);
    audio.press('1');
    wait_new_prompt(&audio, heard);
    // A 900 number: in the demo trunk's `deny`.
    for digit in "9005550123#".chars() {
        audio.press(digit);
    }
    let deadline = Instant::now() + STEP_BOUND;
    let steps = loop {
        let steps = callback_steps(&daemon, &id);
        if !steps.is_empty() {
            break steps;
        }
        assert!(Instant::now() < deadline, "no callback step");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(steps[0]["step"], "refused", "{steps:?}");
    assert_eq!(steps[0]["department"], "pediatrics", "{steps:?}");
    // The apology, whole, and the caller still waits (hangs up later).
    let apology = frames("callback-refused.wav");
    assert!(
        audio.wait_until(STEP_BOUND, |audio| segments(audio).contains(&apology)),
        "no apology heard: {:?}",
        segments(&audio)
    );
    run.join().expect("patient").assert_all_succeeded(1);
    let call = wait_for_call(&daemon, STEP_BOUND, |call| {
        call["id"] == id.as_str() && call["outcome"] != "in_progress"
    });
    assert_eq!(call["outcome"], "abandoned", "{call:#}");
    let json = daemon.get("/api/leads", Some(TOKEN)).json();
    assert!(leads_of_kind(&json, "callback").is_empty(), "{json:#}");
}
