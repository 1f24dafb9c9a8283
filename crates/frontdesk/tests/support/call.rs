//! What call tests share: a dialplan the clinic answers at any hour, an RTP
//! receiver of the test's own, free ports, and `/api/calls` reading.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Daemon, TOKEN, repo_root};

/// The demo clinic written into `dir` without its business hours (open at
/// any hour, so tests do not depend on the clock), with `tweak` applied to
/// the text, and its prompts linked beside it.
pub fn open_clinic(dir: &Path, tweak: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("dialplans/clinic.toml"))
        .expect("read clinic.toml");
    let start = text.find("[[hours]]").expect("clinic.toml has hours");
    let end = text
        .find("# Outside hours")
        .expect("clinic.toml has an after-hours comment");
    let open = format!("{}{}", &text[..start], &text[end..]);
    let path = dir.join("open-clinic.toml");
    std::fs::write(&path, tweak(open)).expect("write the dialplan");
    let prompts = dir.join("prompts");
    if !prompts.exists() {
        std::os::unix::fs::symlink(repo_root().join("dialplans/prompts"), prompts)
            .expect("link the prompts");
    }
    path
}

/// Adds a number that rings 3 s before answering (`+15550199`, source
/// `ring-test`) to a dialplan text.
pub fn with_ringing_number(text: String) -> String {
    text.replacen(
        "[[numbers]]\nnumber = \"+15550111\"",
        "[[numbers]]\nnumber = \"+15550199\"\nsource = \"ring-test\"\npriority = \"routine\"\n\
         answer_after = \"3s\"\nannounce = [\"prompts/emergency-notice.wav\"]\nthen = { menu = \"main\" }\n\n\
         [[numbers]]\nnumber = \"+15550111\"",
        1,
    )
}

/// Points a dialplan text's `[trunks.carrier]` at a trunk on loopback
/// `port` with the credentials `tests/sipp/trunk-auth.xml` checks
/// (`clinic` / `s3cret`).
pub fn with_carrier_trunk(text: String, port: u16) -> String {
    text.replace(
        "uri = \"sip:127.0.0.1:5062\"",
        &format!("uri = \"sip:127.0.0.1:{port}\""),
    )
    .replacen("username = \"\"", "username = \"clinic\"", 1)
    .replacen("password = \"\"", "password = \"s3cret\"", 1)
}

/// A UDP port free right now (bound, read back, released).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// One RTP packet's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Payload length.
    pub payload_len: usize,
}

fn parse_rtp(packet: &[u8]) -> Option<RtpHeader> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(packet[0] & 0x0f) * 4;
    Some(RtpHeader {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload_len: packet.len().saturating_sub(12 + csrc),
    })
}

