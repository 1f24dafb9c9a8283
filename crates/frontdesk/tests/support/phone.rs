//! A softphone's pieces for bridge tests: registering an agent with digest
//! auth (our own small client on a UDP socket), and an RTP peer that both
//! sends a steady 20 ms stream (and RFC 4733 digits) and records what it
//! receives, answering from the same socket so symmetric RTP keeps
//! talking to it.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sip::digest::{Challenge, Credentials};
use sip::message::{AuthParams, Frame, Limits, Message, parse_datagram};

use super::call::RtpHeader;

/// Registers `agent` (password `demo-<agent>`) at `sip`, with a Contact on
/// `contact_port` (where the agent's phone, e.g. a SIPp UAS, listens), for
/// `expires` seconds. Panics unless the registrar answers 200.
pub fn register(sip: SocketAddr, agent: &str, contact_port: u16, expires: u32) {
    register_from(0, sip, agent, contact_port, expires, "");
}

/// [`register`] from local port `local_port` (0: any), with `call_id_tag`
/// in its Call-ID: a phone registering through Kamailio sends from its
/// own SIP port (Kamailio's Path names the address it saw), and a new tag
/// is a new Call-ID, which Kamailio may hash to another node.
pub fn register_from(
    local_port: u16,
    sip: SocketAddr,
    agent: &str,
    contact_port: u16,
    expires: u32,
    call_id_tag: &str,
) {
    let socket = UdpSocket::bind(("127.0.0.1", local_port)).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let me = socket.local_addr().expect("its address");
    let uri = format!("sip:{}", sip);
    let request = |cseq: u32, authorization: Option<String>| {
        format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKreg{agent}{cseq}{port};rport\r\n\
             From: <sip:{agent}@{sip}>;tag=reg{agent}\r\n\
             To: <sip:{agent}@{sip}>\r\n\
             Call-ID: register-{agent}-{port}{call_id_tag}@test\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{agent}@127.0.0.1:{contact_port}>\r\n\
             Expires: {expires}\r\n\
             Max-Forwards: 70\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            port = me.port(),
            auth = authorization
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default(),
        )
    };
    let exchange = |text: String| -> Message {
        socket.send_to(text.as_bytes(), sip).expect("send REGISTER");
        loop {
            let mut buffer = [0u8; 8192];
            let length = socket.recv(&mut buffer).expect("an answer to REGISTER");
            if let Ok(Frame::Message(message)) = parse_datagram(
                bytes::Bytes::copy_from_slice(&buffer[..length]),
                &Limits::default(),
            ) {
                return message;
            }
        }
    };
    let Message::Response(challenge) = exchange(request(1, None)) else {
        panic!("a request came back");
    };
    assert_eq!(challenge.status.as_u16(), 401, "{challenge:?}");
    let params: AuthParams = challenge.headers.www_authenticates().expect("challenges")[0].clone();
    let challenge = Challenge::from_params(&params).expect("a digest challenge");
    let credentials = Credentials::answer(
        &challenge,
        agent,
        &format!("demo-{agent}"),
        "REGISTER",
        &uri,
        "0a4f113b",
        1,
    );
    let header = credentials.to_params().to_string();
    let Message::Response(done) = exchange(request(2, Some(header))) else {
        panic!("a request came back");
    };
    assert_eq!(done.status.as_u16(), 200, "{done:?}");
}

#[derive(Debug, Default)]
struct PeerState {
    received: Vec<(RtpHeader, u8)>,
    /// Per received packet: the payload byte when all of the payload is
    /// that one byte (our peers' FILL, an attacker's mark), else `None`.
    uniform: Vec<Option<u8>>,
    /// Per received packet: the RMS of its samples, decoded, when it is
    /// G.711 (PCMU or PCMA), else `None`.
    levels: Vec<Option<u16>>,
    remote: Option<SocketAddr>,
    digits: VecDeque<char>,
    /// What the phone says instead of [`FILL`] (G.711 codes, looped), and
    /// where in it the next packet starts.
    audio: Option<(Arc<Vec<u8>>, usize)>,
    /// The audio is said once ([`RtpPeer::say`]), not looped.
    once: bool,
    /// What the phone sends when it says nothing (`None`: [`FILL`]).
    rest: Option<u8>,
    /// Behind NAT: packets that reached the port named in the SDP.
    at_sdp_port: usize,
    /// The port the phone sends and receives on now.
    media_port: u16,
}

