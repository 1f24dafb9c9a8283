//! Interop with a second real softphone: Linphone (Debian's `linphone-cli`
//! 5.1, run as `linphone-daemon`, headless, no sound card, loopback; the
//! recipe is `tests/linphone/README.md`). Linphone signs in as agent 1003
//! with digest auth; a patient (SIPp, with an RTP peer of the test as their
//! audio) calls the main line and presses 3; frontdesk rings Linphone, it
//! answers by command and plays a WAV into the call (there is no sound
//! card: without a file Linphone sends no RTP), audio flows both ways
//! through the bridge, the agent
//! presses 5 (RFC 4733, which frontdesk relays to the patient in the
//! patient's own payload type), then transfers the call blind to
//! cardiology by REFER (RFC 3515), where Bob's phone answers. Asserted
//! through `/api/calls`, `/api/agents`, `/metrics` and the patient's RTP.
//!
//! The second test does the same over TLS (`frontdesk certs dev`, `run
//! --sips`) with SRTP mandatory on Linphone's leg (SDES, RFC 4568).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::{open_clinic, wait_for_call};
use support::linphone::{BOUND, Linphone};
use support::people::{agent, answering_agent, patient, press_when_heard, wait_agent_state};
use support::phone::RtpPeer;
use support::{Daemon, Launch};

/// How long the patient stays after the IVR answered (then 2 s more, then
/// BYE): room for the route, the answer, the checks and the transfer.
const TALK_MS: u64 = 12_000;
/// The RTP payload type of telephone-event in the patient's offer
/// (tests/sipp/caller.xml).
const PATIENT_EVENT_PT: u8 = 101;

