//! The claim history (issue 24): who held which agent, from when to when,
//! so that overlaps can be checked long after Redis's change stream (capped
//! with `MAXLEN ~`) has forgotten them.
//!
//! # One row per holding
//! A cluster node claims an agent in Redis before it rings them
//! (`cluster::claims`); each claim has an epoch, one more than the agent's
//! last. A holding is `(agent, epoch)`: the row's key, in SQLite (schema
//! version 6) and in PostgreSQL (its schema version 2). Its columns:
//! `node` (the holder), `call_id` (the call it was claimed for, if any),
//! `claimed_at`, `ended_at` (Redis's clock, milliseconds since 1970, as
//! the change carries them: nodes never compare their own clocks), `ended`
//! (how it ended: `released`, `expired`, `reaped`, `interrupted`; `NULL`
//! while held) and `reaped_by` (the node that recorded a dead holder's
//! expiry).
//!
//! # Who writes what
//! Each node journals its own holdings ([`ClaimChange::Claimed`] from its
//! claim's answer, the release from the release's answer, its own expiry
//! from the change stream); the end of a dead node's holding is journalled
//! by the node whose script found its lease run out, the reaper
//! ([`ClaimEnd::Reaped`]). So one holding may be written by two nodes (the
//! holder's claim, a reaper's end), or twice by one (a restart): every
//! write is an upsert on `(agent, epoch)` ([`UPSERT_CLAIM`]) that keeps
//! what is known (`COALESCE`) and lets a better-known end replace a worse
//! one (released, reaped > expired > interrupted > none), whatever order
//! the rows arrive in. It is the same SQL text on both databases.
//!
//! A node that starts closes the holdings its previous process left open
//! as `interrupted`, end unknown ([`crate::Journal::close_interrupted`]):
//! a reaper's row, when it comes, gives the real end.
//!
//! # Shipping
//! Like calls (see [`crate::replica`]): written to the node's SQLite file
//! first, by the journal's writer, and marked in `claim_outbox` in the
//! same transaction; the shipper upserts them into PostgreSQL when it can.
//! While PostgreSQL is down they wait in the file.

use jiff::Timestamp;
use rusqlite::{Connection, Transaction, params};

use crate::error::QueryError;
use crate::fault::FaultPlan;
use crate::report::TimeRange;
use crate::sql::{Cell, Cells, Param};

/// How a holding ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClaimEnd {
    /// The holder let the agent go.
    Released,
    /// The holder's lease ran out, and its own script (or the holder
    /// itself, from the stream) recorded it.
    Expired,
    /// The lease ran out and another node recorded the expiry (the holder
    /// was dead or stalled): that node.
    Reaped {
        /// The node that recorded it.
        by: String,
    },
    /// The holder's process stopped while holding (found at its next
    /// start); the end is unknown until a reaper's row gives it.
    Interrupted,
}

impl ClaimEnd {
    /// The `ended` column's text.
    pub fn name(&self) -> &'static str {
        match self {
            ClaimEnd::Released => "released",
            ClaimEnd::Expired => "expired",
            ClaimEnd::Reaped { .. } => "reaped",
            ClaimEnd::Interrupted => "interrupted",
        }
    }

    fn reaped_by(&self) -> Option<&str> {
        match self {
            ClaimEnd::Reaped { by } => Some(by),
            _ => None,
        }
    }

    fn from_columns(ended: Option<String>, by: Option<String>) -> Result<Option<Self>, QueryError> {
        Ok(match ended.as_deref() {
            None => None,
            Some("released") => Some(ClaimEnd::Released),
            Some("expired") => Some(ClaimEnd::Expired),
            Some("interrupted") => Some(ClaimEnd::Interrupted),
            Some("reaped") => Some(ClaimEnd::Reaped {
                by: by.unwrap_or_default(),
            }),
            Some(other) => {
                return Err(QueryError::Corrupt(format!(
                    "claims: unknown end {other:?}"
                )));
            }
        })
    }
}

