//! One browser page with "take calls here" on, as `/agent` runs it
//! (/work/helpers/phone-protocol.md, crates/frontdesk/tests/support/page.rs):
//! a task owning its WebSocket, its UDP socket and its str0m peer
//! connection (full ICE, DTLS client, PCMU only, so the daemon relays the
//! patient's bytes untouched).
//!
//! In a call it sends a 20 ms PCMU frame every 20 ms whose first byte is
//! [`PAGE_MARK`] and whose second says whether it left inside the
//! measurement window; it counts the patient's frames ([`PATIENT_MARK`]) the
//! same way. A `ringing` is answered at once and reported with its time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc};
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

/// First byte of the frames a page sends.
pub const PAGE_MARK: u8 = 0x55;
/// First byte of the frames the patients send.
pub const PATIENT_MARK: u8 = 0x33;
/// Every wait of a page's set-up.
const BOUND: Duration = Duration::from_secs(30);
/// The page's keep-alive (phone-protocol.md: every 15 s).
const PING_EVERY: Duration = Duration::from_secs(15);

/// What all pages share with the driver.
#[derive(Default)]
pub struct Control {
    /// Frames sent now are counted (second byte 1).
    pub window: AtomicBool,
    /// Pages stop and close.
    pub stop: Notify,
    pub stopped: AtomicBool,
}

/// A page's counters, read by the driver.
#[derive(Default)]
pub struct Counters {
    pub in_call: AtomicBool,
    /// Frames sent inside the window.
    pub sent_window: AtomicU64,
    /// Patient frames sent inside the window and received.
    pub received_window: AtomicU64,
    /// Every patient frame received.
    pub received_total: AtomicU64,
}

/// What a page tells the driver.
#[derive(Debug)]
pub enum Report {
    /// The WebRTC connection is up; `hello` → connected.
    Connected { setup: Duration },
    /// The set-up failed.
    Failed { page: usize, why: String },
    /// A `ringing` came (and was answered at once).
    Ringing { page: usize, at: Instant },
    /// The daemon said `connected` for the call.
    InCall { page: usize },
    /// The call ended (`ended` / `stopped`).
    Ended { page: usize },
}

