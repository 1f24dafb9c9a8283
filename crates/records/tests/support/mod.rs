//! Shared by the integration tests: a journal in a temporary directory and
//! a scripted day of calls with known answers.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use records::{CallEvent, Journal, JournalConfig, JournalEntry, JournalHandle, Outcome, Priority};

/// Monday 2026-03-02 14:00:00 UTC: the script's time zero.
pub const T0_MS: i64 = 1_772_460_000_000;

/// `ms` milliseconds after [`T0_MS`].
pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(T0_MS + ms).unwrap()
}

/// A journal in a fresh temporary directory (kept alive by the returned
/// guard).
pub struct TestJournal {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub journal: Journal,
    pub handle: JournalHandle,
}

pub fn open(config: JournalConfig) -> TestJournal {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let (journal, handle) = Journal::open(&path, config).unwrap();
    TestJournal {
        dir,
        path,
        journal,
        handle,
    }
}

/// Small batches, short linger: what the tests need to see rows quickly.
pub fn quick() -> JournalConfig {
    JournalConfig {
        linger: Duration::from_millis(5),
        ..JournalConfig::default()
    }
}

/// Generous: for flushes and closes that must not time out on a loaded
/// machine, and that only take long if something is broken.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn started(caller: &str, dialed: &str, source: Option<&str>) -> CallEvent {
    CallEvent::Started {
        caller: caller.into(),
        dialed: dialed.into(),
        source: source.map(str::to_string),
        branch: None,
    }
}

pub fn entered(source: Option<&str>) -> CallEvent {
    CallEvent::Entered {
        source: source.map(str::to_string),
        branch: None,
    }
}

pub fn menu(digits: &str) -> CallEvent {
    CallEvent::MenuChoice {
        menu: "main".into(),
        digits: digits.into(),
    }
}

pub fn queued(department: &str, priority: Priority, sla_ms: u64) -> CallEvent {
    CallEvent::Queued {
        department: department.into(),
        priority,
        sla_ms,
    }
}

pub fn routine(department: &str) -> CallEvent {
    queued(department, Priority::Routine, 60_000)
}

pub fn offered(agent: &str) -> CallEvent {
    CallEvent::Offered {
        agent: agent.into(),
    }
}

pub fn no_answer(agent: &str) -> CallEvent {
    CallEvent::NoAnswer {
        agent: agent.into(),
    }
}

pub fn busy(agent: &str) -> CallEvent {
    CallEvent::Busy {
        agent: agent.into(),
    }
}

pub fn connected(agent: &str) -> CallEvent {
    CallEvent::Connected {
        agent: agent.into(),
        branch: None,
    }
}

pub fn overflowed(from: &str, to: Option<&str>) -> CallEvent {
    CallEvent::Overflowed {
        from: from.into(),
        to: to.map(str::to_string),
    }
}

pub fn ended(outcome: Outcome) -> CallEvent {
    CallEvent::Ended { outcome }
}

/// A short complete call: started, queued, connected, ended.
pub fn simple_call(id: &str, start_ms: i64) -> Vec<JournalEntry> {
    vec![
        JournalEntry::new(
            id,
            at(start_ms),
            started("+13125550100", "+15550100", Some("main-line")),
        ),
        JournalEntry::new(id, at(start_ms + 1_000), routine("front-desk")),
        JournalEntry::new(id, at(start_ms + 3_000), connected("1001")),
        JournalEntry::new(id, at(start_ms + 63_000), ended(Outcome::Connected)),
    ]
}

