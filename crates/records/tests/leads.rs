//! Leads in the journal: stored before the sender hears back, idempotency
//! keys claimed once inside the writer, nothing stored when the disk
//! fails, reopened intact, listed, related to the patient's calls, open
//! leads with emergencies first, the report, and the signatures a restart
//! needs.

mod support;

use std::sync::mpsc;

use jiff::SignedDuration;
use records::{
    Idempotency, Journal, JournalEntry, LeadEvent, LeadId, LeadKind, LeadQuery, LeadSignature,
    LeadState, LeadStored, LeadWriteError, NewLead, Priority, TimeRange,
};
use serde_json::json;
use support::{PATIENCE, at, open, quick, started};

fn lead(id: &str, at_ms: i64) -> NewLead {
    let created_at = at(at_ms);
    NewLead {
        id: LeadId::new(id),
        kind: LeadKind::WebForm,
        created_at,
        source: "website".into(),
        campaign: Some("fall-ortho".into()),
        name: Some("Ana Diaz".into()),
        phone: "+13125550199".into(),
        email: None,
        message: "my knee hurts".into(),
        postal_code: Some("60605".into()),
        consent: json!({"call": true}),
        department: "orthopedics".into(),
        intent: Some("knee".into()),
        emergency: false,
        branch: Some("south".into()),
        priority: Priority::Routine,
        respond_by: created_at + SignedDuration::from_mins(5),
        signature: None,
        idempotency: None,
    }
}

/// Stores `lead` and waits for the writer's answer.
fn store(handle: &records::JournalHandle, lead: NewLead) -> Result<LeadStored, LeadWriteError> {
    let (send, receive) = mpsc::channel();
    handle.store_lead(lead, move |result| {
        let _ = send.send(result);
    })?;
    receive.recv_timeout(PATIENCE).expect("the writer answers")
}

fn keyed(mut lead: NewLead, key: &str, hash: &str, since_ms: i64) -> NewLead {
    lead.idempotency = Some(Idempotency {
        key: key.into(),
        request_hash: hash.into(),
        honoured_since: at(since_ms),
    });
    lead
}

#[test]
fn a_lead_is_on_disk_when_its_sender_hears_and_survives_a_reopen() {
    let test = open(quick());
    let mut signed = lead("l-1", 0);
    signed.signature = Some(LeadSignature {
        signed_at: at(0).as_second(),
        mac: "ab".repeat(32),
    });
    assert_eq!(store(&test.handle, signed), Ok(LeadStored::Created));
    // Read at once, without a flush: the answer came after the commit.
    let reader = test.journal.reader().unwrap();
    let found = reader.lead("l-1").unwrap().expect("stored");
    assert_eq!(found.lead.state, LeadState::Waiting);
    assert_eq!(found.history.len(), 1);
    let json = found.lead.to_json(&found.history, &[]);
    assert_eq!(json["intent"], json!({"matched": "knee"}));
    assert_eq!(json["consent"], json!({"call": true}));
    assert_eq!(json["history"][0]["event"], "created");
    assert_eq!(json["respond_by"], "2026-03-02T14:05:00Z");
    assert_eq!(json["outcome"], serde_json::Value::Null);
    let stats = test.journal.close(PATIENCE).unwrap();
    assert_eq!((stats.written, stats.failed, stats.backlog), (1, 0, 0));

    let (journal, _handle) = Journal::open(&test.path, quick()).unwrap();
    let reader = journal.reader().unwrap();
    assert!(
        reader.lead("l-1").unwrap().is_some(),
        "kept across a reopen"
    );
    let signatures = reader.lead_signatures_since(at(-1_000)).unwrap();
    assert_eq!(signatures, [(at(0).as_second(), "ab".repeat(32))]);
    assert!(reader.lead_signatures_since(at(1_000)).unwrap().is_empty());
}

