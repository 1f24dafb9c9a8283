//! Issue 8 end to end: agents (SIPp UAS phones registered with digest auth)
//! and patients (SIPp callers) over real SIP on loopback, with RTP peers of
//! the test on both sides counting what the relay carries.

mod support;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::call::{calls, open_clinic, wait_for_call};
use support::people::{self, patient, press_when_heard, wait_agent_state};
use support::phone::{FILL, RtpPeer};
use support::sipp::SippRun;
use support::{Daemon, Launch};

const BOUND: Duration = Duration::from_secs(30);

fn daemon_with(tweak: impl Fn(String) -> String, args: &[&str]) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), tweak);
    let daemon = Launch::new()
        .dialplan(plan)
        .args(args.iter().copied())
        .start();
    (dir, daemon)
}

/// An agent phone running `scenario`, ringing `ring_ms` before it answers
/// (when it does), with its audio on `rtp_port`.
fn agent_phone(
    daemon: &Daemon,
    agent: &str,
    scenario: &str,
    rtp_port: u16,
    ring_ms: u64,
) -> JoinHandle<SippRun> {
    let mut extra = vec!["-d".to_string(), ring_ms.to_string()];
    if scenario == "agent.xml" {
        // Only the answering phone has audio.
        extra.extend([
            "-set".to_string(),
            "rtp_port".to_string(),
            rtp_port.to_string(),
        ]);
    }
    people::agent_phone(daemon, agent, scenario, &extra)
}

#[test]
fn pressing_3_rings_the_pediatrics_agent_who_answers_and_audio_flows_both_ways() {
    let (_dir, daemon) = daemon_with(|text| text, &[]);
    let agent_audio = RtpPeer::start(0, false);
    let carol = agent_phone(&daemon, "1003", "agent.xml", agent_audio.port(), 300);
    wait_agent_state(&daemon, "1003", "available");
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(&daemon, "caller.xml", "+15550100", &patient_audio, 6000);
    press_when_heard(&patient_audio, '3');
    // Both ways: the agent hears the patient's FILL, the patient the agent's.
    assert!(
        agent_audio.wait_until(BOUND, |p| p.relayed(FILL) >= 50),
        "agent heard {}",
        agent_audio.relayed(FILL)
    );
    assert!(
        patient_audio.wait_until(BOUND, |p| p.relayed(FILL) >= 50),
        "patient heard {}",
        patient_audio.relayed(FILL)
    );
    let connected = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1003");
    assert_eq!(connected["department"], "pediatrics");
    assert!(connected["connected_at"].is_string());
    wait_agent_state(&daemon, "1003", "on_call");
    // The patient's stream is one stream from prompt to agent: our own
    // header rewrite keeps the SSRC and the sequence running.
    let received = patient_audio.received();
    assert!(
        received.windows(2).all(|w| w[0].0.ssrc == w[1].0.ssrc),
        "one SSRC"
    );
    assert!(
        received
            .windows(2)
            .all(|w| w[1].0.sequence == w[0].0.sequence.wrapping_add(1)),
        "sequence continuous across prompts and bridge"
    );
    // The patient hangs up: both legs end, the agent wraps up, then is free.
    patient
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    wait_agent_state(&daemon, "1003", "wrap_up");
    wait_agent_state(&daemon, "1003", "available");
    carol.join().expect("agent phone").assert_all_succeeded(1);
    let call = wait_for_call(&daemon, BOUND, |call| call["outcome"] == "connected");
    assert!(
        call["ended_at"].is_string() && call["wait_ms"].is_u64(),
        "{call:#}"
    );
}

