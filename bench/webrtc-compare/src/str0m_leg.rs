//! str0m 0.25 (sans-IO): the `Rtc` of a leg is a plain value driven by our
//! own loop, as `media`'s session is: feed a datagram or a timeout with
//! `now`, drain `poll_output` until `Timeout`, wait on the socket or that
//! deadline. Each leg is one tokio task owning one UDP socket and one
//! `Rtc`; str0m itself spawns nothing and reads no clock.
//!
//! Server: ICE-lite (`RtcConfig::set_ice_lite`), PCMU only, the DTLS
//! server role (str0m takes it as the answerer of an `actpass` offer).
//! Client: full ICE, DTLS client, one sendrecv audio m-line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::{ClientShared, FRAME, PAYLOAD_LEN, Signal, stats};

fn config() -> RtcConfig {
    RtcConfig::new().clear_codecs().enable_pcmu(true, false)
}

/// The longest we sleep without giving the `Rtc` a timeout (str0m may
/// return a distant deadline when idle).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// With `CERT=shared` the server makes one DTLS certificate and gives it
/// to every leg; by default each `Rtc` makes its own, as a browser's page
/// would.
fn shared_certificate() -> Option<DtlsCert> {
    static CERT: std::sync::OnceLock<Option<DtlsCert>> = std::sync::OnceLock::new();
    CERT.get_or_init(|| {
        if std::env::var("CERT").as_deref() != Ok("shared") {
            return None;
        }
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    })
    .clone()
}

pub async fn server_leg(offer: String, answer: oneshot::Sender<String>) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut config = config().set_ice_lite(true);
    if let Some(cert) = shared_certificate() {
        config = config.set_dtls_cert(cert);
    }
    let mut rtc = config.build(Instant::now());
    let candidate = Candidate::host(local, "udp").map_err(|e| e.to_string())?;
    rtc.add_local_candidate(candidate);
    let offer = SdpOffer::from_sdp_string(&offer).map_err(|e| e.to_string())?;
    let sdp = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| e.to_string())?;
    let _ = answer.send(sdp.to_sdp_string());

    let mut buf = vec![0u8; 2000];
    loop {
        let deadline = loop {
            match rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(event) => match event {
                    Event::Connected => stats::server_connected(),
                    Event::MediaData(data) => {
                        stats::server_received();
                        // Echo the frame back: the relay's other leg in one.
                        if let Some(writer) = rtc.writer(data.mid) {
                            writer
                                .write(data.pt, data.network_time, data.time, data.data)
                                .map_err(|e| e.to_string())?;
                            stats::server_sent();
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Ok(());
                    }
                    _ => {}
                },
            }
        };
        let deadline = deadline.min(Instant::now() + MAX_WAIT);
        let input = tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r.map_err(|e| e.to_string())?;
                Some((source, n))
            }
            _ = tokio::time::sleep_until(deadline.into()) => None,
        };
        match input {
            Some((source, n)) => {
                let contents = buf[..n].try_into().map_err(|e| format!("{e:?}"))?;
                let receive = Receive::new(Protocol::Udp, source, local, contents)
                    .map_err(|e| format!("{e:?}"))?;
                if let Err(e) = rtc.handle_input(Input::Receive(Instant::now(), receive)) {
                    eprintln!("str0m server: {e}");
                }
            }
            None => rtc
                .handle_input(Input::Timeout(Instant::now()))
                .map_err(|e| e.to_string())?,
        }
    }
}

pub async fn client_leg(signal: Signal, shared: Arc<ClientShared>) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut rtc = config().build(Instant::now());
    let candidate = Candidate::host(local, "udp").map_err(|e| e.to_string())?;
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    let mid: Mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().ok_or("no offer")?;
    let answer = signal(offer.to_sdp_string())
        .await
        .map_err(|e| e.to_string())?;
    let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| e.to_string())?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| e.to_string())?;

    let mut start = shared.start.clone();
    let mut connected = false;
    let mut started = false;
    let mut sent = 0u64;
    let mut ticks = tokio::time::interval(FRAME);
    let payload = [0x55u8; PAYLOAD_LEN];
    let mut buf = vec![0u8; 2000];
    loop {
        let deadline = loop {
            match rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(event) => match event {
                    Event::Connected => {
                        connected = true;
                        shared.counters.connected_one();
                    }
                    Event::MediaData(_) => shared.counters.received_one(),
                    _ => {}
                },
            }
        };
        let deadline = deadline.min(Instant::now() + MAX_WAIT);
        let sending = connected && started && sent < shared.frames;
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r.map_err(|e| e.to_string())?;
                let contents = buf[..n].try_into().map_err(|e| format!("{e:?}"))?;
                let receive = Receive::new(Protocol::Udp, source, local, contents)
                    .map_err(|e| format!("{e:?}"))?;
                rtc.handle_input(Input::Receive(Instant::now(), receive)).map_err(|e| e.to_string())?;
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| e.to_string())?;
            }
            r = start.wait_for(|s| *s), if !started => {
                r.map_err(|e| e.to_string())?;
                started = true;
                ticks.reset();
            }
            _ = ticks.tick(), if sending => {
                let writer = rtc.writer(mid).ok_or("no writer")?;
                let pt = writer.payload_params().next().ok_or("no codec")?.pt();
                let time = MediaTime::new(sent * PAYLOAD_LEN as u64, Frequency::EIGHT_KHZ);
                writer.write(pt, Instant::now(), time, &payload[..]).map_err(|e| e.to_string())?;
                sent += 1;
                shared.counters.sent_one();
            }
        }
    }
}