#[test]
fn an_idempotency_key_makes_one_lead_within_its_window() {
    let test = open(quick());
    let first = keyed(lead("l-1", 0), "order-7", "h1", -1_000);
    assert_eq!(store(&test.handle, first), Ok(LeadStored::Created));
    let repeat = keyed(lead("l-2", 1_000), "order-7", "h1", -1_000);
    assert_eq!(
        store(&test.handle, repeat),
        Ok(LeadStored::Existing {
            id: LeadId::new("l-1"),
            request_hash: "h1".into()
        })
    );
    // Another source's key of the same name is its own.
    let mut other = keyed(lead("l-3", 2_000), "order-7", "h9", -1_000);
    other.source = "form-builder".into();
    assert_eq!(store(&test.handle, other), Ok(LeadStored::Created));
    // Past the window the key is free again.
    let late = keyed(lead("l-4", 3_000), "order-7", "h2", 500);
    assert_eq!(store(&test.handle, late), Ok(LeadStored::Created));
    let reader = test.journal.reader().unwrap();
    let ids: Vec<String> = reader
        .leads(&LeadQuery {
            limit: 10,
            state: None,
        })
        .unwrap()
        .into_iter()
        .map(|t| t.lead.id.to_string())
        .collect();
    assert_eq!(ids, ["l-4", "l-3", "l-1"], "newest first, no l-2");
}

#[test]
fn two_posts_with_one_key_in_one_batch_make_one_lead() {
    let test = open(quick());
    test.handle.faults().hold();
    let (send, receive) = mpsc::channel();
    for id in ["l-a", "l-b"] {
        let send = send.clone();
        test.handle
            .store_lead(keyed(lead(id, 0), "k", "h", -1_000), move |result| {
                let _ = send.send(result);
            })
            .unwrap();
    }
    test.handle.faults().release();
    let mut answers: Vec<_> = (0..2)
        .map(|_| receive.recv_timeout(PATIENCE).unwrap().unwrap())
        .collect();
    answers.sort_by_key(|a| matches!(a, LeadStored::Existing { .. }));
    assert_eq!(answers[0], LeadStored::Created);
    assert!(matches!(answers[1], LeadStored::Existing { .. }));
}

#[test]
fn a_failing_disk_stores_nothing_and_says_so() {
    let test = open(quick());
    test.handle.faults().fail_next(1);
    let result = store(&test.handle, keyed(lead("l-1", 0), "k", "h", -1_000));
    assert!(
        matches!(result, Err(LeadWriteError::Failed(_))),
        "{result:?}"
    );
    let reader = test.journal.reader().unwrap();
    assert!(reader.lead("l-1").unwrap().is_none());
    // The key was not claimed either: the retry makes the lead.
    let retry = store(&test.handle, keyed(lead("l-2", 0), "k", "h", -1_000));
    assert_eq!(retry, Ok(LeadStored::Created));
    assert_eq!(test.handle.stats().failed, 1);
}

#[test]
fn a_closed_journal_refuses_at_once() {
    let test = open(quick());
    let handle = test.handle.clone();
    test.journal.close(PATIENCE).unwrap();
    let refused = handle.store_lead(lead("l-1", 0), |_| panic!("never called"));
    assert_eq!(refused, Err(LeadWriteError::Closed));
}

#[test]
fn related_calls_and_leads_of_the_same_patient() {
    let test = open(quick());
    for (call, caller, ms) in [
        ("c-1", "+13125550199", -60_000),
        ("c-2", "3125550199", -30_000),
        ("c-3", "+13125550100", -20_000),
        ("c-4", "+13125550199", 60_000),
    ] {
        test.handle
            .record(JournalEntry::new(
                call,
                at(ms),
                started(caller, "+15550100", None),
            ))
            .unwrap();
    }
    test.handle.flush(PATIENCE).unwrap();
    store(&test.handle, lead("l-0", -10_000)).unwrap();
    store(&test.handle, lead("l-1", 0)).unwrap();
    let mut stranger = lead("l-2", -5_000);
    stranger.phone = "+13125550100".into();
    store(&test.handle, stranger).unwrap();
    let reader = test.journal.reader().unwrap();
    let forms = [
        "+13125550199".to_string(),
        "13125550199".into(),
        "3125550199".into(),
    ];
    let related = reader
        .related("+13125550199", &forms, at(0), "l-1", 50)
        .unwrap();
    assert_eq!(related, ["l-0", "c-2", "c-1"], "earlier, newest first");
}