/// A sample's value in Prometheus text; 0 when absent.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the agent legs' RTP counters reach `packets` both ways.
fn wait_agent_rtp(daemon: &Daemon, packets: f64) -> String {
    let deadline = Instant::now() + BOUND;
    loop {
        let metrics = daemon.get("/metrics", None).body;
        let from = metric(
            &metrics,
            "frontdesk_rtp_packets_received_total{leg=\"agent\"}",
        );
        let to = metric(&metrics, "frontdesk_rtp_packets_sent_total{leg=\"agent\"}");
        if from >= packets && to >= packets {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "agent leg RTP: {from} packets from Linphone, {to} to it"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Packets of payload type `pt` the patient received.
fn patient_packets(audio: &RtpPeer, pt: u8) -> usize {
    audio
        .received()
        .iter()
        .filter(|(header, _)| header.payload_type == pt)
        .count()
}

/// Linphone (`carol`, registered as 1003) takes a patient's call to
/// pediatrics, talks, presses 5 and transfers the call to cardiology at
/// `sip`, where Bob answers; returns the metrics seen while Carol talked.
fn answer_press_and_transfer(daemon: &Daemon, carol: &mut Linphone, sip: u16) -> String {
    // Bob serves cardiology from a SIPp phone that answers at once.
    let bob_audio = RtpPeer::start(0, false);
    let bob = answering_agent(daemon, "1002", &bob_audio);
    wait_agent_state(daemon, "1002", "available");

    // A patient dials the main line and presses 3: pediatrics, Carol.
    let patient_audio = RtpPeer::start(0, false);
    let call = patient(daemon, "caller.xml", "+15550100", &patient_audio, TALK_MS);
    press_when_heard(&patient_audio, '3');
    let ringing = carol.wait_call_state("LinphoneCallIncomingReceived");
    let id = ringing.get("Id").expect("a call id").to_string();
    carol.command(&format!("answer {id}"));
    carol.wait_call_state("LinphoneCallStreamsRunning");
    // No sound card here: Carol's voice is a WAV file played into the call.
    let voice = support::repo_root().join("dialplans/prompts/hold-music.wav");
    carol.command(&format!("incall-player-start {} {id}", voice.display()));
    let connected = wait_for_call(daemon, BOUND, |call| call["agent"] == "1003");
    assert_eq!(connected["department"], "pediatrics", "{connected:#}");
    assert_eq!(connected["source"], "main-line");
    assert_eq!(connected["caller"], "+13125550142");
    wait_agent_state(daemon, "1003", "on_call");

    // Audio both ways: Linphone's packets reach the patient through the
    // bridge (the IVR's prompts have stopped), and the patient's reach
    // Linphone's leg.
    let heard = patient_packets(&patient_audio, 0);
    assert!(
        patient_audio.wait_until(BOUND, |peer| patient_packets(peer, 0) >= heard + 50),
        "the patient hears Linphone: {} packets since the answer",
        patient_packets(&patient_audio, 0) - heard
    );
    let metrics = wait_agent_rtp(daemon, 50.0);

    // Carol presses 5: an RFC 4733 event on her leg, which frontdesk reads
    // and writes again to the patient with the patient's payload type
    // (Linphone's is 101 too, and cannot be changed by a daemon command:
    // this shows the relay of the event, not its renumbering, which the
    // media crate's relay tests cover).
    carol.command("dtmf 5");
    assert!(
        patient_audio.wait_until(BOUND, |peer| {
            peer.received()
                .iter()
                .any(|(header, event)| header.payload_type == PATIENT_EVENT_PT && *event == 5)
        }),
        "the patient got no telephone-event 5"
    );

    // Carol transfers the call to cardiology (REFER on her leg): Bob
    // answers, the record shows the transfer, frontdesk ends Carol's leg.
    carol.command(&format!(
        "call-transfer {id} sip:cardiology@127.0.0.1:{sip}"
    ));
    let with_bob = wait_for_call(daemon, BOUND, |call| call["agent"] == "1002");
    assert_eq!(with_bob["department"], "cardiology", "{with_bob:#}");
    let transfer = &with_bob["transfers"][0];
    assert_eq!(transfer["from_agent"], "1003", "{with_bob:#}");
    assert_eq!(transfer["from_department"], "pediatrics");
    assert_eq!(transfer["to_department"], "cardiology");
    assert_eq!(transfer["kind"], "blind");
    carol.wait_call_state("LinphoneCallReleased");
    wait_agent_state(daemon, "1003", "available");

    // Bob and the patient talk until the patient hangs up.
    call.join().expect("the patient").assert_all_succeeded(1);
    bob.join().expect("Bob's phone").assert_all_succeeded(1);
    let ended = wait_for_call(daemon, BOUND, |call| call["ended_at"].is_string());
    assert_eq!(
        (&ended["outcome"], &ended["department"], &ended["agent"]),
        (
            &Value::from("connected"),
            &Value::from("cardiology"),
            &Value::from("1002")
        ),
        "{ended:#}"
    );
    assert_eq!(ended["transfers"].as_array().map(Vec::len), Some(1));
    assert_eq!(agent(daemon, "1003")["calls_today"], 1);
    assert_eq!(agent(daemon, "1002")["calls_today"], 1);
    metrics
}

/// Quits Linphone and waits until frontdesk has it un-registered.
fn quit(daemon: &Daemon, mut carol: Linphone) {
    carol.command("unregister ALL");
    let deadline = Instant::now() + BOUND;
    while agent(daemon, "1003")["registered"] != false {
        assert!(Instant::now() < deadline, "1003 is still registered");
        std::thread::sleep(Duration::from_millis(25));
    }
    carol.stop();
}

#[test]
fn a_linphone_agent_answers_a_routed_call_presses_5_and_transfers_it_to_cardiology() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new().dialplan(plan).start();
    let sip = daemon.sip().port();

    // Carol's Linphone signs in with her digest credentials, PCMU only.
    let mut carol = Linphone::start("agent 1003", "linphonerc", &[]);
    carol.command("audio-codec-disable ALL");
    carol.command("audio-codec-enable 0");
    carol.command(&format!(
        "register sip:1003@127.0.0.1:{sip} sip:127.0.0.1:{sip} demo-1003 NULL NULL"
    ));
    carol.wait_registered();
    let signed_in = agent(&daemon, "1003");
    assert_eq!(
        (&signed_in["registered"], &signed_in["state"]),
        (&Value::from(true), &Value::from("available")),
        "{signed_in}"
    );

    answer_press_and_transfer(&daemon, &mut carol, sip);
    quit(&daemon, carol);
}

/// Runs `frontdesk certs dev` in `dir` (the pair goes to `dir/certs/`).
fn certs_dev(dir: &Path) {
    let made = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["certs", "dev"])
        .current_dir(dir)
        .output()
        .expect("run frontdesk certs dev");
    assert!(made.status.success(), "{made:?}");
}

#[test]
fn a_linphone_agent_over_tls_with_mandatory_srtp_answers_presses_5_and_transfers() {
    let launch = Launch::new();
    let dir = launch.data_dir().to_path_buf();
    certs_dev(&dir);
    let cert = dir.join("certs/frontdesk.crt");
    let plan = open_clinic(&dir, |text| text);
    let daemon = launch
        .dialplan(plan)
        .sips(&cert, dir.join("certs/frontdesk.key"))
        .start();
    let sip = daemon.sip().port();
    let sips = daemon.sips().port();

    // Carol's Linphone trusts the development certificate alone and checks
    // its name: `localhost` (belle-sip reads no IP address in a
    // certificate, see tests/linphone/README.md). SRTP or no call.
    let mut carol = Linphone::start(
        "agent 1003 (tls)",
        "linphonerc-tls",
        &[("@ROOT_CA@", cert.display().to_string())],
    );
    carol.command("audio-codec-disable ALL");
    carol.command("audio-codec-enable 0");
    carol.command(&format!(
        "register sip:1003@127.0.0.1:{sips} sip:localhost:{sips};transport=tls demo-1003 NULL NULL"
    ));
    carol.wait_registered();
    wait_agent_state(&daemon, "1003", "available");
    let log = carol.log();
    assert!(
        log.contains("SSL handshake finished"),
        "no TLS handshake in Linphone's log"
    );

    let metrics = answer_press_and_transfer(&daemon, &mut carol, sip);
    // Carol's leg was SRTP (Linphone's media_encryption_mandatory refuses
    // anything else) and every packet from it was authenticated.
    assert_eq!(
        metric(
            &metrics,
            "frontdesk_srtp_auth_failures_total{leg=\"agent\"}"
        ),
        0.0,
        "{metrics}"
    );
    assert!(
        carol
            .log()
            .contains("Negotiated media encryption is LinphoneMediaEncryptionSRTP"),
        "Linphone's log shows no SRTP call"
    );
    quit(&daemon, carol);
}
