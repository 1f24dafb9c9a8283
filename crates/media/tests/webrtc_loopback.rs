//! A browser's WebRTC leg in a real media task over loopback UDP: a str0m
//! client plays the browser (full ICE, DTLS client, SRTP), a plain socket
//! plays the patient's phone, and the task bridges them. Real time (ICE
//! and DTLS run on the real clock), every wait bounded; packet contents are
//! checked, never timing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use media::codec::Codec;
use media::driver::{PortPool, PortRange, spawn_media_task};
use media::sdp::NegotiatedMedia;
use media::session::{Leg, SessionConfig};
use media::webrtc::{CloseReason, WebRtcConfig, WebRtcEvent, WebRtcLeg};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// What the browser says, and what the phone says.
const BROWSER_BYTE: u8 = 0x11;
const PHONE_BYTE: u8 = 0x22;
const LIMIT: Duration = Duration::from_secs(10);

/// What the browser task reports.
#[derive(Debug)]
enum Heard {
    Connected,
    Frame(Vec<u8>),
}

/// A browser: offers PCMU, answers ICE, does DTLS (unless `drop_dtls`:
/// then it sends ICE checks only), sends a frame every 20 ms once
/// connected, and reports what it hears.
struct Browser {
    offer: String,
    answer: oneshot::Sender<String>,
    heard: mpsc::UnboundedReceiver<Heard>,
}

async fn browser(drop_dtls: bool) -> Browser {
    let socket = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let (answer_tx, answer_rx) = oneshot::channel::<String>();
    let (heard_tx, heard) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok(answer) = answer_rx.await else { return };
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        let mut connected = false;
        let mut sent = 0u64;
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        let mut buffer = vec![0u8; 2000];
        loop {
            let deadline = loop {
                match rtc.poll_output() {
                    Ok(Output::Timeout(at)) => break at,
                    Ok(Output::Transmit(t)) => {
                        let dtls = matches!(t.contents.first(), Some(20..=63));
                        if !(drop_dtls && dtls) {
                            let _ = socket.send_to(&t.contents, t.destination).await;
                        }
                    }
                    Ok(Output::Event(Event::Connected)) => {
                        connected = true;
                        let _ = heard_tx.send(Heard::Connected);
                    }
                    Ok(Output::Event(Event::MediaData(data))) => {
                        let _ = heard_tx.send(Heard::Frame(data.data.to_vec()));
                    }
                    Ok(Output::Event(_)) => {}
                    Err(_) => return,
                }
            };
            let deadline = deadline.min(Instant::now() + Duration::from_millis(100));
            tokio::select! {
                received = socket.recv_from(&mut buffer) => {
                    let Ok((len, source)) = received else { return };
                    let Ok(receive) = Receive::new(Protocol::Udp, source, local, &buffer[..len]) else { continue };
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), receive));
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    if rtc.handle_input(Input::Timeout(Instant::now())).is_err() { return; }
                }
                _ = ticks.tick(), if connected => {
                    let Some(writer) = rtc.writer(mid) else { return };
                    let pt = writer.payload_params().next().unwrap().pt();
                    let time = MediaTime::new(sent * 160, Frequency::EIGHT_KHZ);
                    let _ = writer.write(pt, Instant::now(), time, &[BROWSER_BYTE; 160][..]);
                    sent += 1;
                }
            }
        }
    });
    Browser {
        offer: offer.to_sdp_string(),
        answer: answer_tx,
        heard,
    }
}

