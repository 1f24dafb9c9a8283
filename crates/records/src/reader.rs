//! Reading the journal: calls, one call's timeline, and the reports.
//!
//! A [`Reader`] keeps a few read-only connections of its own (WAL lets them
//! read while the writer writes, each query on a consistent snapshot). It
//! is `Clone + Send + Sync`; every method blocks on SQLite, so async code
//! calls it inside `tokio::task::spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};
use serde_json::{Value, json};

use crate::entry::{CallEvent, CallId, Outcome, Priority};
use crate::error::{JournalError, QueryError};
use crate::report::{
    self, AbandonmentWindow, AgentReport, DepartmentReport, SourceReport, TimeRange,
};
use crate::schema;
use crate::timeline::{self, CallFacts};

/// Idle connections a reader keeps for reuse.
const IDLE_CONNECTIONS: usize = 4;

/// The columns of [`CallRow`], in its field order.
const CALL_COLUMNS: &str = "id, caller, dialed, source, branch, department, priority, agent, \
     outcome, started_at, answered_at, queued_at, connected_at, ended_at, wait_ms, talk_ms, \
     transfers, sla_ms";

/// One call (lead) as the `calls` table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// The call's id.
    pub id: CallId,
    /// The caller's number (empty if the call's `Started` was lost).
    pub caller: String,
    /// The number dialed (empty if the call's `Started` was lost).
    pub dialed: String,
    /// The dialed number's source tag.
    pub source: Option<String>,
    /// The clinic branch of the call (see [`CallEvent::Connected`]).
    pub branch: Option<String>,
    /// The department it is, or was last, queued in.
    pub department: Option<String>,
    /// Its priority there (`routine` before it queued).
    pub priority: Priority,
    /// The last agent who answered it.
    pub agent: Option<String>,
    /// How it ended; `None` while in progress.
    pub outcome: Option<Outcome>,
    /// When the INVITE came.
    pub started_at: Timestamp,
    /// When the IVR answered.
    pub answered_at: Option<Timestamp>,
    /// When it first entered a queue.
    pub queued_at: Option<Timestamp>,
    /// When an agent first answered.
    pub connected_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// First queue entry to first answer; or, never answered, to the end.
    pub wait_ms: Option<u64>,
    /// First answer to the end.
    pub talk_ms: Option<u64>,
    /// Transfers by agents.
    pub transfers: u32,
    /// The SLA of `department` when it was queued there.
    pub sla_ms: Option<u64>,
}

fn rfc3339(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

impl CallRow {
    /// DESIGN.md's `GET /api/calls` element, exactly: `id`, `caller`,
    /// `dialed`, `source`, `department`, `priority`, `agent`, `outcome`
    /// (`in_progress` while not over), `started_at`, `connected_at`,
    /// `ended_at` (RFC 3339 UTC or `null`) and `wait_ms`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.as_str(),
            "caller": self.caller,
            "dialed": self.dialed,
            "source": self.source,
            "department": self.department,
            "priority": self.priority.as_str(),
            "agent": self.agent,
            "outcome": Outcome::name(self.outcome),
            "started_at": self.started_at.to_string(),
            "connected_at": rfc3339(self.connected_at),
            "ended_at": rfc3339(self.ended_at),
            "wait_ms": self.wait_ms,
        })
    }

    /// Every column: the `/api/calls` fields plus `branch`, `answered_at`,
    /// `queued_at`, `talk_ms`, `transfers` and `sla_ms`.
    pub fn to_json_full(&self) -> Value {
        let mut value = self.to_json();
        if let Value::Object(fields) = &mut value {
            fields.insert("branch".into(), json!(self.branch));
            fields.insert("answered_at".into(), rfc3339(self.answered_at));
            fields.insert("queued_at".into(), rfc3339(self.queued_at));
            fields.insert("talk_ms".into(), json!(self.talk_ms));
            fields.insert("transfers".into(), json!(self.transfers));
            fields.insert("sla_ms".into(), json!(self.sla_ms));
        }
        value
    }

    fn from_row(row: &Row<'_>) -> Result<Self, QueryError> {
        let id: String = row.get(0)?;
        let priority: String = row.get(6)?;
        let outcome: String = row.get(8)?;
        Ok(CallRow {
            priority: priority
                .parse()
                .map_err(|error| QueryError::Corrupt(format!("call {id}: {error}")))?,
            outcome: match outcome.as_str() {
                crate::entry::IN_PROGRESS => None,
                name => Some(
                    name.parse()
                        .map_err(|error| QueryError::Corrupt(format!("call {id}: {error}")))?,
                ),
            },
            caller: row.get(1)?,
            dialed: row.get(2)?,
            source: row.get(3)?,
            branch: row.get(4)?,
            department: row.get(5)?,
            agent: row.get(7)?,
            started_at: timestamp(row.get(9)?)?,
            answered_at: row.get::<_, Option<i64>>(10)?.map(timestamp).transpose()?,
            queued_at: row.get::<_, Option<i64>>(11)?.map(timestamp).transpose()?,
            connected_at: row.get::<_, Option<i64>>(12)?.map(timestamp).transpose()?,
            ended_at: row.get::<_, Option<i64>>(13)?.map(timestamp).transpose()?,
            wait_ms: row.get::<_, Option<i64>>(14)?.map(duration),
            talk_ms: row.get::<_, Option<i64>>(15)?.map(duration),
            transfers: u32::try_from(row.get::<_, i64>(16)?).unwrap_or(u32::MAX),
            sla_ms: row.get::<_, Option<i64>>(17)?.map(duration),
            id: CallId::new(id),
        })
    }
}

