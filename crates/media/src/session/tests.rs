//! Deterministic tests of the media session core: virtual instants, no sockets.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use super::*;
use crate::codec::Codec;
use crate::g711;
use crate::playback::PlaybackMode;
use crate::prompt::Prompt;
use crate::rtp::TelephoneEventGenerator;

const CALLER: &str = "192.0.2.10:6000";
const AGENT: &str = "192.0.2.20:7000";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn prompt(frames: usize) -> Arc<Prompt> {
    let samples: Vec<i16> = (0..frames * 160)
        .map(|n| ((n % 40) as i16 - 20) * 500)
        .collect();
    Arc::new(Prompt::from_samples("test", &samples).unwrap())
}

fn session(t0: Instant) -> MediaSession {
    let mut session = MediaSession::new(SessionConfig::default());
    let mut rng = SmallRng::seed_from_u64(3);
    session.add_leg(
        t0,
        Leg::Caller,
        NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(CALLER)), Some(101)),
        &mut rng,
    );
    session
}

fn rtp(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(payload_type)
        .sequence(Seq::from(sequence))
        .timestamp(timestamp)
        .ssrc(ssrc)
        .payload(payload)
        .build()
        .unwrap()
}

/// Runs the sans-IO loop from `from` until `until`, jumping to each
/// deadline; returns (time, transmit, header fields) of every packet.
fn run(
    session: &mut MediaSession,
    from: Instant,
    until: Instant,
) -> Vec<(Transmit, u16, u32, u32, bool, u8)> {
    let mut sent = Vec::new();
    let mut out = [0u8; 1500];
    let mut now = from;
    loop {
        session.handle_timeout(now);
        while let Some(transmit) = session.poll_transmit(now, &mut out) {
            let packet = RtpReader::new(&out[..transmit.len]).unwrap();
            sent.push((
                transmit,
                packet.sequence_number().into(),
                packet.timestamp(),
                packet.ssrc(),
                packet.mark(),
                packet.payload_type(),
            ));
        }
        match session.poll_timeout() {
            Some(deadline) if deadline <= until => now = deadline.max(now),
            _ => return sent,
        }
    }
}

fn events(session: &mut MediaSession) -> Vec<MediaEvent> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