/// A step of a holding, for [`crate::JournalHandle::record_claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimChange {
    /// `node` claimed `agent` at `epoch` at `at` (Redis time), for `call`.
    Claimed {
        /// The agent.
        agent: String,
        /// The holder.
        node: String,
        /// The claim's epoch.
        epoch: u64,
        /// The call's journal id, if the claim was for a call.
        call: Option<String>,
        /// When, on Redis's clock.
        at: Timestamp,
    },
    /// The holding `(agent, epoch)` of `node` ended at `at` (Redis time).
    Ended {
        /// The agent.
        agent: String,
        /// The holder (not the reaper).
        node: String,
        /// The claim's epoch.
        epoch: u64,
        /// When, on Redis's clock (for an expiry: when the lease ran out).
        at: Timestamp,
        /// How.
        how: ClaimEnd,
    },
}

/// One holding as the `claims` table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    /// The agent.
    pub agent: String,
    /// The claim's epoch.
    pub epoch: u64,
    /// The holder.
    pub node: String,
    /// The call it was claimed for, if any (and known).
    pub call: Option<String>,
    /// When it was claimed; `None` if only its end was journalled (the
    /// holder died before its claim reached its journal).
    pub claimed_at: Option<Timestamp>,
    /// When it ended; `None` while held, or interrupted with its end
    /// unknown.
    pub ended_at: Option<Timestamp>,
    /// How it ended; `None` while held.
    pub ended: Option<ClaimEnd>,
}

/// The columns of [`ClaimRow`], in its field order (plus `reaped_by`).
pub(crate) const CLAIM_COLUMNS: &str =
    "agent, epoch, node, call_id, claimed_at, ended_at, ended, reaped_by";

/// `GET /api/claims`'s element (the OpenAPI document's `ClaimRow`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ClaimRow)]
pub struct ClaimRowJson {
    /// The agent.
    pub agent: String,
    /// The claim's epoch (one more per claim of the agent).
    pub epoch: u64,
    /// The node that held the agent.
    pub node: String,
    /// The call it was claimed for, if any (and known).
    pub call: Option<String>,
    /// RFC 3339 UTC (Redis's clock); `null` if only the end is known.
    pub claimed_at: Option<String>,
    /// RFC 3339 UTC; `null` while held, or interrupted with its end unknown.
    pub ended_at: Option<String>,
    /// `released`, `expired`, `reaped`, `interrupted`; `null` while held.
    pub ended: Option<String>,
    /// The node that reaped it (`null` unless reaped).
    pub reaped_by: Option<String>,
}

impl ClaimRow {
    /// `GET /api/claims`'s element: times in RFC 3339 UTC or `null`.
    pub fn to_json(&self) -> ClaimRowJson {
        ClaimRowJson {
            agent: self.agent.clone(),
            epoch: self.epoch,
            node: self.node.clone(),
            call: self.call.clone(),
            claimed_at: self.claimed_at.map(|at| at.to_string()),
            ended_at: self.ended_at.map(|at| at.to_string()),
            ended: self
                .ended
                .as_ref()
                .map(|end| ClaimEnd::name(end).to_string()),
            reaped_by: self
                .ended
                .as_ref()
                .and_then(ClaimEnd::reaped_by)
                .map(str::to_string),
        }
    }

    /// A row of [`CLAIM_COLUMNS`], from either database.
    pub(crate) fn from_cells(row: &[Cell]) -> Result<Self, QueryError> {
        let row = Cells(row);
        let time = |index: usize| -> Result<Option<Timestamp>, QueryError> {
            row.opt_int(index)?
                .map(|millis| {
                    Timestamp::from_millisecond(millis)
                        .map_err(|error| QueryError::Corrupt(format!("claims: {error}")))
                })
                .transpose()
        };
        Ok(ClaimRow {
            agent: row.text(0)?,
            epoch: u64::try_from(row.int(1)?)
                .map_err(|_| QueryError::Corrupt("claims: a negative epoch".into()))?,
            node: row.text(2)?,
            call: row.opt_text(3)?,
            claimed_at: time(4)?,
            ended_at: time(5)?,
            ended: ClaimEnd::from_columns(row.opt_text(6)?, row.opt_text(7)?)?,
        })
    }
}

