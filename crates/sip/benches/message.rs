//! The per-message cost of `sip::message` on a typical INVITE with SDP (the
//! one SIPp's `uac-call.xml` sends, `tests/data/golden/invite_sdp.sip`):
//!
//! - `parse+validate`: what the daemon does for every datagram it reads,
//!   `parse_datagram` then `validate::request` (which decodes the top Via,
//!   From, To, Call-ID, CSeq, Max-Forwards, Contact and Content-Type);
//! - `parse+validate/received`: the same on a heap buffer, as a socket read
//!   leaves it (header slices then share a reference count);
//! - `parse`: framing, start line and header split only;
//! - `encode`: printing the parsed message back to bytes.
//!
//! Run: `cargo bench -p sip --bench message -- --measurement-time 5`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sip::message::validate::{self, Policy};
use sip::message::{Frame, Limits, Message, parse_datagram};

const INVITE: &[u8] = include_bytes!("../tests/data/golden/invite_sdp.sip");

fn parse(datagram: Bytes, limits: &Limits) -> Message {
    match parse_datagram(datagram, limits) {
        Ok(Frame::Message(message)) => message,
        other => panic!("the golden INVITE must parse: {other:?}"),
    }
}

fn invite(c: &mut Criterion) {
    let limits = Limits::default();
    let policy = Policy::default();
    let datagram = Bytes::from_static(INVITE);
    let mut group = c.benchmark_group("invite_sdp");
    group.throughput(Throughput::Elements(1));

    group.bench_function("parse+validate", |b| {
        b.iter(|| {
            let Message::Request(request) = parse(black_box(datagram.clone()), &limits) else {
                panic!("the golden INVITE is a request");
            };
            match validate::request(request, &policy) {
                Ok(valid) => black_box(valid),
                Err((_, rejection)) => panic!("the golden INVITE must validate: {rejection:?}"),
            }
        })
    });

    // The same on a buffer as a socket read leaves it (heap-allocated, so
    // every header slice bumps a shared reference count); making the buffer
    // is not timed.
    group.bench_function("parse+validate/received", |b| {
        b.iter_batched(
            || Bytes::from(INVITE.to_vec()),
            |datagram| {
                let Message::Request(request) = parse(datagram, &limits) else {
                    panic!("the golden INVITE is a request");
                };
                match validate::request(request, &policy) {
                    Ok(valid) => valid,
                    Err((_, rejection)) => panic!("refused: {rejection:?}"),
                }
            },
            BatchSize::SmallInput,
        )
    });

    group.bench_function("parse", |b| {
        b.iter(|| black_box(parse(black_box(datagram.clone()), &limits)))
    });

    let message = parse(datagram.clone(), &limits);
    group.bench_function("encode", |b| {
        b.iter(|| black_box(black_box(&message).encode()))
    });
    group.finish();
}

criterion_group!(benches, invite);
criterion_main!(benches);
