//! Issue 9 end to end: what a waiting patient hears (hold prompt, position
//! announcements identified on the wire by their RTP marker segments, hold
//! music), blind transfer by REFER with NOTIFY progress, agents' feature
//! codes, and the context an agent's phone is shown. SIPp plays the
//! phones; RTP peers of the test hear what frontdesk sends.

mod support;

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::{RtpSink, calls, free_udp_port, open_clinic, wait_for_call};
use support::people::{self, agent, press_when_heard, wait_agent_state};
use support::phone::{FILL, RtpPeer, register};
use support::sipp::{Sipp, SippRun};
use support::{Daemon, Launch, repo_root};

const BOUND: Duration = Duration::from_secs(30);

fn daemon_with(tweak: impl Fn(String) -> String) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), tweak);
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

/// How many 20 ms packets a demo prompt lasts.
fn frames(prompt: &str) -> usize {
    let path = repo_root().join("dialplans/prompts").join(prompt);
    media::prompt::Prompt::load(Path::new(&path))
        .unwrap_or_else(|error| panic!("{prompt}: {error}"))
        .frame_count()
}

/// The lengths of the talkspurts in a stream of received prompt packets:
/// each prompt starts with the marker bit, so a new segment starts at
/// every marked packet.
fn segments(packets: &[(support::call::RtpHeader, u8)]) -> Vec<usize> {
    let mut lengths: Vec<usize> = Vec::new();
    for (header, _) in packets.iter().filter(|(h, _)| h.payload_type == 0) {
        match lengths.last_mut() {
            Some(last) if !header.marker => *last += 1,
            _ => lengths.push(1),
        }
    }
    lengths
}

/// Where `pattern` occurs in `lengths`, as consecutive segments.
fn occurrences(lengths: &[usize], pattern: &[usize]) -> Vec<usize> {
    lengths
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, window)| *window == pattern)
        .map(|(at, _)| at)
        .collect()
}

/// An answering agent phone (`scenario`) registered as `agent`, its audio
/// on `audio`.
fn agent_phone(
    daemon: &Daemon,
    agent: &str,
    scenario: &str,
    audio: &RtpPeer,
) -> JoinHandle<SippRun> {
    agent_phone_with(daemon, agent, scenario, audio, &[])
}