#[test]
fn digits_are_sent_as_rfc4733_events_on_the_leg_stream() {
    let t0 = Instant::now();
    let mut session = session(t0);
    let mut rng = SmallRng::seed_from_u64(10);
    let agent = NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), Some(96));
    session.add_leg(t0, Leg::Agent, agent, &mut rng);
    session.bridge().unwrap();
    let mut out = [0u8; 1500];
    // The agent's phone has spoken from its SDP address: confirmed.
    let hello = rtp(0, 1, 0, 0xA6E7, &[0x11; 160]);
    let _ = session.handle_datagram(t0, Leg::Agent, addr(AGENT), &hello, &mut out);
    let speech = |sequence: u16| rtp(0, sequence, 160 * u32::from(sequence), 0xCA11, &[0x11; 160]);
    let transmit = session
        .handle_datagram(t0, Leg::Caller, addr(CALLER), &speech(1), &mut out)
        .unwrap();
    let before = RtpReader::new(&out[..transmit.len]).unwrap();
    let (sequence, ssrc) = (u16::from(before.sequence_number()), before.ssrc());

    // The caller's SIP INFO digits "1#" go to the agent as RFC 4733.
    let key = |c| DtmfDigit::from_char(c).unwrap();
    session
        .send_dtmf(t0, Leg::Agent, &[key('1'), key('#')])
        .unwrap();
    assert!(
        session
            .handle_datagram(t0, Leg::Caller, addr(CALLER), &speech(2), &mut out)
            .is_none(),
        "audio pauses during digits"
    );
    let mut receiver =
        crate::rtp::InboundStream::new(crate::sdp::PayloadMap::static_g711(Some(96)));
    let mut sent = Vec::new();
    let mut digits = Vec::new();
    let mut now = t0;
    while let Some(deadline) = session
        .poll_timeout()
        .filter(|deadline| *deadline < t0 + Duration::from_secs(1))
    {
        now = deadline;
        while let Some(transmit) = session.poll_transmit(now, &mut out) {
            assert_eq!(
                (transmit.leg, transmit.destination),
                (Leg::Agent, addr(AGENT))
            );
            let (packet, digit) = receiver.receive(&out[..transmit.len]).unwrap();
            assert_eq!((packet.payload_type, packet.ssrc), (96, ssrc));
            digits.extend(digit);
            sent.push((packet.sequence, packet.timestamp, packet.marker));
        }
    }
    assert_eq!(digits, [key('1'), key('#')]);
    assert_eq!(
        sent.len(),
        14,
        "5 packets + 2 repeated ends per 100 ms digit"
    );
    for (n, (packet_sequence, timestamp, marker)) in sent.iter().enumerate() {
        assert_eq!(*packet_sequence, sequence.wrapping_add(1 + n as u16));
        assert_eq!(*timestamp, sent[if n < 7 { 0 } else { 7 }].1);
        assert_eq!(*marker, n == 0 || n == 7);
    }
    assert!(
        sent[7].1.wrapping_sub(sent[0].1) >= 800 + 480,
        "the second digit starts after the first and a 60 ms pause"
    );

    // Afterwards the relay resumes, rebased after the events.
    let transmit = session
        .handle_datagram(now, Leg::Caller, addr(CALLER), &speech(3), &mut out)
        .unwrap();
    let after = RtpReader::new(&out[..transmit.len]).unwrap();
    assert_eq!(
        u16::from(after.sequence_number()),
        sequence.wrapping_add(15)
    );
    assert!(after.mark());
    assert!(after.timestamp().wrapping_sub(sent[7].1) >= 800);

    let mut no_events = MediaSession::new(SessionConfig::default());
    no_events.add_leg(
        t0,
        Leg::Agent,
        NegotiatedMedia::static_g711(Codec::Pcmu, None, None),
        &mut rng,
    );
    assert_eq!(
        no_events.send_dtmf(t0, Leg::Agent, &[key('1')]),
        Err(SessionError::NoTelephoneEvent(Leg::Agent))
    );
    assert_eq!(
        no_events.send_dtmf(t0, Leg::Caller, &[key('1')]),
        Err(SessionError::MissingLeg(Leg::Caller))
    );
}

#[test]
fn plays_prompts_back_to_back_as_one_stream() {
    let t0 = Instant::now();
    let mut session = session(t0);
    let prompts = vec![prompt(3), prompt(2)];
    session
        .play(
            t0,
            Leg::Caller,
            Playback::new(PlaybackId(1), prompts, PlaybackMode::Once),
            true,
        )
        .unwrap();
    assert_eq!(session.poll_timeout(), Some(t0));
    let sent = run(&mut session, t0, t0 + Duration::from_secs(1));
    assert_eq!(sent.len(), 5);
    let (first_sequence, first_timestamp, ssrc) = (sent[0].1, sent[0].2, sent[0].3);
    for (n, (transmit, sequence, timestamp, packet_ssrc, marker, payload_type)) in
        sent.iter().enumerate()
    {
        assert_eq!(transmit.destination, addr(CALLER));
        assert_eq!(transmit.leg, Leg::Caller);
        assert_eq!(*sequence, first_sequence.wrapping_add(n as u16));
        assert_eq!(*timestamp, first_timestamp.wrapping_add(160 * n as u32));
        assert_eq!(*packet_ssrc, ssrc);
        assert_eq!(
            *marker,
            n == 0 || n == 3,
            "marker on each prompt's first packet"
        );
        assert_eq!(*payload_type, 0);
    }
    assert_eq!(
        events(&mut session),
        [MediaEvent::PlaybackEnded {
            leg: Leg::Caller,
            id: PlaybackId(1),
            completed: true
        }]
    );

    // A later prompt continues the stream; the timestamp covers the pause.
    let later = t0 + Duration::from_secs(2);
    session
        .play(
            later,
            Leg::Caller,
            Playback::new(PlaybackId(2), vec![prompt(1)], PlaybackMode::Once),
            true,
        )
        .unwrap();
    let sent_later = run(&mut session, later, later + Duration::from_secs(1));
    assert_eq!(sent_later.len(), 1);
    assert_eq!(sent_later[0].1, first_sequence.wrapping_add(5));
    assert_eq!(sent_later[0].2, first_timestamp.wrapping_add(16_000));
    assert_eq!(sent_later[0].3, ssrc);
    assert!(sent_later[0].4);
}

