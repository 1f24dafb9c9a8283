//! Issue 6 end to end: a patient dials the clinic over real SIP and RTP on
//! loopback (SIPp as the phone, a socket of the test as its audio port) and
//! the IVR's decision shows in `/api/calls`.

mod support;

use std::time::Duration;

use support::Launch;
use support::call::{
    RtpSink, assert_prompt_stream, free_udp_port, open_clinic, wait_for_call, with_ringing_number,
};
use support::sipp::Sipp;

/// How long a call record may take to show its end.
const RECORD_BOUND: Duration = Duration::from_secs(20);

fn daemon_with(tweak: impl Fn(String) -> String) -> (tempfile::TempDir, support::Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), tweak);
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

#[test]
fn pressing_3_by_rfc4733_reaches_pediatrics_and_prompts_are_well_paced() {
    let (_dir, daemon) = daemon_with(|text| text);
    // The SDP names this port, but the phone's RTP (the digit) comes from
    // SIPp's media port: a phone behind NAT, learned by strict RTP.
    let sink = RtpSink::listening();
    let run = Sipp::new("caller.xml", daemon.sip())
        .calls(1)
        .args([
            "-s",
            "+15550100",
            "-set",
            "rtp_port",
            &sink.port().to_string(),
            "-set",
            "dtmf",
            "1",
            "-d",
            "1500",
            "-mp",
            &free_udp_port().to_string(),
        ])
        .run();
    run.assert_all_succeeded(1);
    let packets = sink.finish();
    // Until the phone's RTP was learned, its SDP address got the emergency
    // notice's first packets, the unconfirmed budget and not one more; then
    // the stream went to SIPp's media port, the confirmed source.
    assert_eq!(
        packets.len(),
        media::strict::StrictConfig::DEFAULT_UNCONFIRMED_BUDGET as usize,
        "prompt packets"
    );
    assert_prompt_stream(&packets, 0);
    let call = wait_for_call(&daemon, RECORD_BOUND, |call| {
        call["outcome"] != "in_progress"
    });
    assert_eq!(call["department"], "pediatrics", "{call:#}");
    assert_eq!(call["source"], "main-line");
    assert_eq!(call["dialed"], "+15550100");
    assert_eq!(call["caller"], "+13125550142");
    assert_eq!(call["priority"], "routine");
    assert_eq!(
        call["outcome"], "abandoned",
        "no agent was signed in: the patient hung up waiting"
    );
    assert!(call["ended_at"].is_string() && call["connected_at"].is_null());
}

#[test]
fn sip_info_digit_2_reaches_cardiology() {
    let (_dir, daemon) = daemon_with(|text| text);
    let sink = RtpSink::start();
    let run = Sipp::new("caller-info.xml", daemon.sip())
        .calls(1)
        .args([
            "-s",
            "+15550100",
            "-set",
            "rtp_port",
            &sink.port().to_string(),
            "-set",
            "digit",
            "2",
            "-d",
            "1000",
        ])
        .run();
    run.assert_all_succeeded(1);
    let call = wait_for_call(&daemon, RECORD_BOUND, |call| {
        call["outcome"] != "in_progress"
    });
    assert_eq!(call["department"], "cardiology", "{call:#}");
    // No digit by RTP here: the prompts kept coming to our socket.
    let packets = sink.finish();
    assert!(packets.len() >= 60, "prompt packets: {}", packets.len());
    assert_prompt_stream(&packets, 0);
}

#[test]
fn the_urgent_care_number_queues_urgent_care_urgently() {
    let (_dir, daemon) = daemon_with(|text| text);
    let sink = RtpSink::start();
    // The notice (4.7 s) plays, then the caller waits in urgent-care.
    let run = Sipp::new("caller.xml", daemon.sip())
        .calls(1)
        .args([
            "-s",
            "+15550111",
            "-set",
            "rtp_port",
            &sink.port().to_string(),
            "-set",
            "dtmf",
            "0",
            "-d",
            "4000",
        ])
        .run();
    run.assert_all_succeeded(1);
    let call = wait_for_call(&daemon, RECORD_BOUND, |call| {
        call["outcome"] != "in_progress"
    });
    assert_eq!(call["department"], "urgent-care", "{call:#}");
    assert_eq!(call["priority"], "urgent");
    assert_eq!(call["source"], "urgent-care-campaign");
    let packets = sink.finish();
    assert!(
        packets.len() >= 150,
        "notice, then hold prompt: {}",
        packets.len()
    );
}