#[test]
fn a_pcma_patient_hears_a_pcmu_agent_through_conversion() {
    let (_dir, daemon) = daemon_with(|text| text, &[]);
    let agent_audio = RtpPeer::start(0, false);
    let carol = agent_phone(&daemon, "1003", "agent.xml", agent_audio.port(), 0);
    wait_agent_state(&daemon, "1003", "available");
    let patient_audio = RtpPeer::start(8, false);
    let patient = patient(
        &daemon,
        "caller-pcma.xml",
        "+15550100",
        &patient_audio,
        5000,
    );
    press_when_heard(&patient_audio, '3');
    // µ-law FILL from the agent arrives as the A-law code of the same sample.
    let alaw = media::g711::ulaw_to_alaw(FILL);
    assert!(
        patient_audio.wait_until(BOUND, |p| p.relayed(alaw) >= 50),
        "patient heard {}",
        patient_audio.relayed(alaw)
    );
    assert!(
        patient_audio
            .received()
            .iter()
            .filter(|(_, b)| *b == alaw)
            .all(|(h, _)| h.payload_type == 8)
    );
    let ulaw = media::g711::alaw_to_ulaw(FILL);
    assert!(
        agent_audio.wait_until(BOUND, |p| p.relayed(ulaw) >= 50),
        "agent heard {}",
        agent_audio.relayed(ulaw)
    );
    patient
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    carol.join().expect("agent phone").assert_all_succeeded(1);
}

/// Pediatrics rings for 2 s instead of 15 s.
fn short_rings(text: String) -> String {
    text.replace(
        "[queues.pediatrics]\nname = \"Pediatrics\"\nskills = [\"pediatrics\"]\nstrategy = \"longest-idle\"\nring_timeout = \"15s\"",
        "[queues.pediatrics]\nname = \"Pediatrics\"\nskills = [\"pediatrics\"]\nstrategy = \"longest-idle\"\nring_timeout = \"2s\"",
    )
}

#[test]
fn no_answer_rings_the_next_agent() {
    let (_dir, daemon) = daemon_with(short_rings, &[]);
    let silent = RtpPeer::start(0, true);
    // Carol registers first: longest idle, rung first; she never answers.
    let carol = agent_phone(&daemon, "1003", "agent-noanswer.xml", silent.port(), 0);
    // Carol is idle from this event on; Frank, registered after it, is
    // idle from the same millisecond or later, and a tie goes to the lower
    // id (routing's idle line orders by idle time, then id): Carol is rung
    // first either way, without a pause.
    wait_agent_state(&daemon, "1003", "available");
    let frank_audio = RtpPeer::start(0, false);
    let frank = agent_phone(&daemon, "1006", "agent.xml", frank_audio.port(), 0);
    wait_agent_state(&daemon, "1006", "available");
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(&daemon, "caller.xml", "+15550100", &patient_audio, 8000);
    press_when_heard(&patient_audio, '3');
    let call = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1006");
    assert_eq!(call["department"], "pediatrics");
    // Carol's phone got the CANCEL (its scenario ends with it).
    carol.join().expect("agent phone").assert_all_succeeded(1);
    patient
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    frank.join().expect("agent phone").assert_all_succeeded(1);
}