#[test]
fn a_digit_barges_in_and_the_caller_is_latched() {
    let t0 = Instant::now();
    let mut session = session(t0);
    session
        .play(
            t0,
            Leg::Caller,
            Playback::new(PlaybackId(7), vec![prompt(50)], PlaybackMode::Once),
            true,
        )
        .unwrap();
    let sent = run(&mut session, t0, t0 + Duration::from_millis(100));
    assert_eq!(sent.len(), 6);
    // Garbage does not latch.
    let mut out = [0u8; 1500];
    let nat = addr("198.51.100.5:40000");
    assert!(
        session
            .handle_datagram(t0, Leg::Caller, nat, b"hello", &mut out)
            .is_none()
    );
    assert_eq!(events(&mut session), []);
    // The caller presses 3 (RFC 4733), from behind a NAT.
    let now = t0 + Duration::from_millis(110);
    for (n, packet) in
        TelephoneEventGenerator::new(DtmfDigit::from_char('3').unwrap(), 800, 10).enumerate()
    {
        let datagram = rtp(101, 10 + n as u16, 4000, 99, &packet.event.to_bytes());
        assert!(
            session
                .handle_datagram(now, Leg::Caller, nat, &datagram, &mut out)
                .is_none()
        );
    }
    assert_eq!(
        events(&mut session),
        [
            MediaEvent::Latched {
                leg: Leg::Caller,
                address: nat
            },
            MediaEvent::Dtmf {
                leg: Leg::Caller,
                digit: DtmfDigit::from_char('3').unwrap(),
                source: DtmfSource::TelephoneEvent
            },
            MediaEvent::PlaybackEnded {
                leg: Leg::Caller,
                id: PlaybackId(7),
                completed: false
            },
        ]
    );
    assert!(run(&mut session, now, now + Duration::from_secs(1)).is_empty());
    // The next prompt goes to the latched address.
    session
        .play(
            now,
            Leg::Caller,
            Playback::new(PlaybackId(8), vec![prompt(1)], PlaybackMode::Once),
            true,
        )
        .unwrap();
    let sent = run(&mut session, now, now + Duration::from_secs(1));
    assert_eq!(sent[0].0.destination, nat);
    assert_eq!(session.leg_stats(Leg::Caller).unwrap().latched, Some(nat));
}

#[test]
fn looping_hold_music_runs_until_stopped() {
    let t0 = Instant::now();
    let mut session = session(t0);
    session
        .play(
            t0,
            Leg::Caller,
            Playback::new(PlaybackId(1), vec![prompt(2)], PlaybackMode::Loop),
            false,
        )
        .unwrap();
    let sent = run(&mut session, t0, t0 + Duration::from_millis(190));
    assert_eq!(sent.len(), 10);
    assert_eq!(sent.iter().filter(|packet| packet.4).count(), 5);
    // Without barge-in a digit does not stop it.
    let mut out = [0u8; 64];
    let digit = rtp(101, 1, 1, 5, &[1, 0, 0, 160]);
    session.handle_datagram(t0, Leg::Caller, addr(CALLER), &digit, &mut out);
    session.stop(Leg::Caller);
    let ended: Vec<_> = events(&mut session)
        .into_iter()
        .filter(|event| matches!(event, MediaEvent::PlaybackEnded { .. }))
        .collect();
    assert_eq!(
        ended,
        [MediaEvent::PlaybackEnded {
            leg: Leg::Caller,
            id: PlaybackId(1),
            completed: false
        }]
    );
}

