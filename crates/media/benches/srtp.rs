//! SRTP per packet: protect and unprotect alone (AES-CM + HMAC-SHA1 on a
//! 172-byte G.711 packet), and the bridge's per-packet path in the media
//! session with an SRTP caller and a plain agent, next to plain ↔ plain.
//!
//! Unprotecting needs fresh packets (the replay window drops repeats), so
//! it is measured together with the sender that makes them
//! (`protect_then_unprotect`, `srtp_caller_to_plain_agent`): subtract
//! `protect` to get the receiving side alone.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use media::codec::Codec;
use media::sdp::{NegotiatedMedia, SrtpParameters};
use media::session::{InbandPolicy, Leg, MediaSession, SessionConfig};
use media::srtp::{CryptoSuite, MasterKey, SrtpReceiver, SrtpSender};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const CALLER: &str = "127.0.0.1:6000";
const AGENT: &str = "127.0.0.1:7000";

fn packet(sequence: u16, ssrc: u32) -> [u8; 172] {
    let mut packet = [0x55u8; 172];
    packet[..12].fill(0);
    packet[0] = 0x80;
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&(160 * u32::from(sequence)).to_be_bytes());
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    packet
}

fn keys() -> (MasterKey, MasterKey) {
    (
        MasterKey::from_key_and_salt(&[7; 30]).unwrap(),
        MasterKey::from_key_and_salt(&[9; 30]).unwrap(),
    )
}

fn crypto(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_per_packet_172B");
    let (key, _) = keys();
    for suite in CryptoSuite::ALL {
        let mut sender = SrtpSender::new(suite, &key);
        let mut buffer = [0u8; 1500];
        let mut sequence = 0u16;
        group.bench_function(format!("protect_{suite}"), |b| {
            b.iter(|| {
                sequence = sequence.wrapping_add(1);
                buffer[..172].copy_from_slice(&packet(sequence, 1));
                black_box(sender.protect(black_box(&mut buffer), 172).unwrap())
            })
        });
        let mut sender = SrtpSender::new(suite, &key);
        let mut receiver = SrtpReceiver::new(suite, &key);
        let mut plain = [0u8; 1500];
        group.bench_function(format!("protect_then_unprotect_{suite}"), |b| {
            b.iter(|| {
                sequence = sequence.wrapping_add(1);
                buffer[..172].copy_from_slice(&packet(sequence, 1));
                let len = sender.protect(&mut buffer, 172).unwrap();
                black_box(
                    receiver
                        .unprotect(black_box(&buffer[..len]), &mut plain)
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

/// A bridged session: the caller SRTP (or plain), the agent plain.
fn session(srtp_caller: bool) -> MediaSession {
    let (ours, phones) = keys();
    let now = Instant::now();
    let config = SessionConfig {
        inband_dtmf: InbandPolicy::Auto,
        ..SessionConfig::default()
    };
    let mut session = MediaSession::new(config);
    let mut rng = SmallRng::seed_from_u64(1);
    let address: SocketAddr = CALLER.parse().unwrap();
    let mut caller = NegotiatedMedia::static_g711(Codec::Pcmu, Some(address), Some(101));
    if srtp_caller {
        caller.srtp = Some(SrtpParameters {
            suite: CryptoSuite::AesCm128HmacSha1_80,
            tag: 1,
            local_key: ours,
            remote_key: phones,
            remote_lifetime: None,
            remote_mki: None,
        });
    }
    session.add_leg(now, Leg::Caller, caller, &mut rng);
    let agent = NegotiatedMedia::static_g711(Codec::Pcmu, Some(AGENT.parse().unwrap()), Some(101));
    session.add_leg(now, Leg::Agent, agent, &mut rng);
    session.bridge().unwrap();
    session
}

fn relay(c: &mut Criterion) {
    let mut group = c.benchmark_group("bridge_per_packet_172B");
    let now = Instant::now();
    let (caller, agent): (SocketAddr, SocketAddr) =
        (CALLER.parse().unwrap(), AGENT.parse().unwrap());
    let mut out = [0u8; 1500];

    let mut plain = session(false);
    let mut sequence = 0u16;
    group.bench_function("plain_caller_to_plain_agent", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            let input = packet(sequence, 0xCA11);
            black_box(plain.handle_datagram(now, Leg::Caller, caller, black_box(&input), &mut out))
        })
    });

    let mut srtp = session(true);
    group.bench_function("plain_agent_to_srtp_caller", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            let input = packet(sequence, 0xA6E7);
            black_box(srtp.handle_datagram(now, Leg::Agent, agent, black_box(&input), &mut out))
        })
    });

    // The caller's phone protects each packet (as the phone would), then
    // the session unprotects and relays it: subtract protect_AES_CM_128_HMAC_SHA1_80.
    let (_, phones) = keys();
    let mut phone = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &phones);
    let mut wire = [0u8; 1500];
    group.bench_function("phone_protect_then_srtp_caller_to_plain_agent", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            wire[..172].copy_from_slice(&packet(sequence, 0xCA11));
            let len = phone.protect(&mut wire, 172).unwrap();
            black_box(srtp.handle_datagram(
                now,
                Leg::Caller,
                caller,
                black_box(&wire[..len]),
                &mut out,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, crypto, relay);
criterion_main!(benches);
