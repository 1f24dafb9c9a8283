//! The delivery side of the outbox: a connection of its own on the
//! journal's file (module docs of [`super`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::WebhookQueue;
use crate::error::{JournalError, QueryError};

/// One event taken for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The outbox row.
    pub row: i64,
    /// The event's id (`l-….3`, `c-….ended`), the same on every try.
    pub event_id: String,
    /// Its kind's name.
    pub kind: String,
    /// The JSON body, exactly as signed and sent.
    pub body: String,
    /// Tries that failed before this one.
    pub attempts: u32,
}

/// One webhook's backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingCount {
    /// Events waiting (including those in flight).
    pub events: u64,
    /// When the oldest of them happened, Unix milliseconds.
    pub oldest_ms: Option<i64>,
}

/// The delivery service's handle on the outbox.
#[derive(Debug)]
pub struct WebhookOutbox {
    connection: Connection,
    queue: Arc<WebhookQueue>,
}

impl WebhookOutbox {
    pub(crate) fn open(path: &Path, queue: Arc<WebhookQueue>) -> Result<Self, JournalError> {
        let open_error = |source| JournalError::Open {
            path: PathBuf::from(path),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut connection = Connection::open_with_flags(path, flags).map_err(open_error)?;
        crate::schema::writing(&mut connection).map_err(open_error)?;
        // A lost delete (power cut after its commit) only sends an event
        // twice, which receivers expect (delivery is at least once): no
        // fsync per delivery.
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        Ok(WebhookOutbox { connection, queue })
    }

    /// Up to `limit` of `webhook`'s events due at `now_ms` (Unix ms),
    /// oldest due first, leaving out the rows in `leased` (those the
    /// caller has in flight).
    ///
    /// A read: the lease is the caller's, in memory, not a write to the
    /// file. The delivery service is the outbox's only reader, so nothing
    /// else could take a row it has in flight; and writing each lease
    /// rewrote the whole row (its body too) and took the journal's write
    /// lock once more per batch, for a guarantee a restart needs no more
    /// than this: after a restart nothing is in flight, and every row not
    /// yet deleted is due (sent again, at least once).
    pub fn claim(
        &mut self,
        webhook: &str,
        now_ms: i64,
        limit: usize,
        leased: &HashSet<i64>,
    ) -> Result<Vec<Claimed>, QueryError> {
        // A read transaction: one snapshot for the ids and their rows.
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        let wanted = limit.saturating_add(leased.len());
        let rows: Vec<i64> = {
            let mut due = transaction.prepare_cached(
                "SELECT id FROM webhook_outbox
                 WHERE webhook = ?1 AND next_at <= ?2 ORDER BY next_at, id LIMIT ?3",
            )?;
            let ids = due.query_map(
                params![webhook, now_ms, i64::try_from(wanted).unwrap_or(i64::MAX)],
                |row| row.get(0),
            )?;
            let mut rows = Vec::new();
            for id in ids {
                let id = id?;
                if !leased.contains(&id) {
                    rows.push(id);
                    if rows.len() == limit {
                        break;
                    }
                }
            }
            rows
        };
        let mut claimed = Vec::with_capacity(rows.len());
        {
            let mut read = transaction.prepare_cached(
                "SELECT event_id, kind, body, attempts FROM webhook_outbox WHERE id = ?1",
            )?;
            for row in rows {
                claimed.push(read.query_row(params![row], |columns| {
                    Ok(Claimed {
                        row,
                        event_id: columns.get(0)?,
                        kind: columns.get(1)?,
                        body: columns.get(2)?,
                        attempts: u32::try_from(columns.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                    })
                })?);
            }
        }
        transaction.commit()?;
        Ok(claimed)
    }

    /// The receiver answered 2xx: the event is gone.
    pub fn delivered(&mut self, webhook: &str, rows: &[i64]) -> Result<(), QueryError> {
        let transaction = self.connection.transaction()?;
        let mut deleted = 0;
        {
            let mut delete =
                transaction.prepare_cached("DELETE FROM webhook_outbox WHERE id = ?1")?;
            for row in rows {
                deleted += delete.execute(params![row])? as u64;
            }
        }
        transaction.commit()?;
        self.queue.delivered(webhook, deleted);
        Ok(())
    }

    /// A try failed: the next is at `next_ms`; `error` says why (no
    /// patient data: a status or a transport error).
    pub fn failed(&mut self, row: i64, next_ms: i64, error: &str) -> Result<(), QueryError> {
        self.connection
            .prepare_cached(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?2, last_error = ?3
                 WHERE id = ?1",
            )?
            .execute(params![row, next_ms, error])?;
        Ok(())
    }

    /// Writes a round of results in one transaction: `delivered` rows
    /// (webhook, row) deleted, `failed` ones (row, next try in Unix ms,
    /// why) rescheduled.
    pub fn settle(
        &mut self,
        delivered: &[(String, i64)],
        failed: &[(i64, i64, String)],
    ) -> Result<(), QueryError> {
        let transaction = self.connection.transaction()?;
        let mut gone: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        {
            let mut delete =
                transaction.prepare_cached("DELETE FROM webhook_outbox WHERE id = ?1")?;
            for (webhook, row) in delivered {
                *gone.entry(webhook).or_default() += delete.execute(params![row])? as u64;
            }
            let mut retry = transaction.prepare_cached(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?2, last_error = ?3
                 WHERE id = ?1",
            )?;
            for (row, next_ms, error) in failed {
                retry.execute(params![row, next_ms, error])?;
            }
        }
        transaction.commit()?;
        for (webhook, count) in gone {
            self.queue.delivered(webhook, count);
        }
        Ok(())
    }

    /// When `webhook`'s next event is due (Unix ms), if it has any.
    pub fn next_due(&mut self, webhook: &str) -> Result<Option<i64>, QueryError> {
        Ok(self
            .connection
            .prepare_cached("SELECT min(next_at) FROM webhook_outbox WHERE webhook = ?1")?
            .query_row(params![webhook], |row| row.get(0))?)
    }

    /// Every webhook's backlog (also corrects the writer's tracked counts).
    pub fn pending(&mut self) -> Result<Vec<(String, PendingCount)>, QueryError> {
        let counts = self
            .connection
            .prepare_cached(
                "SELECT webhook, count(*), min(created_at) FROM webhook_outbox GROUP BY webhook",
            )?
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    PendingCount {
                        events: row.get::<_, i64>(1)?.max(0) as u64,
                        oldest_ms: row.get(2)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        self.queue.set_counts(
            counts
                .iter()
                .map(|(webhook, count)| (webhook.clone(), count.events)),
        );
        Ok(counts)
    }

    /// Deletes the events of webhooks not in `configured` (removed from
    /// the dialplan, or renamed); returns how many.
    pub fn forget_others(&mut self, configured: &[String]) -> Result<u64, QueryError> {
        let known: Vec<String> = self
            .connection
            .prepare_cached("SELECT DISTINCT webhook FROM webhook_outbox")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut deleted = 0;
        for webhook in known.iter().filter(|w| !configured.contains(w)) {
            deleted += self
                .connection
                .prepare_cached("DELETE FROM webhook_outbox WHERE webhook = ?1")?
                .execute(params![webhook])? as u64;
        }
        if deleted > 0 {
            self.queue.forget_counts();
        }
        Ok(deleted)
    }
}
