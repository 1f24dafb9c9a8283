//! A browser phone made in Rust for the tests: what `/agent`'s page does
//! when "take calls here" is on, without a browser. It signs in
//! (`POST /agent/login`), opens `/agent/phone`, sends its hello with a
//! str0m offer (full ICE, DTLS client, PCMU and PCMA, as Chrome offers),
//! and runs its peer connection over a real UDP socket on loopback in a
//! thread of its own. The test reads the signalling messages, sends the
//! page's commands, and looks at the audio: the page sends 20 ms frames of
//! one byte ([`Page::say`]) and counts the frames it receives by their
//! byte.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::VecDeque;
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tungstenite::{Message, WebSocket};

use super::Daemon;

/// Every wait's bound.
const BOUND: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Shared {
    /// Signalling messages from the daemon, oldest first.
    inbox: VecDeque<Value>,
    /// Messages to send.
    outbox: VecDeque<Value>,
    /// The WebRTC connection is up.
    connected: bool,
    /// Frames received, by their first byte.
    frames: Vec<u8>,
    /// The socket closed (by the daemon or by us).
    closed: bool,
    /// The close code the daemon sent, if any.
    close_code: Option<u16>,
}

/// A page with its phone on. Dropping it closes the socket and the
/// connection (the page is gone).
pub struct Page {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    /// The byte of the frames it sends (0: none).
    voice: Arc<AtomicU8>,
    thread: Option<JoinHandle<()>>,
    /// The agent.
    pub agent: String,
}

impl Page {
    /// Signs in as `agent` and switches the phone on; returns once the
    /// daemon answered the hello (`ready`).
    pub fn start(daemon: &Daemon, agent: &str, password: &str) -> Page {
        let response = daemon
            .try_request(
                "POST",
                "/agent/login",
                None,
                Some(&json!({"user": agent, "password": password}).to_string()),
            )
            .expect("POST /agent/login");
        assert_eq!(response.status, 200, "{response:?}");
        let token = response.json()["token"]
            .as_str()
            .expect("a token")
            .to_string();
        let http = daemon.http();
        let stream = TcpStream::connect(http).expect("connect");
        let (mut socket, _) = tungstenite::client(format!("ws://{http}/agent/phone"), stream)
            .unwrap_or_else(|error| panic!("the WebSocket handshake: {error}"));
        socket
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a read timeout");

        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind the page's media socket");
        udp.set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a read timeout");
        let local = udp.local_addr().expect("its address");
        let now = Instant::now();
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("a candidate"));
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        socket
            .send(Message::text(
                json!({"type": "hello", "token": token, "offer": offer.to_sdp_string()})
                    .to_string(),
            ))
            .expect("send the hello");
        let deadline = Instant::now() + BOUND;
        let ready = loop {
            assert!(Instant::now() < deadline, "no ready from the daemon");
            match socket.read() {
                Ok(Message::Text(text)) => {
                    let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                    assert_ne!(message["type"], "error", "{message}");
                    if message["type"] == "ready" {
                        break message;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => panic!("reading the socket: {error}"),
            }
        };
        assert_eq!(ready["agent"], agent);
        let answer = SdpAnswer::from_sdp_string(ready["answer"].as_str().expect("an answer"))
            .expect("an SDP answer");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("the answer accepted");

        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let voice = Arc::new(AtomicU8::new(0));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            let voice = Arc::clone(&voice);
            std::thread::spawn(move || run(socket, udp, rtc, mid, &shared, &stop, &voice))
        };
        Page {
            shared,
            stop,
            voice,
            thread: Some(thread),
            agent: agent.to_string(),
        }
    }

    /// From now on the page sends 20 ms frames of `byte` (0: silence, none
    /// sent).
    pub fn say(&self, byte: u8) {
        self.voice.store(byte, Ordering::Relaxed);
    }

    /// Sends a signalling message.
    pub fn send(&self, message: Value) {
        self.shared
            .lock()
            .expect("not poisoned")
            .outbox
            .push_back(message);
    }

