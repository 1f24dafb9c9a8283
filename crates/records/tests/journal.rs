//! The writer: batching, a full channel, a failing, slow or stalled disk,
//! a real "disk full" from SQLite, reading while writing, flush and close.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use records::{
    CallEvent, Journal, JournalConfig, JournalEntry, JournalError, Outcome, Reader, RecordError,
    TimeRange,
};
use support::{PATIENCE, at, open, quick, record_all, simple_call, started};

/// How many calls the journal holds.
fn calls_in(reader: &Reader) -> usize {
    reader.recent_calls(usize::MAX).unwrap().len()
}

fn events_of(reader: &Reader, call: &str) -> Vec<&'static str> {
    reader
        .call(call)
        .unwrap()
        .map(|timeline| timeline.events.iter().map(|e| e.event.kind()).collect())
        .unwrap_or_default()
}

#[test]
fn entries_are_written_in_batches() {
    let test = open(JournalConfig {
        capacity: 5_000,
        max_batch: 500,
        linger: records::MAX_LINGER,
        ..JournalConfig::default()
    });
    // Stall the disk so that the entries pile up, then let it go: the
    // writer takes them 500 at a time.
    test.handle.faults().hold();
    for n in 0..250 {
        for entry in simple_call(&format!("c{n:03}"), n * 1_000) {
            test.handle.record(entry).unwrap();
        }
    }
    assert_eq!(test.handle.stats().backlog, 1_000);
    test.handle.faults().release();
    test.handle.flush(PATIENCE).unwrap();
    let stats = test.handle.stats();
    assert_eq!((stats.written, stats.backlog), (1_000, 0));
    // The first batch holds what arrived within its linger (all 1,000 are
    // queued within microseconds, so 500), the rest follow in full batches.
    assert!(
        (2..=3).contains(&stats.batches),
        "1,000 entries in {} transactions",
        stats.batches
    );
    let reader = test.journal.reader().unwrap();
    assert_eq!(calls_in(&reader), 250);
}

#[test]
fn a_full_channel_drops_and_counts_without_waiting() {
    let test = open(JournalConfig {
        capacity: 8,
        max_batch: 1,
        ..quick()
    });
    test.handle.faults().hold();
    let begin = Instant::now();
    let results: Vec<Result<(), RecordError>> = (0..100)
        .map(|n| {
            test.handle.record(JournalEntry::new(
                format!("c{n:03}"),
                at(n),
                started("+1312", "+15550100", None),
            ))
        })
        .collect();
    // The writer is stalled: had record() waited for it, we would not be
    // here at all.
    let took = begin.elapsed();
    let accepted = results.iter().filter(|r| r.is_ok()).count() as u64;
    // The channel holds 8; the writer may have taken one before it stalled.
    assert!((8..=9).contains(&accepted), "accepted {accepted}");
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || *r == Err(RecordError::Full))
    );
    let stats = test.handle.stats();
    assert_eq!(stats.dropped, 100 - accepted);
    assert_eq!(stats.backlog, accepted);
    assert_eq!(stats.capacity, 8);
    assert!(took < Duration::from_secs(1), "100 records took {took:?}");

    test.handle.faults().release();
    test.handle.flush(PATIENCE).unwrap();
    let stats = test.handle.stats();
    assert_eq!(
        (stats.written, stats.dropped, stats.failed),
        (accepted, 100 - accepted, 0)
    );
    let reader = test.journal.reader().unwrap();
    assert_eq!(calls_in(&reader) as u64, accepted);
}

#[test]
fn a_failing_disk_counts_losses_and_the_writer_recovers() {
    let test = open(quick());
    let faults = test.handle.faults();

    // The disk breaks: entries are accepted at once, then lost and counted.
    faults.set_failing(true);
    record_all(&test.handle, simple_call("lost-1", 0));
    record_all(&test.handle, simple_call("lost-2", 100_000));
    test.handle
        .record(JournalEntry::new(
            "half",
            at(200_000),
            started("+1312", "+15550100", Some("main-line")),
        ))
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();
    let stats = test.handle.stats();
    assert_eq!((stats.written, stats.failed, stats.backlog), (0, 9, 0));
    assert!(stats.failing);
    let failure = stats.last_error.expect("the failure is kept");
    assert!(
        failure.message.contains("injected write failure"),
        "{}",
        failure.message
    );

    // It works again: the next entries are written, the lost ones are not
    // there, not even in part (each batch is all or nothing).
    faults.set_failing(false);
    record_all(&test.handle, simple_call("kept", 300_000));
    // The rest of "half", whose start was lost: its row is made from the
    // first entry that arrives.
    record_all(
        &test.handle,
        vec![
            JournalEntry::new("half", at(201_000), support::routine("front-desk")),
            JournalEntry::new("half", at(230_000), support::ended(Outcome::Abandoned)),
        ],
    );
    let stats = test.handle.stats();
    assert_eq!((stats.written, stats.failed), (6, 9));
    assert!(!stats.failing);
    assert!(stats.last_error.is_some(), "the last failure stays visible");

    let reader = test.journal.reader().unwrap();
    assert!(reader.call("lost-1").unwrap().is_none());
    assert!(reader.call("lost-2").unwrap().is_none());
    assert_eq!(
        events_of(&reader, "kept"),
        ["started", "queued", "connected", "ended"]
    );
    let half = reader.call("half").unwrap().unwrap();
    assert_eq!(half.call.caller, "");
    assert_eq!(half.call.started_at, at(201_000));
    assert_eq!(half.call.outcome, Some(Outcome::Abandoned));
    assert_eq!(half.call.wait_ms, Some(29_000));
    assert_eq!(
        half.events
            .iter()
            .map(|e| (e.seq, e.event.kind()))
            .collect::<Vec<_>>(),
        [(1, "queued"), (2, "ended")]
    );

    // One bad batch among good ones.
    faults.fail_next(1);
    record_all(
        &test.handle,
        vec![JournalEntry::new(
            "x",
            at(400_000),
            started("+1", "+2", None),
        )],
    );
    record_all(
        &test.handle,
        vec![JournalEntry::new(
            "y",
            at(400_001),
            started("+1", "+2", None),
        )],
    );
    let stats = test.handle.stats();
    assert_eq!((stats.written, stats.failed), (7, 10));
    assert!(reader.call("x").unwrap().is_none());
    assert!(reader.call("y").unwrap().is_some());
}

