//! How one batch of entries becomes rows: for each entry, make sure the
//! call's row exists, append the event to `call_events`, then fold the
//! event into the row (the columns each [`CallEvent`] sets are listed on
//! it). A batch is one transaction: all of it is written or none.

use rusqlite::{Connection, params};

use crate::entry::{CallEvent, JournalEntry};
use crate::fault::FaultPlan;

/// Writes `batch` in one transaction. `faults` may fail it after the rows
/// are written and before the commit (the transaction is then rolled back,
/// as with a real I/O error at commit).
pub(crate) fn write_batch(
    connection: &mut Connection,
    batch: &[JournalEntry],
    faults: &FaultPlan,
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    for entry in batch {
        apply(&transaction, entry)?;
    }
    if let Some(error) = faults.take_failure() {
        // Dropping the transaction rolls it back.
        return Err(error);
    }
    transaction.commit()
}

/// One entry.
fn apply(connection: &Connection, entry: &JournalEntry) -> rusqlite::Result<()> {
    let id = entry.call.as_str();
    let at = entry.at.as_millisecond();
    connection
        .prepare_cached(
            "INSERT INTO calls (id, started_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![id, at])?;
    connection
        .prepare_cached(
            "INSERT INTO call_events (call_id, seq, at, kind, detail)
             VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM call_events WHERE call_id = ?1),
                     ?2, ?3, ?4)",
        )?
        .execute(params![
            id,
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
                .prepare_cached(
                    "UPDATE calls SET caller = ?2, dialed = ?3, source = coalesce(?4, source),
                         branch = coalesce(?5, branch), started_at = ?6
                     WHERE id = ?1",
                )?
                .execute(params![id, caller, dialed, source, branch, at])?;
        }
        CallEvent::Entered { source, branch } => {
            connection
                .prepare_cached(
                    "UPDATE calls SET answered_at = coalesce(answered_at, ?2),
                         source = coalesce(?3, source), branch = coalesce(?4, branch)
                     WHERE id = ?1",
                )?
                .execute(params![id, at, source, branch])?;
        }
        CallEvent::Queued {
            department,
            priority,
            sla_ms,
        } => {
            connection
                .prepare_cached(
                    "UPDATE calls SET department = ?2, priority = ?3, sla_ms = ?4,
                         queued_at = coalesce(queued_at, ?5)
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    department,
                    priority.as_str(),
                    clamp(*sla_ms),
                    at
                ])?;
        }
        CallEvent::Connected { agent, branch } => {
            connection
                .prepare_cached(
                    "UPDATE calls SET agent = ?2, branch = coalesce(branch, ?3),
                         wait_ms = CASE WHEN connected_at IS NULL AND queued_at IS NOT NULL
                                        THEN max(?4 - queued_at, 0) ELSE wait_ms END,
                         connected_at = coalesce(connected_at, ?4)
                     WHERE id = ?1",
                )?
                .execute(params![id, agent, branch, at])?;
        }
        CallEvent::Transferred { .. } => {
            connection
                .prepare_cached("UPDATE calls SET transfers = transfers + 1 WHERE id = ?1")?
                .execute(params![id])?;
        }
        CallEvent::Ended { outcome } => {
            connection
                .prepare_cached(
                    "UPDATE calls SET outcome = ?2, ended_at = ?3,
                         talk_ms = CASE WHEN connected_at IS NOT NULL
                                        THEN max(?3 - connected_at, 0) END,
                         wait_ms = CASE WHEN connected_at IS NULL AND queued_at IS NOT NULL
                                        THEN max(?3 - queued_at, 0) ELSE wait_ms END
                     WHERE id = ?1",
                )?
                .execute(params![id, outcome.as_str(), at])?;
        }
        CallEvent::MenuChoice { .. }
        | CallEvent::Offered { .. }
        | CallEvent::NoAnswer { .. }
        | CallEvent::Busy { .. }
        | CallEvent::Overflowed { .. } => {}
    }
    Ok(())
}

/// SQLite integers are signed.
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
