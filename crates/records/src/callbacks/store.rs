//! The writer's side of callbacks: a run of changes in one transaction,
//! in the order they were recorded.

use rusqlite::{Connection, params};

use super::{CallbackChange, CallbackState};
use crate::fault::FaultPlan;

/// A new entry, waiting; a second one with the same id is ignored (only
/// the primary key's conflict: any other refusal is an error).
const ACCEPTED: &str = "INSERT INTO callbacks (id, call, queue, priority, branch, language, number,
         enqueued_at, accepted_at, attempts, not_before, state)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'waiting')
     ON CONFLICT (id) DO NOTHING";

/// A retry's pause, on an entry still waiting.
const RESCHEDULED: &str = "UPDATE callbacks SET attempts = ?2, not_before = ?3
     WHERE id = ?1 AND state = 'waiting'";

const FINISHED: &str = "UPDATE callbacks SET state = ?2, agent = ?3, ended_at = ?4, attempts = ?5,
         reason = ?6
     WHERE id = ?1";

/// Writes `changes` in one transaction, in order. A change of an unknown
/// id matches no row and changes nothing. `faults` may fail the batch
/// before the commit (rolled back, as a real I/O error at commit would be).
pub(crate) fn write_callbacks(
    connection: &mut Connection,
    changes: &[CallbackChange],
    faults: &FaultPlan,
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    for change in changes {
        match change {
            CallbackChange::Accepted(row) => {
                transaction.prepare_cached(ACCEPTED)?.execute(params![
                    row.id,
                    row.call,
                    row.queue,
                    row.priority.as_str(),
                    row.branch,
                    row.language,
                    row.number,
                    row.enqueued_at.as_millisecond(),
                    row.accepted_at.as_millisecond(),
                    row.attempts,
                    row.not_before.map(|at| at.as_millisecond()),
                ])?;
            }
            CallbackChange::Rescheduled {
                id,
                attempts,
                not_before,
            } => {
                transaction.prepare_cached(RESCHEDULED)?.execute(params![
                    id,
                    attempts,
                    not_before.as_millisecond()
                ])?;
            }
            CallbackChange::Finished {
                id,
                state,
                agent,
                at,
                attempts,
                reason,
            } => {
                if *state == CallbackState::Waiting {
                    // The driver's mistake, not the patient's: the entry
                    // stays as it was rather than waiting with an end.
                    tracing::warn!(callback = %id, "a callback finished as waiting: skipped");
                    continue;
                }
                transaction.prepare_cached(FINISHED)?.execute(params![
                    id,
                    state.as_str(),
                    agent,
                    at.as_millisecond(),
                    attempts,
                    reason,
                ])?;
            }
        }
    }
    if let Some(error) = faults.take_failure() {
        return Err(error);
    }
    transaction.commit()
}