/// `POST /agent/login` over one HTTP/1.1 connection; the session token.
pub async fn login(http: SocketAddr, agent: &str, password: &str) -> Result<String, String> {
    let body = json!({"user": agent, "password": password}).to_string();
    let request = format!(
        "POST /agent/login HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(http).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = timeout(BOUND, exchange)
        .await
        .map_err(|_| "login: no answer in time".to_string())?
        .map_err(|error| format!("login: {error}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("login: no body")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("login: {}", head.lines().next().unwrap_or("")));
    }
    let value: Value = serde_json::from_str(body).map_err(|error| format!("login: {error}"))?;
    value["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "login: no token".to_string())
}

/// A page from `hello` until stopped. Reports its set-up, its calls, and
/// keeps `counters` up to date.
pub async fn run(
    page: usize,
    http: SocketAddr,
    token: String,
    control: Arc<Control>,
    counters: Arc<Counters>,
    reports: mpsc::UnboundedSender<Report>,
) {
    if let Err(why) = drive(page, http, token, &control, &counters, &reports).await {
        let _ = reports.send(Report::Failed { page, why });
    }
}

async fn drive(
    page: usize,
    http: SocketAddr,
    token: String,
    control: &Control,
    counters: &Counters,
    reports: &mpsc::UnboundedSender<Report>,
) -> Result<(), String> {
    let stream = TcpStream::connect(http)
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let (mut socket, _) = timeout(
        BOUND,
        tokio_tungstenite::client_async(format!("ws://{http}/agent/phone"), stream),
    )
    .await
    .map_err(|_| "WebSocket handshake: no answer in time".to_string())?
    .map_err(|error| format!("WebSocket handshake: {error}"))?;

    let udp = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("bind: {error}"))?;
    let local = udp.local_addr().map_err(|error| error.to_string())?;
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp").map_err(|error| error.to_string())?;
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().ok_or("no offer")?;

    let hello_at = Instant::now();
    let hello = json!({"type": "hello", "token": token, "offer": offer.to_sdp_string()});
    socket
        .send(Message::text(hello.to_string()))
        .await
        .map_err(|error| format!("send hello: {error}"))?;
    let ready = timeout(BOUND, async {
        while let Some(message) = socket.next().await {
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            match message["type"].as_str() {
                Some("ready") => return Ok(message),
                Some("error") => return Err(format!("daemon: {message}")),
                _ => {}
            }
        }
        Err("the socket closed before ready".to_string())
    })
    .await
    .map_err(|_| "no ready in time".to_string())??;
    let answer = SdpAnswer::from_sdp_string(ready["answer"].as_str().unwrap_or(""))
        .map_err(|error| format!("the answer: {error}"))?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|error| format!("the answer refused: {error}"))?;

    let mut buffer = vec![0u8; 2048];
    let mut connected = false;
    let setup_deadline = hello_at + BOUND;
    let mut call: Option<String> = None;
    let mut next_frame = Instant::now();
    let mut frames: u64 = 0;
    let mut next_ping = Instant::now() + PING_EVERY;
    loop {
        let deadline = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(at)) => break at,
                Ok(Output::Transmit(transmit)) => {
                    let _ = udp.send_to(&transmit.contents, transmit.destination).await;
                }
                Ok(Output::Event(Event::Connected)) => {
                    if !connected {
                        connected = true;
                        let setup = hello_at.elapsed();
                        let _ = reports.send(Report::Connected { setup });
                    }
                }
                Ok(Output::Event(Event::MediaData(data))) => {
                    if data.data.first() == Some(&PATIENT_MARK) {
                        counters.received_total.fetch_add(1, Ordering::Relaxed);
                        if data.data.get(1) == Some(&1) {
                            counters.received_window.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(error) => return Err(format!("str0m: {error}")),
            }
        };
        if !connected && Instant::now() > setup_deadline {
            return Err("WebRTC not connected in time".to_string());
        }
        let mut wake = deadline.min(next_ping);
        if call.is_some() && counters.in_call.load(Ordering::Relaxed) {
            wake = wake.min(next_frame);
        }
        tokio::select! {
            message = socket.next() => {
                let Some(Ok(message)) = message else {
                    return Err("the daemon closed the socket".to_string());
                };
                let Message::Text(text) = message else { continue };
                let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                let id = message["call"].as_str().map(str::to_string);
                match message["type"].as_str() {
                    Some("ringing") => {
                        let _ = reports.send(Report::Ringing { page, at: Instant::now() });
                        if let Some(id) = id {
                            let answer = json!({"type": "answer", "call": id});
                            socket.send(Message::text(answer.to_string())).await
                                .map_err(|error| format!("send answer: {error}"))?;
                            call = Some(id);
                        }
                    }
                    Some("connected") if id.is_some() && id == call => {
                        counters.in_call.store(true, Ordering::Relaxed);
                        next_frame = Instant::now();
                        let _ = reports.send(Report::InCall { page });
                    }
                    Some("ended") | Some("stopped") if id.is_some() && id == call => {
                        counters.in_call.store(false, Ordering::Relaxed);
                        call = None;
                        let _ = reports.send(Report::Ended { page });
                    }
                    Some("replaced") => return Err("replaced".to_string()),
                    _ => {}
                }
            }
            received = udp.recv_from(&mut buffer) => {
                let (length, source) = received.map_err(|error| format!("recv: {error}"))?;
                if let Ok(receive) = Receive::new(Protocol::Udp, source, local, &buffer[..length]) {
                    rtc.handle_input(Input::Receive(Instant::now(), receive))
                        .map_err(|error| format!("str0m: {error}"))?;
                }
            }
            _ = sleep_until(wake.into()) => {}
            _ = control.stop.notified() => break,
        }
        if control.stopped.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            rtc.handle_input(Input::Timeout(now))
                .map_err(|error| format!("str0m: {error}"))?;
        }
        if now >= next_ping {
            next_ping = now + PING_EVERY;
            let ping = json!({"type": "ping"}).to_string();
            socket
                .send(Message::text(ping))
                .await
                .map_err(|error| format!("send ping: {error}"))?;
        }
        if counters.in_call.load(Ordering::Relaxed) && now >= next_frame {
            let in_window = control.window.load(Ordering::Relaxed);
            let mut frame = [0xFFu8; 160];
            frame[0] = PAGE_MARK;
            frame[1] = u8::from(in_window);
            if let Some(writer) = rtc.writer(mid) {
                let pt = writer.payload_params().next().map(|params| params.pt());
                if let Some(pt) = pt {
                    let time = MediaTime::new(frames * 160, Frequency::EIGHT_KHZ);
                    if writer.write(pt, now, time, &frame[..]).is_ok() {
                        frames += 1;
                        if in_window {
                            counters.sent_window.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            // 20 ms cadence; after a stall of more than a frame, start again from now.
            next_frame += Duration::from_millis(20);
            if next_frame + Duration::from_millis(20) < now {
                next_frame = now + Duration::from_millis(20);
            }
        }
    }
    let _ = socket.close(None).await;
    Ok(())
}
