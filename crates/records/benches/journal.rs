//! How many entries per second the journal's writer sustains, and what
//! `record()` costs the call that makes it.
//!
//! `cargo bench -p records --bench journal`
//!
//! - `journal_writer/{normal,full}`: record 10,000 entries (2,500 calls of
//!   started, queued, connected, ended) and flush; throughput is entries
//!   committed per second with `PRAGMA synchronous` NORMAL or FULL.
//! - `journal_record`: the `record()` calls alone (1,000 per iteration,
//!   the writer draining meanwhile; the flush after is not timed).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use records::{
    CallEvent, Journal, JournalConfig, JournalEntry, JournalHandle, Outcome, Priority, Synchronous,
};

const CALLS_PER_ITERATION: u64 = 2_500;
const ENTRIES_PER_CALL: u64 = 4;

/// Unique call ids across iterations.
static NEXT_CALL: AtomicU64 = AtomicU64::new(0);

fn call_entries(handle: &JournalHandle, calls: u64) {
    let start = Timestamp::now();
    for _ in 0..calls {
        let id = format!("c-bench-{}", NEXT_CALL.fetch_add(1, Ordering::Relaxed));
        let entries = [
            CallEvent::Started {
                caller: "+13125550142".into(),
                dialed: "+15550100".into(),
                source: Some("main-line".into()),
                branch: None,
            },
            CallEvent::Queued {
                department: "pediatrics".into(),
                priority: Priority::Routine,
                sla_ms: 60_000,
            },
            CallEvent::Connected {
                agent: "1003".into(),
                branch: Some("south".into()),
            },
            CallEvent::Ended {
                outcome: Outcome::Connected,
            },
        ];
        for event in entries {
            // 10,000 entries fit the default capacity (16,384) and every
            // iteration flushes: a drop here would be a bug, not a figure.
            handle
                .record(JournalEntry::new(id.as_str(), start, event))
                .unwrap();
        }
    }
}

fn writer(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_writer");
    group.throughput(Throughput::Elements(CALLS_PER_ITERATION * ENTRIES_PER_CALL));
    group.sample_size(10);
    for (name, synchronous) in [("normal", Synchronous::Normal), ("full", Synchronous::Full)] {
        let dir = tempfile::tempdir().unwrap();
        let (journal, handle) = Journal::open(
            dir.path().join("journal.db"),
            JournalConfig {
                synchronous,
                ..JournalConfig::default()
            },
        )
        .unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                call_entries(&handle, CALLS_PER_ITERATION);
                handle.flush(Duration::from_secs(60)).unwrap();
            })
        });
        let stats = journal.close(Duration::from_secs(60)).unwrap();
        assert_eq!((stats.dropped, stats.failed), (0, 0));
    }
    group.finish();
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_record");
    group.throughput(Throughput::Elements(1_000));
    let dir = tempfile::tempdir().unwrap();
    let (journal, handle) =
        Journal::open(dir.path().join("journal.db"), JournalConfig::default()).unwrap();
    let at = Timestamp::now();
    group.bench_function("accepted", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let entries: Vec<JournalEntry> = (0..1_000)
                    .map(|n| {
                        JournalEntry::new(
                            format!("c-record-{}-{n}", NEXT_CALL.fetch_add(1, Ordering::Relaxed)),
                            at,
                            CallEvent::Offered {
                                agent: "1003".into(),
                            },
                        )
                    })
                    .collect();
                let begin = Instant::now();
                for entry in entries {
                    black_box(handle.record(entry)).unwrap();
                }
                total += begin.elapsed();
                handle.flush(Duration::from_secs(60)).unwrap();
            }
            total
        })
    });
    group.finish();
    let stats = journal.close(Duration::from_secs(60)).unwrap();
    assert_eq!((stats.dropped, stats.failed), (0, 0));
}

criterion_group!(benches, writer, record);
criterion_main!(benches);
