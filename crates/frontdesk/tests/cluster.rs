//! Issue 24, the proxy layer: Debian's Kamailio (`deploy/kamailio/`) in
//! front of three frontdesk nodes on loopback (`support/cluster.rs`).
//! SIPp patients call Kamailio; agents register through it (Path).
//!
//! Agents' bindings are not shared between nodes yet (another part of
//! issue 24): an agent is registered through Kamailio with new Call-IDs
//! until every node holds a binding for it, so whichever node Kamailio
//! hashes a patient's call to can ring it. Once bindings live in Redis,
//! one REGISTER will do and the test can drop the loop.
//!
//! Measured, printed for BENCHMARKS.md (never asserted tightly): the time
//! from `kill -9` to the last new call reaching the dead node's address,
//! and the calls lost at the kill.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::call::{calls, free_udp_port};
use support::cluster::{Cluster, metric_sum, patients};
use support::people::{self, press_when_heard, wait_port_taken};
use support::phone::{FILL, RtpPeer, register_from};
use support::sipp::Sipp;

const BOUND: Duration = Duration::from_secs(30);

#[test]
fn calls_spread_over_the_nodes_and_an_agent_registered_through_kamailio_is_rung_through_it() {
    let cluster = Cluster::start(|text| text, 1000);
    let kamailio = cluster.kamailio.address();

    // Agent 1003's phone: registered through Kamailio from its own SIP
    // port (Kamailio's Path names that address), once per node.
    let phone_port = free_udp_port();
    for attempt in 0..60 {
        register_from(
            phone_port,
            kamailio,
            "1003",
            phone_port,
            3600,
            &format!("-{attempt}"),
        );
        if (0..3).all(|node| people::agent(cluster.node(node), "1003")["state"] == "available") {
            break;
        }
        assert!(
            attempt < 59,
            "1003 did not reach every node through Kamailio"
        );
    }
    let agent_audio = RtpPeer::start(0, false);
    let agent_port = agent_audio.port();
    let agent = std::thread::spawn(move || {
        Sipp::new("agent.xml", kamailio)
            .calls(1)
            .args([
                "-p".to_string(),
                phone_port.to_string(),
                "-d".to_string(),
                "0".to_string(),
                "-set".to_string(),
                "rtp_port".to_string(),
                agent_port.to_string(),
            ])
            .run()
    });
    wait_port_taken(phone_port);

    // A patient presses 3 (pediatrics): whichever node took the call rings
    // 1003 through Kamailio, and the audio flows both ways.
    let patient_audio = RtpPeer::start(0, false);
    let patient_port = patient_audio.port();
    let patient = std::thread::spawn(move || {
        Sipp::new("caller.xml", kamailio)
            .calls(1)
            .args([
                "-s",
                "+15550100",
                "-set",
                "rtp_port",
                &patient_port.to_string(),
                "-set",
                "dtmf",
                "0",
                "-d",
                "4000",
            ])
            .run()
    });
    press_when_heard(&patient_audio, '3');
    assert!(
        agent_audio.wait_until(BOUND, |p| p.relayed(FILL) >= 50),
        "the agent heard {}; kamailio:\n{}\nnodes:\n{}",
        agent_audio.relayed(FILL),
        cluster.kamailio.log(),
        (0..3)
            .map(|node| cluster.node(node).stderr())
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    assert!(
        patient_audio.wait_until(BOUND, |p| p.relayed(FILL) >= 50),
        "the patient heard {}",
        patient_audio.relayed(FILL)
    );
    patient.join().expect("the patient").assert_all_succeeded(1);
    let agent = agent.join().expect("the agent");
    agent.assert_all_succeeded(1);

    // Thirty calls spread over the three nodes.
    patients(cluster.kamailio.address(), 30, 15, 0)
        .join()
        .expect("the patients")
        .assert_all_succeeded(30);
    for node in 0..3 {
        let daemon = cluster.node(node);
        let deadline = Instant::now() + BOUND;
        while metric_sum(daemon, "frontdesk_calls_total") < 1.0 {
            assert!(
                Instant::now() < deadline,
                "node {node} took no call: {} calls listed",
                calls(daemon).len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Counts the INVITEs that reach a dead node's address (a socket bound
/// there once the node is gone, answering nothing: a black hole, harder
/// on Kamailio than a refusing port).
struct Tombstone {
    invites: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tombstone {
    fn bind(address: SocketAddr) -> Tombstone {
        let socket = UdpSocket::bind(address).expect("the dead node's port");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout");
        let invites = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let invites = Arc::clone(&invites);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 8192];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(length) = socket.recv(&mut buffer)
                        && buffer[..length].starts_with(b"INVITE ")
                    {
                        invites.lock().expect("a lock").push(Instant::now());
                    }
                }
            })
        };
        Tombstone {
            invites,
            stop,
            thread: Some(thread),
        }
    }

    fn invites(&self) -> Vec<Instant> {
        self.invites.lock().expect("a lock").clone()
    }
}

impl Drop for Tombstone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The OPTIONS answer's status line from `node`.
fn options_status(node: SocketAddr) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let me = socket.local_addr().expect("its address");
    let options = format!(
        "OPTIONS sip:{node} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKprobe;rport\r\n\
         From: <sip:test@{me}>;tag=probe\r\n\
         To: <sip:{node}>\r\n\
         Call-ID: probe@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), node).expect("send");
    let mut buffer = [0u8; 4096];
    let length = socket.recv(&mut buffer).expect("an answer to OPTIONS");
    String::from_utf8_lossy(&buffer[..length])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_killed_node_s_new_calls_go_to_the_survivors_and_a_draining_node_keeps_its_calls() {
    let mut cluster = Cluster::start(|text| text, 1000);
    // Steady load: 10 calls/s for 9 s, each up 2.5 s.
    let load = patients(cluster.kamailio.address(), 90, 10, 500);
    let deadline = Instant::now() + BOUND;
    while (0..3).any(|node| calls(cluster.node(node)).is_empty()) {
        assert!(Instant::now() < deadline, "calls reached not every node");
        std::thread::sleep(Duration::from_millis(50));
    }
    let on_dead_node = calls(cluster.node(1))
        .iter()
        .filter(|call| call["ended_at"].is_null())
        .count();
    let dead = cluster.node_sips[1];
    let killed_at = Instant::now();
    cluster.kill(1);
    let tombstone = Tombstone::bind(dead);
    let run = load.join().expect("the patients");
    let invites = tombstone.invites();
    let last = invites.last().map(|at| at.duration_since(killed_at));
    let lost = run.count("FailedCall(C)");
    eprintln!(
        "kill -9 under 10 calls/s: {} new INVITEs reached the dead node's address, the last {:?} after the kill; {lost} of 90 calls failed ({on_dead_node} were up on the dead node at the kill)",
        invites.len(),
        last
    );
    // Generous bounds (the figures go to BENCHMARKS.md): new calls stop
    // reaching the dead node within 10 s, and the run went on for longer
    // than that with every later call served.
    assert!(
        last.is_none_or(|last| last < Duration::from_secs(5)),
        "INVITEs reached the dead node {last:?} after the kill"
    );
    assert!(
        lost <= on_dead_node as u64 + 3,
        "{lost} calls lost, {on_dead_node} were on the dead node; {run}"
    );
    assert_eq!(run.count("TotalCallCreated"), 90, "{run}");

    // Drain node 3 under load: its OPTIONS turn 503, Kamailio sends it no
    // new call, and none of its calls in progress is dropped.
    let load = patients(cluster.kamailio.address(), 40, 10, 500);
    let deadline = Instant::now() + BOUND;
    while calls(cluster.node(2))
        .iter()
        .all(|c| !c["ended_at"].is_null())
    {
        assert!(Instant::now() < deadline, "no call in progress on node 3");
        std::thread::sleep(Duration::from_millis(20));
    }
    let draining = cluster.node(2);
    let address = draining.sip();
    draining.signal(Signal::SIGTERM);
    let deadline = Instant::now() + BOUND;
    loop {
        let status = options_status(address);
        if status.starts_with("SIP/2.0 503") {
            break;
        }
        assert!(Instant::now() < deadline, "OPTIONS still {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
    load.join().expect("the patients").assert_all_succeeded(40);
}

/// Sends an INVITE (with `extra` header lines) from `socket` to `node`
/// and returns the status of its first final response.
fn invite_status(socket: &UdpSocket, node: SocketAddr, call_id: &str, extra: &str) -> u16 {
    let me = socket.local_addr().expect("its address");
    let sdp = "v=0\r\no=p 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
    let invite = format!(
        "INVITE sip:+15550100@{node} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
         From: <sip:+13125550142@{me}>;tag={call_id}\r\n\
         To: <sip:+15550100@{node}>\r\n\
         Call-ID: {call_id}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:patient@{me}>\r\n\
         Max-Forwards: 70\r\n\
         {extra}Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    socket.send_to(invite.as_bytes(), node).expect("send");
    let deadline = Instant::now() + BOUND;
    let mut buffer = [0u8; 8192];
    loop {
        assert!(Instant::now() < deadline, "no final answer to {call_id}");
        let Ok(length) = socket.recv(&mut buffer) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buffer[..length]);
        if !text.contains(&format!("Call-ID: {call_id}@test")) {
            continue;
        }
        let status: u16 = text
            .get(8..11)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        if status >= 200 {
            return status;
        }
    }
}

#[test]
fn a_forged_source_header_from_a_patient_is_ignored() {
    // One call at a time per untrusted source; 127.0.0.2 is untrusted,
    // 127.0.0.1 (loopback) trusted.
    let cluster = Cluster::start(
        |text| {
            let text = text.replacen("[trust]\n", "[trust]\nuntrusted = [\"127.0.0.2\"]\n", 1);
            format!("{text}\n[limits.sip]\ncalls = 1\n")
        },
        1000,
    );
    let node = cluster.node(0).sip();
    let socket = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    // Straight to a node, claiming to be trusted 127.0.0.1: ignored, so
    // the second call at once is refused for 127.0.0.2's limit.
    let forged = "X-Frontdesk-Source: 127.0.0.1:5060;transport=udp\r\n";
    assert_eq!(invite_status(&socket, node, "forged-1", forged), 200);
    assert_eq!(invite_status(&socket, node, "forged-2", forged), 503);
}
