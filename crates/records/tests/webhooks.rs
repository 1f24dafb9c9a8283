//! The webhooks' outbox: events written by the transaction of their
//! change, only for the webhooks that hear them, leased, deleted on
//! delivery, rescheduled on failure, kept across a reopen, and bounded.

mod support;

use std::collections::HashSet;
use std::sync::mpsc;

use jiff::SignedDuration;
use records::{
    Journal, JournalEntry, LeadChange, LeadId, LeadKind, LeadState, LeadStored, NewLead, Outcome,
    Priority, Subscription, Subscriptions, WebhookOutbox,
};
use serde_json::{Value, json};
use support::{PATIENCE, T0_MS, at, connected, ended, open, quick, routine, started};

use domain::WebhookEvent;

fn lead(id: &str, at_ms: i64) -> NewLead {
    let created_at = at(at_ms);
    NewLead {
        id: LeadId::new(id),
        kind: LeadKind::WebForm,
        created_at,
        source: "website".into(),
        campaign: None,
        name: Some("Ana Diaz".into()),
        phone: "+13125550199".into(),
        email: None,
        message: "my knee hurts".into(),
        postal_code: None,
        consent: json!({"call": true}),
        department: "orthopedics".into(),
        intent: None,
        emergency: false,
        branch: None,
        priority: Priority::Routine,
        respond_by: created_at + SignedDuration::from_mins(5),
        signature: None,
        idempotency: None,
    }
}

fn store(handle: &records::JournalHandle, lead: NewLead) -> LeadStored {
    let (send, receive) = mpsc::channel();
    handle
        .store_lead(lead, move |result| {
            let _ = send.send(result);
        })
        .unwrap();
    receive.recv_timeout(PATIENCE).unwrap().unwrap()
}

fn subscriptions(max_pending: u64) -> Subscriptions {
    Subscriptions(vec![
        Subscription {
            webhook: "crm".into(),
            events: WebhookEvent::ALL.to_vec(),
            max_pending,
        },
        Subscription {
            webhook: "calls-only".into(),
            events: vec![WebhookEvent::CallEnded],
            max_pending,
        },
    ])
}

fn offered(id: &str, at_ms: i64, agent: &str) -> LeadChange {
    LeadChange {
        id: LeadId::new(id),
        at: at(at_ms),
        event: "offered",
        agent: Some(agent.into()),
        detail: json!({"until": T0_MS + at_ms + 60_000}),
        owner: Some(agent.into()),
        state: LeadState::Offered,
        outcome: None,
        first_contact_at: None,
        snoozed_until: None,
    }
}

fn bodies(outbox: &mut WebhookOutbox, webhook: &str) -> Vec<Value> {
    outbox
        .claim(webhook, i64::MAX / 2, 100, &HashSet::new())
        .unwrap()
        .into_iter()
        .map(|claimed| serde_json::from_str(&claimed.body).unwrap())
        .collect()
}

#[test]
fn each_change_queues_its_event_for_the_webhooks_that_hear_it() {
    let test = open(quick());
    test.handle.set_webhooks(subscriptions(100));
    assert_eq!(store(&test.handle, lead("l-1", 0)), LeadStored::Created);
    test.handle
        .record_lead(offered("l-1", 1_000, "1004"))
        .unwrap();
    // A snooze is no webhook event.
    let mut snoozed = offered("l-1", 2_000, "1004");
    snoozed.event = "snoozed";
    test.handle.record_lead(snoozed).unwrap();
    for (ms, event) in [
        (0, started("+13125550142", "+15550100", Some("main-line"))),
        (1_000, routine("pediatrics")),
        (3_000, connected("1003")),
        (9_000, ended(Outcome::Connected)),
    ] {
        test.handle
            .record(JournalEntry::new("c-1", at(ms), event))
            .unwrap();
    }
    test.journal.flush(PATIENCE).unwrap();

    let mut outbox = test.handle.webhook_outbox().unwrap();
    // One batch writes calls' steps before leads' changes: the outbox is
    // not ordered across them (each event has its id and its time).
    let mut crm = bodies(&mut outbox, "crm");
    crm.sort_by_key(|b| b["kind"] == "call.ended");
    let kinds: Vec<&str> = crm.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["lead.created", "lead.offered", "call.ended"]);
    assert_eq!(crm[0]["id"], "l-1.1");
    assert_eq!(crm[0]["lead"]["source"], "website");
    assert_eq!(crm[0]["lead"]["respond_by"], "2026-03-02T14:05:00Z");
    assert!(crm[0]["lead"].get("history").is_none());
    assert_eq!(crm[1]["id"], "l-1.2");
    assert_eq!(crm[1]["lead"]["owner"], "1004");
    assert_eq!(crm[1]["agent"], "1004");
    assert_eq!(crm[1]["detail"]["until"], T0_MS + 61_000);
    assert_eq!(crm[2]["id"], "c-1.ended");
    assert_eq!(crm[2]["at"], "2026-03-02T14:00:09Z");
    assert_eq!(crm[2]["call"]["owner"], "1003");
    assert_eq!(crm[2]["call"]["source"], "main-line");
    assert_eq!(crm[2]["call"]["wait_ms"], 2_000);
    assert_eq!(crm[2]["call"]["talk_ms"], 6_000);
    let calls = bodies(&mut outbox, "calls-only");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0], crm[2]);
}

