//! Callback entries in the journal (issue 22's virtual hold): accepted and
//! read back, rescheduled, finished, listed oldest first, kept across a
//! reopen, duplicates and unknown ids harmless, a failing disk counted.

mod support;

use records::{CallbackChange, CallbackRow, CallbackState, Journal, Priority, RecordError};
use support::{PATIENCE, at, open, quick};

/// A new entry of call `c-{id}` that entered routing at `enqueued_ms`.
fn entry(id: &str, enqueued_ms: i64) -> CallbackRow {
    CallbackRow {
        id: id.into(),
        call: format!("c-{id}"),
        queue: "pediatrics".into(),
        priority: Priority::Urgent,
        branch: Some("south".into()),
        language: Some("es".into()),
        number: "+13125550199".into(),
        enqueued_at: at(enqueued_ms),
        accepted_at: at(enqueued_ms + 90_000),
        attempts: 0,
        not_before: None,
        state: CallbackState::Waiting,
        agent: None,
        ended_at: None,
        reason: None,
    }
}

fn ids(rows: &[CallbackRow]) -> Vec<&str> {
    rows.iter().map(|row| row.id.as_str()).collect()
}

#[test]
fn an_accepted_callback_reads_back_equal_and_a_duplicate_is_ignored() {
    let test = open(quick());
    let first = entry("cb-1", 0);
    test.handle
        .record_callback(CallbackChange::Accepted(first.clone()))
        .unwrap();
    let mut again = entry("cb-1", 5_000);
    again.queue = "dermatology".into();
    test.handle
        .record_callback(CallbackChange::Accepted(again))
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();
    let reader = test.journal.reader().unwrap();
    assert_eq!(reader.callback("cb-1").unwrap(), Some(first.clone()));
    assert_eq!(reader.waiting_callbacks(10).unwrap(), [first]);
    assert_eq!(reader.callback("cb-unknown").unwrap(), None);
    let stats = test.handle.stats();
    assert_eq!((stats.written, stats.failed), (2, 0));
}

#[test]
fn an_accepted_callback_is_stored_waiting_whatever_its_row_says() {
    let test = open(quick());
    let mut odd = entry("cb-1", 0);
    odd.state = CallbackState::Connected;
    odd.agent = Some("1003".into());
    odd.ended_at = Some(at(1_000));
    odd.reason = Some("typo".into());
    test.handle
        .record_callback(CallbackChange::Accepted(odd))
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();
    let found = test.journal.reader().unwrap().callback("cb-1").unwrap();
    assert_eq!(found, Some(entry("cb-1", 0)));
}

#[test]
fn a_reschedule_sets_attempts_and_not_before_in_place() {
    let test = open(quick());
    for (id, ms) in [("cb-1", 0), ("cb-2", 10_000)] {
        test.handle
            .record_callback(CallbackChange::Accepted(entry(id, ms)))
            .unwrap();
    }
    test.handle
        .record_callback(CallbackChange::Rescheduled {
            id: "cb-1".into(),
            attempts: 1,
            not_before: at(400_000),
        })
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();
    let reader = test.journal.reader().unwrap();
    let mut expected = entry("cb-1", 0);
    expected.attempts = 1;
    expected.not_before = Some(at(400_000));
    assert_eq!(reader.callback("cb-1").unwrap(), Some(expected));
    assert_eq!(
        ids(&reader.waiting_callbacks(10).unwrap()),
        ["cb-1", "cb-2"],
        "still first: a retry keeps its place"
    );
}

#[test]
fn a_finished_callback_leaves_the_waiting_ones_with_its_end() {
    let test = open(quick());
    for (id, ms) in [("cb-1", 0), ("cb-2", 10_000), ("cb-3", 20_000)] {
        test.handle
            .record_callback(CallbackChange::Accepted(entry(id, ms)))
            .unwrap();
    }
    let changes = [
        CallbackChange::Finished {
            id: "cb-1".into(),
            state: CallbackState::Connected,
            agent: Some("1003".into()),
            at: at(300_000),
            attempts: 1,
            reason: None,
        },
        CallbackChange::Rescheduled {
            id: "cb-2".into(),
            attempts: 3,
            not_before: at(500_000),
        },
        CallbackChange::Finished {
            id: "cb-2".into(),
            state: CallbackState::Exhausted,
            agent: None,
            at: at(600_000),
            attempts: 4,
            reason: Some("no_answer".into()),
        },
        // Once ended, a late reschedule changes nothing.
        CallbackChange::Rescheduled {
            id: "cb-2".into(),
            attempts: 9,
            not_before: at(900_000),
        },
        // A finish that ends nothing is skipped.
        CallbackChange::Finished {
            id: "cb-3".into(),
            state: CallbackState::Waiting,
            agent: None,
            at: at(700_000),
            attempts: 2,
            reason: None,
        },
    ];
    for change in changes {
        test.handle.record_callback(change).unwrap();
    }
    test.handle.flush(PATIENCE).unwrap();
    let reader = test.journal.reader().unwrap();
    assert_eq!(ids(&reader.waiting_callbacks(10).unwrap()), ["cb-3"]);
    assert_eq!(
        reader.callback("cb-3").unwrap(),
        Some(entry("cb-3", 20_000))
    );

    let connected = reader.callback("cb-1").unwrap().unwrap();
    assert_eq!(connected.state, CallbackState::Connected);
    assert_eq!(connected.agent.as_deref(), Some("1003"));
    assert_eq!(connected.ended_at, Some(at(300_000)));
    assert_eq!(connected.attempts, 1);
    assert_eq!(connected.reason, None);
    assert_eq!(connected.enqueued_at, at(0), "the rest is kept");

    let exhausted = reader.callback("cb-2").unwrap().unwrap();
    assert_eq!(exhausted.state, CallbackState::Exhausted);
    assert_eq!(exhausted.agent, None);
    assert_eq!(exhausted.ended_at, Some(at(600_000)));
    assert_eq!(exhausted.attempts, 4);
    assert_eq!(exhausted.not_before, Some(at(500_000)));
    assert_eq!(exhausted.reason.as_deref(), Some("no_answer"));
}

