//! Reading callbacks: the waiting ones (what a restart gives back to
//! routing), one by id, and those a call asked for.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::CallbackRow;
use crate::error::QueryError;
use crate::reader::Reader;

/// The columns of [`CallbackRow`], in its field order.
const CALLBACK_COLUMNS: &str = "id, call, queue, priority, branch, language, number, enqueued_at, \
     accepted_at, attempts, not_before, state, agent, ended_at, reason";

impl CallbackRow {
    fn from_row(row: &Row<'_>) -> Result<Self, QueryError> {
        let id: String = row.get(0)?;
        let corrupt =
            |error: &dyn std::fmt::Display| QueryError::Corrupt(format!("callback {id}: {error}"));
        let priority: String = row.get(3)?;
        let state: String = row.get(11)?;
        let attempts: i64 = row.get(9)?;
        Ok(CallbackRow {
            call: row.get(1)?,
            queue: row.get(2)?,
            priority: priority.parse().map_err(|e| corrupt(&e))?,
            branch: row.get(4)?,
            language: row.get(5)?,
            number: row.get(6)?,
            enqueued_at: timestamp(row.get(7)?)?,
            accepted_at: timestamp(row.get(8)?)?,
            attempts: u32::try_from(attempts).map_err(|e| corrupt(&e))?,
            not_before: row.get::<_, Option<i64>>(10)?.map(timestamp).transpose()?,
            state: state.parse().map_err(|e| corrupt(&e))?,
            agent: row.get(12)?,
            ended_at: row.get::<_, Option<i64>>(13)?.map(timestamp).transpose()?,
            reason: row.get(14)?,
            id,
        })
    }
}

fn timestamp(millis: i64) -> Result<Timestamp, QueryError> {
    Timestamp::from_millisecond(millis)
        .map_err(|error| QueryError::Corrupt(format!("time {millis}: {error}")))
}

impl Reader {
    /// The entries still waiting, oldest `enqueued_at` first (then by id),
    /// at most `limit`: what the daemon gives back to routing at start,
    /// each with its original times.
    pub fn waiting_callbacks(&self, limit: usize) -> Result<Vec<CallbackRow>, QueryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {CALLBACK_COLUMNS} FROM callbacks WHERE state = 'waiting'
                 ORDER BY enqueued_at, id LIMIT ?1"
            ))?;
            let mut rows = statement.query(params![limit])?;
            let mut callbacks = Vec::new();
            while let Some(row) = rows.next()? {
                callbacks.push(CallbackRow::from_row(row)?);
            }
            Ok(callbacks)
        })
    }

    /// The entries call `call` (`c-…`) left behind, whatever their state,
    /// oldest first: one at most, unless the journal was tampered with.
    pub fn callbacks_of_call(&self, call: &str) -> Result<Vec<CallbackRow>, QueryError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {CALLBACK_COLUMNS} FROM callbacks WHERE call = ?1
                 ORDER BY accepted_at, id LIMIT 16"
            ))?;
            let mut rows = statement.query(params![call])?;
            let mut callbacks = Vec::new();
            while let Some(row) = rows.next()? {
                callbacks.push(CallbackRow::from_row(row)?);
            }
            Ok(callbacks)
        })
    }

    /// One entry, whatever its state; `None` for an unknown id.
    pub fn callback(&self, id: &str) -> Result<Option<CallbackRow>, QueryError> {
        self.with(|connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {CALLBACK_COLUMNS} FROM callbacks WHERE id = ?1"
                ))?
                .query_row(params![id], |row| Ok(CallbackRow::from_row(row)))
                .optional()?
                .transpose()
        })
    }
}
