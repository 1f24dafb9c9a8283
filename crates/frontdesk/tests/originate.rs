//! Issue 21's click-to-call end to end: the real daemon, an agent's phone
//! (SIPp, registered with digest auth) and the carrier's trunk (a SIPp UAS
//! on a free port written into the test's dialplan copy, which challenges
//! with 407 and answers the authenticated INVITE), with RTP peers of the
//! test on both sides. The agent's phone rings first; the trunk gets the
//! INVITE for the lead's number; the audio is bridged; the lead shows its
//! first contact and the attempt. Numbers the trunk does not allow, a
//! patient who did not consent, and an agent without a phone are refused
//! with nothing sent.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::call::{free_udp_port, metric, open_clinic, with_carrier_trunk};
use support::leads::{Auth, body, post};
use support::people::{self, STEP_BOUND, wait_agent_state};
use support::phone::{FILL, RtpPeer};
use support::sipp::SippRun;
use support::{Daemon, Launch, TOKEN};

const ANA: &str = "+13125550199";

/// A signed website lead for `phone` (consenting to calls or not); its id.
fn lead(daemon: &Daemon, phone: &str, consent: bool) -> String {
    let mut text: Value = serde_json::from_str(&body(phone, "my knee hurts", "60605")).unwrap();
    text["consent"] = json!({ "call": consent });
    let response = post(daemon, &text.to_string(), &Auth::website(), None);
    assert_eq!(response.status, 201, "{response:?}");
    response.json()["lead"]["id"]
        .as_str()
        .expect("an id")
        .to_string()
}

/// `POST /api/leads/{id}/call` for `agent`.
fn admin_call(daemon: &Daemon, id: &str, agent: &str) -> support::Response {
    daemon
        .try_request(
            "POST",
            &format!("/api/leads/{id}/call"),
            Some(TOKEN),
            Some(&json!({ "agent": agent }).to_string()),
        )
        .expect("POST /api/leads/{id}/call")
}

