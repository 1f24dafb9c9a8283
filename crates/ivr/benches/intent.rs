//! Intent classification per message (DESIGN.md's budget: 50 µs with 200
//! phrases): the demo clinic's rules grown to 200 phrases, many of them
//! sharing a first word ("my …", "pain in …") so that the index's
//! candidate lists are long, against web-form messages of a typical length
//! (one matching late, one matching nothing, which reads every word) and
//! the longest body intake accepts (64 KiB).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ivr::QueueId;
use ivr::leads::{IntentMatcher, IntentRule};

const BODY_PARTS: [&str; 20] = [
    "knee", "ankle", "wrist", "shoulder", "elbow", "hip", "neck", "back", "foot", "hand", "ear",
    "eye", "throat", "stomach", "skin", "head", "chest", "tooth", "jaw", "toe",
];

/// 200 phrases in six rules, the emergency rule first.
fn rules() -> Vec<IntentRule> {
    let rule = |queue: &str, emergency: bool, phrases: Vec<String>| {
        IntentRule::new(QueueId::new(queue), emergency, phrases)
    };
    let mut emergency: Vec<String> = [
        "chest pain",
        "can't breathe",
        "cannot breathe",
        "stroke",
        "overdose",
        "suicide",
        "bleeding heavily",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    emergency.extend((0..13).map(|i| format!("severe {} trauma", BODY_PARTS[i])));
    let ortho: Vec<String> = BODY_PARTS
        .iter()
        .flat_map(|part| [format!("{part} fracture"), format!("pain in my {part}")])
        .chain(BODY_PARTS.iter().map(|part| format!("sprained {part}")))
        .collect();
    let derm: Vec<String> = (0..40).map(|i| format!("rash number {i}")).collect();
    let cardio: Vec<String> = (0..40).map(|i| format!("heart condition {i}")).collect();
    let peds: Vec<String> = (0..40).map(|i| format!("my child {i}")).collect();
    let mut all = vec![
        rule("urgent-care", true, emergency),
        rule("orthopedics", false, ortho),
        rule("dermatology", false, derm),
        rule("cardiology", false, cardio),
        rule("pediatrics", false, peds),
    ];
    let count: usize = all.iter().map(|r| r.phrases().len()).sum();
    all.push(rule(
        "front-desk",
        false,
        (count..200).map(|i| format!("question {i}")).collect(),
    ));
    all
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    assert_eq!(rules.iter().map(|r| r.phrases().len()).sum::<usize>(), 200);
    let matcher = IntentMatcher::new(rules);
    let late = "Hello, my name is Ana and I would like to book an appointment for my \
                mother next week if possible. She has had trouble walking for a few days, \
                and my own back is not great either. We can come any morning; my phone \
                is best. Since Sunday there has been some pain in my knee.";
    let none = "Hello, I would like to book an appointment for my mother next week if \
                possible. She has had trouble walking for a few days and we can come any \
                morning, Tuesday or Thursday preferably. Please call me back on my mobile \
                after five; thank you very much for your help, kind regards, Ana Diaz.";
    let longest = none.repeat(64 * 1024 / none.len());
    assert_eq!(
        matcher.classify(late).map(|m| m.phrase),
        Some("pain in my knee".to_string())
    );
    assert!(matcher.classify(none).is_none());
    let mut group = c.benchmark_group("intent");
    for (name, message) in [("late_match", late), ("no_match", none)] {
        group.throughput(Throughput::Bytes(message.len() as u64));
        group.bench_function(name, |b| b.iter(|| matcher.classify(black_box(message))));
    }
    group.throughput(Throughput::Bytes(longest.len() as u64));
    group.bench_function("no_match_64KiB", |b| {
        b.iter(|| matcher.classify(black_box(&longest)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
