//! The database: connection set-up and the versioned schema.
//!
//! The schema version is SQLite's `PRAGMA user_version` (0 in a new file).
//! The steps are an ordered list in this module's source (version `n` is
//! step `n`); opening the journal applies every step newer than the file's
//! version, each in its own transaction together with its `user_version`
//! bump, so a failed step leaves the file at the previous version. A file
//! newer than this build is refused. To change the schema, append a step
//! and a fixture for it in the tests (`from_each_older_version` then
//! upgrades a file of every older version, with data, and compares it with
//! a new file).
//!
//! # Schema (version 7)
//!
//! Times are integers, milliseconds since the Unix epoch (UTC); durations
//! are integer milliseconds (`_ms`).
//!
//! `calls`: one row per call (lead), folded from its events by the writer:
//! `id` (primary key), `caller`, `dialed`, `source`, `branch`,
//! `department` (the queue it is or was last in), `priority` (`routine` /
//! `urgent`), `agent` (the last agent who answered), `outcome`
//! (`in_progress` until it ends; version 2 allows `interrupted`), `started_at`, `answered_at` (IVR answer),
//! `queued_at` (first queue), `connected_at` (first agent answer),
//! `ended_at`, `wait_ms`, `talk_ms`, `transfers`, `sla_ms` (the SLA of
//! `department` when it was queued there), `events` (how many events its
//! timeline has, so the last `seq`).
//!
//! `call_events`: the timeline, `(call_id, seq)` primary key, `at`,
//! `kind` and `detail` (JSON) as described on
//! [`CallEvent`](crate::CallEvent).
//!
//! Indexes: `calls(started_at, id)` serves `/api/calls?limit=N` (newest
//! first, read backwards) and the reports' time ranges;
//! `call_events(at)` serves the recent-abandonment window.
//!
//! # Version 3
//!
//! Leads (`leads`, `lead_events`, `lead_keys`) and `calls(caller,
//! started_at)` for a patient's earlier calls: see [`crate::leads`].
//!
//! # Version 4
//!
//! Callback entries (`callbacks`, and `callbacks_waiting` on the waiting
//! ones): see [`crate::callbacks`].
//!
//! # Version 5
//!
//! `outbox`: the calls to ship to PostgreSQL when the journal has a
//! replica there (`--journal postgres://…`): see [`crate::replica`].
//!
//! # Version 6
//!
//! `claims`, the claim history (one row per holding of an agent by a
//! cluster node), and `claim_outbox`, the holdings to ship to PostgreSQL:
//! see [`crate::claims`].
//!
//! # Version 7
//!
//! `webhook_outbox`: the CRM webhooks' undelivered events, written by the
//! transaction of the change they tell of: see [`crate::webhooks`].

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};

use crate::error::JournalError;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 7;

/// How long a connection waits for a lock before failing. Three
/// connections write ([`writing`]); WAL readers never block them, and
/// wait this long only for checkpoints.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets up a connection that writes to the journal's file. Three do:
/// the journal's writer, the webhooks' outbox (`webhooks::outbox`) and
/// the PostgreSQL shipper's (`replica`), each in short transactions.
///
/// - Every transaction takes the write lock at its start (`BEGIN
///   IMMEDIATE`). A deferred one that reads first and writes after fails
///   at once with `SQLITE_BUSY`, without its busy handler, whenever
///   another writer committed in between: under the lead load of
///   `bench/webhooks.sh` that was nearly every outbox claim.
/// - The busy handler tries again every millisecond, for
///   [`BUSY_TIMEOUT`] in all. SQLite's own (`busy_timeout`) sleeps 1, 2,
///   5, 10 … up to 100 ms between tries, so a writer finding another's
///   transaction of a millisecond in progress could wait tens of them.
pub(crate) fn writing(connection: &mut Connection) -> rusqlite::Result<()> {
    fn again(tries: i32) -> bool {
        wait_a_millisecond(tries, BUSY_TIMEOUT)
    }
    connection.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    connection.busy_handler(Some(again))
}