#[test]
fn busy_goes_to_the_next_agent_at_once() {
    let (_dir, daemon) = daemon_with(|text| text, &[]);
    let silent = RtpPeer::start(0, true);
    let carol = agent_phone(&daemon, "1003", "agent-busy.xml", silent.port(), 0);
    // Carol is idle from this event on; Frank, registered after it, is
    // idle from the same millisecond or later, and a tie goes to the lower
    // id (routing's idle line orders by idle time, then id): Carol is rung
    // first either way, without a pause.
    wait_agent_state(&daemon, "1003", "available");
    let frank_audio = RtpPeer::start(0, false);
    let frank = agent_phone(&daemon, "1006", "agent.xml", frank_audio.port(), 0);
    wait_agent_state(&daemon, "1006", "available");
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(&daemon, "caller.xml", "+15550100", &patient_audio, 4000);
    press_when_heard(&patient_audio, '3');
    // 486 moves on at once: Frank answers well within Carol's 15 s ring.
    let started = Instant::now();
    let call = wait_for_call(&daemon, Duration::from_secs(10), |call| {
        call["agent"] == "1006"
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(call["department"], "pediatrics");
    carol.join().expect("agent phone").assert_all_succeeded(1);
    patient
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    frank.join().expect("agent phone").assert_all_succeeded(1);
}

#[test]
fn hanging_up_while_the_agent_rings_cancels_the_agent_leg() {
    let (_dir, daemon) = daemon_with(|text| text, &[]);
    let silent = RtpPeer::start(0, true);
    let carol = agent_phone(&daemon, "1003", "agent-noanswer.xml", silent.port(), 0);
    wait_agent_state(&daemon, "1003", "available");
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(&daemon, "caller.xml", "+15550100", &patient_audio, 1500);
    press_when_heard(&patient_audio, '3');
    wait_agent_state(&daemon, "1003", "ringing");
    patient
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    carol.join().expect("agent phone").assert_all_succeeded(1);
    let call = wait_for_call(&daemon, BOUND, |call| call["outcome"] != "in_progress");
    assert_eq!(call["outcome"], "abandoned", "{call:#}");
    assert!(call["agent"].is_null());
    wait_agent_state(&daemon, "1003", "available");
}

/// A number straight to the front desk with urgent priority.
fn urgent_front_desk(text: String) -> String {
    text.replacen(
        "[[numbers]]\nnumber = \"+15550111\"",
        "[[numbers]]\nnumber = \"+15550122\"\nsource = \"urgent-front-desk\"\npriority = \"urgent\"\n\
         announce = [\"prompts/emergency-notice.wav\"]\nthen = { queue = \"front-desk\", priority = \"urgent\" }\n\n\
         [[numbers]]\nnumber = \"+15550111\"",
        1,
    )
}

#[test]
fn an_urgent_call_arriving_later_is_connected_first() {
    let (_dir, daemon) = daemon_with(urgent_front_desk, &[]);
    // A routine patient waits for the front desk, with nobody signed in.
    let routine_audio = RtpPeer::start(0, false);
    let routine = patient(&daemon, "caller.xml", "+15550100", &routine_audio, 12_000);
    press_when_heard(&routine_audio, '1');
    wait_for_call(&daemon, BOUND, |call| {
        call["department"] == "front-desk" && call["priority"] == "routine"
    });
    // Then an urgent one.
    let urgent_audio = RtpPeer::start(0, false);
    let urgent = patient(&daemon, "caller.xml", "+15550122", &urgent_audio, 6000);
    wait_for_call(&daemon, BOUND, |call| {
        call["source"] == "urgent-front-desk" && call["department"] == "front-desk"
    });
    // Alice signs in: the urgent patient is offered first.
    let alice_audio = RtpPeer::start(0, false);
    let alice = agent_phone(&daemon, "1001", "agent.xml", alice_audio.port(), 0);
    let call = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1001");
    assert_eq!(call["source"], "urgent-front-desk", "{call:#}");
    assert_eq!(call["priority"], "urgent");
    let waiting = calls(&daemon)
        .into_iter()
        .find(|c| c["source"] == "main-line")
        .expect("the routine call");
    assert!(waiting["agent"].is_null(), "{waiting:#}");
    urgent
        .join()
        .expect("urgent caller")
        .assert_all_succeeded(1);
    routine
        .join()
        .expect("routine caller")
        .assert_all_succeeded(1);
    alice.join().expect("agent phone").assert_all_succeeded(1);
}

#[test]
fn two_simultaneous_calls_never_reach_the_same_agent() {
    let (_dir, daemon) = daemon_with(|text| text, &[]);
    let carol_audio = RtpPeer::start(0, false);
    let carol = agent_phone(&daemon, "1003", "agent.xml", carol_audio.port(), 0);
    let frank_audio = RtpPeer::start(0, false);
    let frank = agent_phone(&daemon, "1006", "agent.xml", frank_audio.port(), 0);
    wait_agent_state(&daemon, "1003", "available");
    wait_agent_state(&daemon, "1006", "available");
    let first_audio = RtpPeer::start(0, false);
    let second_audio = RtpPeer::start(0, false);
    let first = patient(&daemon, "caller.xml", "+15550100", &first_audio, 5000);
    let second = patient(&daemon, "caller.xml", "+15550100", &second_audio, 5000);
    assert!(
        first_audio.wait_until(BOUND, RtpPeer::heard)
            && second_audio.wait_until(BOUND, RtpPeer::heard)
    );
    first_audio.press('3');
    second_audio.press('3');
    let deadline = Instant::now() + BOUND;
    let agents = loop {
        let mut agents: Vec<String> = calls(&daemon)
            .iter()
            .filter_map(|call| call["agent"].as_str().map(str::to_string))
            .collect();
        if agents.len() == 2 {
            agents.sort();
            break agents;
        }
        assert!(Instant::now() < deadline, "{:#?}", calls(&daemon));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(agents, vec!["1003", "1006"]);
    first.join().expect("caller").assert_all_succeeded(1);
    second.join().expect("caller").assert_all_succeeded(1);
    carol.join().expect("agent phone").assert_all_succeeded(1);
    frank.join().expect("agent phone").assert_all_succeeded(1);
}

/// Alice takes urgent-care calls too, so ring-all rings Erin and Alice.
fn alice_urgent(text: String) -> String {
    text.replacen(
        "id = \"1001\"\nname = \"Alice\"\npassword = \"demo-1001\"\nskills = [\"front-desk\"]",
        "id = \"1001\"\nname = \"Alice\"\npassword = \"demo-1001\"\nskills = [\"front-desk\", \"urgent-care\"]",
        1,
    )
}

#[test]
fn ring_all_cancels_the_losing_legs() {
    let (_dir, daemon) = daemon_with(alice_urgent, &[]);
    let silent = RtpPeer::start(0, true);
    let alice = agent_phone(&daemon, "1001", "agent-noanswer.xml", silent.port(), 0);
    let erin_audio = RtpPeer::start(0, false);
    let erin = agent_phone(&daemon, "1005", "agent.xml", erin_audio.port(), 300);
    wait_agent_state(&daemon, "1001", "available");
    wait_agent_state(&daemon, "1005", "available");
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(&daemon, "caller.xml", "+15550111", &patient_audio, 8000);
    let call = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1005");
    assert_eq!(call["department"], "urgent-care");
    // Alice's phone rang too and got the CANCEL when Erin answered.
    alice.join().expect("agent phone").assert_all_succeeded(1);
    patient.join().expect("caller").assert_all_succeeded(1);
    erin.join().expect("agent phone").assert_all_succeeded(1);
}

#[test]
fn an_agent_whose_phone_stops_sending_rtp_is_released() {
    let (_dir, daemon) = daemon_with(|text| text, &["--rtp-timeout", "2"]);
    let carol_audio = RtpPeer::start(0, false);
    let carol = agent_phone(&daemon, "1003", "agent.xml", carol_audio.port(), 0);
    wait_agent_state(&daemon, "1003", "available");
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(&daemon, "caller.xml", "+15550100", &patient_audio, 20_000);
    press_when_heard(&patient_audio, '3');
    wait_agent_state(&daemon, "1003", "on_call");
    // The agent's phone vanishes: no more RTP from it.
    carol_audio.go_silent();
    // Within the 2 s inactivity rule the call ends (BYE to both) and the
    // agent is freed.
    carol.join().expect("agent phone").assert_all_succeeded(1);
    wait_agent_state(&daemon, "1003", "available");
    let call = wait_for_call(&daemon, BOUND, |call| {
        call["outcome"] == "connected" && call["ended_at"].is_string()
    });
    assert_eq!(call["agent"], "1003");
    // The patient got our BYE before its own: its BYE then finds no call.
    let run = patient.join().expect("caller");
    assert!(run.count("FailedCall(C)") <= 1);
}