/// A two-way RTP endpoint of the test.
#[derive(Debug)]
pub struct RtpPeer {
    port: u16,
    state: Arc<Mutex<PeerState>>,
    stop: Arc<AtomicBool>,
    mute: Arc<AtomicBool>,
    rebind: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The payload byte our peers fill their packets with: a flat signal no
/// prompt contains, so relayed audio can be told from prompts.
pub const FILL: u8 = 0x55;

impl RtpPeer {
    /// Binds a free port. Once the first packet arrives, it answers to its
    /// source with `payload_type` packets every 20 ms, filled with [`FILL`]
    /// (or, while `silent`, sends nothing).
    pub fn start(payload_type: u8, silent: bool) -> Self {
        Self::spawn(payload_type, silent, None)
    }

    /// A phone behind NAT: [`RtpPeer::port`] (for the SDP) is a socket
    /// that only listens, as a phone's private address would be unreachable;
    /// the phone's RTP comes from and goes to another socket of its own (the
    /// NAT's public mapping). It learns where to send from the first packet
    /// that reaches the SDP's port, as a phone knows it from the SDP, then
    /// speaks first from its other socket.
    pub fn behind_nat(payload_type: u8) -> Self {
        let private = UdpSocket::bind("127.0.0.1:0").expect("bind the SDP's port");
        private
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        Self::spawn(payload_type, false, Some(private))
    }