/// A busy handler's step: sleeps a millisecond and says to try again,
/// until `tries` milliseconds reach `limit`.
pub(crate) fn wait_a_millisecond(tries: i32, limit: Duration) -> bool {
    if tries >= i32::try_from(limit.as_millis()).unwrap_or(i32::MAX) {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

/// One step of the schema's history.
#[derive(Debug)]
pub(crate) struct Migration {
    /// The version the file has after this step.
    pub(crate) version: i64,
    /// What it does, for the log.
    pub(crate) description: &'static str,
    /// The step, run inside its transaction.
    pub(crate) apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// Every step, oldest first; `MIGRATIONS[i].version == i + 1`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "calls and call_events",
        apply: version_1,
    },
    Migration {
        version: 2,
        description: "the interrupted outcome",
        apply: version_2,
    },
    Migration {
        version: 3,
        description: "leads, lead_events, lead_keys; calls by caller",
        apply: crate::leads::schema::version_3,
    },
    Migration {
        version: 4,
        description: "callbacks",
        apply: crate::callbacks::schema::version_4,
    },
    Migration {
        version: 5,
        description: "the outbox of calls to ship to PostgreSQL",
        apply: version_5,
    },
    Migration {
        version: 6,
        description: "the claim history and its outbox",
        apply: crate::claims::version_6,
    },
    Migration {
        version: 7,
        description: "webhook_outbox: CRM webhooks' undelivered events (issue 26)",
        apply: crate::webhooks::version_7,
    },
];

/// `outbox`: the calls whose row or timeline changed since they were last
/// shipped to PostgreSQL (`--journal postgres://…`, see
/// [`crate::replica`]): `call_id`, `gen` (bumped by each change, so the
/// shipper deletes a row only if nothing changed while it shipped). Empty
/// and unused on a single node.
fn version_5(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(
        "CREATE TABLE outbox (
            call_id TEXT PRIMARY KEY NOT NULL,
            gen     INTEGER NOT NULL
        );",
    )
}

fn version_1(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(
        "CREATE TABLE calls (
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
                         CHECK (outcome IN ('in_progress', 'connected', 'abandoned',
                                            'overflowed', 'rejected', 'after_hours')),
            started_at   INTEGER NOT NULL,
            answered_at  INTEGER,
            queued_at    INTEGER,
            connected_at INTEGER,
            ended_at     INTEGER,
            wait_ms      INTEGER,
            talk_ms      INTEGER,
            transfers    INTEGER NOT NULL DEFAULT 0,
            sla_ms       INTEGER,
            events       INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX calls_by_start ON calls (started_at, id);
        CREATE TABLE call_events (
            call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
            seq     INTEGER NOT NULL,
            at      INTEGER NOT NULL,
            kind    TEXT NOT NULL,
            detail  TEXT NOT NULL,
            PRIMARY KEY (call_id, seq)
        ) WITHOUT ROWID;
        CREATE INDEX call_events_by_time ON call_events (at);",
    )
}

/// `calls.outcome` may be `interrupted`. SQLite cannot change a CHECK
/// constraint in place, so the table is made again with it and the rows
/// copied (its documented procedure, "Making Other Kinds Of Table Schema
/// Changes"); migrations run with foreign keys off (see [`open_writer`]),
/// so dropping the old table does not cascade to `call_events`.
fn version_2(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(
        "CREATE TABLE calls_new (
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
                         CHECK (outcome IN ('in_progress', 'connected', 'abandoned',
                                            'overflowed', 'rejected', 'after_hours',
                                            'interrupted')),
            started_at   INTEGER NOT NULL,
            answered_at  INTEGER,
            queued_at    INTEGER,
            connected_at INTEGER,
            ended_at     INTEGER,
            wait_ms      INTEGER,
            talk_ms      INTEGER,
            transfers    INTEGER NOT NULL DEFAULT 0,
            sla_ms       INTEGER,
            events       INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO calls_new SELECT id, caller, dialed, source, branch, department, priority,
            agent, outcome, started_at, answered_at, queued_at, connected_at, ended_at, wait_ms,
            talk_ms, transfers, sla_ms, events FROM calls;
        DROP TABLE calls;
        ALTER TABLE calls_new RENAME TO calls;
        CREATE INDEX calls_by_start ON calls (started_at, id);",
    )?;
    // Every event still has its call.
    let orphans: i64 = transaction.query_row(
        "SELECT count(*) FROM pragma_foreign_key_check('call_events')",
        [],
        |row| row.get(0),
    )?;
    if orphans > 0 {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Some(format!("{orphans} events without their call")),
        ));
    }
    Ok(())
}

