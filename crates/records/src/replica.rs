//! The journal's PostgreSQL replica (`--journal postgres://…`, issue 24):
//! several nodes write their calls into one database.
//!
//! # Why an outbox
//! A node never writes PostgreSQL on a call's path, nor from the journal's
//! writer: it writes its local SQLite file first, as a single node does
//! (durable within a linger of the step, fast, and it survives a kill -9),
//! and marks each call it touched in `outbox` in the same transaction
//! (`schema::version_5`). A shipper thread moves the marked calls to
//! PostgreSQL in batches: for each, the call's row (upserted) and its
//! timeline (`(call_id, seq)`, inserted `ON CONFLICT DO NOTHING`), all in
//! one PostgreSQL transaction; only when that committed does it delete the
//! outbox rows, and only those whose `gen` did not change meanwhile (a
//! step written while it shipped leaves the call marked). So, with
//! PostgreSQL refused, timing out or restarting, calls go on, the outbox
//! grows on disk (bounded by the disk, like the journal itself), and when
//! PostgreSQL is back every step arrives, in order (by `seq`), once
//! (idempotent by `(call_id, seq)` and by the row's key). No ended call's
//! record is lost even if the node is killed while PostgreSQL is down.
//!
//! # Several nodes, one database
//! Ids are unique across nodes because a cluster node's call ids carry its
//! `--node-id` (`c-<node>-<second>-<n>`); the row's `node` column says who
//! wrote it. Closing the calls a killed process left in progress happens
//! in the node's own SQLite file, which holds only its own calls, and is
//! then shipped like any step: a node's start never closes another live
//! node's call.
//!
//! The schema is created at the first connection, idempotently
//! (`CREATE … IF NOT EXISTS`), inside a transaction holding
//! `pg_advisory_xact_lock`, so several nodes starting at once do not race;
//! `journal_schema` holds its version. Types: SQLite's INTEGER is BIGINT
//! (milliseconds since the epoch, as in SQLite), TEXT is TEXT.
//!
//! # The client
//! `postgres`, the blocking facade of `tokio-postgres` from the same
//! project: the shipper is a plain thread like the journal's writer, so a
//! runtime of its own would add nothing. No TLS (`NoTls`): put PostgreSQL
//! on a private network or on localhost. Every connection has a connect
//! timeout and a `statement_timeout` ([`ReplicaConfig::timeout`]), so a
//! stalled database costs a bounded wait, never a hang.
//!
//! Calls and the claim history ([`crate::claims`], `claim_outbox`, shipped
//! the same way) are shipped; leads and callback entries stay in the
//! node's own file (a lead's desk and a callback's dial are per node).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use jiff::Timestamp;
use postgres::{Client, NoTls};
use rusqlite::{Connection, OpenFlags, params};

use crate::error::JournalError;
use crate::location::PostgresUrl;

/// The version of the PostgreSQL schema this build writes: 2 adds
/// `claims` (version 1 was `calls` and `call_events`). A database of
/// version 1 is upgraded in place (the new table is created, nothing else
/// changes); a node of an older build then refuses it, and keeps its calls
/// in its outbox until it is upgraded too.
pub const POSTGRES_SCHEMA_VERSION: i64 = 2;

/// The advisory lock key that serialises schema creation across nodes
/// (any constant; "frontdesk journal" in ASCII, truncated).
const SCHEMA_LOCK: i64 = 0x6664_6a6f_7572_6e61;

/// Calls (and, apart, claim holdings) shipped per PostgreSQL transaction,
/// at most.
const SHIP_BATCH: usize = 200;

/// A claim holding's row, read from SQLite (the columns of
/// [`crate::claims::UPSERT_CLAIM`], in order).
const LOCAL_CLAIM: &str = "SELECT agent, epoch, node, call_id, claimed_at, ended_at, ended,
        reaped_by
     FROM claims WHERE agent = ?1 AND epoch = ?2";