/// The scripted calls of `tests/reports.rs`, every call's steps in order,
/// all calls interleaved by time as a live daemon would emit them. Times
/// are milliseconds after T0; the report range is [T0, T0 + 1 h).
///
/// | call | path | outcome |
/// |---|---|---|
/// | c01 | main-line → 3 → pediatrics, 1003 answers after 3.1 s, talks 120 s | connected |
/// | c02 | main-line → 3 → pediatrics, 1003 busy, 1006 answers after 5.2 s, talks 60 s | connected |
/// | c03 | main-line → 2 → cardiology, 1002 no answer, rung again, caller hangs up at 40 s | abandoned |
/// | c04 | main-line → 2 → cardiology, max wait 90 s → front-desk, 1001 answers after 95 s total | connected |
/// | c05 | urgent campaign → urgent-care, 1005 answers after 10 s, transfers to cardiology after 60 s, 1002 answers after 5 s, talks 120 s | connected |
/// | c06 | main-line after hours, message, hangs up | after_hours |
/// | c07 | unknown number | rejected |
/// | c08 | main-line → 1 → front-desk, 1001 no answer, max wait 180 s → call back | overflowed |
/// | c09 | main-line, hangs up in the IVR | abandoned |
/// | c10 | main-line → dermatology, 1004 ringing (in progress) | — |
/// | c00 | before the range: pediatrics, 1003 no answer, abandoned | abandoned |
/// | c99 | starts exactly at the range's end | rejected |
pub fn scripted_calls() -> Vec<JournalEntry> {
    let main = |caller: &str| started(caller, "+15550100", None);
    let script: Vec<(&str, i64, CallEvent)> = vec![
        ("c00", -100_000, main("+13125550000")),
        ("c00", -99_000, entered(Some("main-line"))),
        ("c00", -95_000, routine("pediatrics")),
        ("c00", -95_000, offered("1003")),
        ("c00", -80_000, no_answer("1003")),
        ("c00", -10_000, ended(Outcome::Abandoned)),
        ("c01", 0, main("+13125550142")),
        ("c01", 1_000, entered(Some("main-line"))),
        ("c01", 5_000, menu("3")),
        ("c01", 6_000, routine("pediatrics")),
        ("c01", 6_000, offered("1003")),
        ("c01", 9_100, connected("1003")),
        ("c01", 129_100, ended(Outcome::Connected)),
        ("c02", 10_000, main("+13125550143")),
        ("c02", 11_000, entered(Some("main-line"))),
        ("c02", 14_000, menu("3")),
        ("c02", 15_000, routine("pediatrics")),
        ("c02", 15_000, offered("1003")),
        ("c02", 16_000, busy("1003")),
        ("c02", 16_000, offered("1006")),
        ("c02", 20_200, connected("1006")),
        ("c02", 80_200, ended(Outcome::Connected)),
        ("c03", 100_000, main("+13125550144")),
        ("c03", 101_000, entered(Some("main-line"))),
        ("c03", 104_000, menu("2")),
        ("c03", 105_000, routine("cardiology")),
        ("c03", 105_000, offered("1002")),
        ("c03", 120_000, no_answer("1002")),
        ("c03", 125_000, offered("1002")),
        ("c03", 145_000, ended(Outcome::Abandoned)),
        ("c04", 200_000, main("+13125550145")),
        ("c04", 201_000, entered(Some("main-line"))),
        ("c04", 204_000, menu("2")),
        ("c04", 205_000, routine("cardiology")),
        ("c04", 295_000, overflowed("cardiology", Some("front-desk"))),
        ("c04", 295_000, routine("front-desk")),
        ("c04", 296_000, offered("1001")),
        ("c04", 300_000, connected("1001")),
        ("c04", 360_000, ended(Outcome::Connected)),
        (
            "c05",
            400_000,
            started("+13125550146", "+15550111", Some("urgent-care-campaign")),
        ),
        ("c05", 401_000, entered(None)),
        (
            "c05",
            405_000,
            queued("urgent-care", Priority::Urgent, 30_000),
        ),
        ("c05", 405_000, offered("1005")),
        ("c05", 415_000, connected("1005")),
        (
            "c05",
            475_000,
            CallEvent::Transferred {
                to: "cardiology".into(),
                reason: Some("blind".into()),
                to_agent: None,
                note: None,
            },
        ),
        (
            "c05",
            475_000,
            queued("cardiology", Priority::Urgent, 60_000),
        ),
        ("c05", 476_000, offered("1002")),
        ("c05", 480_000, connected("1002")),
        ("c05", 600_000, ended(Outcome::Connected)),
        ("c06", 700_000, main("+13125550147")),
        ("c06", 701_000, entered(Some("main-line"))),
        ("c06", 720_000, ended(Outcome::AfterHours)),
        ("c07", 800_000, started("+13125550148", "+15559999", None)),
        ("c07", 800_200, ended(Outcome::Rejected)),
        ("c08", 900_000, main("+13125550149")),
        ("c08", 901_000, entered(Some("main-line"))),
        ("c08", 903_000, menu("1")),
        ("c08", 904_000, routine("front-desk")),
        ("c08", 904_000, offered("1001")),
        ("c08", 919_000, no_answer("1001")),
        ("c08", 1_084_000, overflowed("front-desk", None)),
        ("c08", 1_094_000, ended(Outcome::Overflowed)),
        ("c09", 1_000_000, main("+13125550150")),
        ("c09", 1_001_000, entered(Some("main-line"))),
        ("c09", 1_003_000, ended(Outcome::Abandoned)),
        ("c10", 1_100_000, main("+13125550151")),
        ("c10", 1_101_000, entered(Some("main-line"))),
        ("c10", 1_105_000, routine("dermatology")),
        ("c10", 1_105_000, offered("1004")),
        ("c99", 3_600_000, started("+13125550199", "+15559999", None)),
        ("c99", 3_600_100, ended(Outcome::Rejected)),
    ];
    let mut entries: Vec<JournalEntry> = script
        .into_iter()
        .map(|(call, ms, event)| JournalEntry::new(call, at(ms), event))
        .collect();
    // Interleave calls by time (stable: each call's own order is kept).
    entries.sort_by_key(|entry| entry.at);
    entries
}

/// Records every entry and waits until they are written.
pub fn record_all(handle: &JournalHandle, entries: Vec<JournalEntry>) {
    for entry in entries {
        handle.record(entry).unwrap();
    }
    handle.flush(PATIENCE).unwrap();
}