#[test]
fn the_bridge_relays_both_ways_with_conversion_and_continuity() {
    let t0 = Instant::now();
    let mut session = MediaSession::new(SessionConfig::default());
    let mut rng = SmallRng::seed_from_u64(4);
    // A PCMA-only caller and a PCMU-only agent.
    let mut caller = NegotiatedMedia::static_g711(Codec::Pcma, Some(addr(CALLER)), Some(101));
    caller.payloads.pcmu = None;
    let mut agent = NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), Some(96));
    agent.payloads.pcma = None;
    session.add_leg(t0, Leg::Caller, caller, &mut rng);
    assert_eq!(session.bridge(), Err(SessionError::MissingLeg(Leg::Agent)));
    session
        .play(
            t0,
            Leg::Caller,
            Playback::new(PlaybackId(1), vec![prompt(100)], PlaybackMode::Loop),
            false,
        )
        .unwrap();
    let music = run(&mut session, t0, t0 + Duration::from_millis(40));
    assert_eq!(music.len(), 3);
    session.add_leg(t0, Leg::Agent, agent, &mut rng);
    session.bridge().unwrap();
    assert_eq!(
        events(&mut session),
        [MediaEvent::PlaybackEnded {
            leg: Leg::Caller,
            id: PlaybackId(1),
            completed: false
        }]
    );
    assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(30)));

    let mut out = [0u8; 1500];
    let now = t0 + Duration::from_millis(60);
    let from_agent = rtp(0, 1, 0, 0xA6E7, &[0x00; 160]);
    let transmit = session
        .handle_datagram(now, Leg::Agent, addr(AGENT), &from_agent, &mut out)
        .unwrap();
    assert_eq!(
        (transmit.leg, transmit.destination, transmit.len),
        (Leg::Caller, addr(CALLER), 172)
    );
    let packet = RtpReader::new(&out[..172]).unwrap();
    assert_eq!(packet.payload_type(), 8);
    assert_eq!(
        packet.ssrc(),
        music[0].3,
        "the caller keeps hearing our SSRC"
    );
    assert_eq!(
        u16::from(packet.sequence_number()),
        music[2].1.wrapping_add(1)
    );
    assert_eq!(packet.timestamp(), music[2].2.wrapping_add(160));
    assert!(packet.mark());
    assert_eq!(packet.payload()[0], g711::ulaw_to_alaw(0x00));

    let from_caller = rtp(8, 500, 0, 0xCA11, &[0xD5; 160]);
    let transmit = session
        .handle_datagram(now, Leg::Caller, addr(CALLER), &from_caller, &mut out)
        .unwrap();
    assert_eq!(
        (transmit.leg, transmit.destination),
        (Leg::Agent, addr(AGENT))
    );
    let packet = RtpReader::new(&out[..transmit.len]).unwrap();
    assert_eq!(packet.payload_type(), 0);
    assert_eq!(packet.payload()[0], g711::alaw_to_ulaw(0xD5));

    // The caller's DTMF goes to the agent with the agent's payload type, and is reported.
    let digit = rtp(101, 501, 160, 0xCA11, &[5, 0, 0, 160]);
    let transmit = session
        .handle_datagram(now, Leg::Caller, addr(CALLER), &digit, &mut out)
        .unwrap();
    assert_eq!(
        RtpReader::new(&out[..transmit.len]).unwrap().payload_type(),
        96
    );
    assert!(events(&mut session).contains(&MediaEvent::Dtmf {
        leg: Leg::Caller,
        digit: DtmfDigit::from_char('5').unwrap(),
        source: DtmfSource::TelephoneEvent
    }));

    // The agent puts the caller on hold (a=sendonly): nothing more to the agent.
    let mut held = session.leg_media(Leg::Agent).unwrap().clone();
    held.direction = crate::sdp::Direction::RecvOnly;
    held.on_hold = true;
    session.update_leg(now, Leg::Agent, held).unwrap();
    assert!(
        session
            .handle_datagram(
                now,
                Leg::Caller,
                addr(CALLER),
                &rtp(8, 502, 320, 0xCA11, &[0xD5; 160]),
                &mut out
            )
            .is_none()
    );
    assert!(
        session
            .handle_datagram(
                now,
                Leg::Agent,
                addr(AGENT),
                &rtp(0, 2, 160, 0xA6E7, &[0; 160]),
                &mut out
            )
            .is_some()
    );

    // Unbridged, the caller gets prompts again on the same stream.
    session.unbridge();
    session
        .play(
            now,
            Leg::Caller,
            Playback::new(PlaybackId(2), vec![prompt(1)], PlaybackMode::Once),
            true,
        )
        .unwrap();
    let after = run(&mut session, now, now + Duration::from_millis(10));
    assert_eq!(after[0].3, music[0].3);
    assert_eq!(after[0].1, music[2].1.wrapping_add(3));
}