#[test]
fn leased_events_wait_delivered_ones_go_and_failed_ones_come_back_when_due() {
    let test = open(quick());
    test.handle.set_webhooks(subscriptions(100));
    store(&test.handle, lead("l-1", 0));
    store(&test.handle, lead("l-2", 0));
    let mut outbox = test.handle.webhook_outbox().unwrap();
    let now = jiff::Timestamp::now().as_millisecond() + 1;
    let mut leased = HashSet::new();
    let first = outbox.claim("crm", now, 1, &leased).unwrap();
    assert_eq!(first.len(), 1);
    leased.insert(first[0].row);
    let second = outbox.claim("crm", now, 10, &leased).unwrap();
    assert_eq!(second.len(), 1, "the leased one is not claimed again");
    assert_ne!(first[0].row, second[0].row);
    leased.insert(second[0].row);
    assert!(outbox.claim("crm", now, 10, &leased).unwrap().is_empty());
    // Unless the caller lets go of it (a restart): every row not deleted
    // is due again.
    assert_eq!(
        outbox.claim("crm", now, 10, &HashSet::new()).unwrap().len(),
        2
    );
    outbox.delivered("crm", &[first[0].row]).unwrap();
    outbox.failed(second[0].row, now + 500, "503").unwrap();
    leased.clear();
    assert!(
        outbox
            .claim("crm", now + 499, 10, &leased)
            .unwrap()
            .is_empty()
    );
    assert_eq!(outbox.next_due("crm").unwrap(), Some(now + 500));
    let again = outbox.claim("crm", now + 500, 10, &leased).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].body, second[0].body, "the same bytes every try");
    let pending = outbox.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0, "crm");
    assert_eq!(pending[0].1.events, 1);
}

#[test]
fn events_survive_a_reopen_and_a_full_outbox_drops_new_ones() {
    let test = open(quick());
    test.handle.set_webhooks(subscriptions(2));
    for n in 0..4 {
        store(&test.handle, lead(&format!("l-{n}"), n));
    }
    assert_eq!(test.handle.webhook_dropped().get("crm"), Some(&2));
    test.journal.close(PATIENCE).unwrap();

    let (journal, handle) = Journal::open(&test.path, quick()).unwrap();
    let mut outbox = handle.webhook_outbox().unwrap();
    let kept: Vec<String> = bodies(&mut outbox, "crm")
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, ["l-0.1", "l-1.1"], "the oldest are kept");
    // A webhook taken out of the dialplan loses its events.
    assert_eq!(outbox.forget_others(&["calls-only".into()]).unwrap(), 2);
    assert!(outbox.pending().unwrap().is_empty());
    drop(journal);
}

