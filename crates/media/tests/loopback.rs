//! The media task over real UDP sockets on loopback, in virtual time
//! (`start_paused`): packet counts, sequence numbers and timestamps are
//! checked, never wall-clock timing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use media::codec::Codec;
use media::driver::{MediaTaskEvent, PortPool, PortRange, spawn_media_task};
use media::dtmf::{DtmfDigit, DtmfSource};
use media::g711;
use media::playback::{PlaybackId, PlaybackMode};
use media::prompt::Prompt;
use media::rtp::TelephoneEventGenerator;
use media::sdp::NegotiatedMedia;
use media::session::{Leg, MediaEvent, SessionConfig};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn prompt(frames: usize) -> Arc<Prompt> {
    let samples: Vec<i16> = (0..frames * 160)
        .map(|n| ((n % 80) as i16 - 40) * 200)
        .collect();
    Arc::new(Prompt::from_samples("menu", &samples).unwrap())
}

async fn phone() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

async fn next_event(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<MediaTaskEvent>,
) -> MediaEvent {
    match timeout(Duration::from_secs(60), events.recv()).await {
        Ok(Some(MediaTaskEvent::Media(event))) => event,
        other => panic!("expected a media event, got {other:?}"),
    }
}

async fn receive(socket: &UdpSocket, buffer: &mut [u8]) -> (usize, SocketAddr) {
    timeout(Duration::from_secs(1), socket.recv_from(buffer))
        .await
        .expect("a packet")
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn plays_a_prompt_over_loopback_and_hears_a_digit() {
    let pool = PortPool::new(LOOPBACK, PortRange::new(43_000, 43_099).unwrap());
    let (phone, phone_address) = phone().await;
    let lease = pool.allocate().unwrap();
    let ours = lease.local_addr();
    let media = NegotiatedMedia::static_g711(Codec::Pcma, Some(phone_address), Some(101));
    let mut task = spawn_media_task(SessionConfig::default(), Leg::Caller, lease, media);

    // The phone speaks first from where its SDP says: its peer is confirmed
    // (strict RTP), so the whole prompt may be sent to it.
    let hello = RtpPacketBuilder::new()
        .payload_type(8)
        .sequence(Seq::from(60_000))
        .timestamp(1)
        .ssrc(42)
        .payload(&[0xD5; 160])
        .build()
        .unwrap();
    phone.send_to(&hello, ours).await.unwrap();
    assert_eq!(
        next_event(&mut task.events).await,
        MediaEvent::Latched {
            leg: Leg::Caller,
            address: phone_address
        }
    );

    let start = Instant::now();
    let menu = prompt(50);
    task.handle
        .play(
            Leg::Caller,
            PlaybackId(1),
            vec![Arc::clone(&menu), Arc::clone(&menu)],
            PlaybackMode::Once,
            true,
        )
        .unwrap();
    assert_eq!(
        next_event(&mut task.events).await,
        MediaEvent::PlaybackEnded {
            leg: Leg::Caller,
            id: PlaybackId(1),
            completed: true
        }
    );
    // Virtual time: the end is reported when the 100th frame's 20 ms have run out.
    assert_eq!(Instant::now() - start, Duration::from_secs(2));

    let mut buffer = [0u8; 1500];
    let mut first = None;
    for n in 0..100u32 {
        let (len, from) = receive(&phone, &mut buffer).await;
        assert_eq!(from, ours);
        assert_eq!(len, 172);
        let packet = RtpReader::new(&buffer[..len]).unwrap();
        let (sequence, timestamp, ssrc) = (
            u16::from(packet.sequence_number()),
            packet.timestamp(),
            packet.ssrc(),
        );
        let (first_sequence, first_timestamp, first_ssrc) =
            *first.get_or_insert((sequence, timestamp, ssrc));
        assert_eq!(sequence, first_sequence.wrapping_add(n as u16));
        assert_eq!(timestamp, first_timestamp.wrapping_add(160 * n));
        assert_eq!(ssrc, first_ssrc);
        assert_eq!(packet.mark(), n == 0 || n == 50, "marker of packet {n}");
        assert_eq!(packet.payload_type(), 8);
        assert_eq!(
            packet.payload(),
            menu.frame(Codec::Pcma, (n % 50) as usize).unwrap()
        );
    }
    assert!(
        phone.try_recv_from(&mut buffer).is_err(),
        "exactly 100 packets"
    );

    // The phone presses 4 by RFC 4733, from its own socket: heard once.
    for (n, packet) in
        TelephoneEventGenerator::new(DtmfDigit::from_char('4').unwrap(), 800, 10).enumerate()
    {
        let datagram = RtpPacketBuilder::new()
            .payload_type(101)
            .marked(packet.marker)
            .sequence(Seq::from(n as u16))
            .timestamp(1234)
            .ssrc(42)
            .payload(&packet.event.to_bytes())
            .build()
            .unwrap();
        phone.send_to(&datagram, ours).await.unwrap();
    }
    assert_eq!(
        next_event(&mut task.events).await,
        MediaEvent::Dtmf {
            leg: Leg::Caller,
            digit: DtmfDigit::from_char('4').unwrap(),
            source: DtmfSource::TelephoneEvent
        }
    );

    drop(task.handle);
    task.join.await.unwrap();
    assert_eq!(pool.leased(), 0, "the port went back to the pool");
}

#[tokio::test(start_paused = true)]
async fn bridges_two_phones_with_conversion() {
    let pool = PortPool::new(LOOPBACK, PortRange::new(43_100, 43_199).unwrap());
    let (caller_phone, caller_address) = phone().await;
    let (agent_phone, agent_address) = phone().await;
    let caller_lease = pool.allocate().unwrap();
    let agent_lease = pool.allocate().unwrap();
    let (caller_port, agent_port) = (caller_lease.local_addr(), agent_lease.local_addr());
    let mut caller = NegotiatedMedia::static_g711(Codec::Pcma, Some(caller_address), Some(101));
    caller.payloads.pcmu = None;
    let mut agent = NegotiatedMedia::static_g711(Codec::Pcmu, Some(agent_address), Some(101));
    agent.payloads.pcma = None;

    let mut task = spawn_media_task(SessionConfig::default(), Leg::Caller, caller_lease, caller);
    task.handle.bridge().unwrap();
    assert_eq!(
        timeout(Duration::from_secs(1), task.events.recv())
            .await
            .unwrap(),
        Some(MediaTaskEvent::CommandFailed(
            media::error::SessionError::MissingLeg(Leg::Agent)
        ))
    );
    task.handle.add_leg(Leg::Agent, agent_lease, agent).unwrap();
    task.handle.bridge().unwrap();

    let mut buffer = [0u8; 1500];
    for n in 0..20u16 {
        let speech = RtpPacketBuilder::new()
            .payload_type(0)
            .sequence(Seq::from(n))
            .timestamp(160 * u32::from(n))
            .ssrc(7)
            .payload(&[0x23; 160])
            .build()
            .unwrap();
        agent_phone.send_to(&speech, agent_port).await.unwrap();
        let (len, from) = receive(&caller_phone, &mut buffer).await;
        assert_eq!(from, caller_port);
        let packet = RtpReader::new(&buffer[..len]).unwrap();
        assert_eq!(packet.payload_type(), 8);
        assert_eq!(packet.payload(), &[g711::ulaw_to_alaw(0x23); 160]);

        let reply = RtpPacketBuilder::new()
            .payload_type(8)
            .sequence(Seq::from(900 + n))
            .timestamp(0)
            .ssrc(8)
            .payload(&[0x55; 160])
            .build()
            .unwrap();
        caller_phone.send_to(&reply, caller_port).await.unwrap();
        let (len, from) = receive(&agent_phone, &mut buffer).await;
        assert_eq!(from, agent_port);
        let packet = RtpReader::new(&buffer[..len]).unwrap();
        assert_eq!(packet.payload_type(), 0);
        assert_eq!(packet.payload(), &[g711::alaw_to_ulaw(0x55); 160]);
    }
    drop(task.handle);
    task.join.await.unwrap();
    assert_eq!(pool.leased(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_silent_leg_is_reported_inactive() {
    let pool = PortPool::new(LOOPBACK, PortRange::new(43_200, 43_209).unwrap());
    let (_phone, phone_address) = phone().await;
    let config = SessionConfig {
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    };
    let media = NegotiatedMedia::static_g711(Codec::Pcmu, Some(phone_address), None);
    let mut task = spawn_media_task(config, Leg::Agent, pool.allocate().unwrap(), media);
    let start = Instant::now();
    let event = next_event(&mut task.events).await;
    assert_eq!(
        event,
        MediaEvent::Inactive {
            leg: Leg::Agent,
            silent_for: Duration::from_secs(30)
        }
    );
    assert_eq!(Instant::now() - start, Duration::from_secs(30));
}
