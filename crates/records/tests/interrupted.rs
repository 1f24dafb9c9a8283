//! Calls a stopped daemon left in progress: closed as `interrupted` when
//! the journal is next opened, counted apart from abandoned in every
//! report, and left out of the abandonment window and of the tracker
//! seeded from it.

mod support;

use std::time::Duration;

use records::{AbandonmentTracker, CallEvent, Journal, JournalEntry, Outcome, TimeRange};
use support::{
    PATIENCE, at, connected, entered, open, quick, record_all, routine, scripted_calls, started,
};

#[test]
fn calls_left_in_progress_are_closed_as_interrupted_and_reported_apart() {
    let test = open(quick());
    let main = |caller: &str| started(caller, "+15550100", None);
    let mut entries = scripted_calls();
    // c10 (in the script) waits in dermatology while 1004 rings; c11 talks
    // with 1006, who answered it from pediatrics; c12 is in the IVR.
    for (call, ms, event) in [
        ("c11", 1_200_000, main("+13125550152")),
        ("c11", 1_201_000, entered(Some("main-line"))),
        ("c11", 1_205_000, routine("pediatrics")),
        ("c11", 1_207_000, connected("1006")),
        ("c12", 1_300_000, main("+13125550153")),
        ("c12", 1_301_000, entered(Some("main-line"))),
    ] {
        entries.push(JournalEntry::new(call, at(ms), event));
    }
    record_all(&test.handle, entries);
    let path = test.path.clone();
    // The daemon "dies": the journal is closed with those calls open.
    test.journal.close(PATIENCE).unwrap();

    let (journal, _handle) = Journal::open(&path, quick()).unwrap();
    assert_eq!(journal.close_interrupted(PATIENCE).unwrap(), 3);
    assert_eq!(journal.close_interrupted(PATIENCE).unwrap(), 0, "once only");
    let reader = journal.reader().unwrap();

    let c10 = reader.call("c10").unwrap().expect("c10");
    assert_eq!(c10.call.outcome, Some(Outcome::Interrupted));
    assert_eq!(
        c10.call.ended_at,
        Some(at(1_105_000)),
        "its last step's time"
    );
    assert_eq!(
        c10.events.last().map(|e| &e.event),
        Some(&CallEvent::Ended {
            outcome: Outcome::Interrupted
        })
    );
    assert_eq!(c10.call.to_json()["outcome"], "interrupted");
    let hour = TimeRange::new(at(0), at(3_600_000)).unwrap();
    assert!(
        reader
            .recent_calls(100)
            .unwrap()
            .iter()
            .all(|call| call.outcome.is_some()),
        "nothing in progress"
    );

    let departments = reader.department_report(&hour).unwrap();
    let department = |id: &str| departments.iter().find(|d| d.id == id).unwrap();
    let dermatology = department("dermatology");
    assert_eq!(
        (
            dermatology.offered,
            dermatology.abandoned,
            dermatology.interrupted
        ),
        (1, 0, 1)
    );
    assert_eq!(
        serde_json::to_value(dermatology).unwrap()["interrupted"],
        1,
        "shown when not 0"
    );
    let pediatrics = department("pediatrics");
    assert_eq!(
        (
            pediatrics.offered,
            pediatrics.connected,
            pediatrics.interrupted
        ),
        (3, 3, 1)
    );
    assert_eq!(department("cardiology").interrupted, 0);
    assert!(
        serde_json::to_value(department("cardiology"))
            .unwrap()
            .get("interrupted")
            .is_none(),
        "DESIGN.md's shape when 0"
    );

    let agents = reader.agent_report(&hour).unwrap();
    let agent = |id: &str| agents.iter().find(|a| a.id == id).unwrap();
    assert_eq!(agent("1004").interrupted, 1, "ringing");
    assert_eq!(agent("1006").interrupted, 1, "talking");
    assert_eq!(agent("1003").interrupted, 0);

    let sources = reader.source_report(&hour).unwrap();
    let main_line = sources
        .iter()
        .find(|s| s.source.as_deref() == Some("main-line"))
        .unwrap();
    assert_eq!(
        (
            main_line.interrupted,
            main_line.in_progress,
            main_line.abandoned
        ),
        (3, 0, 2)
    );

    // The abandonment window, and the tracker a restarted daemon seeds
    // from it, count no interrupted wait: neither resolved nor abandoned.
    let window = reader.abandonment_window(&hour).unwrap();
    assert!(
        window.iter().all(|w| w.department != "dermatology"),
        "{window:?}"
    );
    let visits = reader.resolved_visits(&hour).unwrap();
    assert!(
        visits
            .iter()
            .all(|(department, _, _)| department != "dermatology")
    );
    let mut tracker = AbandonmentTracker::new(Duration::from_secs(3_600));
    tracker.seed(visits);
    let seeded = tracker.window(at(3_599_999));
    assert!(
        seeded.iter().all(|w| w.department != "dermatology"),
        "{seeded:?}"
    );
    assert_eq!(
        seeded,
        reader
            .abandonment_window(&TimeRange::last(Duration::from_secs(3_600), at(3_599_999)))
            .unwrap()
    );
}

#[test]
fn the_live_tracker_forgets_an_interrupted_wait() {
    let mut tracker = AbandonmentTracker::new(Duration::from_secs(600));
    for (ms, event) in [
        (0, routine("pediatrics")),
        (
            5_000,
            CallEvent::Ended {
                outcome: Outcome::Interrupted,
            },
        ),
    ] {
        tracker.record(&JournalEntry::new("c1", at(ms), event));
    }
    assert!(tracker.window(at(6_000)).is_empty());
}