fn agent_phone_with(
    daemon: &Daemon,
    agent: &str,
    scenario: &str,
    audio: &RtpPeer,
    extra: &[&str],
) -> JoinHandle<SippRun> {
    let mut args = vec![
        "-set".to_string(),
        "rtp_port".to_string(),
        audio.port().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    people::agent_phone(daemon, agent, scenario, &args)
}

/// A patient calling `number` (caller.xml), whose audio is `peer`; they
/// hang up `talk_ms` + 2 s after the answer.
fn patient(daemon: &Daemon, number: &str, peer: &RtpPeer, talk_ms: u64) -> JoinHandle<SippRun> {
    people::patient(daemon, "caller.xml", number, peer, talk_ms)
}

/// An agent's phone dialing `code` from its SIP socket, registered with its
/// Contact on `contact_port`; the confirmation goes to `sink`.
fn dial_feature(
    daemon: &Daemon,
    agent: &str,
    code: &str,
    contact_port: u16,
    sink: &RtpSink,
) -> SippRun {
    let args: Vec<String> = [
        "-s",
        code,
        "-au",
        agent,
        "-ap",
        &format!("demo-{agent}"),
        "-set",
        "agent",
        agent,
        "-set",
        "contact_port",
        &contact_port.to_string(),
        "-set",
        "rtp_port",
        &sink.port().to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    Sipp::new("agent-feature.xml", daemon.sip())
        .calls(1)
        .args(args)
        .run()
}

fn final_status(socket: &std::net::UdpSocket) -> u16 {
    loop {
        let mut buffer = [0u8; 4096];
        let length = socket.recv(&mut buffer).expect("an answer to the INVITE");
        let text = String::from_utf8_lossy(&buffer[..length]).to_string();
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        if status >= 200 {
            return status;
        }
    }
}

/// The first call (newest first) that `matches`.
fn call_where(daemon: &Daemon, matches: impl Fn(&Value) -> bool) -> Option<Value> {
    calls(daemon).into_iter().find(|call| matches(call))
}

#[test]
fn a_queued_caller_hears_the_hold_prompt_then_their_position_then_music_and_again() {
    // Announcements every 6 s instead of 30 s; nobody signed in.
    let (_dir, daemon) =
        daemon_with(|text| text.replace("announce_every = \"30s\"", "announce_every = \"6s\""));
    let hold = frames("please-hold.wav");
    let position = frames("you-are-caller-number.wav");
    let (one, two) = (frames("digit-1.wav"), frames("digit-2.wav"));
    assert!(
        hold != position && position != one && one != two,
        "prompts tell apart by length"
    );

    let first = RtpPeer::start(0, false);
    let first_call = patient(&daemon, "+15550100", &first, 16_000);
    press_when_heard(&first, '2');
    wait_for_call(&daemon, BOUND, |call| call["department"] == "cardiology");
    // A digit while waiting is kept, not acted on: the hold prompt goes on.
    first.press('5');
    let second = RtpPeer::start(0, false);
    let second_call = patient(&daemon, "+15550100", &second, 9_000);
    press_when_heard(&second, '2');

    // The first caller: hold prompt, "you are caller number 1", music, and
    // 6 s after the first announcement began, the announcement again.
    let heard_twice = first.wait_until(BOUND, |peer| {
        occurrences(&segments(&peer.received()), &[position, one]).len() >= 2
    });
    let lengths = segments(&first.received());
    assert!(
        heard_twice,
        "segments heard by the first caller: {lengths:?}"
    );
    let at = occurrences(&lengths, &[hold, position, one]);
    assert_eq!(at.len(), 1, "hold prompt then position once: {lengths:?}");
    let music = lengths[at[0] + 3];
    // From the end of the first announcement to the next: 6 s less the
    // announcement (±3 packets of pacing).
    let expected_music = 300 - position - one;
    assert!(
        music.abs_diff(expected_music) <= 3,
        "music between announcements: {music} packets, expected {expected_music}: {lengths:?}"
    );
    assert_eq!(
        &lengths[at[0] + 4..at[0] + 6],
        &[position, one],
        "the announcement comes back after the music: {lengths:?}"
    );

    // The second caller is number 2.
    assert!(
        second.wait_until(BOUND, |peer| {
            !occurrences(&segments(&peer.received()), &[hold, position, two]).is_empty()
        }),
        "segments heard by the second caller: {:?}",
        segments(&second.received())
    );

    second_call
        .join()
        .expect("second caller")
        .assert_all_succeeded(1);
    first_call
        .join()
        .expect("first caller")
        .assert_all_succeeded(1);
    let ended = wait_for_call(&daemon, BOUND, |call| call["outcome"] != "in_progress");
    assert_eq!(ended["outcome"], "abandoned", "{ended:#}");
    assert_eq!(ended["department"], "cardiology");
    assert!(
        ended["wait_ms"].as_u64().is_some_and(|ms| ms > 10_000),
        "{ended:#}"
    );
}

#[test]
fn a_refer_to_cardiology_moves_the_patient_to_bob_and_the_record_shows_the_transfer() {
    let (_dir, daemon) = daemon_with(|text| text);
    let alice_audio = RtpPeer::start(0, false);
    let alice = agent_phone_with(
        &daemon,
        "1001",
        "agent-transfer.xml",
        &alice_audio,
        &["-set", "target", "cardiology"],
    );
    let bob_audio = RtpPeer::start(0, false);
    let bob = agent_phone(&daemon, "1002", "agent.xml", &bob_audio);
    wait_agent_state(&daemon, "1001", "available");
    wait_agent_state(&daemon, "1002", "available");

    let patient_audio = RtpPeer::start(0, false);
    let call = patient(&daemon, "+15550100", &patient_audio, 9_000);
    press_when_heard(&patient_audio, '1');
    let with_alice = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1001");
    assert_eq!(with_alice["department"], "front-desk");

    // Alice REFERs to cardiology: Bob answers, Alice's phone hears 100
    // Trying then 200 OK by NOTIFY (agent-transfer.xml checks both) and BYE.
    let with_bob = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1002");
    assert_eq!(with_bob["department"], "cardiology", "{with_bob:#}");
    assert_eq!(with_bob["outcome"], "in_progress");
    let transfer = &with_bob["transfers"][0];
    assert_eq!(transfer["from_agent"], "1001", "{with_bob:#}");
    assert_eq!(transfer["from_department"], "front-desk");
    assert_eq!(transfer["to_department"], "cardiology");
    assert_eq!(transfer["to_agent"], Value::Null);
    assert_eq!(transfer["kind"], "blind");
    assert_eq!(transfer["reason"], "agent 1001 transferred to cardiology");
    assert!(transfer["connected_at"].is_string() && transfer["at"].is_string());
    alice.join().expect("Alice's phone").assert_all_succeeded(1);
    // Alice wraps up, then takes calls again.
    wait_agent_state(&daemon, "1001", "available");

    // Bob and the patient talk.
    assert!(
        bob_audio.wait_until(BOUND, |peer| peer.relayed(FILL) >= 50),
        "Bob heard {} packets of the patient",
        bob_audio.relayed(FILL)
    );
    call.join().expect("patient").assert_all_succeeded(1);
    bob.join().expect("Bob's phone").assert_all_succeeded(1);
    let ended = wait_for_call(&daemon, BOUND, |call| call["outcome"] != "in_progress");
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
    let bob_now = agent(&daemon, "1002");
    assert_eq!(bob_now["calls_today"], 1, "{bob_now}");
    let alice_now = agent(&daemon, "1001");
    assert_eq!(alice_now["calls_today"], 1, "{alice_now}");
}

#[test]
fn an_attended_transfer_rings_the_named_agent_with_replaces_before_anyone_else() {
    let (_dir, daemon) = daemon_with(|text| text);
    // Alice takes the front desk's call (longest idle there); she REFERs
    // it to Carol with Replaces. Frank, who serves pediatrics too and has
    // idled longer than Carol, would get a plain pediatrics offer first;
    // his phone answers nothing, so ringing him would cost the 15 s ring
    // timeout.
    let alice_audio = RtpPeer::start(0, false);
    let alice = agent_phone_with(
        &daemon,
        "1001",
        "agent-transfer.xml",
        &alice_audio,
        &[
            "-set",
            "target",
            "1003",
            "-set",
            "refer_headers",
            "?Replaces=consult%40b%3Bto-tag%3D7%3Bfrom-tag%3D8",
        ],
    );
    wait_agent_state(&daemon, "1001", "available");
    register(daemon.sip(), "1006", free_udp_port(), 3600);
    wait_agent_state(&daemon, "1006", "available");
    let carol_audio = RtpPeer::start(0, false);
    let carol = agent_phone(&daemon, "1003", "agent-replaces.xml", &carol_audio);
    wait_agent_state(&daemon, "1003", "available");

    let patient_audio = RtpPeer::start(0, false);
    let call = patient(&daemon, "+15550100", &patient_audio, 8_000);
    press_when_heard(&patient_audio, '1');
    wait_for_call(&daemon, BOUND, |call| call["agent"] == "1001");
    // Carol is rung first, with the Replaces header (agent-replaces.xml
    // checks it), well within a ring timeout.
    let with_carol = wait_for_call(&daemon, Duration::from_secs(10), |call| {
        call["agent"] == "1003"
    });
    let transfer = &with_carol["transfers"][0];
    assert_eq!(
        (
            &transfer["kind"],
            &transfer["to_agent"],
            &transfer["to_department"]
        ),
        (
            &Value::from("attended"),
            &Value::from("1003"),
            &Value::from("pediatrics")
        ),
        "{with_carol:#}"
    );
    assert_eq!(with_carol["department"], "pediatrics");
    alice.join().expect("Alice's phone").assert_all_succeeded(1);
    call.join().expect("patient").assert_all_succeeded(1);
    carol.join().expect("Carol's phone").assert_all_succeeded(1);
    assert_eq!(agent(&daemon, "1006")["calls_today"], 0);
}

#[test]
fn an_invite_with_replaces_is_not_implemented() {
    let (_dir, daemon) = daemon_with(|text| text);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let me = socket.local_addr().expect("its address");
    let sip = daemon.sip();
    let invite = format!(
        "INVITE sip:+15550100@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKreplaces;rport\r\n\
         From: <sip:1002@{sip}>;tag=takeover\r\n\
         To: <sip:+15550100@{sip}>\r\n\
         Call-ID: replaces-1@test\r\n\
         CSeq: 1 INVITE\r\n\
         Replaces: agent-leg@frontdesk;to-tag=a;from-tag=b\r\n\
         Contact: <sip:1002@{me}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(invite.as_bytes(), sip).expect("send INVITE");
    assert_eq!(final_status(&socket), 501);
    assert!(calls(&daemon).is_empty(), "no call was started");
}

#[test]
fn away_by_feature_code_is_offered_no_calls_until_available_again() {
    let (_dir, daemon) = daemon_with(|text| text);
    // Alice's phone takes calls on its own port; she registers (and dials)
    // from another socket, as agent-feature.xml does.
    let alice_port = free_udp_port();
    let alice_audio = RtpPeer::start(0, false);
    let alice = people::sipp_phone(
        &daemon,
        "agent.xml",
        alice_port,
        vec![
            "-d".into(),
            "0".into(),
            "-set".into(),
            "rtp_port".into(),
            alice_audio.port().to_string(),
        ],
    );
    let confirmation = RtpSink::start();
    dial_feature(&daemon, "1001", "*41", alice_port, &confirmation).assert_all_succeeded(1);
    // The confirmation played to its end, then frontdesk hung up.
    assert_eq!(confirmation.finish().len(), frames("agent-away.wav"));
    let away = agent(&daemon, "1001");
    assert_eq!(
        (&away["state"], &away["registered"]),
        (&Value::from("away"), &Value::from(true))
    );

    // Erin signs in after Alice: with both available, longest-idle would
    // offer Alice first. Alice is away: Erin takes the call.
    let erin_audio = RtpPeer::start(0, false);
    let erin = agent_phone(&daemon, "1005", "agent.xml", &erin_audio);
    wait_agent_state(&daemon, "1005", "available");
    let first_audio = RtpPeer::start(0, false);
    let first = patient(&daemon, "+15550100", &first_audio, 4_000);
    press_when_heard(&first_audio, '1');
    let taken = wait_for_call(&daemon, BOUND, |call| call["agent"].is_string());
    assert_eq!(taken["agent"], "1005", "{taken:#}");
    let alice_now = agent(&daemon, "1001");
    assert_eq!(
        (&alice_now["state"], &alice_now["calls_today"]),
        (&Value::from("away"), &Value::from(0)),
        "{alice_now}"
    );

    // *42: available again; the next patient (Erin is busy) reaches Alice,
    // whose phone answers.
    let confirmation = RtpSink::start();
    dial_feature(&daemon, "1001", "*42", alice_port, &confirmation).assert_all_succeeded(1);
    assert_eq!(confirmation.finish().len(), frames("agent-available.wav"));
    wait_agent_state(&daemon, "1001", "available");
    let second_audio = RtpPeer::start(0, false);
    let second = patient(&daemon, "+15550100", &second_audio, 3_000);
    press_when_heard(&second_audio, '1');
    let reached = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1001");
    assert_eq!(reached["department"], "front-desk");
    first.join().expect("first patient").assert_all_succeeded(1);
    second
        .join()
        .expect("second patient")
        .assert_all_succeeded(1);
    erin.join().expect("Erin's phone").assert_all_succeeded(1);
    alice.join().expect("Alice's phone").assert_all_succeeded(1);
}

#[test]
fn whats_waiting_reads_the_callers_in_the_agents_queues() {
    let (_dir, daemon) = daemon_with(|text| text);
    let alice_port = free_udp_port();
    // Alice is away; two patients wait for the front desk, one for cardiology.
    let ignored = RtpSink::start();
    dial_feature(&daemon, "1001", "*41", alice_port, &ignored).assert_all_succeeded(1);
    let mut patients = Vec::new();
    for digit in ['1', '1', '2'] {
        let audio = RtpPeer::start(0, false);
        patients.push((patient(&daemon, "+15550100", &audio, 8_000), audio));
        press_when_heard(&patients.last().expect("just pushed").1, digit);
    }
    let deadline = Instant::now() + BOUND;
    while calls(&daemon)
        .iter()
        .filter(|call| call["department"] == "front-desk")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{:#?}", calls(&daemon));
        std::thread::sleep(Duration::from_millis(25));
    }
    // *43: "Callers waiting in your queues:" "two" (Alice serves the front
    // desk only; the cardiology caller is not hers).
    let count = RtpSink::start();
    dial_feature(&daemon, "1001", "*43", alice_port, &count).assert_all_succeeded(1);
    let packets = count.finish();
    let marked: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.marker)
        .map(|(at, _)| at)
        .collect();
    assert_eq!(marked, [0, frames("callers-waiting.wav")], "two prompts");
    assert_eq!(
        packets.len(),
        frames("callers-waiting.wav") + frames("digit-2.wav")
    );
    for (call, _audio) in patients {
        call.join().expect("a patient").assert_all_succeeded(1);
    }
    assert!(call_where(&daemon, |call| call["outcome"] == "in_progress").is_none());
}

#[test]
fn a_feature_code_from_outside_the_agents_registration_is_an_unknown_number() {
    let (_dir, daemon) = daemon_with(|text| text);
    // Alice is registered from the harness's socket; the same From user
    // from another socket is not her phone.
    register(daemon.sip(), "1001", free_udp_port(), 3600);
    wait_agent_state(&daemon, "1001", "available");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let me = socket.local_addr().expect("its address");
    let sip = daemon.sip();
    let invite = format!(
        "INVITE sip:*41@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKforged41;rport\r\n\
         From: <sip:1001@{sip}>;tag=forged\r\n\
         To: <sip:*41@{sip}>\r\n\
         Call-ID: forged-41@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:1001@{me}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(invite.as_bytes(), sip).expect("send INVITE");
    assert_eq!(final_status(&socket), 404);
    assert_eq!(agent(&daemon, "1001")["state"], "available");
}

#[test]
fn an_urgent_call_rings_the_agent_with_its_context_and_a_distinct_alert() {
    let (_dir, daemon) = daemon_with(|text| text);
    let erin_audio = RtpPeer::start(0, false);
    // agent-context.xml fails the call unless the INVITE's From display
    // name, Alert-Info and Call-Info say urgent care, the source and the wait.
    let erin = agent_phone(&daemon, "1005", "agent-context.xml", &erin_audio);
    wait_agent_state(&daemon, "1005", "available");
    let audio = RtpPeer::start(0, false);
    let call = patient(&daemon, "+15550111", &audio, 3_000);
    let taken = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1005");
    assert_eq!(
        (&taken["department"], &taken["priority"]),
        (&Value::from("urgent-care"), &Value::from("urgent"))
    );
    call.join().expect("patient").assert_all_succeeded(1);
    erin.join().expect("Erin's phone").assert_all_succeeded(1);
}
