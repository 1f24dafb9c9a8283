//! How one batch of entries becomes rows: for each entry, make sure the
//! call's row exists, append the event to `call_events`, then fold the
//! event into the row (the columns each [`CallEvent`] sets are listed on
//! it). A batch is one transaction: all of it is written or none.

use jiff::Timestamp;
use rusqlite::{Connection, params};

use crate::entry::{CallEvent, JournalEntry, Outcome};
use crate::fault::FaultPlan;
use crate::webhooks::Hooks;

/// Writes `batch` in one transaction. `faults` may fail it after the rows
/// are written and before the commit (the transaction is then rolled back,
/// as with a real I/O error at commit).
///
/// With `ship` (the journal has a PostgreSQL replica), each call touched
/// is marked in `outbox` in the same transaction, so the replica's
/// shipper finds it even after a kill -9 (see [`crate::replica`]).
///
/// A call's end queues `call.ended` for the webhooks that hear it, in the
/// same transaction (see [`crate::webhooks`]).
pub(crate) fn write_batch(
    connection: &mut Connection,
    batch: &[JournalEntry],
    faults: &FaultPlan,
    ship: bool,
    hooks: Hooks<'_>,
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    for entry in batch {
        apply(&transaction, entry)?;
        if ship {
            mark(&transaction, entry.call.as_str())?;
        }
        if matches!(entry.event, CallEvent::Ended { .. }) {
            hooks.call_ended(&transaction, entry.call.as_str(), entry.at)?;
        }
    }
    if let Some(error) = faults.take_failure() {
        // Dropping the transaction rolls it back.
        return Err(error);
    }
    transaction.commit()
}