/// A UDP socket of the test that records the RTP packets sent to it.
#[derive(Debug)]
pub struct RtpSink {
    port: u16,
    packets: Arc<Mutex<Vec<RtpHeader>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RtpSink {
    /// A phone's audio port: binds a free port, records what arrives and,
    /// as a phone does, answers with a 20 ms stream of PCMU silence from the
    /// same socket to where the first packet came from. That stream comes
    /// from the address its SDP names, so strict RTP confirms it and sends
    /// it everything, not only the budget an unconfirmed leg gets.
    pub fn start() -> Self {
        Self::spawn(true)
    }

    /// A port that only listens: the SDP names it, but the phone's own RTP
    /// (if any) comes from elsewhere, like SIPp's `-mp` port or a phone
    /// behind NAT. Until that RTP is learned, only the unconfirmed budget
    /// of packets reaches this port.
    pub fn listening() -> Self {
        Self::spawn(false)
    }

    fn spawn(answers: bool) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the RTP sink");
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a read timeout");
        let port = socket.local_addr().expect("its address").port();
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let packets = Arc::clone(&packets);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                let mut remote = None;
                let mut sequence: u16 = 7;
                let mut next_send = Instant::now();
                // Bounded: these threads end with the test.
                let deadline = Instant::now() + Duration::from_secs(180);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if let Ok((length, source)) = socket.recv_from(&mut buffer)
                        && let Some(header) = parse_rtp(&buffer[..length])
                    {
                        packets.lock().expect("not poisoned").push(header);
                        remote.get_or_insert(source);
                    }
                    if let Some(remote) = remote.filter(|_| answers && Instant::now() >= next_send)
                    {
                        next_send += Duration::from_millis(20);
                        let mut packet = vec![0x80, 0];
                        packet.extend_from_slice(&sequence.to_be_bytes());
                        packet.extend_from_slice(&(u32::from(sequence) * 160).to_be_bytes());
                        packet.extend_from_slice(&0x5117_u32.to_be_bytes());
                        packet.extend_from_slice(&[0xFF; 160]);
                        let _ = socket.send_to(&packet, remote);
                        sequence = sequence.wrapping_add(1);
                    }
                }
            })
        };
        RtpSink {
            port,
            packets,
            stop,
            thread: Some(thread),
        }
    }

    /// The port to put in the SDP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What arrived so far.
    pub fn packets(&self) -> Vec<RtpHeader> {
        self.packets.lock().expect("not poisoned").clone()
    }

    /// Stops recording and returns every packet.
    pub fn finish(mut self) -> Vec<RtpHeader> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.packets()
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Asserts a stream of prompt packets is well formed: one SSRC, sequence
/// numbers +1 and timestamps +160 (20 ms of 8 kHz) from packet to packet,
/// 160-byte G.711 payloads of `payload_type`, the marker on the first.
pub fn assert_prompt_stream(packets: &[RtpHeader], payload_type: u8) {
    let first = packets.first().expect("some packets");
    assert!(first.marker, "the first prompt packet has the marker bit");
    for pair in packets.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(a.ssrc, b.ssrc, "one SSRC");
        assert_eq!(
            b.sequence,
            a.sequence.wrapping_add(1),
            "sequence +1: {a:?} → {b:?}"
        );
        assert_eq!(
            b.timestamp,
            a.timestamp.wrapping_add(160),
            "timestamp +160: {a:?} → {b:?}"
        );
    }
    for packet in packets {
        assert_eq!(packet.payload_type, payload_type);
        assert_eq!(packet.payload_len, 160);
    }
}

/// `GET /api/calls` (with the token): the calls, newest first.
pub fn calls(daemon: &Daemon) -> Vec<Value> {
    let response = daemon.get("/api/calls?limit=100", Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    body["calls"].as_array().cloned().unwrap_or_default()
}

/// Polls `/api/calls` until the newest call satisfies `done`, within `bound`.
pub fn wait_for_call(daemon: &Daemon, bound: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + bound;
    loop {
        let list = calls(daemon);
        if let Some(call) = list.first()
            && done(call)
        {
            return call.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no such call within {bound:?}: {list:#?}\nthe log:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls the admin route `path` (200 every time) until `wanted` holds on
/// its JSON, within [`super::people::STEP_BOUND`]; the JSON then.
pub fn poll(daemon: &Daemon, path: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + super::people::STEP_BOUND;
    loop {
        let response = daemon.get(path, Some(TOKEN));
        assert_eq!(response.status, 200, "{path}: {response:?}");
        let json = response.json();
        if wanted(&json) {
            return json;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: last {json:#}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `callback` steps of call `id`'s timeline, in order (their details).
pub fn callback_steps(daemon: &Daemon, id: &str) -> Vec<Value> {
    let call = daemon.get(&format!("/api/calls/{id}"), Some(TOKEN)).json();
    call["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["kind"] == "callback")
        .map(|event| event["detail"].clone())
        .collect()
}

/// The value of the first `/metrics` line that starts with `series`.
pub fn metric(daemon: &Daemon, series: &str) -> Option<f64> {
    let text = daemon.get("/metrics", None).body;
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}