fn timestamp(millis: i64) -> Result<Timestamp, QueryError> {
    Timestamp::from_millisecond(millis)
        .map_err(|error| QueryError::Corrupt(format!("time {millis}: {error}")))
}

fn duration(millis: i64) -> u64 {
    u64::try_from(millis).unwrap_or(0)
}

/// One step of a call's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// 1, 2, 3... in the order the steps were recorded.
    pub seq: u32,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub event: CallEvent,
}

impl EventRow {
    /// `{"seq","at","kind","detail"}`, e.g. `{"seq":4,"at":"…",
    /// "kind":"offered","detail":{"agent":"1003"}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "at": self.at.to_string(),
            "kind": self.event.kind(),
            "detail": self.event.detail(),
        })
    }
}

/// A call and its timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimeline {
    /// The call's row.
    pub call: CallRow,
    /// Its events, oldest first.
    pub events: Vec<EventRow>,
}

impl CallTimeline {
    /// [`CallRow::to_json_full`] with an `events` array of
    /// [`EventRow::to_json`].
    pub fn to_json(&self) -> Value {
        let mut value = self.call.to_json_full();
        if let Value::Object(fields) = &mut value {
            let events = self.events.iter().map(EventRow::to_json).collect();
            fields.insert("events".into(), Value::Array(events));
        }
        value
    }
}

/// Which calls [`Reader::calls`] lists: newest first (by `started_at`,
/// then id), at most `limit`, optionally only those started in a range,
/// from one source tag or last queued in one department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallQuery {
    /// The most calls to list.
    pub limit: usize,
    /// Only calls started in this range.
    pub range: Option<TimeRange>,
    /// Only calls with this source tag.
    pub source: Option<String>,
    /// Only calls whose `department` is this.
    pub department: Option<String>,
}

impl CallQuery {
    /// The `limit` most recent calls.
    pub fn recent(limit: usize) -> Self {
        CallQuery {
            limit,
            range: None,
            source: None,
            department: None,
        }
    }
}

/// Queries on the journal. See the module docs.
#[derive(Debug, Clone)]
pub struct Reader {
    inner: Arc<ReaderInner>,
}

#[derive(Debug)]
struct ReaderInner {
    path: PathBuf,
    // Idle connections. The lock is held only to take or put one back,
    // never during a query.
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    /// Opens a reader on a journal that [`Journal::open`] has created and
    /// migrated (readers never write, so never migrate).
    ///
    /// [`Journal::open`]: crate::Journal::open
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, JournalError> {
        let path = path.as_ref().to_path_buf();
        let first = schema::open_reader(&path)?;
        Ok(Reader {
            inner: Arc::new(ReaderInner {
                path,
                idle: Mutex::new(vec![first]),
            }),
        })
    }

