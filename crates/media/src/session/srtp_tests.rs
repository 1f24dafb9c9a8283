//! An SRTP caller bridged with a plain agent, in virtual time: keys from a
//! real offer/answer, both phones count and check their media.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::{SmallRng, StdRng};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use super::*;
use crate::codec::{Codec, FRAME_DURATION};
use crate::playback::PlaybackMode;
use crate::prompt::Prompt;
use crate::sdp::{CryptoAttribute, LocalMedia, SessionDescription, create_answer};
use crate::srtp::{CryptoSuite, MasterKey, SrtpReceiver, SrtpSender};

const CALLER: &str = "192.0.2.10:6000";
const AGENT: &str = "192.0.2.20:7000";
/// The caller phone's key, as in RFC 4568 §8.1.
const PHONE_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn rtp(payload_type: u8, sequence: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(payload_type)
        .sequence(Seq::from(sequence))
        .timestamp(160 * u32::from(sequence))
        .ssrc(ssrc)
        .payload(payload)
        .build()
        .unwrap()
}

/// The patient's phone: its SRTP offer, and its two SRTP contexts once it
/// has read our answer.
struct SrtpPhone {
    sender: SrtpSender,
    receiver: SrtpReceiver,
}

/// Offer/answer for the caller leg: the phone offers RTP/SAVP with
/// `suite`; we answer with our own key. Returns our side's media and the
/// phone's contexts.
fn negotiate(suite: CryptoSuite) -> (NegotiatedMedia, SrtpPhone) {
    let offer = SessionDescription::parse(
        format!(
            "v=0\r\no=phone 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 6000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=crypto:5 {suite} inline:{PHONE_KEY}\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let local = LocalMedia::new("192.0.2.1".parse().unwrap(), 20_000, 1)
        .with_srtp(&mut StdRng::seed_from_u64(42));
    let answer = create_answer(&offer, &local).unwrap();
    // The phone reads our key from the answer's a=crypto.
    let answered = answer.description.media[0].crypto().next().unwrap();
    let ours = CryptoAttribute::parse(answered).unwrap();
    assert_eq!((ours.tag, ours.suite), (5, suite));
    let phone_key = CryptoAttribute::parse(&format!("5 {suite} inline:{PHONE_KEY}"))
        .unwrap()
        .key;
    let phone = SrtpPhone {
        sender: SrtpSender::new(suite, &phone_key),
        receiver: SrtpReceiver::new(suite, &ours.key),
    };
    (answer.media, phone)
}

fn protect(sender: &mut SrtpSender, packet: &[u8]) -> Vec<u8> {
    let mut buffer = packet.to_vec();
    buffer.resize(packet.len() + 16, 0);
    let len = sender.protect(&mut buffer, packet.len()).unwrap();
    buffer.truncate(len);
    buffer
}

fn bridged(caller: NegotiatedMedia, t0: Instant) -> MediaSession {
    let mut session = MediaSession::new(SessionConfig::default());
    let mut rng = SmallRng::seed_from_u64(3);
    session.add_leg(t0, Leg::Caller, caller, &mut rng);
    let agent = NegotiatedMedia::static_g711(Codec::Pcmu, Some(addr(AGENT)), Some(101));
    session.add_leg(t0, Leg::Agent, agent, &mut rng);
    session.bridge().unwrap();
    session
}

#[test]
fn an_srtp_caller_and_a_plain_agent_hear_each_other() {
    for suite in CryptoSuite::ALL {
        let t0 = Instant::now();
        let (caller_media, mut phone) = negotiate(suite);
        assert!(caller_media.srtp.is_some());
        let mut session = bridged(caller_media, t0);
        let mut out = [0u8; 1500];
        let mut plain = [0u8; 1500];
        let (mut heard_by_agent, mut heard_by_caller) = (0, 0);
        // 100 packets each way, 20 ms apart; the caller's sequence numbers wrap.
        for n in 0..100u16 {
            let now = t0 + FRAME_DURATION * u32::from(n);
            let sequence = 65_500u16.wrapping_add(n);
            let voice: Vec<u8> = (0..160)
                .map(|k| (k as u8).wrapping_mul(3) ^ n as u8)
                .collect();
            let srtp = protect(&mut phone.sender, &rtp(0, sequence, 0xCA11, &voice));
            let transmit = session
                .handle_datagram(now, Leg::Caller, addr(CALLER), &srtp, &mut out)
                .expect("relayed to the agent");
            assert_eq!(
                (transmit.leg, transmit.destination),
                (Leg::Agent, addr(AGENT))
            );
            // The agent gets plain RTP with the caller's audio.
            let packet = RtpReader::new(&out[..transmit.len]).unwrap();
            assert_eq!(packet.payload(), &voice[..], "packet {n} to the agent");
            heard_by_agent += 1;

            let answer: Vec<u8> = (0..160).map(|k| (k as u8) ^ 0x5A ^ n as u8).collect();
            let transmit = session
                .handle_datagram(
                    now,
                    Leg::Agent,
                    addr(AGENT),
                    &rtp(0, n, 0xA6E7, &answer),
                    &mut out,
                )
                .expect("relayed to the caller");
            assert_eq!(
                (transmit.leg, transmit.destination),
                (Leg::Caller, addr(CALLER))
            );
            // On the caller's wire: SRTP, not plain RTP. Same header shape,
            // an encrypted payload and the suite's tag after it.
            let wire = &out[..transmit.len];
            assert_eq!(wire.len(), 12 + 160 + suite.srtp_tag_len());
            assert_ne!(&wire[12..172], &answer[..], "payload in the clear");
            let len = phone.receiver.unprotect(wire, &mut plain).unwrap();
            let packet = RtpReader::new(&plain[..len]).unwrap();
            assert_eq!(packet.payload(), &answer[..], "packet {n} to the caller");
            heard_by_caller += 1;
        }
        assert_eq!((heard_by_agent, heard_by_caller), (100, 100));
        let caller = session.leg_stats(Leg::Caller).unwrap();
        let srtp = caller.srtp.unwrap();
        assert_eq!((srtp.received.packets, srtp.sent.packets), (100, 100));
        assert_eq!(caller.inbound.packets, 100);
        assert_eq!(caller.inbound.lost, 0, "no loss counted across the wrap");
        assert_eq!(session.leg_stats(Leg::Agent).unwrap().srtp, None);
        assert_eq!(phone.receiver.stats().packets, 100);
    }
}

#[test]
fn forged_replayed_and_plain_packets_from_the_srtp_leg_never_reach_the_agent() {
    let t0 = Instant::now();
    let (caller_media, mut phone) = negotiate(CryptoSuite::AesCm128HmacSha1_80);
    let mut session = bridged(caller_media, t0);
    let mut out = [0u8; 1500];
    let first = protect(&mut phone.sender, &rtp(0, 1, 7, &[0x11; 160]));
    assert!(
        session
            .handle_datagram(t0, Leg::Caller, addr(CALLER), &first, &mut out)
            .is_some()
    );
    let mut forged = protect(&mut phone.sender, &rtp(0, 2, 7, &[0x11; 160]));
    forged[20] ^= 0xFF;
    let attacker = addr("203.0.113.66:4000");
    let plain_rtp = rtp(0, 3, 7, &[0x11; 160]);
    // A digit in the clear would be acted on if it got through.
    let plain_digit = rtp(101, 4, 7, &[5, 0x80, 0, 160]);
    for (datagram, source) in [
        (&forged, attacker),
        (&first, attacker),
        (&first, addr(CALLER)),
        (&plain_rtp, attacker),
        (&plain_digit, addr(CALLER)),
    ] {
        assert_eq!(
            session.handle_datagram(t0, Leg::Caller, source, datagram, &mut out),
            None
        );
    }
    let received = session
        .leg_stats(Leg::Caller)
        .unwrap()
        .srtp
        .unwrap()
        .received;
    // The digit packet is shorter than an RTP header plus a tag.
    assert_eq!(
        (
            received.packets,
            received.auth_failures,
            received.replayed,
            received.malformed
        ),
        (1, 2, 2, 1)
    );
    // Nothing was acted on: no digit, the latch stayed on the phone.
    let events: Vec<MediaEvent> = std::iter::from_fn(|| session.poll_event()).collect();
    assert_eq!(
        events,
        [MediaEvent::Latched {
            leg: Leg::Caller,
            address: addr(CALLER)
        }]
    );
    // The genuine next packet still goes through.
    let next = protect(&mut phone.sender, &rtp(0, 5, 7, &[0x22; 160]));
    assert!(
        session
            .handle_datagram(t0, Leg::Caller, addr(CALLER), &next, &mut out)
            .is_some()
    );
}

#[test]
fn prompts_and_digits_to_an_srtp_leg_are_encrypted() {
    let t0 = Instant::now();
    let (caller_media, mut phone) = negotiate(CryptoSuite::AesCm128HmacSha1_80);
    let mut session = MediaSession::new(SessionConfig::default());
    session.add_leg(
        t0,
        Leg::Caller,
        caller_media,
        &mut SmallRng::seed_from_u64(9),
    );
    let samples: Vec<i16> = (0..10 * 160)
        .map(|n| ((n % 40) as i16 - 20) * 500)
        .collect();
    let menu = Arc::new(Prompt::from_samples("menu", &samples).unwrap());
    session
        .play(
            t0,
            Leg::Caller,
            Playback::new(PlaybackId(1), vec![Arc::clone(&menu)], PlaybackMode::Once),
            false,
        )
        .unwrap();
    let digit = DtmfDigit::from_char('5').unwrap();
    let mut out = [0u8; 1500];
    let mut plain = [0u8; 1500];
    // The phone speaks from where its SDP says: confirmed, so more than the
    // unconfirmed budget may be sent to it.
    let hello = protect(&mut phone.sender, &rtp(0, 1, 7, &[0x22; 160]));
    session.handle_datagram(t0, Leg::Caller, addr(CALLER), &hello, &mut out);
    let mut now = t0;
    let (mut audio, mut events) = (0, 0);
    let end = t0 + Duration::from_secs(2);
    loop {
        session.handle_timeout(now);
        while let Some(transmit) = session.poll_transmit(now, &mut out) {
            let wire = &out[..transmit.len];
            let len = phone
                .receiver
                .unprotect(wire, &mut plain)
                .expect("every packet to the phone is SRTP with our key");
            let packet = RtpReader::new(&plain[..len]).unwrap();
            match packet.payload_type() {
                0 => {
                    assert_eq!(
                        Some(packet.payload()),
                        menu.frame(Codec::Pcmu, audio as usize)
                    );
                    assert_ne!(&wire[12..172], packet.payload());
                    audio += 1;
                    if audio == 10 {
                        session.send_dtmf(now, Leg::Caller, &[digit]).unwrap();
                    }
                }
                101 => {
                    assert_eq!(packet.payload()[0], 5);
                    events += 1;
                }
                other => panic!("payload type {other}"),
            }
        }
        match session.poll_timeout() {
            Some(deadline) if deadline <= end => now = deadline.max(now),
            _ => break,
        }
    }
    assert_eq!(audio, 10);
    assert!(
        events >= 3,
        "a digit is several event packets, got {events}"
    );
    let sent = session.leg_stats(Leg::Caller).unwrap().srtp.unwrap().sent;
    assert_eq!(sent.packets, audio + events);
}

#[test]
fn a_reinvite_keeps_our_srtp_stream_and_a_new_phone_key_resets_the_receiver() {
    let t0 = Instant::now();
    let (caller_media, mut phone) = negotiate(CryptoSuite::AesCm128HmacSha1_80);
    let mut session = bridged(caller_media.clone(), t0);
    let mut out = [0u8; 1500];
    let mut relayed = [0u8; 1500];
    let mut plain = [0u8; 1500];
    let mut agent_sequence = 0u16;
    let mut to_caller = |session: &mut MediaSession, receiver: &mut SrtpReceiver| {
        agent_sequence += 1;
        let packet = rtp(0, agent_sequence, 9, &[0x33; 160]);
        let transmit = session
            .handle_datagram(t0, Leg::Agent, addr(AGENT), &packet, &mut relayed)
            .unwrap();
        receiver.unprotect(&relayed[..transmit.len], &mut plain)
    };
    to_caller(&mut session, &mut phone.receiver).unwrap();
    // Hold and resume with the same keys: the phone's context goes on.
    session
        .update_leg(t0, Leg::Caller, caller_media.clone())
        .unwrap();
    to_caller(&mut session, &mut phone.receiver).unwrap();

    // The phone re-keys: its old key no longer authenticates.
    let mut rekeyed = caller_media;
    let new_key = MasterKey::from_key_and_salt(&[9u8; 30]).unwrap();
    rekeyed.srtp.as_mut().unwrap().remote_key = new_key.clone();
    session.update_leg(t0, Leg::Caller, rekeyed).unwrap();
    let old = protect(&mut phone.sender, &rtp(0, 100, 7, &[0; 160]));
    assert_eq!(
        session.handle_datagram(t0, Leg::Caller, addr(CALLER), &old, &mut out),
        None
    );
    let mut new_sender = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &new_key);
    let new = protect(&mut new_sender, &rtp(0, 101, 7, &[0; 160]));
    assert!(
        session
            .handle_datagram(t0, Leg::Caller, addr(CALLER), &new, &mut out)
            .is_some()
    );
    // Our direction was not re-keyed: the phone still decrypts us.
    to_caller(&mut session, &mut phone.receiver).unwrap();
}