/// Which holdings [`crate::Reader::claims`] lists: at most `limit`,
/// optionally of one agent, optionally only those that overlap a range
/// (a holding with an unknown end overlaps from its start on; an
/// interrupted one is taken at its start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimQuery {
    /// The most holdings to list.
    pub limit: usize,
    /// Only this agent's.
    pub agent: Option<String>,
    /// Only those that overlap this range.
    pub range: Option<TimeRange>,
}

impl ClaimQuery {
    /// The query's `WHERE` clause and parameters (`$1`… in order of first
    /// appearance, see [`crate::shared`]), and the `LIMIT` placeholder.
    pub(crate) fn filter(&self) -> (String, String, Vec<Param>) {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        let next = |param: Param, params: &mut Vec<Param>| {
            params.push(param);
            format!("${}", params.len())
        };
        if let Some(range) = &self.range {
            let (from, to) = range.millis();
            let from = next(Param::Int(from), &mut params);
            let to = next(Param::Int(to), &mut params);
            conditions.push(format!(
                "(ended_at >= {from} OR (ended_at IS NULL AND (ended IS NULL OR claimed_at >= {from}))) \
                 AND coalesce(claimed_at, ended_at) < {to}"
            ));
        }
        if let Some(agent) = &self.agent {
            conditions.push(format!(
                "agent = {}",
                next(Param::Text(agent.clone()), &mut params)
            ));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = next(
            Param::Int(i64::try_from(self.limit).unwrap_or(i64::MAX)),
            &mut params,
        );
        (filter, limit, params)
    }
}

/// How well an end is known, in SQL: a write replaces the row's end only
/// with a better-known one (see the module docs).
macro_rules! end_rank {
    ($row:literal) => {
        concat!(
            "CASE ",
            $row,
            ".ended WHEN 'released' THEN 3 WHEN 'reaped' THEN 3 WHEN 'expired' THEN 2 \
             WHEN 'interrupted' THEN 1 ELSE 0 END"
        )
    };
}

/// One write of a holding, on SQLite and on PostgreSQL alike: `$1` agent,
/// `$2` epoch, `$3` node, `$4` call id, `$5` claimed at, `$6` ended at,
/// `$7` how, `$8` reaped by. Idempotent, and the same row whatever order
/// the writes come in.
pub(crate) const UPSERT_CLAIM: &str = concat!(
    "INSERT INTO claims (agent, epoch, node, call_id, claimed_at, ended_at, ended, reaped_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (agent, epoch) DO UPDATE SET
        call_id = coalesce(claims.call_id, excluded.call_id),
        claimed_at = coalesce(claims.claimed_at, excluded.claimed_at),
        ended_at = CASE WHEN ",
    end_rank!("excluded"),
    " > ",
    end_rank!("claims"),
    " THEN excluded.ended_at ELSE claims.ended_at END,
        ended = CASE WHEN ",
    end_rank!("excluded"),
    " > ",
    end_rank!("claims"),
    " THEN excluded.ended ELSE claims.ended END,
        reaped_by = CASE WHEN ",
    end_rank!("excluded"),
    " > ",
    end_rank!("claims"),
    " THEN excluded.reaped_by ELSE claims.reaped_by END"
);

/// Marks a holding to ship (see [`version_6`]).
const OUTBOX: &str = "INSERT INTO claim_outbox (agent, epoch, gen) VALUES (?1, ?2, 1)
     ON CONFLICT (agent, epoch) DO UPDATE SET gen = gen + 1";

/// Schema version 6: `claims`, one row per holding (module docs), with
/// `claims_by_claimed_at` for the time ranges; `claim_outbox`, the
/// holdings to ship to PostgreSQL (`agent`, `epoch`, `gen` as
/// `outbox`'s). Empty on a single node.
pub(crate) fn version_6(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(
        "CREATE TABLE claims (
            agent      TEXT NOT NULL,
            epoch      INTEGER NOT NULL,
            node       TEXT NOT NULL,
            call_id    TEXT,
            claimed_at INTEGER,
            ended_at   INTEGER,
            ended      TEXT CHECK (ended IN ('released', 'expired', 'reaped', 'interrupted')),
            reaped_by  TEXT,
            PRIMARY KEY (agent, epoch)
        ) WITHOUT ROWID;
        CREATE INDEX claims_by_claimed_at ON claims (claimed_at);
        CREATE TABLE claim_outbox (
            agent TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            gen   INTEGER NOT NULL,
            PRIMARY KEY (agent, epoch)
        );",
    )
}

