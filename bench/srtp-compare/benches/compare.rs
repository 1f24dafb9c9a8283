//! Per-packet cost of three SRTP implementations, AES_CM_128_HMAC_SHA1_80,
//! one 172-byte G.711 RTP packet (12-byte header + 160 bytes of PCMU),
//! the same master key and salt for all.
//!
//! Written like `crates/media/benches/srtp.rs`: the sequence number goes up
//! by one per packet (so no receiver refuses a repeat, and libsrtp's
//! sender, which refuses to protect a sequence number twice, is content),
//! and each iteration builds the plain packet anew. Unprotecting needs
//! fresh packets, so it is measured together with the sender that makes
//! them: subtract `protect` for the receiving side alone.
//!
//! Each implementation is called the way its API asks:
//! * ours protects in place in a caller's `[u8; 1500]` and unprotects into
//!   another caller's buffer;
//! * webrtc-srtp takes `&[u8]` and returns a new `Bytes` each time;
//! * libsrtp (the `srtp` crate) works in place in a `Vec<u8>` that is
//!   reused (its capacity is kept, so the `Vec` itself does not allocate).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use srtp_compare::*;

fn protect(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_compare_172B_AES_CM_128_HMAC_SHA1_80/protect");
    let mut sequence = 0u16;

    let mut sender = ours_sender();
    let mut buffer = [0u8; 1500];
    group.bench_function("ours", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            buffer[..PACKET_LEN].copy_from_slice(&packet(sequence, SSRC));
            black_box(sender.protect(black_box(&mut buffer), PACKET_LEN).unwrap())
        })
    });

    let mut context = webrtc_context();
    group.bench_function("webrtc-srtp", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            let plain = packet(sequence, SSRC);
            black_box(context.encrypt_rtp(black_box(&plain)).unwrap())
        })
    });

    let mut session = libsrtp_sender();
    let mut wire: Vec<u8> = Vec::with_capacity(1500);
    group.bench_function("libsrtp", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            wire.clear();
            wire.extend_from_slice(&packet(sequence, SSRC));
            session.protect(black_box(&mut wire)).unwrap();
            black_box(wire.len())
        })
    });
    group.finish();
}

fn protect_then_unprotect(c: &mut Criterion) {
    let mut group =
        c.benchmark_group("srtp_compare_172B_AES_CM_128_HMAC_SHA1_80/protect_then_unprotect");
    let mut sequence = 0u16;

    let mut sender = ours_sender();
    let mut receiver = ours_receiver();
    let mut buffer = [0u8; 1500];
    let mut plain = [0u8; 1500];
    group.bench_function("ours", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            buffer[..PACKET_LEN].copy_from_slice(&packet(sequence, SSRC));
            let len = sender.protect(&mut buffer, PACKET_LEN).unwrap();
            black_box(
                receiver
                    .unprotect(black_box(&buffer[..len]), &mut plain)
                    .unwrap(),
            )
        })
    });

    for (name, mut receiver) in [
        ("webrtc-srtp", webrtc_context()),
        (
            "webrtc-srtp_replay_window_128",
            webrtc_context_with_replay(),
        ),
    ] {
        let mut sender = webrtc_context();
        group.bench_function(name, |b| {
            b.iter(|| {
                sequence = sequence.wrapping_add(1);
                let plain = packet(sequence, SSRC);
                let protected = sender.encrypt_rtp(&plain).unwrap();
                black_box(receiver.decrypt_rtp(black_box(&protected)).unwrap())
            })
        });
    }

    let mut sender = libsrtp_sender();
    let mut receiver = libsrtp_receiver();
    let mut wire: Vec<u8> = Vec::with_capacity(1500);
    group.bench_function("libsrtp", |b| {
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            wire.clear();
            wire.extend_from_slice(&packet(sequence, SSRC));
            sender.protect(&mut wire).unwrap();
            receiver.unprotect(black_box(&mut wire)).unwrap();
            black_box(wire.len())
        })
    });
    group.finish();
}

criterion_group!(benches, protect, protect_then_unprotect);
criterion_main!(benches);
