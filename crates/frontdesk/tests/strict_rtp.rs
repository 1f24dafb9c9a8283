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

/// A patient's UDP SIP client of the test's own: enough for an INVITE, its
/// ACK and a BYE.
struct RawCall {
    socket: UdpSocket,
    daemon: SocketAddr,
    call_id: String,
    to: String,
    /// The daemon's RTP port in its answer.
    media_port: u16,
}

impl RawCall {
    /// Sends an INVITE whose SDP names `media` and returns once the 200 arrives.
    fn invite(daemon: &Daemon, media: SocketAddr, n: usize) -> RawCall {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        let me = socket.local_addr().expect("its address");
        let target = daemon.sip();
        let call_id = format!("strict-{n}-{}@test", me.port());
        let body = format!(
            "v=0\r\no=- {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
            ip = media.ip(),
            port = media.port()
        );
        let invite = format!(
            "INVITE sip:+15550100@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKinv{n}x{port};rport\r\n\
             From: <sip:+13125550142@{me}>;tag=from{n}\r\n\
             To: <sip:+15550100@{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:patient@{me}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {length}\r\n\r\n{body}",
            port = me.port(),
            length = body.len(),
        );
        socket
            .send_to(invite.as_bytes(), target)
            .expect("send INVITE");
        let mut buffer = [0u8; 8192];
        loop {
            let length = socket.recv(&mut buffer).expect("an answer to the INVITE");
            let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
            if !text.starts_with("SIP/2.0 200") {
                assert!(text.starts_with("SIP/2.0 1"), "{text}");
                continue;
            }
            let to = text
                .lines()
                .find(|line| line.starts_with("To:"))
                .expect("a To header")
                .to_string();
            let media_port = text
                .lines()
                .find_map(|line| line.strip_prefix("m=audio "))
                .and_then(|rest| rest.split(' ').next()?.parse().ok())
                .expect("an audio port in the answer");
            return RawCall {
                socket,
                daemon: target,
                call_id,
                to,
                media_port,
            };
        }
    }

    fn request(&self, method: &str, cseq: u32, branch: &str) -> String {
        let me = self.socket.local_addr().expect("its address");
        let n = self.call_id.split('-').nth(1).unwrap_or("0");
        format!(
            "{method} sip:{daemon} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:+13125550142@{me}>;tag=from{n}\r\n\
             {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            daemon = self.daemon,
            to = self.to,
            call_id = self.call_id,
        )
    }

    /// ACK, then BYE; returns once the BYE is answered.
    fn ack_and_hang_up(self) {
        let ack = self.request("ACK", 1, &format!("ack{}", self.media_port));
        self.socket
            .send_to(ack.as_bytes(), self.daemon)
            .expect("ACK");
        let bye = self.request("BYE", 2, &format!("bye{}", self.media_port));
        self.socket
            .send_to(bye.as_bytes(), self.daemon)
            .expect("BYE");
        let mut buffer = [0u8; 8192];
        loop {
            let length = self.socket.recv(&mut buffer).expect("an answer to BYE");
            let text = String::from_utf8_lossy(&buffer[..length]);
            if text.starts_with("SIP/2.0 200") && text.contains("CSeq: 2 BYE") {
                return;
            }
        }
    }
}

#[test]
fn an_invite_naming_a_third_party_sends_it_no_more_than_the_budget() {
    let (_dir, daemon) = daemon();
    // The victim: another host, which never asked for anything.
    let victim = UdpSocket::bind("127.0.0.5:0").expect("bind on 127.0.0.5");
    victim
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    let forged = RawCall::invite(&daemon, victim.local_addr().expect("its address"), 1);
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
            let call = RawCall::invite(&daemon, media, n);
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