    fn spawn(payload_type: u8, silent: bool, private: Option<UdpSocket>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an RTP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a read timeout");
        let media_port = socket.local_addr().expect("its address").port();
        let port = private.as_ref().map_or(media_port, |private| {
            private.local_addr().expect("its address").port()
        });
        let state = Arc::new(Mutex::new(PeerState {
            media_port,
            ..PeerState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mute = Arc::new(AtomicBool::new(silent));
        let rebind = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let flags = Flags {
                stop: Arc::clone(&stop),
                mute: Arc::clone(&mute),
                rebind: Arc::clone(&rebind),
            };
            std::thread::spawn(move || run(socket, private, payload_type, &state, &flags))
        };
        RtpPeer {
            port,
            state,
            stop,
            mute,
            rebind,
            thread: Some(thread),
        }
    }

    /// The port for the SDP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port the phone's RTP comes from now (the SDP's port, unless the
    /// phone is behind NAT or has moved).
    pub fn media_port(&self) -> u16 {
        self.state.lock().expect("not poisoned").media_port
    }

    /// Queues an RFC 4733 digit (payload type 101).
    pub fn press(&self, digit: char) {
        self.state
            .lock()
            .expect("not poisoned")
            .digits
            .push_back(digit);
    }

    /// From the next packet on, the phone says `audio` (G.711 codes of its
    /// payload type, 160 a packet, from the start and looped).
    pub fn speak(&self, audio: Vec<u8>) {
        self.state.lock().expect("not poisoned").audio = Some((Arc::new(audio), 0));
    }

    /// From the next packet on, the phone says `audio` once (G.711 codes,
    /// 160 a packet; a last partial packet is padded with the quiet byte),
    /// then is quiet ([`RtpPeer::rest_with`]).
    pub fn say(&self, audio: Vec<u8>) {
        let mut state = self.state.lock().expect("not poisoned");
        state.audio = Some((Arc::new(audio), 0));
        state.once = true;
    }

    /// What the phone sends while it says nothing: `byte` in every payload
    /// byte (0xFF: PCMU's silence) instead of [`FILL`].
    pub fn rest_with(&self, byte: u8) {
        self.state.lock().expect("not poisoned").rest = Some(byte);
    }

    /// Whether what [`RtpPeer::say`] was given has all been sent.
    pub fn said(&self) -> bool {
        self.state.lock().expect("not poisoned").audio.is_none()
    }

    /// Packets received so far, with their first payload byte.
    pub fn received(&self) -> Vec<(RtpHeader, u8)> {
        self.state.lock().expect("not poisoned").received.clone()
    }

    /// How many received packets carried [`FILL`] (relayed audio of the
    /// other peer), converted or not: `expect` is the byte to look for.
    pub fn relayed(&self, expect: u8) -> usize {
        self.received()
            .iter()
            .filter(|(_, first)| *first == expect)
            .count()
    }

    /// How many received packets had a payload made of `byte` alone.
    pub fn uniform(&self, byte: u8) -> usize {
        let state = self.state.lock().expect("not poisoned");
        state.uniform.iter().filter(|b| **b == Some(byte)).count()
    }

    /// How many packets have arrived so far (a mark for [`RtpPeer::loud_since`]).
    pub fn received_count(&self) -> usize {
        self.state.lock().expect("not poisoned").levels.len()
    }

    /// How many G.711 packets from the `since`-th on decode to an RMS of at
    /// least `level` (speech is in the thousands; silence is 0, comfort
    /// noise a few tens).
    pub fn loud_since(&self, since: usize, level: u16) -> usize {
        let state = self.state.lock().expect("not poisoned");
        state
            .levels
            .iter()
            .skip(since)
            .filter(|rms| rms.is_some_and(|rms| rms >= level))
            .count()
    }

    /// How many of the last G.711 packets in a row decode to an RMS below
    /// `level` (other payload types are skipped).
    pub fn quiet_streak(&self, level: u16) -> usize {
        let state = self.state.lock().expect("not poisoned");
        state
            .levels
            .iter()
            .rev()
            .flatten()
            .take_while(|rms| **rms < level)
            .count()
    }

    /// Behind NAT: how many packets reached the port the SDP named.
    pub fn at_sdp_port(&self) -> usize {
        self.state.lock().expect("not poisoned").at_sdp_port
    }

    /// Whether a packet has arrived (the far end is sending to us).
    pub fn heard(&self) -> bool {
        self.state.lock().expect("not poisoned").remote.is_some()
    }

    /// Stops sending (a phone that vanished) but keeps listening.
    pub fn go_silent(&self) {
        self.mute.store(true, Ordering::Relaxed);
    }

    /// The phone moves (new Wi-Fi, a NAT rebinding): from its next packet
    /// on it sends and listens on a new port, continuing its stream (same
    /// SSRC, next sequence numbers). Returns once it has moved.
    pub fn move_to_new_port(&self) -> u16 {
        let before = self.media_port();
        self.rebind.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.media_port() == before {
            assert!(Instant::now() < deadline, "the phone did not move");
            std::thread::sleep(Duration::from_millis(5));
        }
        self.media_port()
    }

    /// Waits until `condition` holds on this peer, within `bound`.
    pub fn wait_until(&self, bound: Duration, condition: impl Fn(&RtpPeer) -> bool) -> bool {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if condition(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        condition(self)
    }
}

impl Drop for RtpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn parse(packet: &[u8]) -> Option<(RtpHeader, u8)> {
    if packet.len() < 13 || packet[0] >> 6 != 2 {
        return None;
    }
    let header = RtpHeader {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload_len: packet.len() - 12,
    };
    Some((header, packet[12]))
}

struct Flags {
    stop: Arc<AtomicBool>,
    mute: Arc<AtomicBool>,
    rebind: Arc<AtomicBool>,
}

fn run(
    mut socket: UdpSocket,
    private: Option<UdpSocket>,
    payload_type: u8,
    state: &Mutex<PeerState>,
    flags: &Flags,
) {
    let ssrc: u32 = 0x1234_5678 ^ u32::from(socket.local_addr().map_or(0, |a| a.port()));
    let mut sequence: u16 = 1000;
    let mut timestamp: u32 = 50_000;
    let mut next_send = Instant::now();
    let mut buffer = [0u8; 2048];
    // Bounded: these threads end with the test.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && !flags.stop.load(Ordering::Relaxed) {
        if let Some(private) = &private {
            // Behind NAT: the SDP's port only tells the phone where to send.
            while let Ok((_, source)) = private.recv_from(&mut buffer) {
                let mut state = state.lock().expect("not poisoned");
                state.at_sdp_port += 1;
                state.remote.get_or_insert(source);
            }
        }
        if flags.rebind.swap(false, Ordering::Relaxed) {
            socket = UdpSocket::bind("127.0.0.1:0").expect("bind the new port");
            socket
                .set_read_timeout(Some(Duration::from_millis(5)))
                .expect("a read timeout");
            state.lock().expect("not poisoned").media_port =
                socket.local_addr().expect("its address").port();
        }
        if let Ok((length, source)) = socket.recv_from(&mut buffer)
            && let Some(packet) = parse(&buffer[..length])
        {
            let payload = &buffer[12..length];
            let uniform = payload
                .iter()
                .all(|byte| *byte == payload[0])
                .then_some(payload[0]);
            let level = media::Codec::from_static_payload_type(packet.0.payload_type)
                .map(|codec| rms(codec, rtp_payload(&buffer[..length])));
            let mut state = state.lock().expect("not poisoned");
            state.received.push(packet);
            state.uniform.push(uniform);
            state.levels.push(level);
            if private.is_none() {
                state.remote.get_or_insert(source);
            }
        }
        if flags.mute.load(Ordering::Relaxed) {
            continue;
        }
        let now = Instant::now();
        if now < next_send {
            continue;
        }
        next_send += Duration::from_millis(20);
        let (remote, digit) = {
            let mut state = state.lock().expect("not poisoned");
            (state.remote, state.remote.and(state.digits.pop_front()))
        };
        let Some(remote) = remote else { continue };
        if let Some(digit) = digit {
            // RFC 4733: the event for 100 ms, then three end packets, all
            // with the event's timestamp.
            let event = match digit {
                '*' => 10,
                '#' => 11,
                d => d.to_digit(10).unwrap_or(0) as u8,
            };
            for step in 1..=8u16 {
                let end = step >= 6;
                let duration = (step.min(5) * 160).to_be_bytes();
                let mut packet = header(101, step == 1, sequence, timestamp, ssrc);
                packet.extend_from_slice(&[
                    event,
                    if end { 0x80 | 10 } else { 10 },
                    duration[0],
                    duration[1],
                ]);
                let _ = socket.send_to(&packet, remote);
                sequence = sequence.wrapping_add(1);
            }
            timestamp = timestamp.wrapping_add(800);
            continue;
        }
        let mut packet = header(payload_type, false, sequence, timestamp, ssrc);
        let (spoken, rest) = {
            let mut state = state.lock().expect("not poisoned");
            let once = state.once;
            let rest = state.rest.unwrap_or(FILL);
            let spoken = state
                .audio
                .as_mut()
                .filter(|(audio, _)| !audio.is_empty())
                .map(|(audio, at)| {
                    let frame: Vec<u8> = (0..160)
                        .map(|i| match audio.get(*at + i) {
                            Some(code) => *code,
                            None if once => rest,
                            None => audio[(*at + i) % audio.len()],
                        })
                        .collect();
                    *at += 160;
                    let done = *at >= audio.len();
                    if !once {
                        *at %= audio.len();
                    }
                    (frame, done && once)
                });
            let spoken = match spoken {
                Some((frame, true)) => {
                    state.audio = None;
                    state.once = false;
                    Some(frame)
                }
                Some((frame, false)) => Some(frame),
                None => None,
            };
            (spoken, rest)
        };
        match spoken {
            Some(frame) => packet.extend_from_slice(&frame),
            None => packet.extend_from_slice(&[rest; 160]),
        }
        let _ = socket.send_to(&packet, remote);
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(160);
    }
}

/// An RTP packet's payload, past its CSRCs and header extension (RFC 3550
/// §5.1, §5.3.1); empty when the packet is too short for them.
fn rtp_payload(packet: &[u8]) -> &[u8] {
    let mut start = 12 + usize::from(packet[0] & 0x0f) * 4;
    if packet[0] & 0x10 != 0 && packet.len() >= start + 4 {
        let words = u16::from_be_bytes([packet[start + 2], packet[start + 3]]);
        start += 4 + usize::from(words) * 4;
    }
    packet.get(start..).unwrap_or_default()
}

/// The root mean square of `payload`'s samples decoded with `codec`.
fn rms(codec: media::Codec, payload: &[u8]) -> u16 {
    if payload.is_empty() {
        return 0;
    }
    let sum: f64 = payload
        .iter()
        .map(|code| f64::from(codec.decode(*code)).powi(2))
        .sum();
    // At most 32768: the square root of a mean of squares of i16 samples.
    (sum / payload.len() as f64).sqrt() as u16
}

fn header(payload_type: u8, marker: bool, sequence: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    let mut packet = Vec::with_capacity(172);
    packet.push(0x80);
    packet.push(payload_type | if marker { 0x80 } else { 0 });
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}