fn epoch_column(epoch: u64) -> i64 {
    // Epochs count claims of one agent: far below 2^63.
    i64::try_from(epoch).unwrap_or(i64::MAX)
}

/// Writes `changes` in one transaction (marking each holding in
/// `claim_outbox` with `ship`); `faults` may fail it before the commit.
pub(crate) fn write_claims(
    connection: &mut Connection,
    changes: &[ClaimChange],
    faults: &FaultPlan,
    ship: bool,
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    for change in changes {
        let (agent, epoch) = upsert(&transaction, change)?;
        if ship {
            transaction
                .prepare_cached(OUTBOX)?
                .execute(params![agent, epoch])?;
        }
    }
    if let Some(error) = faults.take_failure() {
        return Err(error);
    }
    transaction.commit()
}

fn upsert<'a>(
    connection: &Connection,
    change: &'a ClaimChange,
) -> rusqlite::Result<(&'a str, i64)> {
    let mut statement = connection.prepare_cached(UPSERT_CLAIM)?;
    match change {
        ClaimChange::Claimed {
            agent,
            node,
            epoch,
            call,
            at,
        } => {
            let epoch = epoch_column(*epoch);
            statement.execute(params![
                agent,
                epoch,
                node,
                call,
                at.as_millisecond(),
                None::<i64>,
                None::<String>,
                None::<String>
            ])?;
            Ok((agent, epoch))
        }
        ClaimChange::Ended {
            agent,
            node,
            epoch,
            at,
            how,
        } => {
            let epoch = epoch_column(*epoch);
            statement.execute(params![
                agent,
                epoch,
                node,
                None::<String>,
                None::<i64>,
                at.as_millisecond(),
                how.name(),
                how.reaped_by()
            ])?;
            Ok((agent, epoch))
        }
    }
}