#[test]
fn the_outbox_leases_and_settles_while_the_writer_commits_leads() {
    // Two connections write the file: the journal's writer (here storing
    // leads as fast as it can) and the outbox. Every lease and every
    // settle must get the lock in its turn; none may fail because the
    // other committed in between.
    const LEADS: usize = 2_000;
    let test = open(quick());
    test.handle.set_webhooks(subscriptions(100_000));
    let writer = {
        let handle = test.handle.clone();
        std::thread::spawn(move || {
            let (send, receive) = mpsc::channel();
            for n in 0..LEADS {
                let send = send.clone();
                handle
                    .store_lead(lead(&format!("l-{n}"), n as i64), move |result| {
                        let _ = send.send(result.is_ok());
                    })
                    .unwrap();
            }
            (0..LEADS)
                .filter(|_| receive.recv_timeout(PATIENCE).unwrap())
                .count()
        })
    };
    let mut outbox = test.handle.webhook_outbox().unwrap();
    let mut delivered = 0;
    let mut errors = Vec::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while delivered < LEADS && std::time::Instant::now() < deadline {
        let now = jiff::Timestamp::now().as_millisecond() + 1;
        match outbox.claim("crm", now, 8, &HashSet::new()) {
            Ok(claimed) => {
                let rows: Vec<(String, i64)> =
                    claimed.iter().map(|c| ("crm".to_string(), c.row)).collect();
                match outbox.settle(&rows, &[]) {
                    Ok(()) => delivered += rows.len(),
                    Err(error) => errors.push(format!("settle: {error}")),
                }
            }
            Err(error) => errors.push(format!("claim: {error}")),
        }
    }
    assert_eq!(writer.join().unwrap(), LEADS, "every lead stored");
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    assert_eq!(delivered, LEADS);
}

#[test]
fn the_log_starts_over_while_leads_and_their_deliveries_stream_in() {
    // The writer commits leads (and their events) without a pause while
    // the outbox takes and deletes them: passive checkpoints alone never
    // caught up, and the log grew by every page written. With the bound,
    // the checkpointer makes the log start over whenever it passes it.
    const LEADS: usize = 20_000;
    const LIMIT: u64 = 1024 * 1024;
    let test = open(records::JournalConfig {
        checkpoint_every: std::time::Duration::from_millis(10),
        wal_limit_bytes: LIMIT,
        ..quick()
    });
    test.handle.set_webhooks(subscriptions(100_000));
    let writer = {
        let handle = test.handle.clone();
        std::thread::spawn(move || {
            // In waves of a thousand: within the channel's bound, and
            // never a pause long enough for the checkpoints to catch up.
            let (send, receive) = mpsc::channel();
            let mut stored = 0;
            for wave in 0..LEADS / 1_000 {
                for n in wave * 1_000..(wave + 1) * 1_000 {
                    let send = send.clone();
                    handle
                        .store_lead(lead(&format!("l-{n}"), n as i64), move |result| {
                            let _ = send.send(result.is_ok());
                        })
                        .unwrap();
                }
                if wave > 0 {
                    stored += (0..1_000)
                        .filter(|_| receive.recv_timeout(PATIENCE).unwrap())
                        .count();
                }
            }
            stored
                + (0..1_000)
                    .filter(|_| receive.recv_timeout(PATIENCE).unwrap())
                    .count()
        })
    };
    let wal = test.path.with_extension("db-wal");
    let mut outbox = test.handle.webhook_outbox().unwrap();
    let mut largest = 0;
    let mut delivered = 0;
    let deadline = std::time::Instant::now() + PATIENCE;
    while delivered < LEADS && std::time::Instant::now() < deadline {
        let now = jiff::Timestamp::now().as_millisecond() + 1;
        let claimed = outbox.claim("crm", now, 64, &HashSet::new()).unwrap();
        let rows: Vec<(String, i64)> = claimed.iter().map(|c| ("crm".to_string(), c.row)).collect();
        outbox.settle(&rows, &[]).unwrap();
        delivered += rows.len();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        // A round every few milliseconds, as the delivery service's: a
        // reader that never pauses keeps any log from starting over.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(writer.join().unwrap(), LEADS, "every lead stored");
    assert_eq!(delivered, LEADS);
    eprintln!("largest log: {} KiB", largest / 1024);
    // Over the bound by what is written between two checkpoints, not by
    // everything written.
    assert!(
        largest < 8 * LIMIT,
        "the log reached {} KiB (bound {} KiB)",
        largest / 1024,
        LIMIT / 1024
    );
}