#[test]
fn changes_of_an_unknown_callback_change_nothing_and_fail_nothing() {
    let test = open(quick());
    test.handle
        .record_callback(CallbackChange::Accepted(entry("cb-1", 0)))
        .unwrap();
    for change in [
        CallbackChange::Rescheduled {
            id: "cb-lost".into(),
            attempts: 1,
            not_before: at(1_000),
        },
        CallbackChange::Finished {
            id: "cb-lost".into(),
            state: CallbackState::Withdrawn,
            agent: None,
            at: at(2_000),
            attempts: 0,
            reason: Some("cancelled".into()),
        },
    ] {
        test.handle.record_callback(change).unwrap();
    }
    test.handle.flush(PATIENCE).unwrap();
    let stats = test.handle.stats();
    assert_eq!((stats.written, stats.failed, stats.failing), (3, 0, false));
    let reader = test.journal.reader().unwrap();
    assert_eq!(reader.callback("cb-lost").unwrap(), None);
    assert_eq!(reader.waiting_callbacks(10).unwrap(), [entry("cb-1", 0)]);
}

#[test]
fn waiting_callbacks_are_oldest_entered_first_up_to_the_limit() {
    let test = open(quick());
    // Accepted in another order than they entered routing; two entered
    // together are ordered by id.
    for (id, ms) in [
        ("cb-c", 30_000),
        ("cb-a", 10_000),
        ("cb-d", -5_000),
        ("cb-b", 10_000),
    ] {
        test.handle
            .record_callback(CallbackChange::Accepted(entry(id, ms)))
            .unwrap();
    }
    test.handle.flush(PATIENCE).unwrap();
    let reader = test.journal.reader().unwrap();
    assert_eq!(
        ids(&reader.waiting_callbacks(10).unwrap()),
        ["cb-d", "cb-a", "cb-b", "cb-c"]
    );
    assert_eq!(ids(&reader.waiting_callbacks(2).unwrap()), ["cb-d", "cb-a"]);
    assert!(reader.waiting_callbacks(0).unwrap().is_empty());
}

#[test]
fn waiting_callbacks_survive_a_restart() {
    let test = open(quick());
    for (id, ms) in [("cb-1", 0), ("cb-2", 10_000), ("cb-3", 20_000)] {
        test.handle
            .record_callback(CallbackChange::Accepted(entry(id, ms)))
            .unwrap();
    }
    test.handle
        .record_callback(CallbackChange::Rescheduled {
            id: "cb-2".into(),
            attempts: 2,
            not_before: at(700_000),
        })
        .unwrap();
    test.handle
        .record_callback(CallbackChange::Finished {
            id: "cb-3".into(),
            state: CallbackState::Withdrawn,
            agent: None,
            at: at(30_000),
            attempts: 0,
            reason: Some("cancelled".into()),
        })
        .unwrap();
    // No flush: closing drains the backlog, as at a shutdown.
    let stats = test.journal.close(PATIENCE).unwrap();
    assert_eq!((stats.written, stats.dropped, stats.failed), (5, 0, 0));

    let (journal, _handle) = Journal::open(&test.path, quick()).unwrap();
    let waiting = journal.reader().unwrap().waiting_callbacks(10).unwrap();
    let mut rescheduled = entry("cb-2", 10_000);
    rescheduled.attempts = 2;
    rescheduled.not_before = Some(at(700_000));
    assert_eq!(waiting, [entry("cb-1", 0), rescheduled]);
}

#[test]
fn a_failing_disk_loses_the_batch_counted_and_a_closed_journal_refuses() {
    let test = open(quick());
    test.handle.faults().fail_next(1);
    test.handle
        .record_callback(CallbackChange::Accepted(entry("cb-1", 0)))
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();
    assert_eq!(test.handle.stats().failed, 1);
    let reader = test.journal.reader().unwrap();
    assert_eq!(reader.callback("cb-1").unwrap(), None);
    // The disk is back: the next one is written.
    test.handle
        .record_callback(CallbackChange::Accepted(entry("cb-2", 0)))
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();
    assert_eq!(ids(&reader.waiting_callbacks(10).unwrap()), ["cb-2"]);

    let handle = test.handle.clone();
    test.journal.close(PATIENCE).unwrap();
    let refused = handle.record_callback(CallbackChange::Accepted(entry("cb-3", 0)));
    assert_eq!(refused, Err(RecordError::Closed));
    assert_eq!(handle.stats().dropped, 1);
}

#[test]
fn a_calls_callbacks_are_found_whatever_their_state() {
    let test = open(quick());
    for (id, ms) in [("cb-1", 0), ("cb-2", 10_000)] {
        test.handle
            .record_callback(CallbackChange::Accepted(entry(id, ms)))
            .unwrap();
    }
    test.handle
        .record_callback(CallbackChange::Finished {
            id: "cb-1".into(),
            state: CallbackState::Connected,
            agent: Some("1003".into()),
            at: at(120_000),
            attempts: 1,
            reason: None,
        })
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();
    let reader = test.journal.reader().unwrap();
    let found = reader.callbacks_of_call("c-cb-1").unwrap();
    assert_eq!(ids(&found), ["cb-1"]);
    assert_eq!(found[0].state, CallbackState::Connected);
    assert_eq!(found[0].enqueued_at, at(0), "the place it kept");
    assert!(reader.callbacks_of_call("c-none").unwrap().is_empty());
}