fn lead_json(daemon: &Daemon, id: &str) -> Value {
    let response = daemon.get(&format!("/api/leads/{id}"), Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    response.json()["lead"].clone()
}

fn events(lead: &Value) -> Vec<String> {
    lead["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|step| step["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until `id`'s history holds `event`; the lead then.
fn wait_for_event(daemon: &Daemon, id: &str, event: &str) -> Value {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let lead = lead_json(daemon, id);
        if events(&lead).iter().any(|e| e == event) {
            return lead;
        }
        assert!(
            Instant::now() < deadline,
            "no {event} on {id}: {lead}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn the_agent_answers_the_trunk_challenges_then_answers_and_the_two_are_bridged() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let trunk_port = free_udp_port();
    let plan = open_clinic(dir.path(), |text| with_carrier_trunk(text, trunk_port));
    let daemon = Launch::new().dialplan(plan).start();
    let ana = lead(&daemon, ANA, true);
    let premium = lead(&daemon, "+19005550199", true);
    let foreign = lead(&daemon, "+442071234567", true);
    let unwilling = lead(&daemon, ANA, false);

    // Refused before anything is sent: no lead, no phone for the agent.
    let response = admin_call(&daemon, "l-nothing", "1004");
    assert_eq!(response.status, 404, "{response:?}");
    let response = admin_call(&daemon, &ana, "1004");
    assert_eq!(response.status, 409, "{response:?}");
    assert_eq!(
        response.json()["error"],
        "agent 1004 has no registered SIP phone"
    );

    // The agent's phone (answers at once) and the trunk (talks 4 s, then
    // the patient hangs up), each with its audio.
    let agent_audio = RtpPeer::start(0, false);
    let agent = people::answering_agent(&daemon, "1004", &agent_audio);
    wait_agent_state(&daemon, "1004", "available");
    let patient_audio = RtpPeer::start(0, false);
    let trunk = people::sipp_phone(
        &daemon,
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

    // Numbers the trunk does not allow, and a patient who said no: refused,
    // on the lead's history, and nothing rings (the agent's phone takes one
    // call, and the trunk's first INVITE must be for Ana's number).
    for id in [&premium, &foreign] {
        let response = admin_call(&daemon, id, "1004");
        assert_eq!(response.status, 403, "{response:?}");
        assert_eq!(
            response.json()["error"],
            "number not allowed by trunk carrier"
        );
    }
    let response = admin_call(&daemon, &unwilling, "1004");
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(response.json()["reason"], "no_consent");

    let response = admin_call(&daemon, &ana, "1004");
    assert_eq!(response.status, 202, "{response:?}");
    let started = response.json()["call"].clone();
    assert_eq!(started["agent"], "1004");
    assert_eq!(started["lead"], ana.as_str());
    // The agent is claimed for the call out: a second one (or a queue
    // call) does not ring their busy phone.
    let response = admin_call(&daemon, &ana, "1004");
    assert_eq!(response.status, 409, "{response:?}");
    assert_eq!(response.json()["reason"], "agent_not_available");

    // Bridged: each side hears the other's FILL through our relay.
    assert!(
        agent_audio.wait_until(STEP_BOUND, |p| p.uniform(FILL) >= 25),
        "the agent heard no patient: {:?}\n{}",
        agent_audio.received().len(),
        daemon.stderr()
    );
    assert!(
        patient_audio.wait_until(STEP_BOUND, |p| p.uniform(FILL) >= 25),
        "the patient heard no agent: {:?}\n{}",
        patient_audio.received().len(),
        daemon.stderr()
    );
    wait_agent_state(&daemon, "1004", "on_call");
    let trunk: SippRun = trunk.join().expect("the trunk's SIPp");
    trunk.assert_all_succeeded(1);
    let agent: SippRun = agent.join().expect("the agent's SIPp");
    agent.assert_all_succeeded(1);

    let lead = wait_for_event(&daemon, &ana, "call_ended");
    assert!(lead["first_contact_at"].is_string(), "{lead}");
    assert_eq!(lead["state"], "contacted");
    let history = events(&lead);
    for step in [
        "call_refused",
        "call_started",
        "agent_answered",
        "patient_answered",
        "call_ended",
    ] {
        assert!(history.iter().any(|e| e == step), "{step} in {history:?}");
    }
    let ended = lead["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["event"] == "call_ended")
        .cloned()
        .unwrap();
    assert_eq!(ended["by"], "patient");
    assert_eq!(ended["agent"], "1004");
    // After the call out, the agent's wrap-up, then available again.
    wait_agent_state(&daemon, "1004", "available");
    // The lead desk heard it too: the lead is the calling agent's, and its
    // response timer stopped (the desk's own `contacted` change).
    let lead = wait_for_event(&daemon, &ana, "contacted");
    assert_eq!(lead["owner"], "1004", "{lead}");
    assert_eq!(lead["state"], "contacted", "{lead}");

    for (id, reason) in [
        (&premium, "number_not_allowed"),
        (&foreign, "number_not_allowed"),
        (&unwilling, "no_consent"),
    ] {
        let lead = wait_for_event(&daemon, id, "call_refused");
        // Refused before anything was sent (the desk may have offered the
        // lead meanwhile: that is not a call).
        let steps = events(&lead);
        assert!(steps.iter().any(|e| e == "call_refused"), "{lead}");
        assert!(!steps.iter().any(|e| e == "call_started"), "{lead}");
        let refused = lead["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|step| step["event"] == "call_refused")
            .cloned()
            .unwrap();
        assert_eq!(refused["reason"], reason);
        assert!(lead["first_contact_at"].is_null());
    }
    assert_eq!(
        metric(
            &daemon,
            "frontdesk_originate_total{result=\"number_not_allowed\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(&daemon, "frontdesk_originate_total{result=\"connected\"}"),
        Some(1.0)
    );
    // The logs name the patients by pseudonym only.
    let logs = daemon.stderr();
    for number in ["3125550199", "9005550199", "2071234567"] {
        assert!(!logs.contains(number), "{number} in the logs");
    }
}

#[test]
fn the_agent_view_calls_as_its_own_agent_and_needs_a_session() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new().dialplan(plan).start();
    let unwilling = lead(&daemon, ANA, false);
    let path = format!("/agent/leads/{unwilling}/call");
    let response = daemon.try_request("POST", &path, None, None).expect("POST");
    assert_eq!(response.status, 401, "{response:?}");
    let login = daemon
        .try_request(
            "POST",
            "/agent/login",
            None,
            Some(&json!({"user": "1004", "password": "demo-1004"}).to_string()),
        )
        .expect("POST /agent/login");
    assert_eq!(login.status, 200, "{login:?}");
    let token = login.json()["token"].as_str().expect("a token").to_string();
    let response = daemon
        .try_request("POST", &path, Some(&token), None)
        .expect("POST");
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(
        response.json()["error"],
        "the patient did not consent to calls (consent.call is false)"
    );
    let lead = wait_for_event(&daemon, &unwilling, "call_refused");
    assert_eq!(lead["history"][1]["event"], "call_refused");
    assert_eq!(lead["history"][1]["agent"], "1004");
}