#[test]
fn a_prompt_to_a_bridged_leg_pauses_the_relay_then_it_resumes() {
    let t0 = Instant::now();
    let mut session = session(t0);
    let mut rng = SmallRng::seed_from_u64(9);
    let agent = NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), Some(101));
    session.add_leg(t0, Leg::Agent, agent, &mut rng);
    session.bridge().unwrap();
    let mut out = [0u8; 1500];
    let speech = |sequence| rtp(0, sequence, 160 * u32::from(sequence), 0xCA11, &[0x11; 160]);
    assert!(
        session
            .handle_datagram(t0, Leg::Caller, addr(CALLER), &speech(1), &mut out)
            .is_some()
    );
    // "This call may be recorded" to the agent: the caller is not heard meanwhile.
    let notice = Playback::new(PlaybackId(4), vec![prompt(2)], PlaybackMode::Once);
    session.play(t0, Leg::Agent, notice, false).unwrap();
    assert!(
        session
            .handle_datagram(t0, Leg::Caller, addr(CALLER), &speech(2), &mut out)
            .is_none()
    );
    let sent = run(&mut session, t0, t0 + Duration::from_millis(100));
    assert_eq!(sent.len(), 2);
    assert!(events(&mut session).contains(&MediaEvent::PlaybackEnded {
        leg: Leg::Agent,
        id: PlaybackId(4),
        completed: true
    }));
    let now = t0 + Duration::from_millis(60);
    let transmit = session
        .handle_datagram(now, Leg::Caller, addr(CALLER), &speech(3), &mut out)
        .unwrap();
    assert_eq!(transmit.leg, Leg::Agent);
    let packet = RtpReader::new(&out[..transmit.len]).unwrap();
    assert_eq!(
        packet.ssrc(),
        sent[0].3,
        "one stream towards the agent throughout"
    );
    assert_eq!(
        u16::from(packet.sequence_number()),
        sent[1].1.wrapping_add(1)
    );
    // stop() on a bridged leg resumes the relay at once.
    let notice = Playback::new(PlaybackId(5), vec![prompt(50)], PlaybackMode::Once);
    session.play(now, Leg::Agent, notice, false).unwrap();
    session.stop(Leg::Agent);
    assert!(
        session
            .handle_datagram(now, Leg::Caller, addr(CALLER), &speech(4), &mut out)
            .is_some()
    );
}