/// The PostgreSQL schema (version 2): `calls` as SQLite's (version 5)
/// plus `node`; `call_events` and `claims` as SQLite's (version 6).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal_schema (
    version BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id           TEXT PRIMARY KEY NOT NULL,
    caller       TEXT NOT NULL DEFAULT '',
    dialed       TEXT NOT NULL DEFAULT '',
    source       TEXT,
    branch       TEXT,
    department   TEXT,
    priority     TEXT NOT NULL DEFAULT 'routine'
                 CHECK (priority IN ('routine', 'urgent')),
    agent        TEXT,
    outcome      TEXT NOT NULL DEFAULT 'in_progress'
                 CHECK (outcome IN ('in_progress', 'connected', 'abandoned', 'overflowed',
                                    'rejected', 'after_hours', 'interrupted')),
    started_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    queued_at    BIGINT,
    connected_at BIGINT,
    ended_at     BIGINT,
    wait_ms      BIGINT,
    talk_ms      BIGINT,
    transfers    BIGINT NOT NULL DEFAULT 0,
    sla_ms       BIGINT,
    events       BIGINT NOT NULL DEFAULT 0,
    node         TEXT
);
CREATE INDEX IF NOT EXISTS calls_by_start ON calls (started_at, id);
CREATE INDEX IF NOT EXISTS calls_by_caller ON calls (caller, started_at);
CREATE TABLE IF NOT EXISTS call_events (
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX IF NOT EXISTS call_events_by_time ON call_events (at);
CREATE TABLE IF NOT EXISTS claims (
    agent      TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    node       TEXT NOT NULL,
    call_id    TEXT,
    claimed_at BIGINT,
    ended_at   BIGINT,
    ended      TEXT CHECK (ended IN ('released', 'expired', 'reaped', 'interrupted')),
    reaped_by  TEXT,
    PRIMARY KEY (agent, epoch)
);
CREATE INDEX IF NOT EXISTS claims_by_claimed_at ON claims (claimed_at);
";

/// The call's row, read from SQLite in this column order.
const LOCAL_CALL: &str = "SELECT id, caller, dialed, source, branch, department, priority, agent,
        outcome, started_at, answered_at, queued_at, connected_at, ended_at, wait_ms, talk_ms,
        transfers, sla_ms, events
     FROM calls WHERE id = ?1";

/// Its timeline.
const LOCAL_EVENTS: &str =
    "SELECT seq, at, kind, detail FROM call_events WHERE call_id = ?1 ORDER BY seq";

/// The row into PostgreSQL: the newest local row wins (the local file is
/// the one writer of a node's calls).
const UPSERT_CALL: &str = "INSERT INTO calls (id, caller, dialed, source, branch, department,
        priority, agent, outcome, started_at, answered_at, queued_at, connected_at, ended_at,
        wait_ms, talk_ms, transfers, sla_ms, events, node)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20)
     ON CONFLICT (id) DO UPDATE SET caller = EXCLUDED.caller, dialed = EXCLUDED.dialed,
        source = EXCLUDED.source, branch = EXCLUDED.branch, department = EXCLUDED.department,
        priority = EXCLUDED.priority, agent = EXCLUDED.agent, outcome = EXCLUDED.outcome,
        started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at,
        queued_at = EXCLUDED.queued_at, connected_at = EXCLUDED.connected_at,
        ended_at = EXCLUDED.ended_at, wait_ms = EXCLUDED.wait_ms, talk_ms = EXCLUDED.talk_ms,
        transfers = EXCLUDED.transfers, sla_ms = EXCLUDED.sla_ms, events = EXCLUDED.events,
        node = EXCLUDED.node";

/// A step of the timeline, once.
const INSERT_EVENT: &str = "INSERT INTO call_events (call_id, seq, at, kind, detail)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (call_id, seq) DO NOTHING";

/// How the replica runs.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The database.
    pub url: PostgresUrl,
    /// This node's `--node-id`, in each row's `node` column.
    pub node: String,
    /// The bound of every connection attempt and every statement
    /// (`statement_timeout`). Default 5 s.
    pub timeout: Duration,
    /// How long the shipper waits before trying again after a failure.
    /// Default 1 s.
    pub retry: Duration,
}

impl ReplicaConfig {
    /// A replica of this node's calls in `url`, with the default timings.
    pub fn new(url: PostgresUrl, node: impl Into<String>) -> Self {
        ReplicaConfig {
            url,
            node: node.into(),
            timeout: Duration::from_secs(5),
            retry: Duration::from_secs(1),
        }
    }
}

