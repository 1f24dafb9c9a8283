//! Issue 11's operations end to end: live reload (refused and accepted)
//! with a call in progress surviving both, and drain on SIGTERM.

mod support;

use std::net::UdpSocket;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use support::call::{open_clinic, wait_for_call};
use support::people::{agent, answering_agent, patient, press_when_heard, wait_agent_state};
use support::phone::{FILL, RtpPeer};
use support::raw::RawCall;
use support::sipp::SippRun;
use support::{Daemon, Launch, TOKEN};

const BOUND: Duration = Duration::from_secs(30);

fn post(daemon: &Daemon, path: &str) -> (u16, Value) {
    let response =
        support::http::request(daemon.http(), "POST", path, Some(TOKEN), Some("{}")).expect("POST");
    let json = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.status, json)
}

/// A connected call: the patient presses 3 and talks to Carol.
fn connected_call(
    daemon: &Daemon,
    talk_ms: u64,
) -> (RtpPeer, RtpPeer, JoinHandle<SippRun>, JoinHandle<SippRun>) {
    let carol_audio = RtpPeer::start(0, false);
    let carol = answering_agent(daemon, "1003", &carol_audio);
    wait_agent_state(daemon, "1003", "available");
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(daemon, "caller.xml", "+15550100", &patient_audio, talk_ms);
    press_when_heard(&patient_audio, '3');
    wait_for_call(daemon, BOUND, |call| call["agent"] == "1003");
    assert!(
        patient_audio.wait_until(BOUND, |p| p.relayed(FILL) >= 20),
        "the patient hears no agent; the log:\n{}",
        daemon.stderr()
    );
    (patient_audio, carol_audio, patient, carol)
}

/// Audio keeps flowing both ways: more relayed packets arrive.
fn still_talking(patient: &RtpPeer, agent: &RtpPeer) {
    let (p, a) = (patient.relayed(FILL), agent.relayed(FILL));
    assert!(
        patient.wait_until(BOUND, |peer| peer.relayed(FILL) > p + 10),
        "the patient hears nothing more"
    );
    assert!(
        agent.wait_until(BOUND, |peer| peer.relayed(FILL) > a + 10),
        "the agent hears nothing more"
    );
}

#[test]
fn reload_refused_then_accepted_while_a_call_goes_on() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let good = std::fs::read_to_string(&plan).expect("the plan");
    let daemon = Launch::new().dialplan(&plan).start();
    let (patient_audio, carol_audio, patient, carol) = connected_call(&daemon, 30_000);

    // A broken plan: refused with PATH:LINE:COLUMN errors, the call goes on.
    std::fs::write(
        &plan,
        good.replace("[queues.cardiology]", "[queues.cardiology\n"),
    )
    .expect("write");
    let (status, body) = post(&daemon, "/api/reload");
    assert_eq!(status, 422, "{body}");
    let first = body["errors"][0]
        .as_str()
        .expect("an error line")
        .to_string();
    assert!(
        first.starts_with(&format!("{}:", plan.display())),
        "{first}"
    );
    let position: Vec<&str> = first.splitn(4, ':').collect();
    assert!(
        position[1].parse::<u32>().is_ok() && position[2].parse::<u32>().is_ok(),
        "{first}"
    );
    // SIGHUP with the same broken plan: refused too (counted in metrics).
    daemon.signal(Signal::SIGHUP);
    let deadline = Instant::now() + BOUND;
    while !daemon
        .get("/metrics", None)
        .body
        .contains("frontdesk_dialplan_reloads_total{result=\"refused\"} 2")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            daemon.get("/metrics", None).body
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    still_talking(&patient_audio, &carol_audio);
    assert_eq!(agent(&daemon, "1003")["state"], "on_call");

    // A good change: accepted; the call and Carol's state survive it.
    std::fs::write(
        &plan,
        good.replace("name = \"Cardiology\"", "name = \"Heart clinic\""),
    )
    .expect("write");
    let (status, body) = post(&daemon, "/api/reload");
    assert_eq!(
        (status, &body),
        (200, &serde_json::json!({"reloaded": true}))
    );
    still_talking(&patient_audio, &carol_audio);
    assert_eq!(agent(&daemon, "1003")["state"], "on_call");

    patient.join().expect("patient").assert_all_succeeded(1);
    carol.join().expect("agent").assert_all_succeeded(1);
    let call = wait_for_call(&daemon, BOUND, |call| call["outcome"] == "connected");
    assert_eq!(call["agent"], "1003");
}