#[test]
fn inactivity_is_reported_once_until_packets_resume() {
    let t0 = Instant::now();
    let mut session = MediaSession::new(SessionConfig {
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    });
    let mut rng = SmallRng::seed_from_u64(5);
    session.add_leg(
        t0,
        Leg::Agent,
        NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), None),
        &mut rng,
    );
    assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    let mut out = [0u8; 64];
    let t10 = t0 + Duration::from_secs(10);
    session.handle_datagram(
        t10,
        Leg::Agent,
        addr(AGENT),
        &rtp(0, 1, 1, 1, &[0xFF; 20]),
        &mut out,
    );
    events(&mut session);
    assert_eq!(session.poll_timeout(), Some(t10 + Duration::from_secs(30)));
    session.handle_timeout(t10 + Duration::from_secs(29));
    assert_eq!(events(&mut session), []);
    session.handle_timeout(t10 + Duration::from_secs(31));
    assert_eq!(
        events(&mut session),
        [MediaEvent::Inactive {
            leg: Leg::Agent,
            silent_for: Duration::from_secs(31)
        }]
    );
    assert_eq!(session.poll_timeout(), None);
    session.handle_timeout(t10 + Duration::from_secs(60));
    assert_eq!(events(&mut session), []);
    // A leg we only send to (we are sendonly) is not watched.
    let mut sending_only = NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), None);
    sending_only.direction = crate::sdp::Direction::SendOnly;
    session.update_leg(t10, Leg::Agent, sending_only).unwrap();
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn inband_digits_when_no_telephone_event_was_negotiated() {
    let t0 = Instant::now();
    let mut session = MediaSession::new(SessionConfig::default());
    let mut rng = SmallRng::seed_from_u64(6);
    session.add_leg(
        t0,
        Leg::Caller,
        NegotiatedMedia::static_g711(Codec::Pcma, Some(addr(CALLER)), None),
        &mut rng,
    );
    session.add_leg(
        t0,
        Leg::Agent,
        NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), Some(101)),
        &mut rng,
    );
    let mut noise = SmallRng::seed_from_u64(1);
    let tone = crate::inband::tests::tone(
        DtmfDigit::from_char('7').unwrap(),
        0.1,
        5000.0,
        0.0,
        200.0,
        &mut noise,
    );
    let mut out = [0u8; 1500];
    for leg in Leg::ALL {
        let codec = session.leg_media(leg).unwrap().codec;
        for (n, frame) in tone.chunks(160).enumerate() {
            let payload: Vec<u8> = frame.iter().map(|sample| codec.encode(*sample)).collect();
            let datagram = rtp(
                codec.static_payload_type(),
                n as u16,
                160 * n as u32,
                1,
                &payload,
            );
            session.handle_datagram(t0, leg, addr(CALLER), &datagram, &mut out);
        }
    }
    let digits: Vec<_> = events(&mut session)
        .into_iter()
        .filter(|event| matches!(event, MediaEvent::Dtmf { .. }))
        .collect();
    assert_eq!(
        digits,
        [MediaEvent::Dtmf {
            leg: Leg::Caller,
            digit: DtmfDigit::from_char('7').unwrap(),
            source: DtmfSource::InBand
        }]
    );
}

#[test]
fn commands_on_missing_legs_are_errors() {
    let t0 = Instant::now();
    let mut session = MediaSession::new(SessionConfig::default());
    let playback = Playback::new(PlaybackId(1), vec![prompt(1)], PlaybackMode::Once);
    assert_eq!(
        session.play(t0, Leg::Agent, playback, true),
        Err(SessionError::MissingLeg(Leg::Agent))
    );
    let media = NegotiatedMedia::static_g711(Codec::Pcmu, None, None);
    assert_eq!(
        session.update_leg(t0, Leg::Caller, media),
        Err(SessionError::MissingLeg(Leg::Caller))
    );
    let mut out = [0u8; 64];
    assert!(
        session
            .handle_datagram(
                t0,
                Leg::Caller,
                addr(CALLER),
                &rtp(0, 1, 1, 1, &[0; 10]),
                &mut out
            )
            .is_none()
    );
    assert_eq!(session.poll_timeout(), None);
    assert!(session.poll_transmit(t0, &mut out).is_none());
    session.remove_leg(Leg::Caller);
}

