//! RTP relay cost per packet: parse, rewrite the header, copy or convert
//! the 160-byte G.711 payload (the bridge's per-packet path).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use media::codec::Codec;
use media::relay::RelayPath;
use media::rtp::OutboundStream;
use media::sdp::NegotiatedMedia;
use rtp_rs::{RtpPacketBuilder, Seq};

fn leg(codec: Codec, other_codec_too: bool) -> NegotiatedMedia {
    let mut media =
        NegotiatedMedia::static_g711(codec, Some("127.0.0.1:4000".parse().unwrap()), Some(101));
    if !other_codec_too {
        match codec {
            Codec::Pcmu => media.payloads.pcma = None,
            Codec::Pcma => media.payloads.pcmu = None,
        }
    }
    media
}

fn relay(c: &mut Criterion) {
    let packets: Vec<Vec<u8>> = (0..1024u16)
        .map(|n| {
            RtpPacketBuilder::new()
                .payload_type(0)
                .sequence(Seq::from(n))
                .timestamp(160 * u32::from(n))
                .ssrc(0x1234)
                .payload(&[(n & 0xFF) as u8; 160])
                .build()
                .unwrap()
        })
        .collect();
    let now = Instant::now();
    let mut group = c.benchmark_group("rtp_relay_per_packet");
    let cases = [
        (
            "rewrite_pcmu_to_pcmu",
            leg(Codec::Pcmu, false),
            leg(Codec::Pcmu, false),
        ),
        (
            "rewrite_and_transcode_pcmu_to_pcma",
            leg(Codec::Pcmu, false),
            leg(Codec::Pcma, false),
        ),
    ];
    for (name, ingress, egress) in cases {
        let mut path = RelayPath::new(&ingress, &egress, OutboundStream::from_parts(1, 1, 1));
        let mut out = [0u8; 1500];
        let mut index = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                index = (index + 1) % packets.len();
                black_box(
                    path.relay(now, black_box(&packets[index]), &mut out)
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, relay);
criterion_main!(benches);