    pub(crate) fn with<T>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => schema::open_reader(&self.inner.path)
                .map_err(|error| QueryError::Open(Box::new(error)))?,
        };
        let result = query(&connection);
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(connection);
        }
        result
    }

    /// The `limit` most recent calls, newest first
    /// (`GET /api/calls?limit=N`).
    pub fn recent_calls(&self, limit: usize) -> Result<Vec<CallRow>, QueryError> {
        self.calls(&CallQuery::recent(limit))
    }

    /// The calls `query` selects, newest first.
    pub fn calls(&self, query: &CallQuery) -> Result<Vec<CallRow>, QueryError> {
        let mut conditions = Vec::new();
        let mut values: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(range) = &query.range {
            let (from, to) = range.millis();
            conditions.push("started_at >= ? AND started_at < ?");
            values.push(Box::new(from));
            values.push(Box::new(to));
        }
        if let Some(source) = &query.source {
            conditions.push("source = ?");
            values.push(Box::new(source.clone()));
        }
        if let Some(department) = &query.department {
            conditions.push("department = ?");
            values.push(Box::new(department.clone()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        values.push(Box::new(i64::try_from(query.limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls {filter} ORDER BY started_at DESC, id DESC LIMIT ?"
        );
        self.with(|connection| {
            let mut statement = connection.prepare_cached(&sql)?;
            let mut rows = statement.query(rusqlite::params_from_iter(values.iter()))?;
            let mut calls = Vec::new();
            while let Some(row) = rows.next()? {
                calls.push(CallRow::from_row(row)?);
            }
            Ok(calls)
        })
    }

    /// One call and its timeline; `None` for an unknown id.
    pub fn call(&self, id: &str) -> Result<Option<CallTimeline>, QueryError> {
        self.with(|connection| {
            let transaction = connection.unchecked_transaction()?;
            let row = transaction
                .prepare_cached(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1"))?
                .query_row(params![id], |row| Ok(CallRow::from_row(row)))
                .optional()?
                .transpose()?;
            let Some(call) = row else {
                return Ok(None);
            };
            let mut statement = transaction.prepare_cached(
                "SELECT call_id, seq, at, kind, detail FROM call_events
                 WHERE call_id = ?1 ORDER BY seq",
            )?;
            let mut rows = statement.query(params![id])?;
            let mut events = Vec::new();
            while let Some(row) = rows.next()? {
                events.push(event_row(row)?.1);
            }
            Ok(Some(CallTimeline { call, events }))
        })
    }

    /// Per department, for calls started in `range`, sorted by id
    /// (`GET /api/reports/departments`; definitions on
    /// [`DepartmentReport`]). Departments with no call in the range are
    /// absent: add [`DepartmentReport::empty`] rows to list them all.
    pub fn department_report(
        &self,
        range: &TimeRange,
    ) -> Result<Vec<DepartmentReport>, QueryError> {
        let facts = self.facts_of_calls_started_in(range)?;
        let mut reports = report::departments(&facts);
        let (from, to) = range.millis();
        let (steps, leads) = self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT e.call_id, e.detail FROM calls c JOIN call_events e ON e.call_id = c.id
                 WHERE c.started_at >= ?1 AND c.started_at < ?2 AND e.kind = 'callback'",
            )?;
            let mut rows = statement.query(params![from, to])?;
            let mut steps = Vec::new();
            while let Some(row) = rows.next()? {
                let call: String = row.get(0)?;
                let detail: String = row.get(1)?;
                // A detail that does not read is skipped, as in the facts.
                if let Ok(crate::CallEvent::Callback {
                    step,
                    department,
                    wait_ms,
                }) = serde_json::from_str::<serde_json::Value>(&detail).and_then(|detail| {
                    serde_json::from_value(
                        serde_json::json!({"kind": "callback", "detail": detail}),
                    )
                }) {
                    steps.push(report::CallbackStep {
                        call,
                        department,
                        step,
                        wait_ms,
                    });
                }
            }
            let now = jiff::Timestamp::now().as_millisecond();
            let mut statement = connection.prepare_cached(
                "SELECT department, first_contact_at IS NOT NULL,
                        first_contact_at IS NULL AND (respond_by < ?3 OR state = 'closed')
                 FROM leads WHERE kind = 'callback' AND created_at >= ?1 AND created_at < ?2",
            )?;
            let mut rows = statement.query(params![from, to, now])?;
            let mut leads = Vec::new();
            while let Some(row) = rows.next()? {
                leads.push(report::CallbackLead {
                    department: row.get(0)?,
                    reached: row.get(1)?,
                    failed: row.get(2)?,
                });
            }
            Ok((steps, leads))
        })?;
        report::add_callbacks(&mut reports, &steps, &leads);
        Ok(reports)
    }

    /// Per agent, for calls started in `range`, sorted by id (definitions
    /// on [`AgentReport`]).
    pub fn agent_report(&self, range: &TimeRange) -> Result<Vec<AgentReport>, QueryError> {
        let facts = self.facts_of_calls_started_in(range)?;
        Ok(report::agents(&facts))
    }

    /// Per source tag, for calls started in `range`, sorted by source with
    /// untagged calls first (definitions on [`SourceReport`]). The calls
    /// themselves: [`Reader::calls`] with a `source`.
    pub fn source_report(&self, range: &TimeRange) -> Result<Vec<SourceReport>, QueryError> {
        let (from, to) = range.millis();
        let rows = self.with(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE started_at >= ?1 AND started_at < ?2"
            ))?;
            let mut rows = statement.query(params![from, to])?;
            let mut calls = Vec::new();
            while let Some(row) = rows.next()? {
                calls.push(CallRow::from_row(row)?);
            }
            Ok(calls)
        })?;
        Ok(report::sources(&rows))
    }

    /// Per department, the waits that ended in `range` and how many were
    /// abandoned (for overload alerts: pass the last N minutes; see
    /// [`AbandonmentWindow`]). Sorted by department.
    pub fn abandonment_window(
        &self,
        range: &TimeRange,
    ) -> Result<Vec<AbandonmentWindow>, QueryError> {
        let (from, to) = range.millis();
        let facts = self.with(|connection| facts_of(connection, ABANDONMENT_EVENTS, from, to))?;
        Ok(report::abandonment(&facts, range))
    }

    /// Every department visit resolved in `range`, as
    /// `(department, at in ms since the epoch, abandoned)`: what an
    /// [`AbandonmentTracker`](crate::AbandonmentTracker) is seeded with at
    /// start, counted by the same rules as [`Self::abandonment_window`].
    pub fn resolved_visits(
        &self,
        range: &TimeRange,
    ) -> Result<Vec<(String, i64, bool)>, QueryError> {
        let (from, to) = range.millis();
        let facts = self.with(|connection| facts_of(connection, ABANDONMENT_EVENTS, from, to))?;
        Ok(report::resolved_visits(&facts, range))
    }

    fn facts_of_calls_started_in(&self, range: &TimeRange) -> Result<Vec<CallFacts>, QueryError> {
        let (from, to) = range.millis();
        self.with(|connection| {
            facts_of(
                connection,
                "SELECT e.call_id, e.seq, e.at, e.kind, e.detail
                 FROM calls c JOIN call_events e ON e.call_id = c.id
                 WHERE c.started_at >= ?1 AND c.started_at < ?2
                 ORDER BY e.call_id, e.seq",
                from,
                to,
            )
        })
    }
}