fn phone_packet(sequence: u16) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(0)
        .sequence(Seq::from(sequence))
        .timestamp(u32::from(sequence) * 160)
        .ssrc(0x0000_ca11)
        .payload(&[PHONE_BYTE; 160])
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_browser_and_a_phone_hear_each_other_through_the_media_task() {
    let pool = PortPool::new(LOOPBACK, PortRange::new(43_300, 43_309).unwrap());
    let phone = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let phone_address = phone.local_addr().unwrap();
    let caller = pool.allocate().unwrap();
    let caller_address = caller.local_addr();
    let media = NegotiatedMedia::static_g711(Codec::Pcmu, Some(phone_address), None);
    let task = spawn_media_task(SessionConfig::default(), Leg::Caller, caller, media);

    // The agent answers in the browser: its offer, our answer on a leased port.
    let mut browser = browser(false).await;
    let agent = pool.allocate().unwrap();
    let (leg, answer) = WebRtcLeg::accept_offer(
        WebRtcConfig::default(),
        Instant::now(),
        agent.local_addr(),
        &browser.offer,
        0x0b0b_0b0b,
    )
    .unwrap();
    assert_eq!(leg.codec(), Codec::Pcmu);
    let mut events = task.handle.add_webrtc_leg(Leg::Agent, agent, leg).unwrap();
    task.handle.bridge().unwrap();
    browser.answer.send(answer).unwrap();

    assert_eq!(
        timeout(LIMIT, events.recv()).await.unwrap(),
        Some(WebRtcEvent::Connected)
    );

    // Both talk until each has heard at least 10 frames of the other.
    let mut sequence = 0u16;
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    let mut buffer = [0u8; 1500];
    let (mut browser_heard, mut phone_heard) = (0, 0);
    let mut browser_connected = false;
    let end = tokio::time::Instant::now() + LIMIT;
    while browser_heard < 10 || phone_heard < 10 {
        tokio::select! {
            () = tokio::time::sleep_until(end) => panic!(
                "within {LIMIT:?}: the browser heard {browser_heard} frames, the phone {phone_heard}"
            ),
            _ = ticks.tick() => {
                phone.send_to(&phone_packet(sequence), caller_address).await.unwrap();
                sequence += 1;
            }
            received = phone.recv_from(&mut buffer) => {
                let (len, source) = received.unwrap();
                assert_eq!(source, caller_address);
                let packet = RtpReader::new(&buffer[..len]).unwrap();
                assert_eq!(packet.payload_type(), 0);
                assert_eq!(packet.payload(), &[BROWSER_BYTE; 160][..]);
                phone_heard += 1;
            }
            heard = browser.heard.recv() => match heard.unwrap() {
                Heard::Connected => browser_connected = true,
                Heard::Frame(frame) => {
                    assert_eq!(frame, vec![PHONE_BYTE; 160]);
                    browser_heard += 1;
                }
            },
        }
    }
    assert!(browser_connected);
    // Nothing else was reported: the leg is still up.
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn a_browser_that_never_completes_dtls_is_dropped_after_the_timeout() {
    // Two ports: the caller's and the browser's.
    let pool = PortPool::new(LOOPBACK, PortRange::new(43_310, 43_313).unwrap());
    let caller = pool.allocate().unwrap();
    let phone: SocketAddr = (LOOPBACK, 9).into();
    let media = NegotiatedMedia::static_g711(Codec::Pcmu, Some(phone), None);
    let task = spawn_media_task(SessionConfig::default(), Leg::Caller, caller, media);

    let browser = browser(true).await;
    let agent = pool.allocate().unwrap();
    assert_eq!(pool.available(), 0);
    let config = WebRtcConfig {
        handshake_timeout: Duration::from_millis(500),
        ..WebRtcConfig::default()
    };
    let (leg, answer) = WebRtcLeg::accept_offer(
        config,
        Instant::now(),
        agent.local_addr(),
        &browser.offer,
        7,
    )
    .unwrap();
    let mut events = task.handle.add_webrtc_leg(Leg::Agent, agent, leg).unwrap();
    browser.answer.send(answer).unwrap();

    assert_eq!(
        timeout(LIMIT, events.recv()).await.unwrap(),
        Some(WebRtcEvent::Closed(CloseReason::HandshakeTimeout))
    );
    // The leg is gone and its port back in the pool (the caller's stays).
    let end = tokio::time::Instant::now() + LIMIT;
    while pool.available() == 0 {
        assert!(
            tokio::time::Instant::now() < end,
            "the port did not come back"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.leased(), 1);
    assert_eq!(timeout(LIMIT, events.recv()).await.unwrap(), None);
}