#[test]
fn a_full_database_is_a_counted_failure() {
    // A real SQLite "database or disk is full" (SQLITE_FULL), no root
    // needed: the journal's size cap stands in for a full file system.
    let test = open(JournalConfig {
        max_database_bytes: Some(128 * 1024), // the empty schema takes ~60 KiB
        ..quick()
    });
    let long_caller = "+1".repeat(400);
    for n in 0..200 {
        // Each call's start is its own batch, so that some fit.
        record_all(
            &test.handle,
            vec![JournalEntry::new(
                format!("c{n:03}"),
                at(n),
                started(&long_caller, "+15550100", None),
            )],
        );
    }
    let stats = test.handle.stats();
    assert!(stats.written > 0, "some fit: {stats:?}");
    assert!(stats.failed > 0, "then the file is full: {stats:?}");
    assert_eq!(stats.written + stats.failed, 200);
    assert_eq!(stats.dropped, 0, "record() accepted every entry");
    let message = stats.last_error.unwrap().message;
    assert!(message.contains("full"), "{message}");
    let reader = test.journal.reader().unwrap();
    assert_eq!(calls_in(&reader) as u64, stats.written);
}

#[test]
fn a_slow_disk_does_not_slow_record() {
    let test = open(JournalConfig {
        capacity: 10_000,
        max_batch: 100,
        ..quick()
    });
    // A disk that takes a second per transaction.
    test.handle.faults().delay_writes(Duration::from_secs(1));
    let mut slowest = Duration::ZERO;
    for n in 0..500 {
        for entry in simple_call(&format!("c{n:03}"), n * 1_000) {
            let begin = Instant::now();
            test.handle.record(entry).unwrap();
            slowest = slowest.max(begin.elapsed());
        }
    }
    // A record() that waited for a transaction would take a second; the
    // margin is for a machine busy with other builds.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest record() {slowest:?}"
    );
    assert!(test.handle.stats().backlog > 0, "the disk is behind");
    test.handle.faults().delay_writes(Duration::ZERO);
    test.handle.flush(PATIENCE).unwrap();
    assert_eq!(test.handle.stats().written, 2_000);
}