/// Ends the holdings this node's file shows held (its previous process
/// stopped with them) as `interrupted`, end unknown; marks them to ship
/// with `ship`. Only the holder writes a holding without an end, so these
/// are this node's own. Returns how many.
pub(crate) fn close_interrupted(
    transaction: &Transaction<'_>,
    ship: bool,
) -> rusqlite::Result<u64> {
    if ship {
        transaction.execute(
            "INSERT INTO claim_outbox (agent, epoch, gen)
             SELECT agent, epoch, 1 FROM claims WHERE ended IS NULL
             ON CONFLICT (agent, epoch) DO UPDATE SET gen = gen + 1",
            [],
        )?;
    }
    let closed = transaction.execute(
        "UPDATE claims SET ended = 'interrupted' WHERE ended IS NULL",
        [],
    )?;
    Ok(closed as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Synchronous, open_writer};

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millisecond(millis).unwrap()
    }

    fn claimed(epoch: u64, node: &str, millis: i64) -> ClaimChange {
        ClaimChange::Claimed {
            agent: "1003".into(),
            node: node.into(),
            epoch,
            call: Some(format!("c-{node}-1-{epoch}")),
            at: at(millis),
        }
    }

    fn ended(epoch: u64, node: &str, millis: i64, how: ClaimEnd) -> ClaimChange {
        ClaimChange::Ended {
            agent: "1003".into(),
            node: node.into(),
            epoch,
            at: at(millis),
            how,
        }
    }

    fn rows(connection: &Connection) -> Vec<ClaimRow> {
        let mut statement = connection
            .prepare(&format!(
                "SELECT {CLAIM_COLUMNS} FROM claims ORDER BY agent, epoch"
            ))
            .unwrap();
        let mut rows = statement.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<Cell> = (0..8)
                .map(|i| Cell::from_sqlite(row.get_ref(i).unwrap()).unwrap())
                .collect();
            out.push(ClaimRow::from_cells(&cells).unwrap());
        }
        out
    }

    fn journal() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let connection =
            open_writer(&dir.path().join("journal.db"), Synchronous::Normal, None).unwrap();
        (dir, connection)
    }

    fn write(connection: &mut Connection, changes: &[ClaimChange]) {
        write_claims(connection, changes, &FaultPlan::default(), true).unwrap();
    }

    /// Every order of a holding's writes gives the same row, written twice
    /// or once: the holder's claim, an expiry it saw, a reaper's end, and
    /// a restart's "interrupted".
    #[test]
    fn the_upsert_gives_one_row_whatever_the_order_and_repeats() {
        let reaped = ClaimEnd::Reaped { by: "n2".into() };
        let writes = [
            claimed(4, "n1", 1_000),
            ended(4, "n1", 3_000, ClaimEnd::Interrupted),
            ended(4, "n1", 3_000, ClaimEnd::Expired),
            ended(4, "n1", 3_000, reaped.clone()),
        ];
        let expected = ClaimRow {
            agent: "1003".into(),
            epoch: 4,
            node: "n1".into(),
            call: Some("c-n1-1-4".into()),
            claimed_at: Some(at(1_000)),
            ended_at: Some(at(3_000)),
            ended: Some(reaped),
        };
        // Every permutation of the four, each write repeated.
        let mut orders = vec![vec![0usize, 1, 2, 3]];
        for _ in 0..23 {
            let mut next = orders.last().unwrap().clone();
            // The next permutation in lexicographic order.
            let i = (0..3).rev().find(|&i| next[i] < next[i + 1]).unwrap();
            let j = (i + 1..4).rev().find(|&j| next[i] < next[j]).unwrap();
            next.swap(i, j);
            next[i + 1..].reverse();
            orders.push(next);
        }
        for order in orders {
            let (_dir, mut connection) = journal();
            for &index in &order {
                write(
                    &mut connection,
                    &[writes[index].clone(), writes[index].clone()],
                );
            }
            assert_eq!(
                rows(&connection),
                std::slice::from_ref(&expected),
                "order {order:?}"
            );
        }
    }

    #[test]
    fn an_end_alone_is_a_row_and_an_interrupted_end_never_hides_a_known_one() {
        let (_dir, mut connection) = journal();
        // The holder died before its claim reached its journal: the
        // reaper's end alone.
        write(
            &mut connection,
            &[ended(7, "n1", 5_000, ClaimEnd::Reaped { by: "n0".into() })],
        );
        // A released holding, then a late "interrupted" of the same.
        write(
            &mut connection,
            &[
                claimed(8, "n0", 6_000),
                ended(8, "n0", 6_500, ClaimEnd::Released),
                claimed(9, "n2", 7_000),
            ],
        );
        let transaction = connection.transaction().unwrap();
        assert_eq!(close_interrupted(&transaction, true).unwrap(), 1, "epoch 9");
        transaction.commit().unwrap();
        write(
            &mut connection,
            &[ended(8, "n0", 9_999, ClaimEnd::Interrupted)],
        );
        let rows = rows(&connection);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (
                rows[0].claimed_at,
                rows[0].ended_at,
                rows[0].call.as_deref()
            ),
            (None, Some(at(5_000)), None)
        );
        assert_eq!(
            serde_json::to_value(rows[0].to_json()).unwrap()["reaped_by"],
            "n0",
            "{}",
            serde_json::to_value(rows[0].to_json()).unwrap()
        );
        assert_eq!(
            (rows[1].ended.clone(), rows[1].ended_at),
            (Some(ClaimEnd::Released), Some(at(6_500)))
        );
        assert_eq!(
            (rows[2].ended.clone(), rows[2].ended_at),
            (Some(ClaimEnd::Interrupted), None)
        );
        let marked: i64 = connection
            .query_row("SELECT count(*) FROM claim_outbox", [], |row| row.get(0))
            .unwrap();
        assert_eq!(marked, 3, "every holding written is marked to ship");
    }

    #[test]
    fn a_failed_batch_writes_nothing() {
        let (_dir, mut connection) = journal();
        let faults = FaultPlan::default();
        faults.fail_next(1);
        assert!(write_claims(&mut connection, &[claimed(1, "n0", 1)], &faults, true).is_err());
        assert_eq!(rows(&connection), []);
    }
}