    /// Waits for the next message of `kind` (others before it are
    /// dropped) and returns it.
    pub fn expect(&self, kind: &str) -> Value {
        let deadline = Instant::now() + BOUND;
        loop {
            {
                let mut shared = self.shared.lock().expect("not poisoned");
                while let Some(message) = shared.inbox.pop_front() {
                    if message["type"] == kind {
                        return message;
                    }
                }
                assert!(!shared.closed, "the socket closed while waiting for {kind}");
            }
            assert!(Instant::now() < deadline, "no {kind} message");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the WebRTC connection is up.
    pub fn wait_connected(&self) {
        assert!(
            self.wait_until(|shared| shared.connected),
            "the page's WebRTC connection did not come up"
        );
    }

    /// Frames received whose first byte is `byte`.
    pub fn heard(&self, byte: u8) -> usize {
        let shared = self.shared.lock().expect("not poisoned");
        shared.frames.iter().filter(|first| **first == byte).count()
    }

    /// Waits until `at_least` frames of `byte` came.
    pub fn wait_heard(&self, byte: u8, at_least: usize) -> bool {
        self.wait_until(|shared| shared.frames.iter().filter(|b| **b == byte).count() >= at_least)
    }

    fn wait_until(&self, condition: impl Fn(&Shared) -> bool) -> bool {
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if condition(&self.shared.lock().expect("not poisoned")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The page's thread: signalling and media until stopped.
fn run(
    mut socket: WebSocket<TcpStream>,
    udp: UdpSocket,
    mut rtc: str0m::Rtc,
    mid: str0m::media::Mid,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
    voice: &AtomicU8,
) {
    let local = udp.local_addr().expect("its address");
    let mut buffer = vec![0u8; 2048];
    let mut next_frame = Instant::now();
    let mut frames_sent: u64 = 0;
    let mut ws_open = true;
    while !stop.load(Ordering::Relaxed) {
        // The peer connection's output.
        let deadline = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(at)) => break at,
                Ok(Output::Transmit(transmit)) => {
                    let _ = udp.send_to(&transmit.contents, transmit.destination);
                }
                Ok(Output::Event(Event::Connected)) => {
                    shared.lock().expect("not poisoned").connected = true;
                }
                Ok(Output::Event(Event::MediaData(data))) => {
                    if let Some(first) = data.data.first() {
                        shared.lock().expect("not poisoned").frames.push(*first);
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return,
            }
        };
        // Signalling.
        if ws_open {
            let outgoing: Vec<Value> = shared
                .lock()
                .expect("not poisoned")
                .outbox
                .drain(..)
                .collect();
            for message in outgoing {
                let _ = socket.send(Message::text(message.to_string()));
            }
            match socket.read() {
                Ok(Message::Text(text)) => {
                    if let Ok(message) = serde_json::from_str::<Value>(text.as_str()) {
                        shared.lock().expect("not poisoned").inbox.push_back(message);
                    }
                }
                Ok(Message::Close(frame)) => {
                    let mut shared = shared.lock().expect("not poisoned");
                    shared.closed = true;
                    shared.close_code = frame.map(|frame| u16::from(frame.code));
                    ws_open = false;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    shared.lock().expect("not poisoned").closed = true;
                    ws_open = false;
                }
            }
        }
        // Our voice, every 20 ms.
        let now = Instant::now();
        let byte = voice.load(Ordering::Relaxed);
        if byte != 0 && now >= next_frame && shared.lock().expect("not poisoned").connected {
            if let Some(writer) = rtc.writer(mid) {
                let pt = writer.payload_params().next().map(|params| params.pt());
                if let Some(pt) = pt {
                    let time = MediaTime::new(frames_sent * 160, Frequency::EIGHT_KHZ);
                    let _ = writer.write(pt, now, time, &[byte; 160][..]);
                    frames_sent += 1;
                }
            }
            next_frame = now + Duration::from_millis(20);
        }
        // The network, briefly.
        match udp.recv_from(&mut buffer) {
            Ok((length, source)) => {
                if let Ok(receive) =
                    Receive::new(Protocol::Udp, source, local, &buffer[..length])
                {
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), receive));
                }
            }
            Err(_) => {
                let now = Instant::now();
                if now >= deadline {
                    let _ = rtc.handle_input(Input::Timeout(now));
                }
            }
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = rtc.handle_input(Input::Timeout(now));
        }
    }
    let _ = socket.close(None);
    let _ = socket.flush();
}
