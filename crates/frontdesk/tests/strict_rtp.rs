//! Issue 16 end to end: nobody hears a patient they should not. A blind
//! attacker on 127.0.0.2 sprays valid RTP at every even port of the
//! daemon's range while a patient and an agent talk, each behind NAT or
//! not; a phone moves mid-call; a forged INVITE names a third party; and
//! consecutive calls' ports are compared. Every figure comes from packets
//! the test's own sockets counted, and from `/metrics`.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use media::strict::StrictConfig;
use support::attack::{MARK, Spray};
use support::call::{open_clinic, wait_for_call};
use support::people::{self, patient, press_when_heard, wait_agent_state};
use support::phone::{FILL, RtpPeer};
use support::raw::RawCall;
use support::sipp::SippRun;
use support::{Daemon, Launch};

const BOUND: Duration = Duration::from_secs(30);
/// What a leg whose peer is not confirmed may be sent.
const BUDGET: usize = StrictConfig::DEFAULT_UNCONFIRMED_BUDGET as usize;

fn daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

/// Sums a counter's series in the daemon's `/metrics`.
fn metric(daemon: &Daemon, name: &str) -> u64 {
    daemon
        .get("/metrics", None)
        .body
        .lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Carol (pediatrics) answers on a phone whose audio is `audio`; a patient
/// whose audio is `caller` presses 3; returns once both hear each other.
fn bridged_call(
    daemon: &Daemon,
    caller: &RtpPeer,
    agent: &RtpPeer,
) -> (JoinHandle<SippRun>, JoinHandle<SippRun>) {
    let carol = people::answering_agent(daemon, "1003", agent);
    wait_agent_state(daemon, "1003", "available");
    let call = patient(daemon, "caller.xml", "+15550100", caller, 12_000);
    press_when_heard(caller, '3');
    assert!(
        agent.wait_until(BOUND, |p| p.relayed(FILL) >= 25),
        "the agent heard {} packets of the patient\n{}",
        agent.relayed(FILL),
        daemon.stderr()
    );
    assert!(
        caller.wait_until(BOUND, |p| p.relayed(FILL) >= 25),
        "the patient heard {} packets of the agent\n{}",
        caller.relayed(FILL),
        daemon.stderr()
    );
    (call, carol)
}

/// Both parties keep hearing each other: `more` packets each beyond now.
fn both_keep_hearing(caller: &RtpPeer, agent: &RtpPeer, more: usize) {
    let (heard_by_caller, heard_by_agent) = (caller.relayed(FILL), agent.relayed(FILL));
    assert!(
        caller.wait_until(BOUND, |p| p.relayed(FILL) >= heard_by_caller + more),
        "the patient stopped hearing the agent"
    );
    assert!(
        agent.wait_until(BOUND, |p| p.relayed(FILL) >= heard_by_agent + more),
        "the agent stopped hearing the patient"
    );
}

/// The test: a bridged call under a blind spray, each party behind
/// NAT or not.
fn a_spray_reaches_nobody(caller: RtpPeer, agent: RtpPeer) {
    let (_dir, daemon) = daemon();
    // One packet every 20 ms at each even port, from four sources taken in
    // turn: from before the call until well into its bridge, so sprayed
    // packets reach each leg's port while its peer is being learned.
    let spray = Spray::start(daemon.rtp_ports(), 4, Duration::from_millis(20));
    let (call, carol) = bridged_call(&daemon, &caller, &agent);
    both_keep_hearing(&caller, &agent, 100);
    let (sent, reached_attacker) = spray.stop();
    assert!(sent > 1000, "the spray sent {sent} packets");
    assert_eq!(reached_attacker, 0, "the attacker received our packets");
    assert_eq!(caller.uniform(MARK), 0, "the patient heard the attacker");
    assert_eq!(agent.uniform(MARK), 0, "the agent heard the attacker");
    // After the spray, as during it.
    both_keep_hearing(&caller, &agent, 50);
    // Phones behind NAT: their SDP's port got no more than the budget.
    for peer in [&caller, &agent] {
        assert!(
            peer.at_sdp_port() <= BUDGET,
            "{} > {BUDGET}",
            peer.at_sdp_port()
        );
    }
    let dropped = metric(&daemon, "frontdesk_rtp_packets_foreign_total")
        + metric(&daemon, "frontdesk_rtp_packets_learning_total");
    assert!(dropped > 0, "no sprayed packet was counted");
    call.join().expect("patient").assert_all_succeeded(1);
    carol.join().expect("Carol").assert_all_succeeded(1);
    wait_for_call(&daemon, BOUND, |call| call["outcome"] == "connected");
}

#[test]
fn a_spray_reaches_nobody_with_the_agent_behind_nat() {
    a_spray_reaches_nobody(RtpPeer::start(0, false), RtpPeer::behind_nat(0));
}

#[test]
fn a_spray_reaches_nobody_with_the_patient_behind_nat() {
    a_spray_reaches_nobody(RtpPeer::behind_nat(0), RtpPeer::start(0, false));
}

#[test]
fn a_spray_reaches_nobody_without_nat() {
    a_spray_reaches_nobody(RtpPeer::start(0, false), RtpPeer::start(0, false));
}

#[test]
fn a_phone_that_moves_mid_call_is_followed_and_a_spray_cannot_follow_it() {
    let (_dir, daemon) = daemon();
    let spray = Spray::start(daemon.rtp_ports(), 4, Duration::from_millis(200));
    let caller = RtpPeer::start(0, false);
    let agent = RtpPeer::start(0, false);
    let (call, carol) = bridged_call(&daemon, &caller, &agent);
    let before = caller.media_port();
    // The patient's phone moves: same stream, new address. From now on only
    // the new port receives.
    let moved = caller.move_to_new_port();
    assert_ne!(moved, before);
    both_keep_hearing(&caller, &agent, 50);
    assert!(metric(&daemon, "frontdesk_rtp_relatches_total") >= 1);
    let (_, reached_attacker) = spray.stop();
    assert_eq!(reached_attacker, 0);
    assert_eq!(caller.uniform(MARK) + agent.uniform(MARK), 0);
    call.join().expect("patient").assert_all_succeeded(1);
    carol.join().expect("Carol").assert_all_succeeded(1);
}

#[test]
fn an_invite_naming_a_third_party_sends_it_no_more_than_the_budget() {
    let (_dir, daemon) = daemon();
    // The victim: another host, which never asked for anything.
    let victim = UdpSocket::bind("127.0.0.5:0").expect("bind on 127.0.0.5");
    victim
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    let forged = RawCall::invite(
        &daemon,
        "+15550100",
        victim.local_addr().expect("its address"),
        1,
    );
    // Never ACKed, never a packet from the victim. Without strict RTP the
    // emergency notice would stream at it for 30 s (50 packets a second);
    // watch for 3 s after the budget arrived.
    let mut buffer = [0u8; 2048];
    let mut received = 0;
    let deadline = Instant::now() + BOUND;
    while received < BUDGET && Instant::now() < deadline {
        if victim.recv(&mut buffer).is_ok() {
            received += 1;
        }
    }
    assert_eq!(received, BUDGET, "the budget should arrive");
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        if victim.recv(&mut buffer).is_ok() {
            received += 1;
        }
    }
    assert_eq!(received, BUDGET, "the victim got more than the budget");
    assert!(metric(&daemon, "frontdesk_rtp_packets_withheld_total") > 0);
    drop(forged);
}

#[test]
fn consecutive_calls_do_not_get_predictable_ports() {
    let (_dir, daemon) = daemon();
    let audio = RtpPeer::start(0, false);
    let media: SocketAddr = format!("127.0.0.1:{}", audio.port())
        .parse()
        .expect("an address");
    let ports: Vec<u16> = (0..8)
        .map(|n| {
            let call = RawCall::invite(&daemon, "+15550100", media, n);
            let port = call.media_port;
            call.ack_and_hang_up();
            port
        })
        .collect();
    let (low, high) = daemon.rtp_ports();
    assert!(
        ports
            .iter()
            .all(|port| (low..=high).contains(port) && port % 2 == 0),
        "{ports:?}"
    );
    // Each call's port was freed before the next call came: the quarantine
    // keeps it from that call, and the draw is random.
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ports.len(),
        "a port came back at once: {ports:?}"
    );
    let in_order = ports
        .windows(2)
        .filter(|pair| pair[1] == pair[0] + 2)
        .count();
    assert!(
        in_order <= 2,
        "one call's port predicts the next: {ports:?}"
    );
}