#[test]
fn no_input_twice_goes_to_the_front_desk() {
    // The demo's rule with a short menu prompt, so that two timeouts take
    // seconds rather than the minute the real 22 s menu would.
    let (_dir, daemon) = daemon_with(|text| {
        text.replace(
            "prompt = \"prompts/main-menu.wav\"",
            "prompt = \"prompts/digit-1.wav\"",
        )
        .replace("timeout = \"5s\"", "timeout = \"1s\"")
    });
    let sink = RtpSink::start();
    let run = Sipp::new("caller.xml", daemon.sip())
        .calls(1)
        .args([
            "-s",
            "+15550100",
            "-set",
            "rtp_port",
            &sink.port().to_string(),
            "-set",
            "dtmf",
            "0",
            "-d",
            "9000",
        ])
        .run();
    run.assert_all_succeeded(1);
    let call = wait_for_call(&daemon, RECORD_BOUND, |call| {
        call["outcome"] != "in_progress"
    });
    assert_eq!(call["department"], "front-desk", "{call:#}");
    assert_eq!(call["outcome"], "abandoned");
}

#[test]
fn an_unknown_number_gets_404() {
    let (_dir, daemon) = daemon_with(|text| text);
    Sipp::new("caller-404.xml", daemon.sip())
        .calls(1)
        .args(["-s", "+19995550000"])
        .run()
        .assert_all_succeeded(1);
    let call = wait_for_call(&daemon, RECORD_BOUND, |call| call["outcome"] == "rejected");
    assert_eq!(call["dialed"], "+19995550000");
}

#[test]
fn no_common_codec_gets_488() {
    let (_dir, daemon) = daemon_with(|text| text);
    Sipp::new("caller-488.xml", daemon.sip())
        .calls(1)
        .args(["-s", "+15550100"])
        .run()
        .assert_all_succeeded(1);
    let call = wait_for_call(&daemon, RECORD_BOUND, |call| call["outcome"] == "rejected");
    assert_eq!(call["source"], "main-line");
}

#[test]
fn cancel_during_the_ring_delay_gets_487() {
    let (_dir, daemon) = daemon_with(with_ringing_number);
    Sipp::new("caller-cancel.xml", daemon.sip())
        .calls(1)
        .args(["-s", "+15550199", "-d", "500"])
        .run()
        .assert_all_succeeded(1);
    let call = wait_for_call(&daemon, RECORD_BOUND, |call| {
        call["outcome"] != "in_progress"
    });
    assert_eq!(call["outcome"], "abandoned", "{call:#}");
    assert_eq!(call["source"], "ring-test");
}

#[test]
fn many_calls_return_every_rtp_port() {
    let (_dir, daemon) = daemon_with(|text| text);
    let sink = RtpSink::listening();
    Sipp::new("caller.xml", daemon.sip())
        .calls(20)
        .rate(20)
        .args([
            "-s",
            "+15550100",
            "-set",
            "rtp_port",
            &sink.port().to_string(),
            "-set",
            "dtmf",
            "0",
            "-d",
            "200",
        ])
        .run()
        .assert_all_succeeded(20);
    let ended = |call: &serde_json::Value| call["outcome"] != "in_progress";
    wait_for_call(&daemon, RECORD_BOUND, ended);
    let metrics = daemon.get("/metrics", None).body;
    let leased = metrics
        .lines()
        .find(|line| line.starts_with("frontdesk_rtp_ports_leased "))
        .map(|line| line.rsplit(' ').next().unwrap_or("").to_string());
    // Every call's port went back to the pool once the calls ended.
    let deadline = std::time::Instant::now() + RECORD_BOUND;
    let mut last = leased;
    while last.as_deref() != Some("0") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        last = daemon
            .get("/metrics", None)
            .body
            .lines()
            .find(|line| line.starts_with("frontdesk_rtp_ports_leased "))
            .map(|line| line.rsplit(' ').next().unwrap_or("").to_string());
    }
    assert_eq!(last.as_deref(), Some("0"), "ports still leased");
}