#[test]
fn open_leads_put_emergencies_first_then_the_oldest() {
    let test = open(quick());
    store(&test.handle, lead("l-old", 0)).unwrap();
    store(&test.handle, lead("l-new", 2_000)).unwrap();
    let mut emergency = lead("l-er", 1_000);
    emergency.emergency = true;
    emergency.priority = Priority::Urgent;
    emergency.department = "urgent-care".into();
    store(&test.handle, emergency).unwrap();
    let reader = test.journal.reader().unwrap();
    let ids: Vec<String> = reader
        .open_leads(10)
        .unwrap()
        .into_iter()
        .map(|l| l.id.to_string())
        .collect();
    assert_eq!(ids, ["l-er", "l-old", "l-new"]);
    let alerts: Vec<String> = reader
        .unanswered_emergencies(10)
        .unwrap()
        .into_iter()
        .map(|l| l.id.to_string())
        .collect();
    assert_eq!(alerts, ["l-er"]);
    let waiting = reader
        .leads(&LeadQuery {
            limit: 2,
            state: Some(LeadState::Waiting),
        })
        .unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(
        reader
            .leads(&LeadQuery {
                limit: 10,
                state: Some(LeadState::Closed),
            })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_report_counts_leads_per_source_and_department() {
    let test = open(quick());
    for (id, ms, department) in [
        ("l-1", 0, "orthopedics"),
        ("l-2", 1_000, "orthopedics"),
        ("l-3", 2_000, "dermatology"),
        ("l-4", 7_200_000, "orthopedics"),
    ] {
        let mut new = lead(id, ms);
        new.department = department.into();
        store(&test.handle, new).unwrap();
    }
    let reader = test.journal.reader().unwrap();
    let range = TimeRange::new(at(-1_000), at(3_600_000)).unwrap();
    let report = reader.lead_report(&range, at(3_600_000)).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["sources"],
        json!([{
            "source": "website",
            "leads": 3,
            "contacted_within_window": 0.0,
            "speed_to_lead_ms": {"p50": null, "p90": null},
            "leaked": 3,
            "booked": 0,
        }])
    );
    assert_eq!(json["departments"][0]["department"], "dermatology");
    assert_eq!(json["departments"][1]["leads"], 2);
    // Within their windows, none has leaked yet.
    let early = reader.lead_report(&range, at(60_000)).unwrap();
    assert_eq!(early.sources[0].figures.leaked, 0);
}

#[test]
fn the_wal_is_checkpointed_beside_the_writer() {
    // Commits never checkpoint (wal_autocheckpoint = 0); the checkpoint
    // thread copies the log into the database file meanwhile.
    let test = open(records::JournalConfig {
        checkpoint_every: std::time::Duration::from_millis(10),
        ..quick()
    });
    let before = std::fs::metadata(&test.path).unwrap().len();
    for n in 0..500 {
        store(&test.handle, lead(&format!("l-{n}"), n)).unwrap();
    }
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::fs::metadata(&test.path).unwrap().len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was checkpointed into the database file"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let reader = test.journal.reader().unwrap();
    assert!(reader.lead("l-499").unwrap().is_some());
}

fn change(
    id: &str,
    at_ms: i64,
    event: &'static str,
    agent: Option<&str>,
    state: LeadState,
) -> records::LeadChange {
    records::LeadChange {
        id: LeadId::new(id),
        at: at(at_ms),
        event,
        agent: agent.map(str::to_string),
        detail: json!({}),
        owner: agent.map(str::to_string),
        state,
        outcome: None,
        first_contact_at: None,
        snoozed_until: None,
    }
}

#[test]
fn changes_fold_into_the_lead_and_a_restart_reads_the_desk_back() {
    let test = open(quick());
    assert_eq!(store(&test.handle, lead("l-1", 0)), Ok(LeadStored::Created));
    assert_eq!(
        store(&test.handle, lead("l-2", 1_000)),
        Ok(LeadStored::Created)
    );
    // l-1: offered to 1004 until 2 min, expired, offered to 1008, accepted,
    // contacted at 90 s, booked.
    let mut offered = change("l-1", 1_000, "offered", Some("1004"), LeadState::Offered);
    offered.detail = json!({"until": at(121_000).as_millisecond()});
    test.handle.record_lead(offered).unwrap();
    let mut expired = change(
        "l-1",
        121_000,
        "offer_expired",
        Some("1004"),
        LeadState::Waiting,
    );
    expired.owner = None;
    test.handle.record_lead(expired).unwrap();
    test.handle
        .record_lead(change(
            "l-1",
            121_000,
            "accepted",
            Some("1008"),
            LeadState::Accepted,
        ))
        .unwrap();
    let mut contacted = change(
        "l-1",
        150_000,
        "contacted",
        Some("1008"),
        LeadState::Contacted,
    );
    contacted.first_contact_at = Some(at(150_000));
    test.handle.record_lead(contacted).unwrap();
    let mut closed = change("l-1", 160_000, "closed", Some("1008"), LeadState::Closed);
    closed.outcome = Some(records::LeadOutcome::Booked);
    closed.first_contact_at = Some(at(160_000));
    test.handle.record_lead(closed).unwrap();
    // l-2: offered to 1004 until 3 min, still open; an unknown lead's
    // change is ignored.
    let mut offered = change("l-2", 2_000, "offered", Some("1004"), LeadState::Offered);
    offered.detail = json!({"until": at(180_000).as_millisecond()});
    test.handle.record_lead(offered).unwrap();
    test.handle
        .record_lead(change(
            "l-9",
            2_000,
            "accepted",
            Some("1004"),
            LeadState::Accepted,
        ))
        .unwrap();
    test.handle.flush(PATIENCE).unwrap();

    let reader = test.journal.reader().unwrap();
    let one = reader.lead("l-1").unwrap().unwrap();
    assert_eq!(one.lead.state, LeadState::Closed);
    assert_eq!(one.lead.owner.as_deref(), Some("1008"));
    assert_eq!(
        one.lead.first_contact_at,
        Some(at(150_000)),
        "the first contact is kept"
    );
    let events: Vec<&str> = one.history.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "created",
            "offered",
            "offer_expired",
            "accepted",
            "contacted",
            "closed"
        ]
    );
    let desk = reader.desk_leads(100).unwrap();
    assert_eq!(desk.len(), 1);
    assert_eq!(desk[0].lead.id.as_str(), "l-2");
    assert_eq!(desk[0].lead.owner.as_deref(), Some("1004"));
    assert_eq!(desk[0].offered_until, Some(at(180_000)));
    assert!(!desk[0].escalated);
    let report = reader
        .lead_report(
            &TimeRange::new(at(-1_000), at(10_000)).unwrap(),
            at(600_000),
        )
        .unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["sources"][0]["leads"], 2);
    assert_eq!(json["sources"][0]["booked"], 1);
    assert_eq!(json["sources"][0]["speed_to_lead_ms"]["p50"], 150_000);
    assert_eq!(json["sources"][0]["leaked"], 1);
}

