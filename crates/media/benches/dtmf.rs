//! In-band DTMF detection cost per 20 ms frame (160 samples at 8 kHz).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use media::codec::Codec;
use media::inband::InbandDtmfDetector;

fn frame(frequencies: &[f32], level: f32) -> Vec<i16> {
    (0..160)
        .map(|n| {
            let t = n as f32 / 8000.0;
            let value: f32 = frequencies
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum();
            (value * level) as i16
        })
        .collect()
}

fn detection(c: &mut Criterion) {
    let tone = frame(&[770.0, 1336.0], 5000.0);
    let speech_like = frame(&[220.0, 440.0, 660.0, 880.0, 1100.0, 2400.0], 2000.0);
    let silence = vec![0i16; 160];
    let tone_ulaw: Vec<u8> = tone.iter().map(|s| Codec::Pcmu.encode(*s)).collect();

    let mut group = c.benchmark_group("dtmf_detect_per_20ms_frame");
    for (name, samples) in [
        ("tone", &tone),
        ("speech_like", &speech_like),
        ("silence", &silence),
    ] {
        let mut detector = InbandDtmfDetector::new();
        group.bench_function(name, |b| {
            b.iter(|| detector.process_frame(black_box(samples)))
        });
    }
    let mut detector = InbandDtmfDetector::new();
    group.bench_function("tone_pcmu_decode_and_detect", |b| {
        b.iter(|| detector.process_encoded(Codec::Pcmu, black_box(&tone_ulaw)))
    });
    group.finish();
}

criterion_group!(benches, detection);
criterion_main!(benches);