/// The replica's state at one moment, for metrics, health and alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The database, password redacted.
    pub target: String,
    /// Whether the last attempt to ship (or to connect) succeeded.
    pub up: bool,
    /// Calls and claim holdings changed locally and not yet in PostgreSQL
    /// (a gauge).
    pub backlog: u64,
    /// Calls and claim holdings shipped (a counter; one shipped at each of
    /// its changes counts each time).
    pub shipped: u64,
    /// Since when it has been down, if it is.
    pub down_since: Option<Timestamp>,
    /// The last error, if any ever happened (never holds the password:
    /// the client's errors do not quote the URL).
    pub last_error: Option<String>,
}

/// What the shipper and the journal's handles share.
#[derive(Debug)]
pub(crate) struct ReplicaShared {
    target: String,
    up: AtomicBool,
    backlog: AtomicU64,
    shipped: AtomicU64,
    down_since: Mutex<Option<Timestamp>>,
    last_error: Mutex<Option<String>>,
    /// Wakes the shipper (after a local commit, or to stop).
    poke: Sender<()>,
    stop: AtomicBool,
    /// Commits that marked something to ship ([`ReplicaShared::queued`]):
    /// a count the shipper started from is only stored if none came
    /// meanwhile.
    generation: AtomicU64,
}

impl ReplicaShared {
    pub(crate) fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            target: self.target.clone(),
            up: self.up.load(Ordering::SeqCst),
            backlog: self.backlog.load(Ordering::SeqCst),
            shipped: self.shipped.load(Ordering::SeqCst),
            down_since: *self
                .down_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Tells the shipper there is something to ship (never blocks: one
    /// pending poke is enough).
    pub(crate) fn poke(&self) {
        let _ = self.poke.try_send(());
    }

    /// A commit marked calls or claim holdings to ship: the backlog reads
    /// at least one from now until the shipper has counted again, so that
    /// "up with nothing waiting" is never read between a commit and the
    /// shipper's next look (a test read it so, and stopped PostgreSQL with
    /// three holdings unshipped); and the shipper is woken.
    pub(crate) fn queued(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.backlog.fetch_max(1, Ordering::SeqCst);
        self.poke();
    }

    fn down(&self, error: String) {
        let was_up = self.up.swap(false, Ordering::SeqCst);
        let mut since = self
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if since.is_none() {
            *since = Some(Timestamp::now());
        }
        drop(since);
        if was_up || self.last_error_is_new(&error) {
            tracing::error!(target = %self.target, %error, "journal replica unavailable: calls kept in the outbox");
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    fn last_error_is_new(&self, error: &str) -> bool {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            != Some(error)
    }

    fn up(&self) {
        let was_up = self.up.swap(true, Ordering::SeqCst);
        let since = self
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (false, Some(since)) = (was_up, since) {
            tracing::warn!(target = %self.target, %since, "journal replica available again");
        }
    }
}

/// The shipper's thread.
#[derive(Debug)]
pub(crate) struct Replica {
    shared: Arc<ReplicaShared>,
    thread: Option<JoinHandle<()>>,
}

impl Replica {
    /// Starts the shipper on the journal file at `path` (already migrated).
    /// It connects in the background: a database down at start only
    /// leaves the replica down (and the calls in the outbox).
    pub(crate) fn start(path: &Path, config: ReplicaConfig) -> Result<Replica, JournalError> {
        let (poke, woken) = crossbeam_channel::bounded(1);
        let shared = Arc::new(ReplicaShared {
            target: config.url.redacted(),
            up: AtomicBool::new(false),
            backlog: AtomicU64::new(0),
            shipped: AtomicU64::new(0),
            down_since: Mutex::new(Some(Timestamp::now())),
            last_error: Mutex::new(None),
            poke,
            stop: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        });
        let local = open_local(path)?;
        let shipper = Shipper {
            local,
            remote: None,
            config,
            shared: Arc::clone(&shared),
            woken,
        };
        shipper.count_backlog();
        let thread = std::thread::Builder::new()
            .name("records-replica".into())
            .spawn(move || shipper.run())
            .map_err(JournalError::Spawn)?;
        Ok(Replica {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<ReplicaShared> {
        &self.shared
    }

    /// Ships what it can within `timeout`, then stops; what is left stays
    /// in the outbox for the next start.
    pub(crate) fn stop(&mut self, timeout: Duration) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + timeout;
        // One last pass if the database is up; then stop.
        while self.shared.up.load(Ordering::SeqCst)
            && self.shared.backlog.load(Ordering::SeqCst) > 0
            && Instant::now() < deadline
            && !thread.is_finished()
        {
            self.shared.poke();
            std::thread::sleep(Duration::from_millis(10));
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.poke();
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!("the journal replica's shipper did not stop in time");
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(1));
    }
}

/// The shipper's own connection to the local file (WAL: it reads while
/// the writer writes; its deletes wait for the writer's lock).
fn open_local(path: &Path) -> Result<Connection, JournalError> {
    let open_error = |source| JournalError::Open {
        path: PathBuf::from(path),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_with_flags(path, flags).map_err(open_error)?;
    crate::schema::writing(&mut connection).map_err(open_error)?;
    Ok(connection)
}

struct Shipper {
    local: Connection,
    remote: Option<Client>,
    config: ReplicaConfig,
    shared: Arc<ReplicaShared>,
    woken: Receiver<()>,
}

/// A failure of one pass, as text (local or remote).
type PassError = String;

impl Shipper {
    fn run(mut self) {
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            match self.pass() {
                Ok(true) => continue,
                Ok(false) => {
                    // Idle: wait for a poke; wake now and then anyway (a
                    // lost poke costs at most this).
                    let _ = self.woken.recv_timeout(self.config.retry);
                }
                Err(error) => {
                    self.remote = None;
                    self.shared.down(error);
                    // What waits for the database grows while it is down.
                    self.count_backlog();
                    let _ = self.woken.recv_timeout(self.config.retry);
                    // Pokes that came while it was down: the next pass
                    // ships everything anyway.
                    while self.woken.try_recv().is_ok() {}
                }
            }
        }
    }

    /// Counts what waits, and shows it unless a commit queued more while
    /// it counted (the count may predate it; the next pass counts again).
    fn count_backlog(&self) {
        let seen = self.shared.generation.load(Ordering::SeqCst);
        if let Ok(count) = self.local.query_row(
            "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM claim_outbox)",
            [],
            |row| row.get::<_, i64>(0),
        ) && self.shared.generation.load(Ordering::SeqCst) == seen
        {
            self.shared
                .backlog
                .store(u64::try_from(count).unwrap_or(0), Ordering::SeqCst);
        }
    }

    /// Connects (and creates the schema) if needed, then ships one batch
    /// of calls and one of claim holdings. `Ok(true)`: shipped a full
    /// batch, go on at once.
    fn pass(&mut self) -> Result<bool, PassError> {
        let seen = self.shared.generation.load(Ordering::SeqCst);
        if self.remote.is_none() {
            let mut client = connect(&self.config).map_err(|error| error.to_string())?;
            ensure_schema(&mut client)?;
            self.remote = Some(client);
        }
        self.shared.up();
        let calls = self.ship_calls()?;
        let claims = self.ship_claims()?;
        if calls == 0 && claims == 0 {
            // Nothing was there when it looked; if a commit queued
            // something since, look again at once.
            if self.shared.generation.load(Ordering::SeqCst) != seen {
                return Ok(true);
            }
            self.shared.backlog.store(0, Ordering::SeqCst);
            return Ok(false);
        }
        self.shared
            .shipped
            .fetch_add((calls + claims) as u64, Ordering::SeqCst);
        self.count_backlog();
        Ok(calls == SHIP_BATCH || claims == SHIP_BATCH)
    }

    /// Ships one batch of marked calls; how many.
    fn ship_calls(&mut self) -> Result<usize, PassError> {
        let marked: Vec<(String, i64)> = {
            let mut statement = self
                .local
                .prepare_cached("SELECT call_id, gen FROM outbox ORDER BY rowid LIMIT ?1")
                .map_err(|error| error.to_string())?;
            statement
                .query_map(params![SHIP_BATCH as i64], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .and_then(Iterator::collect)
                .map_err(|error| error.to_string())?
        };
        if marked.is_empty() {
            return Ok(0);
        }
        let calls = marked
            .iter()
            .map(|(id, _)| read_call(&self.local, id))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|error| error.to_string())?;
        let Some(remote) = self.remote.as_mut() else {
            return Err("not connected".into());
        };
        ship(remote, &calls, &self.config.node).map_err(|error| error.to_string())?;
        // Committed in PostgreSQL: unmark what did not change meanwhile.
        let transaction = self
            .local
            .transaction()
            .map_err(|error| error.to_string())?;
        for (id, generation) in &marked {
            transaction
                .prepare_cached("DELETE FROM outbox WHERE call_id = ?1 AND gen = ?2")
                .and_then(|mut statement| statement.execute(params![id, generation]))
                .map_err(|error| error.to_string())?;
        }
        transaction.commit().map_err(|error| error.to_string())?;
        Ok(marked.len())
    }

    /// Ships one batch of marked claim holdings (see [`crate::claims`]);
    /// how many. Each is upserted as its local row stands, so a holding
    /// shipped by the holder and by a reaper ends up the same row.
    fn ship_claims(&mut self) -> Result<usize, PassError> {
        let text = |error: rusqlite::Error| error.to_string();
        let marked: Vec<(String, i64, i64)> = self
            .local
            .prepare_cached("SELECT agent, epoch, gen FROM claim_outbox LIMIT ?1")
            .and_then(|mut statement| {
                statement
                    .query_map(params![SHIP_BATCH as i64], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?
                    .collect()
            })
            .map_err(text)?;
        if marked.is_empty() {
            return Ok(0);
        }
        let mut rows = Vec::with_capacity(marked.len());
        for (agent, epoch, _) in &marked {
            let row = self
                .local
                .prepare_cached(LOCAL_CLAIM)
                .and_then(|mut statement| {
                    statement.query_row(params![agent, epoch], |row| {
                        Ok(ClaimColumns {
                            agent: row.get(0)?,
                            epoch: row.get(1)?,
                            node: row.get(2)?,
                            call: row.get(3)?,
                            claimed_at: row.get(4)?,
                            ended_at: row.get(5)?,
                            ended: row.get(6)?,
                            reaped_by: row.get(7)?,
                        })
                    })
                });
            match row {
                Ok(row) => rows.push(row),
                // Marked but gone (never, today): nothing to ship.
                Err(rusqlite::Error::QueryReturnedNoRows) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        let Some(remote) = self.remote.as_mut() else {
            return Err("not connected".into());
        };
        ship_claims(remote, &rows).map_err(|error| error.to_string())?;
        let transaction = self.local.transaction().map_err(text)?;
        for (agent, epoch, generation) in &marked {
            transaction
                .prepare_cached(
                    "DELETE FROM claim_outbox WHERE agent = ?1 AND epoch = ?2 AND gen = ?3",
                )
                .and_then(|mut statement| statement.execute(params![agent, epoch, generation]))
                .map_err(text)?;
        }
        transaction.commit().map_err(text)?;
        Ok(marked.len())
    }
}

/// A claim holding's local row ([`LOCAL_CLAIM`]'s columns).
struct ClaimColumns {
    agent: String,
    epoch: i64,
    node: String,
    call: Option<String>,
    claimed_at: Option<i64>,
    ended_at: Option<i64>,
    ended: Option<String>,
    reaped_by: Option<String>,
}

/// Upserts `rows` in one PostgreSQL transaction, with the SQL text SQLite
/// ran.
fn ship_claims(remote: &mut Client, rows: &[ClaimColumns]) -> Result<(), postgres::Error> {
    let mut transaction = remote.transaction()?;
    let upsert = transaction.prepare(crate::claims::UPSERT_CLAIM)?;
    for row in rows {
        transaction.execute(
            &upsert,
            &[
                &row.agent,
                &row.epoch,
                &row.node,
                &row.call,
                &row.claimed_at,
                &row.ended_at,
                &row.ended,
                &row.reaped_by,
            ],
        )?;
    }
    transaction.commit()
}

/// Connects with the bounded timeouts.
fn connect(config: &ReplicaConfig) -> Result<Client, postgres::Error> {
    let mut client_config = config.url.config()?;
    let millis = config.timeout.as_millis();
    client_config
        .connect_timeout(config.timeout)
        .options(&format!(
            "-c statement_timeout={millis} -c lock_timeout={millis}"
        ))
        .application_name("frontdesk");
    client_config.connect(NoTls)
}

/// Creates the schema if it is not there, under the advisory lock, and
/// checks its version.
pub(crate) fn ensure_schema(client: &mut Client) -> Result<(), String> {
    let text = |error: postgres::Error| error.to_string();
    let mut transaction = client.transaction().map_err(text)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(text)?;
    transaction.batch_execute(SCHEMA).map_err(text)?;
    let found: Option<i64> = transaction
        .query_one("SELECT max(version) FROM journal_schema", &[])
        .map_err(text)?
        .get(0);
    match found {
        None => {
            transaction
                .execute(
                    "INSERT INTO journal_schema (version) VALUES ($1)",
                    &[&POSTGRES_SCHEMA_VERSION],
                )
                .map_err(text)?;
        }
        // Version 1: the SCHEMA above has just created what 2 adds.
        Some(version) if version < POSTGRES_SCHEMA_VERSION => {
            transaction
                .execute(
                    "UPDATE journal_schema SET version = $1",
                    &[&POSTGRES_SCHEMA_VERSION],
                )
                .map_err(text)?;
        }
        // Refused like a SQLite file newer than this build (the
        // transaction rolls back; the shipper retries, the alert stays).
        Some(version) if version > POSTGRES_SCHEMA_VERSION => {
            return Err(format!(
                "the PostgreSQL journal's schema is version {version}, newer than this build's {POSTGRES_SCHEMA_VERSION}"
            ));
        }
        Some(_) => {}
    }
    transaction.commit().map_err(text)
}

/// A call's row and timeline, read from the local file.
struct LocalCall {
    row: Option<CallColumns>,
    events: Vec<(i64, i64, String, String)>,
}

/// The columns of [`LOCAL_CALL`], in order.
struct CallColumns {
    id: String,
    texts: [Option<String>; 8],
    times: [Option<i64>; 10],
}

fn read_call(local: &Connection, id: &str) -> rusqlite::Result<LocalCall> {
    let row = match local
        .prepare_cached(LOCAL_CALL)?
        .query_row(params![id], |row| {
            Ok(CallColumns {
                id: row.get(0)?,
                texts: [
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                ],
                times: [
                    row.get(9)?,
                    row.get(10)?,
                    row.get(11)?,
                    row.get(12)?,
                    row.get(13)?,
                    row.get(14)?,
                    row.get(15)?,
                    row.get(16)?,
                    row.get(17)?,
                    row.get(18)?,
                ],
            })
        }) {
        Ok(row) => Some(row),
        Err(rusqlite::Error::QueryReturnedNoRows) => None,
        Err(error) => return Err(error),
    };
    let events = local
        .prepare_cached(LOCAL_EVENTS)?
        .query_map(params![id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(LocalCall { row, events })
}

/// Ships `calls` in one PostgreSQL transaction.
fn ship(remote: &mut Client, calls: &[LocalCall], node: &str) -> Result<(), postgres::Error> {
    let mut transaction = remote.transaction()?;
    let upsert = transaction.prepare(UPSERT_CALL)?;
    let insert = transaction.prepare(INSERT_EVENT)?;
    for call in calls {
        // A call deleted locally (never, today) has nothing to ship.
        let Some(row) = &call.row else { continue };
        // The columns in UPSERT_CALL's order: id, the texts, the times,
        // the node.
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            Vec::with_capacity(2 + row.texts.len() + row.times.len());
        params.push(&row.id);
        params.extend(
            row.texts
                .iter()
                .map(|text| text as &(dyn postgres::types::ToSql + Sync)),
        );
        params.extend(
            row.times
                .iter()
                .map(|time| time as &(dyn postgres::types::ToSql + Sync)),
        );
        params.push(&node);
        transaction.execute(&upsert, &params)?;
        for (seq, at, kind, detail) in &call.events {
            transaction.execute(&insert, &[&row.id, seq, at, kind, detail])?;
        }
    }
    transaction.commit()
}