/// How hard a commit tries to reach the disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `NORMAL`: in WAL mode a commit is a write into the OS page cache;
    /// it survives the process being killed (SIGKILL, panic, OOM) but the
    /// last commits may be lost if the machine loses power.
    Normal,
    /// `FULL` (the default): every commit also fsyncs the WAL, so it
    /// survives a power cut too. Batching makes this cheap: one fsync per
    /// batch, at most one every `linger`.
    #[default]
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Opens (creating if needed) the writer's connection: WAL, the chosen
/// `synchronous`, an optional size cap, migrations (with foreign keys off,
/// as SQLite's table rebuilds need), then foreign keys on.
pub(crate) fn open_writer(
    path: &Path,
    synchronous: Synchronous,
    max_database_bytes: Option<u64>,
) -> Result<Connection, JournalError> {
    let open_error = |source| JournalError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut connection = Connection::open(path).map_err(open_error)?;
    writing(&mut connection).map_err(open_error)?;
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::WalUnavailable {
            path: path.to_path_buf(),
            mode,
        });
    }
    connection
        .pragma_update(None, "synchronous", synchronous.pragma())
        .map_err(open_error)?;
    if let Some(bytes) = max_database_bytes {
        let page_size: i64 = connection
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(open_error)?;
        let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page_size.max(1);
        connection
            .pragma_update(None, "max_page_count", pages.max(1))
            .map_err(open_error)?;
    }
    connection
        .pragma_update(None, "foreign_keys", false)
        .map_err(open_error)?;
    migrate(&mut connection, MIGRATIONS)?;
    connection
        .pragma_update(None, "foreign_keys", true)
        .map_err(open_error)?;
    Ok(connection)
}