fn step(
    lead: &str,
    at_ms: i64,
    event: &str,
    detail: serde_json::Value,
    first_contact: bool,
) -> LeadEvent {
    LeadEvent {
        lead: LeadId::new(lead),
        at: at(at_ms),
        event: event.into(),
        agent: Some("1004".into()),
        detail,
        first_contact,
    }
}

#[test]
fn a_call_outs_steps_join_the_history_and_the_first_answer_is_the_first_contact() {
    let test = open(quick());
    assert_eq!(store(&test.handle, lead("l-1", 0)), Ok(LeadStored::Created));
    let steps = [
        step("l-1", 1_000, "call_started", json!({}), false),
        step(
            "l-1",
            2_000,
            "call_failed",
            json!({"reason": "agent_busy"}),
            false,
        ),
        step("l-1", 3_000, "call_started", json!({}), false),
        step("l-1", 9_000, "patient_answered", json!({}), true),
        step("l-1", 20_000, "call_ended", json!({"by": "agent"}), false),
        // A later answer is not the first contact.
        step("l-1", 30_000, "patient_answered", json!({}), true),
        // An unknown lead's step is skipped; the others are written.
        step("l-404", 30_000, "call_started", json!({}), false),
    ];
    for one in steps {
        test.handle.record_lead_event(one).unwrap();
    }
    test.handle.flush(PATIENCE).unwrap();
    let reader = test.journal.reader().unwrap();
    let found = reader.lead("l-1").unwrap().expect("stored");
    assert_eq!(found.lead.first_contact_at, Some(at(9_000)));
    assert_eq!(found.lead.state, LeadState::Contacted);
    let json = found.lead.to_json(&found.history, &[]);
    let events: Vec<&str> = json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "created",
            "call_started",
            "call_failed",
            "call_started",
            "patient_answered",
            "call_ended",
            "patient_answered"
        ]
    );
    assert_eq!(json["history"][2]["reason"], "agent_busy");
    assert_eq!(json["history"][2]["agent"], "1004");
    assert_eq!(json["history"][5]["by"], "agent");
    assert!(json["history"][1].get("reason").is_none());
    assert!(reader.lead("l-404").unwrap().is_none());
    let stats = test.journal.close(PATIENCE).unwrap();
    assert_eq!((stats.failed, stats.dropped, stats.backlog), (0, 0, 0));
}