#[test]
fn reads_while_writing() {
    let test = open(quick());
    let reader = test.journal.reader().unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for n in 0..1_000 {
                for entry in simple_call(&format!("c{n:04}"), n * 1_000) {
                    // Wait rather than drop when the writer is behind: this
                    // test wants every entry.
                    let mut entry = Some(entry);
                    while let Some(next) = entry.take() {
                        if test.handle.record(next.clone()) == Err(RecordError::Full) {
                            std::thread::yield_now();
                            entry = Some(next);
                        }
                    }
                }
            }
            test.handle.flush(PATIENCE).unwrap();
            done.store(true, Ordering::SeqCst);
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let reader = reader.clone();
                let done = &done;
                scope.spawn(move || {
                    let mut reads = 0;
                    let mut seen = 0;
                    let range = TimeRange::new(at(0), at(10_000_000)).unwrap();
                    while !done.load(Ordering::SeqCst) {
                        let recent = reader.recent_calls(usize::MAX).unwrap();
                        assert!(recent.len() >= seen, "a snapshot never goes back");
                        seen = recent.len();
                        reader.department_report(&range).unwrap();
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        writer.join().unwrap();
        for reader in readers {
            assert!(reader.join().unwrap() > 0);
        }
    });
    assert_eq!(calls_in(&reader), 1_000);
    let stats = test.handle.stats();
    assert_eq!((stats.written, stats.failed), (4_000, 0));
}

#[test]
fn close_drains_then_refuses() {
    let test = open(quick());
    let handle = test.handle.clone();
    for n in 0..25 {
        for entry in simple_call(&format!("c{n:02}"), n * 1_000) {
            handle.record(entry).unwrap();
        }
    }
    // No flush: close itself drains what is queued.
    let stats = test.journal.close(PATIENCE).unwrap();
    assert_eq!((stats.written, stats.backlog), (100, 0));
    assert_eq!(
        handle.record(JournalEntry::new("late", at(0), started("+1", "+2", None))),
        Err(RecordError::Closed)
    );
    assert_eq!(handle.stats().dropped, 1);
    assert!(matches!(handle.flush(PATIENCE), Err(JournalError::Stopped)));
    // The WAL was checkpointed into the database and truncated.
    let wal = test.path.with_extension("db-wal");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    let reader = Reader::open(&test.path).unwrap();
    assert_eq!(calls_in(&reader), 25);
}

#[test]
fn dropping_the_journal_closes_it() {
    let test = open(quick());
    let handle = test.handle.clone();
    for entry in simple_call("c1", 0) {
        handle.record(entry).unwrap();
    }
    drop(test.journal);
    assert_eq!(handle.stats().written, 4);
    assert_eq!(
        handle.record(JournalEntry::new("late", at(0), started("+1", "+2", None))),
        Err(RecordError::Closed)
    );
}

#[test]
fn flush_and_close_are_bounded_on_a_stalled_disk() {
    let test = open(quick());
    test.handle.faults().hold();
    test.handle
        .record(JournalEntry::new("c1", at(0), started("+1", "+2", None)))
        .unwrap();
    let error = test.handle.flush(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(error, JournalError::Timeout(_)), "{error}");
    let handle = test.handle.clone();
    let error = test.journal.close(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(error, JournalError::Timeout(_)), "{error}");
    // The disk comes back: the writer finishes what it had and stops.
    handle.faults().release();
    let begin = Instant::now();
    while handle.record(JournalEntry::new("c2", at(1), started("+1", "+2", None)))
        != Err(RecordError::Closed)
    {
        assert!(begin.elapsed() < PATIENCE, "the writer never stopped");
        std::thread::yield_now();
    }
    let reader = Reader::open(&test.path).unwrap();
    assert!(reader.call("c1").unwrap().is_some());
}

#[test]
fn configuration_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    for config in [
        JournalConfig {
            linger: records::MAX_LINGER + Duration::from_millis(1),
            ..JournalConfig::default()
        },
        JournalConfig {
            capacity: 0,
            ..JournalConfig::default()
        },
        JournalConfig {
            max_batch: 0,
            ..JournalConfig::default()
        },
    ] {
        let error = Journal::open(&path, config).unwrap_err();
        assert!(matches!(error, JournalError::Config(_)), "{error}");
    }
    assert!(!path.exists(), "nothing is created for a bad configuration");
}

#[test]
fn open_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("journal.db");
    let error = Journal::open(&missing, JournalConfig::default()).unwrap_err();
    assert!(matches!(error, JournalError::Open { .. }), "{error}");
    assert!(error.to_string().contains("no-such-dir"), "{error}");

    let not_a_database = dir.path().join("notes.txt");
    std::fs::write(&not_a_database, "x".repeat(4096)).unwrap();
    let error = Journal::open(&not_a_database, JournalConfig::default()).unwrap_err();
    assert!(matches!(error, JournalError::Open { .. }), "{error}");
    assert!(Reader::open(&not_a_database).is_err());
}

#[test]
fn recent_calls_use_the_index() {
    // `/api/calls?limit=N` must not sort the whole table: the plan walks
    // calls_by_start backwards.
    let test = open(quick());
    record_all(&test.handle, simple_call("c1", 0));
    let connection = rusqlite_plan(&test.path);
    assert!(connection.contains("calls_by_start"), "{connection}");
    assert!(!connection.contains("TEMP B-TREE"), "{connection}");
}

/// The query plan of the newest-first listing, read with a plain SQLite
/// connection.
fn rusqlite_plan(path: &std::path::Path) -> String {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection
        .prepare(
            "EXPLAIN QUERY PLAN SELECT * FROM calls ORDER BY started_at DESC, id DESC LIMIT 50",
        )
        .unwrap();
    let details: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    details.join("; ")
}

#[test]
fn timestamps_are_kept_to_the_millisecond() {
    let test = open(quick());
    let when = at(1_234);
    record_all(
        &test.handle,
        vec![
            JournalEntry::new("c1", when, started("+1", "+2", None)),
            JournalEntry::new(
                "c1",
                at(5_678),
                CallEvent::Ended {
                    outcome: Outcome::Rejected,
                },
            ),
        ],
    );
    let reader = test.journal.reader().unwrap();
    let timeline = reader.call("c1").unwrap().unwrap();
    assert_eq!(timeline.call.started_at, when);
    assert_eq!(timeline.events[1].at, at(5_678));
    assert_eq!(timeline.call.ended_at, Some(at(5_678)));
}
