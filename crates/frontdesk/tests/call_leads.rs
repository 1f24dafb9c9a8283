//! Issue 22 end to end, calls that become leads: a caller who hangs up
//! after waiting past the queue's `abandoned_lead_after` (shortened to a
//! second here) is an `abandoned_call` lead in the queue's department,
//! due within the queue's `respond_within`, tied to the call; the same
//! number hanging up again after it reached an agent is not.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::open_clinic;
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

/// Polls `path` until `wanted` holds.
fn poll(daemon: &Daemon, path: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let response = daemon.get(path, Some(TOKEN));
        assert_eq!(response.status, 200, "{path}: {response:?}");
        let json = response.json();
        if wanted(&json) {
            return json;
        }
        assert!(Instant::now() < deadline, "{path}: last {json:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