/// Ends every call the journal shows in progress with outcome
/// `interrupted`, at the time of its last recorded step (the last moment
/// it is known to have been up; nothing later is invented), in one
/// transaction. Returns how many.
/// The claim holdings it left held end `interrupted` too
/// ([`crate::claims`]), in the same transaction.
/// With `ship`, each closed call is marked in `outbox` as in
/// [`write_batch`]. The local file only holds this node's calls, so a node
/// never closes another's (several nodes share PostgreSQL, not this file).
pub(crate) fn close_interrupted(
    connection: &mut Connection,
    ship: bool,
    hooks: Hooks<'_>,
) -> rusqlite::Result<u64> {
    let transaction = connection.transaction()?;
    let open: Vec<(String, i64)> = {
        let mut statement = transaction.prepare(
            "SELECT c.id, coalesce(max(e.at), c.started_at)
             FROM calls c LEFT JOIN call_events e ON e.call_id = c.id
             WHERE c.outcome = 'in_progress'
             GROUP BY c.id",
        )?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (id, last) in &open {
        let at = Timestamp::from_millisecond(*last).unwrap_or(Timestamp::UNIX_EPOCH);
        let ended = CallEvent::Ended {
            outcome: Outcome::Interrupted,
        };
        apply(&transaction, &JournalEntry::new(id.as_str(), at, ended))?;
        if ship {
            mark(&transaction, id)?;
        }
        hooks.call_ended(&transaction, id, at)?;
    }
    // And the claim holdings it left held (see crate::claims).
    let holdings = crate::claims::close_interrupted(&transaction, ship)?;
    if holdings > 0 {
        tracing::warn!(
            holdings,
            "claim holdings left by a stopped daemon closed as interrupted"
        );
    }
    transaction.commit()?;
    Ok(open.len() as u64)
}

/// Makes sure the call's row exists and takes the event's sequence number
/// from it, in one statement. (A `max(seq) + 1` subquery in [`EVENT`] was
/// re-prepared on every execution by SQLite's STAT4 planner and cost half
/// the writer's time; see the test `no_statement_is_prepared_again`.)
const ROW_AND_SEQ: &str = "INSERT INTO calls (id, started_at, events) VALUES (?1, ?2, 1)
     ON CONFLICT (id) DO UPDATE SET events = events + 1
     RETURNING events";

/// Appends to the timeline.
const EVENT: &str =
    "INSERT INTO call_events (call_id, seq, at, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)";

/// [`CallEvent::Started`].
const STARTED: &str = "UPDATE calls SET caller = ?2, dialed = ?3, source = coalesce(?4, source),
         branch = coalesce(?5, branch), started_at = ?6
     WHERE id = ?1";

/// [`CallEvent::Entered`].
const ENTERED: &str = "UPDATE calls SET answered_at = coalesce(answered_at, ?2),
         source = coalesce(?3, source), branch = coalesce(?4, branch)
     WHERE id = ?1";

/// [`CallEvent::Queued`].
const QUEUED: &str = "UPDATE calls SET department = ?2, priority = ?3, sla_ms = ?4,
         queued_at = coalesce(queued_at, ?5)
     WHERE id = ?1";

/// [`CallEvent::Connected`].
const CONNECTED: &str = "UPDATE calls SET agent = ?2, branch = coalesce(branch, ?3),
         wait_ms = CASE WHEN connected_at IS NULL AND queued_at IS NOT NULL
                        THEN max(?4 - queued_at, 0) ELSE wait_ms END,
         connected_at = coalesce(connected_at, ?4)
     WHERE id = ?1";

/// [`CallEvent::Transferred`].
const TRANSFERRED: &str = "UPDATE calls SET transfers = transfers + 1 WHERE id = ?1";

/// [`CallEvent::Ended`].
const ENDED: &str = "UPDATE calls SET outcome = ?2, ended_at = ?3,
         talk_ms = CASE WHEN connected_at IS NOT NULL THEN max(?3 - connected_at, 0) END,
         wait_ms = CASE WHEN connected_at IS NULL AND queued_at IS NOT NULL
                        THEN max(?3 - queued_at, 0) ELSE wait_ms END
     WHERE id = ?1";

/// Marks a call to ship (see `schema::version_5`).
const OUTBOX: &str = "INSERT INTO outbox (call_id, gen) VALUES (?1, 1)
     ON CONFLICT (call_id) DO UPDATE SET gen = gen + 1";

/// Marks call `id` in the outbox.
fn mark(connection: &Connection, id: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(OUTBOX)?.execute(params![id])?;
    Ok(())
}

/// One entry.
fn apply(connection: &Connection, entry: &JournalEntry) -> rusqlite::Result<()> {
    let id = entry.call.as_str();
    let at = entry.at.as_millisecond();
    let seq: i64 = connection
        .prepare_cached(ROW_AND_SEQ)?
        .query_row(params![id, at], |row| row.get(0))?;
    connection.prepare_cached(EVENT)?.execute(params![
        id,
        seq,
        at,
        entry.event.kind(),
        entry.event.detail().to_string()
    ])?;
    match &entry.event {
        CallEvent::Started {
            caller,
            dialed,
            source,
            branch,
        } => {
            connection
                .prepare_cached(STARTED)?
                .execute(params![id, caller, dialed, source, branch, at])?;
        }
        CallEvent::Entered { source, branch } => {
            connection
                .prepare_cached(ENTERED)?
                .execute(params![id, at, source, branch])?;
        }
        CallEvent::Queued {
            department,
            priority,
            sla_ms,
        } => {
            connection.prepare_cached(QUEUED)?.execute(params![
                id,
                department,
                priority.as_str(),
                clamp(*sla_ms),
                at
            ])?;
        }
        CallEvent::Connected { agent, branch } => {
            connection
                .prepare_cached(CONNECTED)?
                .execute(params![id, agent, branch, at])?;
        }
        CallEvent::Transferred { .. } => {
            connection
                .prepare_cached(TRANSFERRED)?
                .execute(params![id])?;
        }
        CallEvent::Ended { outcome } => {
            connection
                .prepare_cached(ENDED)?
                .execute(params![id, outcome.as_str(), at])?;
        }
        CallEvent::MenuChoice { .. }
        | CallEvent::SpeechHeard { .. }
        | CallEvent::Offered { .. }
        | CallEvent::NoAnswer { .. }
        | CallEvent::Busy { .. }
        | CallEvent::Callback { .. }
        | CallEvent::Overflowed { .. } => {}
    }
    Ok(())
}

/// SQLite integers are signed.
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Outcome, Priority};
    use crate::schema::{self, Synchronous};
    use jiff::Timestamp;
    use rusqlite::StatementStatus;

    /// Every kind of event, for three calls, in three batches.
    fn batches() -> Vec<Vec<JournalEntry>> {
        (0..3)
            .map(|n| {
                let call = format!("c{n}");
                let at = Timestamp::from_second(1_000 + n).unwrap();
                [
                    CallEvent::Started {
                        caller: "+1".into(),
                        dialed: "+2".into(),
                        source: None,
                        branch: None,
                    },
                    CallEvent::Entered {
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
                        branch: None,
                    },
                    CallEvent::Transferred {
                        to: "1001".into(),
                        reason: None,
                        to_agent: None,
                        note: None,
                    },
                    CallEvent::Ended {
                        outcome: Outcome::Connected,
                    },
                ]
                .into_iter()
                .map(|event| JournalEntry::new(call.as_str(), at, event))
                .collect()
            })
            .collect()
    }

    #[test]
    fn no_statement_is_prepared_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut connection =
            schema::open_writer(&dir.path().join("journal.db"), Synchronous::Normal, None).unwrap();
        let faults = FaultPlan::default();
        let queue = crate::webhooks::WebhookQueue::default();
        let subscriptions = crate::webhooks::Subscriptions(vec![crate::webhooks::Subscription {
            webhook: "crm".into(),
            events: vec![domain::WebhookEvent::CallEnded],
            max_pending: 1_000_000,
        }]);
        let hooks = Hooks {
            queue: &queue,
            subscriptions: &subscriptions,
        };
        for batch in batches() {
            write_batch(&mut connection, &batch, &faults, true, hooks).unwrap();
        }
        for sql in [
            ROW_AND_SEQ,
            EVENT,
            STARTED,
            ENTERED,
            QUEUED,
            CONNECTED,
            TRANSFERRED,
            ENDED,
            OUTBOX,
        ] {
            let statement = connection.prepare_cached(sql).unwrap();
            assert_eq!(statement.get_status(StatementStatus::RePrepare), 0, "{sql}");
        }
        let seqs: Vec<(String, i64)> = connection
            .prepare("SELECT call_id, max(seq) FROM call_events GROUP BY call_id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(seqs, [("c0".into(), 6), ("c1".into(), 6), ("c2".into(), 6)]);
    }
}
