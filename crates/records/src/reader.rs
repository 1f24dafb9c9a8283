//! Reading the journal: calls, one call's timeline, and the reports.
//!
//! A [`Reader`] keeps a few read-only connections of its own (WAL lets them
//! read while the writer writes, each query on a consistent snapshot). It
//! is `Clone + Send + Sync`; every method blocks on SQLite (or PostgreSQL),
//! so async code calls it inside `tokio::task::spawn_blocking`.
//!
//! With `--journal postgres://…` ([`Reader::open_shared`]) the calls, their
//! timelines and the call reports are read from the database the cluster
//! shares, the shared database's view (see [`crate::shared`]), and so is
//! the claim history ([`Reader::claims`]); leads and callback entries,
//! node-local, are still read from the node's file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::claims::{CLAIM_COLUMNS, ClaimQuery, ClaimRow};
use crate::entry::{CallEvent, CallId, Outcome, Priority};
use crate::error::{JournalError, QueryError};
use crate::location::PostgresUrl;
use crate::report::{
    self, AbandonmentWindow, AgentReport, DepartmentReport, SourceReport, TimeRange,
};
use crate::schema;
use crate::shared::SharedReads;
use crate::sql::{Cell, Cells, Param, Statement};
use crate::timeline::{self, CallFacts};

/// Idle connections a reader keeps for reuse.
const IDLE_CONNECTIONS: usize = 4;

/// The columns of [`CallRow`], in its field order.
pub(crate) const CALL_COLUMNS: &str = "id, caller, dialed, source, branch, department, priority, agent, \
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

fn rfc3339(at: Option<Timestamp>) -> Option<String> {
    at.map(|at| at.to_string())
}

/// A call as `GET /api/calls/{id}` shows it (DESIGN.md's `/api/calls`
/// element and every other column); its schema is the OpenAPI document's
/// `CallRow`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CallRow)]
pub struct CallRowJson {
    /// The call's id (`c-…`).
    pub id: String,
    /// The patient's number.
    pub caller: String,
    /// The number dialed.
    pub dialed: String,
    /// The dialed number's source tag.
    pub source: Option<String>,
    /// The last queue it entered.
    pub department: Option<String>,
    /// `routine` or `urgent`.
    pub priority: String,
    /// The agent who answered last.
    pub agent: Option<String>,
    /// `in_progress`, `connected`, `abandoned`, `overflowed`, `rejected`,
    /// `after_hours` or `interrupted`.
    pub outcome: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub connected_at: Option<String>,
    /// RFC 3339 UTC.
    pub ended_at: Option<String>,
    /// First queue entry to first answer (or the end).
    pub wait_ms: Option<u64>,
    /// The branch the call was routed for.
    pub branch: Option<String>,
    /// RFC 3339 UTC.
    pub answered_at: Option<String>,
    /// RFC 3339 UTC.
    pub queued_at: Option<String>,
    /// First answer to the end.
    pub talk_ms: Option<u64>,
    /// Transfers by agents.
    pub transfers: u32,
    /// The department's SLA when queued.
    pub sla_ms: Option<u64>,
}

impl CallRow {
    /// DESIGN.md's `GET /api/calls` element, exactly: `id`, `caller`,
    /// `dialed`, `source`, `department`, `priority`, `agent`, `outcome`
    /// (`in_progress` while not over), `started_at`, `connected_at`,
    /// `ended_at` (RFC 3339 UTC or `null`) and `wait_ms`.
    pub fn to_json(&self) -> Value {
        let mut value = self.to_json_full();
        if let Value::Object(fields) = &mut value {
            for extra in [
                "branch",
                "answered_at",
                "queued_at",
                "talk_ms",
                "transfers",
                "sla_ms",
            ] {
                fields.remove(extra);
            }
        }
        value
    }

    /// Every column: the `/api/calls` fields plus `branch`, `answered_at`,
    /// `queued_at`, `talk_ms`, `transfers` and `sla_ms`.
    pub fn to_json_full(&self) -> Value {
        json!(self.view())
    }

