//! Interop with a real softphone: baresip (headless, null audio, loopback;
//! the recipe is `tests/baresip/README.md`). One baresip signs in as agent
//! 1003 and auto-answers; a second one calls the clinic as a patient and
//! presses 3 with `sndcode`; the agent hangs up, then dials the away
//! feature code. Asserted through `/api/calls` and `/api/agents`.
//!
//! Each baresip runs from its own config folder in a temporary directory,
//! on free ports, bounded by `baresip -t` and stopped by its process id.
//! They are driven through their `ctrl_tcp` socket (JSON in netstrings):
//! commands in, responses and call events out.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::baresip::{BOUND, Baresip};
use support::call::{open_clinic, wait_for_call};
use support::{Daemon, Launch, TOKEN};

fn agent(daemon: &Daemon, id: &str) -> Value {
    let response = daemon.get("/api/agents", Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    body["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

fn wait_agent(daemon: &Daemon, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let now = agent(daemon, id);
        if done(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "agent {id}: {now}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn a_baresip_agent_answers_a_baresip_patient_who_pressed_3_then_hangs_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new().dialplan(plan).start();
    let sip = daemon.sip().port().to_string();

    // Carol's softphone signs in with her digest credentials.
    let mut carol = Baresip::start(
        "agent 1003",
        "accounts.agent",
        &[
            ("@AGENT@", "1003".to_string()),
            ("@PASSWORD@", "demo-1003".to_string()),
            ("@FRONTDESK_PORT@", sip.clone()),
        ],
    );
    // (REGISTER_OK may come before ctrl_tcp is connected: the API says.)
    let signed_in = wait_agent(&daemon, "1003", |a| a["state"] == "available");
    assert_eq!(signed_in["registered"], true);

    // A patient dials the main line and presses 3 (RFC 4733, sndcode).
    let mut patient = Baresip::start("patient", "accounts.patient", &[]);
    patient.command("dial", &format!("sip:+15550100@127.0.0.1:{sip}"));
    patient.wait_event("CALL_ESTABLISHED");
    patient.command("sndcode", "3");

    // Routed to pediatrics, rung on Carol's contact, auto-answered.
    let connected = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1003");
    assert_eq!(connected["department"], "pediatrics", "{connected:#}");
    assert_eq!(connected["source"], "main-line");
    assert_eq!(connected["caller"], "+13125550142");
    carol.wait_event("CALL_ESTABLISHED");
    wait_agent(&daemon, "1003", |a| a["state"] == "on_call");

    // Carol hangs up: both legs end, the call is recorded connected.
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    patient.wait_event("CALL_CLOSED");
    let ended = wait_for_call(&daemon, BOUND, |call| call["ended_at"].is_string());
    assert_eq!(
        (&ended["outcome"], &ended["agent"], &ended["department"]),
        (
            &Value::from("connected"),
            &Value::from("1003"),
            &Value::from("pediatrics")
        ),
        "{ended:#}"
    );
    assert!(ended["connected_at"].is_string() && ended["wait_ms"].is_u64());
    let after = wait_agent(&daemon, "1003", |a| {
        a["state"] == "wrap_up" || a["state"] == "available"
    });
    assert_eq!(after["calls_today"], 1, "{after}");
    wait_agent(&daemon, "1003", |a| a["state"] == "available");

    // Carol dials the away code from the same phone: answered, confirmed,
    // hung up by frontdesk; she is offered no calls now.
    carol.command("dial", &format!("sip:*41@127.0.0.1:{sip}"));
    carol.wait_event("CALL_ESTABLISHED");
    carol.wait_event("CALL_CLOSED");
    wait_agent(&daemon, "1003", |a| a["state"] == "away");

    patient.stop();
    carol.stop();
    // Carol's quit un-registered her.
    wait_agent(&daemon, "1003", |a| a["registered"] == false);
}