fn raw_invite(daemon: &Daemon) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let me = socket.local_addr().expect("address");
    let invite = format!(
        "INVITE sip:+15550100@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKdrain{port};rport\r\n\
         From: <sip:+13125550199@127.0.0.1>;tag=drain\r\n\
         To: <sip:+15550100@{sip}>\r\n\
         Call-ID: drain-{port}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:patient@{me}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        sip = daemon.sip(),
        port = me.port(),
    );
    socket
        .send_to(invite.as_bytes(), daemon.sip())
        .expect("send");
    let mut buffer = [0u8; 4096];
    loop {
        let length = socket.recv(&mut buffer).expect("an answer");
        let text = String::from_utf8_lossy(&buffer[..length]).to_string();
        if !text.starts_with("SIP/2.0 100") {
            return text;
        }
    }
}

#[test]
fn sigterm_drains_new_calls_refused_calls_in_progress_finish() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let mut daemon = Launch::new().dialplan(&plan).start();
    let (patient_audio, carol_audio, patient, carol) = connected_call(&daemon, 14_000);
    daemon.signal(Signal::SIGTERM);
    // New calls: 503 with Retry-After.
    let deadline = Instant::now() + BOUND;
    let refused = loop {
        let answer = raw_invite(&daemon);
        if answer.starts_with("SIP/2.0 503") {
            break answer;
        }
        assert!(Instant::now() < deadline, "{answer}");
    };
    assert!(refused.contains("\r\nRetry-After: "), "{refused}");
    // The call in progress goes on until the patient hangs up.
    still_talking(&patient_audio, &carol_audio);
    patient.join().expect("patient").assert_all_succeeded(1);
    carol.join().expect("agent").assert_all_succeeded(1);
    // Then the daemon exits, cleanly, without another signal.
    let status = daemon.wait_exit(BOUND);
    assert!(status.success(), "{status:?}\n{}", daemon.stderr());
}

/// The status line of the daemon's answer to an OPTIONS outside a dialog
/// (the probe Kamailio's dispatcher sends).
fn options_status(daemon: &Daemon, probe: usize) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let me = socket.local_addr().expect("address");
    let sip = daemon.sip();
    let options = format!(
        "OPTIONS sip:{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKprobe{probe};rport\r\n\
         From: <sip:probe@{me}>;tag=probe\r\n\
         To: <sip:{sip}>\r\n\
         Call-ID: probe-{probe}@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), sip).expect("send");
    let mut buffer = [0u8; 4096];
    socket
        .recv(&mut buffer)
        .map(|length| {
            String::from_utf8_lossy(&buffer[..length])
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

#[test]
fn a_draining_daemon_answers_the_last_calls_bye_and_its_retransmission() {
    // Behind Kamailio the last call's BYE went unanswered: the call task
    // ended as it answered, the drain found no call left and the process
    // exited before the 200 left (or before a retransmitted BYE came).
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let mut daemon = Launch::new().dialplan(&plan).start();
    let media = UdpSocket::bind("127.0.0.1:0").expect("a media socket");
    let call = RawCall::invite(
        &daemon,
        "+15550100",
        media.local_addr().expect("its address"),
        1,
    );
    call.ack();
    wait_for_call(&daemon, BOUND, |call| call["ended_at"].is_null());

    daemon.signal(Signal::SIGTERM);
    // The OPTIONS probe turns 503 once the drain has begun.
    let deadline = Instant::now() + BOUND;
    for probe in 0.. {
        let status = options_status(&daemon, probe);
        if status.starts_with("SIP/2.0 503") {
            break;
        }
        assert!(Instant::now() < deadline, "OPTIONS still {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = call.bye().expect("an answer to the BYE");
    assert!(first.starts_with("SIP/2.0 200"), "{first}");
    // Our 200 was lost, say: the BYE comes again after T1, and its
    // transaction answers it again.
    std::thread::sleep(Duration::from_millis(500));
    let again = call.bye().expect("an answer to the BYE sent again");
    assert!(again.starts_with("SIP/2.0 200"), "{again}");
    let status = daemon.wait_exit(BOUND);
    assert!(status.success(), "{status:?}\n{}", daemon.stderr());
}