#[test]
fn a_stray_never_takes_the_patients_audio_and_an_unconfirmed_leg_gets_a_budget() {
    let t0 = Instant::now();
    let mut session = session(t0);
    let mut rng = SmallRng::seed_from_u64(5);
    session.add_leg(
        t0,
        Leg::Agent,
        NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), Some(101)),
        &mut rng,
    );
    session.bridge().unwrap();
    let mut out = [0u8; 1500];
    let voice = |n: u16| rtp(0, n, 160 * u32::from(n), 0xCA11, &[0xD5; 160]);
    // The port's previous call's phone (or a stranger) sends here first.
    let stray = addr("127.0.0.1:39000");
    for n in 0..3 {
        assert!(
            session
                .handle_datagram(
                    t0,
                    Leg::Agent,
                    stray,
                    &rtp(0, 900 + n, 0, 0x0BAD, &[0; 160]),
                    &mut out
                )
                .is_none(),
            "a stray's packets go nowhere"
        );
    }
    // Before the agent's phone speaks, the patient's voice goes where the
    // agent's SDP said, and only the unconfirmed budget of it.
    let budget = StrictConfig::DEFAULT_UNCONFIRMED_BUDGET as u16;
    for n in 0..budget * 3 {
        let transmit = session.handle_datagram(t0, Leg::Caller, addr(CALLER), &voice(n), &mut out);
        match transmit {
            Some(transmit) => {
                assert!(n < budget, "packet {n} sent beyond the budget");
                assert_eq!(transmit.destination, addr(AGENT));
            }
            None => assert!(n >= budget, "packet {n} withheld within the budget"),
        }
    }
    // The agent's phone speaks from its SDP address: confirmed at once, and
    // the stray stays a stranger even with a long in-sequence run.
    let now = t0 + Duration::from_millis(40);
    let _ = session.handle_datagram(
        now,
        Leg::Agent,
        addr(AGENT),
        &rtp(0, 7, 0, 0xA6E7, &[0; 160]),
        &mut out,
    );
    for n in 0..20 {
        assert!(
            session
                .handle_datagram(
                    now,
                    Leg::Agent,
                    stray,
                    &rtp(0, 903 + n, 0, 0x0BAD, &[0; 160]),
                    &mut out
                )
                .is_none()
        );
    }
    for n in 0..50 {
        let transmit = session
            .handle_datagram(now, Leg::Caller, addr(CALLER), &voice(100 + n), &mut out)
            .expect("relayed to the confirmed agent");
        assert_eq!(transmit.destination, addr(AGENT));
    }
    let stats = session.leg_stats(Leg::Agent).unwrap();
    assert_eq!(stats.guard.foreign, 20);
    assert_eq!(stats.guard.learning, 3);
    assert_eq!(stats.latched, Some(addr(AGENT)));
    assert_eq!(
        stats.inbound.packets, 1,
        "only the agent's packet was taken in"
    );
    assert_eq!(
        events(&mut session)
            .into_iter()
            .filter(|event| matches!(event, MediaEvent::Latched { .. }))
            .collect::<Vec<_>>(),
        [
            MediaEvent::Latched {
                leg: Leg::Caller,
                address: addr(CALLER)
            },
            MediaEvent::Latched {
                leg: Leg::Agent,
                address: addr(AGENT)
            },
        ]
    );
}

#[test]
fn a_spray_during_learning_is_not_heard_and_the_nat_phone_wins() {
    let t0 = Instant::now();
    let mut session = session(t0);
    let mut rng = SmallRng::seed_from_u64(6);
    session.add_leg(
        t0,
        Leg::Agent,
        NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), Some(101)),
        &mut rng,
    );
    session.bridge().unwrap();
    let mut out = [0u8; 1500];
    // The patient's phone is behind NAT: its packets come from elsewhere.
    let patient = addr("198.51.100.9:51000");
    let attacker = addr("203.0.113.5:4444");
    let mut digits = 0;
    for n in 0..10u16 {
        // One attacker packet (a telephone-event: a digit if heard) per
        // patient packet.
        let event = [1, 0x8A, 0x03, 0x20];
        let transmit = session.handle_datagram(
            t0,
            Leg::Caller,
            attacker,
            &rtp(101, 5000 + 7 * n, 0, 0xEE, &event),
            &mut out,
        );
        assert!(transmit.is_none(), "the attacker is not relayed");
        let _ = session.handle_datagram(
            t0,
            Leg::Caller,
            patient,
            &rtp(0, 300 + n, 160 * u32::from(n), 0x5A5A, &[0xD5; 160]),
            &mut out,
        );
        digits += events(&mut session)
            .iter()
            .filter(|event| matches!(event, MediaEvent::Dtmf { .. }))
            .count();
    }
    assert_eq!(digits, 0, "no digit from the attacker");
    let stats = session.leg_stats(Leg::Caller).unwrap();
    assert_eq!(stats.latched, Some(patient));
    // Dropped while learning: the attacker's first four and the patient's
    // first three; after that the attacker is foreign.
    assert_eq!((stats.guard.learning, stats.guard.foreign), (4 + 3, 6));
    // Everything the agent says goes to the patient's NAT address.
    let _ = session.handle_datagram(
        t0,
        Leg::Agent,
        addr(AGENT),
        &rtp(0, 1, 0, 7, &[1; 160]),
        &mut out,
    );
    let transmit = session
        .handle_datagram(
            t0,
            Leg::Agent,
            addr(AGENT),
            &rtp(0, 2, 160, 7, &[1; 160]),
            &mut out,
        )
        .unwrap();
    assert_eq!(transmit.destination, patient);
}