/// Opens a read-only connection on a journal already at [`SCHEMA_VERSION`].
pub(crate) fn open_reader(path: &Path) -> Result<Connection, JournalError> {
    let open_error = |source| JournalError::Open {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags).map_err(open_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    let found = user_version(&connection).map_err(open_error)?;
    match found.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Less => Err(JournalError::SchemaTooOld {
            found,
            expected: SCHEMA_VERSION,
        }),
        std::cmp::Ordering::Greater => Err(JournalError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
        std::cmp::Ordering::Equal => Ok(connection),
    }
}

/// The file's schema version.
pub(crate) fn user_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies every step of `steps` newer than the file's version, in order,
/// each atomically with its version bump. Returns the version found.
pub(crate) fn migrate(
    connection: &mut Connection,
    steps: &[Migration],
) -> Result<i64, JournalError> {
    let supported = steps.last().map_or(0, |step| step.version);
    let found = user_version(connection).map_err(|source| JournalError::Migration {
        version: supported,
        source,
    })?;
    if found > supported {
        return Err(JournalError::SchemaTooNew { found, supported });
    }
    for step in steps.iter().filter(|step| step.version > found) {
        let failed = |source| JournalError::Migration {
            version: step.version,
            source,
        };
        let transaction = connection.transaction().map_err(failed)?;
        (step.apply)(&transaction).map_err(failed)?;
        transaction
            .pragma_update(None, "user_version", step.version)
            .map_err(failed)?;
        transaction.commit().map_err(failed)?;
        tracing::info!(
            version = step.version,
            description = step.description,
            "journal schema migrated"
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The structure of a database: every table's columns and every
    /// index's columns, comparable across files whatever history built
    /// them.
    fn structure(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare(
                "SELECT m.type || ' ' || m.name || ' on ' || m.tbl_name || ': ' ||
                        group_concat(c.name || ' ' || coalesce(c.type, '') || ' ' ||
                                     coalesce(c.\"notnull\", '') || ' ' ||
                                     coalesce(c.dflt_value, '') || ' ' || coalesce(c.pk, ''), ', ')
                 FROM sqlite_master m
                 JOIN pragma_table_info(m.name) c ON m.type = 'table'
                 GROUP BY m.name
                 UNION ALL
                 SELECT m.type || ' ' || m.name || ' on ' || m.tbl_name || ': ' ||
                        group_concat(i.name, ', ')
                 FROM sqlite_master m
                 JOIN pragma_index_info(m.name) i ON m.type = 'index'
                 GROUP BY m.name
                 ORDER BY 1",
            )
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Rows every version of the schema can hold, written with the columns
    /// of `version` (a fixture per version, so upgrades are tested with
    /// data in them).
    fn fixture(connection: &Connection, version: i64) {
        if version >= 1 {
            connection
                .execute_batch(
                    "INSERT INTO calls (id, caller, dialed, started_at, outcome)
                     VALUES ('c-old', '+13125550142', '+15550100', 1000, 'abandoned');
                     INSERT INTO call_events (call_id, seq, at, kind, detail)
                     VALUES ('c-old', 1, 1000, 'ended', '{\"outcome\":\"abandoned\"}');",
                )
                .unwrap();
        }
        if version >= 3 {
            connection
                .execute_batch(
                    "INSERT INTO leads (id, kind, source, phone, department, created_at, respond_by)
                     VALUES ('l-old', 'web_form', 'website', '+13125550142', 'front-desk', 1000, 301000);",
                )
                .unwrap();
        }
        if version >= 4 {
            fixture_callback(connection);
        }
        if version >= 5 {
            connection
                .execute_batch("INSERT INTO outbox (call_id, gen) VALUES ('c-old', 3);")
                .unwrap();
        }
    }

    /// A waiting callback entry, as version 4 holds it.
    fn fixture_callback(connection: &Connection) {
        connection
            .execute_batch(
                "INSERT INTO callbacks (id, call, queue, priority, number, enqueued_at,
                                        accepted_at, state)
                 VALUES ('cb-old', 'c-old', 'pediatrics', 'routine', '+13125550142', 1000,
                         2000, 'waiting');",
            )
            .unwrap();
    }

    #[test]
    fn versions_are_consecutive_from_one() {
        for (index, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, index as i64 + 1, "{}", step.description);
        }
        assert_eq!(MIGRATIONS.last().unwrap().version, SCHEMA_VERSION);
    }

    #[test]
    fn from_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let connection = open_writer(&path, Synchronous::Full, None).unwrap();
        assert_eq!(user_version(&connection).unwrap(), SCHEMA_VERSION);
        let mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
        let tables = structure(&connection);
        assert!(
            tables
                .iter()
                .any(|t| t.starts_with("table calls on calls: id TEXT 1"))
        );
        assert!(
            tables
                .iter()
                .any(|t| t == "index calls_by_start on calls: started_at, id")
        );
        assert!(
            tables
                .iter()
                .any(|t| t == "index call_events_by_time on call_events: at")
        );
        drop(connection);
        // Opening again applies nothing and keeps the version.
        let mut again = open_writer(&path, Synchronous::Normal, None).unwrap();
        assert_eq!(migrate(&mut again, MIGRATIONS).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn from_each_older_version() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = open_writer(&dir.path().join("fresh.db"), Synchronous::Full, None).unwrap();
        let expected = structure(&fresh);
        for version in 0..SCHEMA_VERSION {
            let path = dir.path().join(format!("v{version}.db"));
            {
                let mut old = Connection::open(&path).unwrap();
                migrate(&mut old, &MIGRATIONS[..version as usize]).unwrap();
                assert_eq!(user_version(&old).unwrap(), version);
                fixture(&old, version);
            }
            let upgraded = open_writer(&path, Synchronous::Full, None).unwrap();
            assert_eq!(user_version(&upgraded).unwrap(), SCHEMA_VERSION);
            assert_eq!(structure(&upgraded), expected, "upgraded from v{version}");
            let kept: i64 = upgraded
                .query_row("SELECT count(*) FROM calls WHERE id = 'c-old'", [], |row| {
                    row.get(0)
                })
                .unwrap();
            assert_eq!(kept, i64::from(version >= 1), "data kept from v{version}");
            let leads: i64 = upgraded
                .query_row("SELECT count(*) FROM leads WHERE id = 'l-old'", [], |row| {
                    row.get(0)
                })
                .unwrap();
            assert_eq!(leads, i64::from(version >= 3), "leads kept from v{version}");
        }
    }

    fn failing_step(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
        transaction.execute_batch("CREATE TABLE half_done (x); SELECT * FROM no_such_table;")
    }

    #[test]
    fn a_failed_step_leaves_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let mut connection = open_writer(&path, Synchronous::Full, None).unwrap();
        let broken: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|step| Migration { ..*step })
            .chain([Migration {
                version: SCHEMA_VERSION + 1,
                description: "broken",
                apply: failing_step,
            }])
            .collect();
        let error = migrate(&mut connection, &broken).unwrap_err();
        assert!(
            matches!(error, JournalError::Migration { version, .. } if version == SCHEMA_VERSION + 1),
            "{error}"
        );
        assert_eq!(user_version(&connection).unwrap(), SCHEMA_VERSION);
        let half: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(half, 0, "the failed step was rolled back");
    }

    #[test]
    fn version_2_keeps_every_event_and_takes_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        {
            let mut old = Connection::open(&path).unwrap();
            old.pragma_update(None, "foreign_keys", true).unwrap();
            migrate(&mut old, &MIGRATIONS[..1]).unwrap();
            fixture(&old, 1);
            let refused = old.execute("UPDATE calls SET outcome = 'interrupted'", []);
            assert!(refused.is_err(), "version 1 refuses the new outcome");
        }
        let upgraded = open_writer(&path, Synchronous::Full, None).unwrap();
        let events: i64 = upgraded
            .query_row("SELECT count(*) FROM call_events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(events, 1, "the events stayed with their call");
        upgraded
            .execute("UPDATE calls SET outcome = 'interrupted'", [])
            .unwrap();
        let foreign_keys: i64 = upgraded
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .unwrap();
        assert_eq!(foreign_keys, 1, "on again after the migrations");
        upgraded
            .execute("DELETE FROM calls WHERE id = 'c-old'", [])
            .unwrap();
        let events: i64 = upgraded
            .query_row("SELECT count(*) FROM call_events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(events, 0, "the foreign key still cascades");
    }

    #[test]
    fn version_4_keeps_calls_and_leads_and_takes_callbacks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        {
            let mut old = Connection::open(&path).unwrap();
            migrate(&mut old, &MIGRATIONS[..3]).unwrap();
            fixture(&old, 3);
        }
        let upgraded = open_writer(&path, Synchronous::Full, None).unwrap();
        assert_eq!(user_version(&upgraded).unwrap(), SCHEMA_VERSION);
        let count = |sql: &str| -> i64 { upgraded.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM calls WHERE id = 'c-old'"), 1);
        assert_eq!(count("SELECT count(*) FROM call_events"), 1);
        assert_eq!(count("SELECT count(*) FROM leads WHERE id = 'l-old'"), 1);
        assert_eq!(count("SELECT count(*) FROM callbacks"), 0);
        fixture_callback(&upgraded);
        assert_eq!(
            count("SELECT count(*) FROM callbacks WHERE state = 'waiting' AND attempts = 0"),
            1,
            "attempts default to 0"
        );
        for refused in [
            "UPDATE callbacks SET state = 'lost'",
            "UPDATE callbacks SET priority = 'high'",
            "UPDATE callbacks SET number = NULL",
        ] {
            assert!(upgraded.execute(refused, []).is_err(), "{refused}");
        }
        // The restart's read goes through the index of the waiting ones.
        let plan: Vec<String> = upgraded
            .prepare(
                "EXPLAIN QUERY PLAN SELECT id FROM callbacks WHERE state = 'waiting'
                 ORDER BY enqueued_at, id LIMIT 10",
            )
            .unwrap()
            .query_map([], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("callbacks_waiting")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "no sort: {plan:?}"
        );
    }

    #[test]
    fn version_6_keeps_the_outbox_and_takes_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        {
            let mut old = Connection::open(&path).unwrap();
            migrate(&mut old, &MIGRATIONS[..5]).unwrap();
            fixture(&old, 5);
        }
        let upgraded = open_writer(&path, Synchronous::Full, None).unwrap();
        // Up to the newest version, 6 (claims) among the steps.
        assert_eq!(user_version(&upgraded).unwrap(), SCHEMA_VERSION);
        let count = |sql: &str| -> i64 { upgraded.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert_eq!(count("SELECT gen FROM outbox WHERE call_id = 'c-old'"), 3);
        assert_eq!(count("SELECT count(*) FROM claims"), 0);
        upgraded
            .execute_batch(
                "INSERT INTO claims (agent, epoch, node, claimed_at) VALUES ('1003', 1, 'n0', 1000);
                 INSERT INTO claim_outbox (agent, epoch, gen) VALUES ('1003', 1, 1);",
            )
            .unwrap();
        for refused in [
            "INSERT INTO claims (agent, epoch, node) VALUES ('1003', 1, 'n1')",
            "INSERT INTO claims (agent, epoch) VALUES ('1004', 1)",
            "UPDATE claims SET ended = 'stolen'",
        ] {
            assert!(upgraded.execute(refused, []).is_err(), "{refused}");
        }
        // Ranges go through the index on claimed_at.
        let plan: Vec<String> = upgraded
            .prepare("EXPLAIN QUERY PLAN SELECT agent FROM claims WHERE claimed_at >= 5 AND claimed_at < 9")
            .unwrap()
            .query_map([], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("claims_by_claimed_at")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_newer_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let error = open_writer(&path, Synchronous::Full, None).unwrap_err();
        assert!(
            matches!(error, JournalError::SchemaTooNew { found, supported }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION)
        );
        let error = open_reader(&path).unwrap_err();
        assert!(matches!(error, JournalError::SchemaTooNew { .. }));
    }

    #[test]
    fn a_reader_refuses_an_unmigrated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let error = open_reader(&path).unwrap_err();
        assert!(matches!(error, JournalError::SchemaTooOld { found: 0, .. }));
    }
}