/// Every event of the calls with a step that can end a department visit
/// in `[?1, ?2)`.
const ABANDONMENT_EVENTS: &str = "SELECT call_id, seq, at, kind, detail FROM call_events
     WHERE call_id IN (SELECT call_id FROM call_events
                       WHERE at >= ?1 AND at < ?2
                         AND kind IN ('queued', 'connected', 'overflowed', 'ended'))
     ORDER BY call_id, seq";

/// Runs `sql` (events ordered by call then seq, two parameters) and folds
/// each call's events.
fn facts_of(
    connection: &Connection,
    sql: &str,
    from: i64,
    to: i64,
) -> Result<Vec<CallFacts>, QueryError> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params![from, to])?;
    let mut facts = Vec::new();
    let mut current: Option<(String, Vec<EventRow>)> = None;
    let fold = |events: &[EventRow]| {
        timeline::fold(
            events
                .iter()
                .map(|event| (event.at.as_millisecond(), &event.event)),
        )
    };
    while let Some(row) = rows.next()? {
        let (call, event) = event_row(row)?;
        match &mut current {
            Some((id, events)) if *id == call => events.push(event),
            _ => {
                if let Some((_, events)) = current.replace((call, vec![event])) {
                    facts.push(fold(&events));
                }
            }
        }
    }
    if let Some((_, events)) = current {
        facts.push(fold(&events));
    }
    Ok(facts)
}

/// `call_id, seq, at, kind, detail` → the call's id and the event.
fn event_row(row: &Row<'_>) -> Result<(String, EventRow), QueryError> {
    let call: String = row.get(0)?;
    let seq: i64 = row.get(1)?;
    let kind: String = row.get(3)?;
    let detail: String = row.get(4)?;
    let corrupt = |error: &dyn std::fmt::Display| {
        QueryError::Corrupt(format!("call {call} event {seq} ({kind}): {error}"))
    };
    let detail: Value = serde_json::from_str(&detail).map_err(|error| corrupt(&error))?;
    let event = CallEvent::from_stored(&kind, detail).map_err(|error| corrupt(&error))?;
    let at = timestamp(row.get(2)?)?;
    let seq = u32::try_from(seq).map_err(|error| corrupt(&error))?;
    Ok((call, EventRow { seq, at, event }))
}