    /// The row as its JSON type.
    pub fn view(&self) -> CallRowJson {
        CallRowJson {
            id: self.id.as_str().to_string(),
            caller: self.caller.clone(),
            dialed: self.dialed.clone(),
            source: self.source.clone(),
            department: self.department.clone(),
            priority: self.priority.as_str().to_string(),
            agent: self.agent.clone(),
            outcome: Outcome::name(self.outcome).to_string(),
            started_at: self.started_at.to_string(),
            connected_at: rfc3339(self.connected_at),
            ended_at: rfc3339(self.ended_at),
            wait_ms: self.wait_ms,
            branch: self.branch.clone(),
            answered_at: rfc3339(self.answered_at),
            queued_at: rfc3339(self.queued_at),
            talk_ms: self.talk_ms,
            transfers: self.transfers,
            sla_ms: self.sla_ms,
        }
    }

    /// A row of [`CALL_COLUMNS`], from either database.
    pub(crate) fn from_cells(row: &[Cell]) -> Result<Self, QueryError> {
        let row = Cells(row);
        let id = row.text(0)?;
        let priority = row.text(6)?;
        let outcome = row.text(8)?;
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
            caller: row.text(1)?,
            dialed: row.text(2)?,
            source: row.opt_text(3)?,
            branch: row.opt_text(4)?,
            department: row.opt_text(5)?,
            agent: row.opt_text(7)?,
            started_at: timestamp(row.int(9)?)?,
            answered_at: row.opt_int(10)?.map(timestamp).transpose()?,
            queued_at: row.opt_int(11)?.map(timestamp).transpose()?,
            connected_at: row.opt_int(12)?.map(timestamp).transpose()?,
            ended_at: row.opt_int(13)?.map(timestamp).transpose()?,
            wait_ms: row.opt_int(14)?.map(duration),
            talk_ms: row.opt_int(15)?.map(duration),
            transfers: u32::try_from(row.int(16)?).unwrap_or(u32::MAX),
            sla_ms: row.opt_int(17)?.map(duration),
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

/// One step of a call's timeline as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CallEvent)]
pub struct EventRowJson {
    /// 1, 2, 3… in order.
    pub seq: u32,
    /// RFC 3339 UTC.
    pub at: String,
    /// What happened (`offered`, `connected`, …).
    pub kind: String,
    /// More about it (`{"agent":"1003"}`).
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl EventRow {
    /// `{"seq","at","kind","detail"}`, e.g. `{"seq":4,"at":"…",
    /// "kind":"offered","detail":{"agent":"1003"}}`.
    pub fn to_json(&self) -> Value {
        json!(self.view())
    }

    /// The step as its JSON type.
    pub fn view(&self) -> EventRowJson {
        EventRowJson {
            seq: self.seq,
            at: self.at.to_string(),
            kind: self.event.kind().to_string(),
            detail: self.event.detail(),
        }
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

/// `GET /api/calls/{id}`: the call's every column and its timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CallTimeline)]
pub struct CallTimelineJson {
    /// The call.
    #[serde(flatten)]
    pub call: CallRowJson,
    /// Its steps, oldest first.
    pub events: Vec<EventRowJson>,
}

impl CallTimeline {
    /// [`CallRow::to_json_full`] with an `events` array of
    /// [`EventRow::to_json`].
    pub fn to_json(&self) -> Value {
        json!(CallTimelineJson {
            call: self.call.view(),
            events: self.events.iter().map(EventRow::view).collect(),
        })
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
    /// Where the call-side queries go with `--journal postgres://…`.
    shared: Option<SharedReads>,
}

impl Reader {
    /// Opens a reader on a journal that [`Journal::open`] has created and
    /// migrated (readers never write, so never migrate).
    ///
    /// [`Journal::open`]: crate::Journal::open
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, JournalError> {
        let path = path.as_ref().to_path_buf();
        Self::open_with(path.as_ref(), None)
    }

    /// A reader whose call-side queries ([`Reader::calls`],
    /// [`Reader::call`], the reports, the abandonment window) read the
    /// PostgreSQL database at `url`, each bounded by `timeout` (the
    /// replica's); leads and callbacks are still read from the file at
    /// `path`. Does not connect yet: PostgreSQL down answers
    /// [`QueryError::Unavailable`] per query.
    pub fn open_shared(
        path: impl AsRef<Path>,
        url: PostgresUrl,
        timeout: Duration,
    ) -> Result<Reader, JournalError> {
        Self::open_with(path.as_ref(), Some(SharedReads::new(url, timeout)))
    }

    fn open_with(path: &Path, shared: Option<SharedReads>) -> Result<Reader, JournalError> {
        let first = schema::open_reader(path)?;
        Ok(Reader {
            inner: Arc::new(ReaderInner {
                path: path.to_path_buf(),
                idle: Mutex::new(vec![first]),
                shared,
            }),
        })
    }

    /// Whether the calls are read from the database the cluster shares.
    pub fn is_shared(&self) -> bool {
        self.inner.shared.is_some()
    }

    /// The bound of each call-side query on PostgreSQL (`None` on SQLite,
    /// whose reads wait at most its busy timeout): what a caller waiting
    /// for an answer may bound its wait by.
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.shared.as_ref().map(SharedReads::timeout)
    }

    /// Runs call-side `statements` on one snapshot of the calls, in
    /// PostgreSQL or in the file, and returns each one's rows.
    fn read_calls(&self, statements: &[Statement<'_>]) -> Result<Vec<Vec<Vec<Cell>>>, QueryError> {
        if let Some(shared) = &self.inner.shared {
            return shared.read(statements);
        }
        self.with(|connection| {
            let transaction = connection.unchecked_transaction()?;
            let mut results = Vec::with_capacity(statements.len());
            for statement in statements {
                let mut prepared = transaction.prepare_cached(statement.sql)?;
                let columns = prepared.column_count();
                let mut rows =
                    prepared.query(rusqlite::params_from_iter(statement.params.iter()))?;
                let mut cells = Vec::new();
                while let Some(row) = rows.next()? {
                    cells.push(
                        (0..columns)
                            .map(|i| Cell::from_sqlite(row.get_ref(i)?))
                            .collect::<Result<Vec<_>, QueryError>>()?,
                    );
                }
                results.push(cells);
            }
            Ok(results)
        })
    }

    /// The rows of one call-side statement.
    fn read_one(&self, statement: Statement<'_>) -> Result<Vec<Vec<Cell>>, QueryError> {
        Ok(self
            .read_calls(std::slice::from_ref(&statement))?
            .pop()
            .unwrap_or_default())
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
        let mut params = Vec::new();
        // Numbered as pushed: the placeholders appear in ascending order.
        let next = |param: Param, params: &mut Vec<Param>| {
            params.push(param);
            format!("${}", params.len())
        };
        if let Some(range) = &query.range {
            let (from, to) = range.millis();
            let from = next(Param::Int(from), &mut params);
            let to = next(Param::Int(to), &mut params);
            conditions.push(format!("started_at >= {from} AND started_at < {to}"));
        }
        if let Some(source) = &query.source {
            conditions.push(format!(
                "source = {}",
                next(Param::Text(source.clone()), &mut params)
            ));
        }
        if let Some(department) = &query.department {
            conditions.push(format!(
                "department = {}",
                next(Param::Text(department.clone()), &mut params)
            ));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = next(
            Param::Int(i64::try_from(query.limit).unwrap_or(i64::MAX)),
            &mut params,
        );
        // The one difference of dialect (crate::shared): the tie-break on
        // id in byte order, SQLite's for TEXT, PostgreSQL's with "C".
        let id_order = if self.is_shared() {
            r#"id COLLATE "C""#
        } else {
            "id"
        };
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls {filter} ORDER BY started_at DESC, {id_order} DESC LIMIT {limit}"
        );
        self.read_one(Statement::new(&sql, params))?
            .iter()
            .map(|row| CallRow::from_cells(row))
            .collect()
    }

    /// The claim holdings `query` selects (`GET /api/claims`), newest first
    /// (by when they were claimed, or ended if that alone is known), from
    /// the database the cluster shares with `--journal postgres://…`.
    pub fn claims(&self, query: &ClaimQuery) -> Result<Vec<ClaimRow>, QueryError> {
        let text_order = self.text_order("agent");
        self.claim_rows(
            query,
            &format!("coalesce(claimed_at, ended_at) DESC, {text_order} DESC, epoch DESC"),
        )
    }

    /// The claim holdings `query` selects, agent by agent in epoch order:
    /// the history an overlap check reads (`GET /api/reports/claims`).
    pub fn claim_history(&self, query: &ClaimQuery) -> Result<Vec<ClaimRow>, QueryError> {
        let text_order = self.text_order("agent");
        self.claim_rows(query, &format!("{text_order}, epoch"))
    }

    fn claim_rows(&self, query: &ClaimQuery, order: &str) -> Result<Vec<ClaimRow>, QueryError> {
        let (filter, limit, params) = query.filter();
        let sql =
            format!("SELECT {CLAIM_COLUMNS} FROM claims {filter} ORDER BY {order} LIMIT {limit}");
        self.read_one(Statement::new(&sql, params))?
            .iter()
            .map(|row| ClaimRow::from_cells(row))
            .collect()
    }

    /// `column` ordered byte by byte on either database (see
    /// [`crate::shared`]).
    fn text_order(&self, column: &str) -> String {
        if self.is_shared() {
            format!(r#"{column} COLLATE "C""#)
        } else {
            column.to_string()
        }
    }

    /// One call and its timeline; `None` for an unknown id.
    pub fn call(&self, id: &str) -> Result<Option<CallTimeline>, QueryError> {
        let call_sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        let id = || vec![Param::Text(id.to_string())];
        let mut results = self.read_calls(&[
            Statement::new(&call_sql, id()),
            Statement::new(CALL_EVENTS, id()),
        ])?;
        let events = results.pop().unwrap_or_default();
        let Some(row) = results.pop().and_then(|mut rows| rows.pop()) else {
            return Ok(None);
        };
        let call = CallRow::from_cells(&row)?;
        let events = events
            .iter()
            .map(|row| event_of(row).map(|(_, event)| event))
            .collect::<Result<_, _>>()?;
        Ok(Some(CallTimeline { call, events }))
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
        let mut steps = Vec::new();
        for row in self.read_one(Statement::new(
            CALLBACK_STEPS,
            vec![Param::Int(from), Param::Int(to)],
        ))? {
            let row = Cells(&row);
            let call = row.text(0)?;
            let detail = row.text(1)?;
            // A detail that does not read is skipped, as in the facts.
            if let Ok(crate::CallEvent::Callback {
                step,
                department,
                wait_ms,
            }) = serde_json::from_str::<serde_json::Value>(&detail).and_then(|detail| {
                serde_json::from_value(serde_json::json!({"kind": "callback", "detail": detail}))
            }) {
                steps.push(report::CallbackStep {
                    call,
                    department,
                    step,
                    wait_ms,
                });
            }
        }
        // Callback leads are node-local: always the node's file.
        let leads = self.with(|connection| {
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
            Ok(leads)
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
        let sql =
            format!("SELECT {CALL_COLUMNS} FROM calls WHERE started_at >= $1 AND started_at < $2");
        let rows = self
            .read_one(Statement::new(&sql, vec![Param::Int(from), Param::Int(to)]))?
            .iter()
            .map(|row| CallRow::from_cells(row))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(report::sources(&rows))
    }

    /// Per department, the waits that ended in `range` and how many were
    /// abandoned (for overload alerts: pass the last N minutes; see
    /// [`AbandonmentWindow`]). Sorted by department.
    pub fn abandonment_window(
        &self,
        range: &TimeRange,
    ) -> Result<Vec<AbandonmentWindow>, QueryError> {
        let facts = self.facts_of(ABANDONMENT_EVENTS, range)?;
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
        let facts = self.facts_of(ABANDONMENT_EVENTS, range)?;
        Ok(report::resolved_visits(&facts, range))
    }

    fn facts_of_calls_started_in(&self, range: &TimeRange) -> Result<Vec<CallFacts>, QueryError> {
        self.facts_of(EVENTS_OF_CALLS_STARTED_IN, range)
    }

    /// Runs `sql` (events ordered by call then seq; `$1`, `$2` the range)
    /// and folds each call's events.
    fn facts_of(&self, sql: &str, range: &TimeRange) -> Result<Vec<CallFacts>, QueryError> {
        let (from, to) = range.millis();
        let rows = self.read_one(Statement::new(sql, vec![Param::Int(from), Param::Int(to)]))?;
        let mut facts = Vec::new();
        let mut current: Option<(String, Vec<EventRow>)> = None;
        let fold = |events: &[EventRow]| {
            timeline::fold(
                events
                    .iter()
                    .map(|event| (event.at.as_millisecond(), &event.event)),
            )
        };
        for row in &rows {
            let (call, event) = event_of(row)?;
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
}

// The call-side SQL: one text for SQLite and PostgreSQL, placeholders
// first appearing in ascending order (crate::shared; checked by
// `shared_texts_bind_alike`).

/// A call's timeline.
const CALL_EVENTS: &str = "SELECT call_id, seq, at, kind, detail FROM call_events
     WHERE call_id = $1 ORDER BY seq";

/// The callback steps of the calls started in `[$1, $2)`.
const CALLBACK_STEPS: &str = "SELECT e.call_id, e.detail FROM calls c
     JOIN call_events e ON e.call_id = c.id
     WHERE c.started_at >= $1 AND c.started_at < $2 AND e.kind = 'callback'";

/// Every event of the calls started in `[$1, $2)`.
const EVENTS_OF_CALLS_STARTED_IN: &str = "SELECT e.call_id, e.seq, e.at, e.kind, e.detail
     FROM calls c JOIN call_events e ON e.call_id = c.id
     WHERE c.started_at >= $1 AND c.started_at < $2
     ORDER BY e.call_id, e.seq";

/// Every event of the calls with a step that can end a department visit
/// in `[$1, $2)`.
const ABANDONMENT_EVENTS: &str = "SELECT call_id, seq, at, kind, detail FROM call_events
     WHERE call_id IN (SELECT call_id FROM call_events
                       WHERE at >= $1 AND at < $2
                         AND kind IN ('queued', 'connected', 'overflowed', 'ended'))
     ORDER BY call_id, seq";

/// `call_id, seq, at, kind, detail` → the call's id and the event.
fn event_of(row: &[Cell]) -> Result<(String, EventRow), QueryError> {
    let row = Cells(row);
    let call = row.text(0)?;
    let seq = row.int(1)?;
    let kind = row.text(3)?;
    let detail = row.text(4)?;
    let corrupt = |error: &dyn std::fmt::Display| {
        QueryError::Corrupt(format!("call {call} event {seq} ({kind}): {error}"))
    };
    let detail: Value = serde_json::from_str(&detail).map_err(|error| corrupt(&error))?;
    let event = CallEvent::from_stored(&kind, detail).map_err(|error| corrupt(&error))?;
    let at = timestamp(row.int(2)?)?;
    let seq = u32::try_from(seq).map_err(|error| corrupt(&error))?;
    Ok((call, EventRow { seq, at, event }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On SQLite, `$k` of each shared text is parameter k (its first
    /// appearance comes after those of `$1`..`$k-1`), so one parameter
    /// list binds alike on PostgreSQL.
    #[test]
    fn shared_texts_bind_alike() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE calls (id, caller, dialed, source, branch, department, priority,
                     agent, outcome, started_at, answered_at, queued_at, connected_at, ended_at,
                     wait_ms, talk_ms, transfers, sla_ms);
                 CREATE TABLE call_events (call_id, seq, at, kind, detail);",
            )
            .unwrap();
        let call = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        let source =
            format!("SELECT {CALL_COLUMNS} FROM calls WHERE started_at >= $1 AND started_at < $2");
        for (sql, count) in [
            (CALL_EVENTS, 1),
            (call.as_str(), 1),
            (source.as_str(), 2),
            (CALLBACK_STEPS, 2),
            (EVENTS_OF_CALLS_STARTED_IN, 2),
            (ABANDONMENT_EVENTS, 2),
        ] {
            let statement = connection.prepare(sql).unwrap();
            assert_eq!(statement.parameter_count(), count, "{sql}");
            for k in 1..=count {
                assert_eq!(
                    statement.parameter_index(&format!("${k}")).unwrap(),
                    Some(k),
                    "{sql}"
                );
            }
        }
        // And a reordered text would not: the check can fail.
        let statement = connection
            .prepare("SELECT 1 FROM calls WHERE started_at < $2 AND started_at >= $1")
            .unwrap();
        assert_eq!(statement.parameter_index("$2").unwrap(), Some(1));
    }
}
