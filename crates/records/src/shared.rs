//! Reading the calls the cluster shares (`--journal postgres://…`): the
//! call-side [`Reader`](crate::Reader) queries go to the PostgreSQL
//! database the replica ([`crate::replica`]) ships every node's calls to,
//! so any node lists and reports every node's calls.
//!
//! # One SQL text, two databases
//! The call-side queries are written once, with `$1`, `$2`… placeholders:
//! PostgreSQL's positional parameters, and for SQLite named parameters
//! (<https://sqlite.org/lang_expr.html#varparam>, "`$AAAA`") that take the
//! indexes 1, 2… in the order they first appear. So in a shared text the
//! placeholders first appear in ascending order (a test checks each text
//! on SQLite), and the same parameter list binds on both. The one place
//! the dialects differ is the order of text: SQLite compares TEXT byte by
//! byte (`BINARY`), PostgreSQL by the database's collation (`en-US` puts
//! `c-a-1` before `c-B-1`, bytes put it after), so PostgreSQL's tie-break on
//! `id` says `COLLATE "C"`, which is byte order (see `Reader::calls`).
//! The schemas agree column for column (INTEGER is BIGINT), so one decoder
//! reads both: rows become [`Cell`]s first.
//!
//! # Connections
//! A small pool, not one connection behind a mutex: the API runs each query
//! inside `spawn_blocking`, the dashboard three at once, and one slow query
//! behind a mutex would make every other one wait its whole timeout too. At
//! most [`MAX_CONNECTIONS`] are open (the database's `max_connections` is
//! shared by every node); a query that finds them all busy waits for one at
//! most the timeout. A connection that failed is dropped, the next query
//! opens a new one.
//!
//! # Bounded
//! Every connection has a connect timeout and a `statement_timeout` (the
//! replica's [`ReplicaConfig::timeout`](crate::ReplicaConfig::timeout), 5 s
//! by default), and TCP keepalives; PostgreSQL down or refusing answers
//! [`QueryError::Unavailable`] within it. A server that stops answering
//! without closing the connection (frozen, a cable pulled) is not covered
//! by `statement_timeout`: the daemon's API also bounds its wait for a
//! reader's answer by [`Reader::timeout`](crate::Reader::timeout).
//!
//! # What a node sees
//! The shared database's view: a node's own step reaches it when the
//! shipper has moved it (within a second or so; later while PostgreSQL was
//! down, until the outbox drains). Reads never merge the local file in.
//! Leads, lead events and callback entries stay node-local: their reads
//! keep using the node's file.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use postgres::types::{ToSql, Type};
use postgres::{Client, IsolationLevel, NoTls};

use crate::error::QueryError;
use crate::location::PostgresUrl;
use crate::sql::{Cell, Param, Statement};

/// The most connections one reader keeps open to PostgreSQL.
pub const MAX_CONNECTIONS: usize = 4;

/// The reads of the shared database.
#[derive(Debug)]
pub(crate) struct SharedReads {
    url: PostgresUrl,
    timeout: Duration,
    pool: Mutex<Pool>,
    freed: Condvar,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    /// Idle plus in use.
    open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Pool")
            .field("idle", &self.idle.len())
            .field("open", &self.open)
            .finish()
    }
}

impl SharedReads {
    /// Reads of `url`, each bounded by `timeout`. Connects lazily: a
    /// database down now does not stop the daemon's start.
    pub(crate) fn new(url: PostgresUrl, timeout: Duration) -> Self {
        SharedReads {
            url,
            timeout,
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `statements` in one read-only REPEATABLE READ transaction (one
    /// snapshot, as SQLite's read transaction) and returns each one's rows.
    ///
    /// On a thread of its own, joined at once: the blocking client runs a
    /// tokio runtime of its own, which panics on a thread that drives one
    /// already (the daemon seeds its alerts from an async function).
    pub(crate) fn read(
        &self,
        statements: &[Statement<'_>],
    ) -> Result<Vec<Vec<Vec<Cell>>>, QueryError> {
        std::thread::scope(|scope| {
            let reading = std::thread::Builder::new()
                .name("journal-read".into())
                .spawn_scoped(scope, || self.read_here(statements))
                .map_err(|error| QueryError::Unavailable(format!("no reader thread: {error}")))?;
            reading.join().unwrap_or_else(|_| {
                Err(QueryError::Unavailable("the reader thread panicked".into()))
            })
        })
    }

    fn read_here(&self, statements: &[Statement<'_>]) -> Result<Vec<Vec<Vec<Cell>>>, QueryError> {
        let mut client = self.take()?;
        let (result, keep) = match run(&mut client, statements) {
            Ok(rows) => (Ok(rows), true),
            Err(Failure { error, keep }) => (Err(error), keep),
        };
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if keep {
            pool.idle.push(client);
        } else {
            // Reopened by a later query.
            pool.open -= 1;
        }
        drop(pool);
        self.freed.notify_one();
        result
    }

    /// An idle connection, a new one, or one freed within the timeout.
    fn take(&self) -> Result<Client, QueryError> {
        let deadline = Instant::now() + self.timeout;
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(client) = pool.idle.pop() {
                if !client.is_closed() {
                    return Ok(client);
                }
                pool.open -= 1;
                continue;
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                drop(pool);
                return self.connect().inspect_err(|_| {
                    self.pool
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .open -= 1;
                    self.freed.notify_one();
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(QueryError::Unavailable(format!(
                    "all {MAX_CONNECTIONS} connections to PostgreSQL busy for {:?}",
                    self.timeout
                )));
            }
            pool = self
                .freed
                .wait_timeout(pool, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn connect(&self) -> Result<Client, QueryError> {
        let unavailable = |error: postgres::Error| QueryError::Unavailable(error.to_string());
        let mut config = self.url.config().map_err(unavailable)?;
        let millis = self.timeout.as_millis();
        config
            .connect_timeout(self.timeout)
            .keepalives(true)
            .keepalives_idle(self.timeout)
            .options(&format!(
                "-c statement_timeout={millis} -c lock_timeout={millis}"
            ))
            .application_name("frontdesk-reader");
        config.connect(NoTls).map_err(unavailable)
    }
}

impl Drop for SharedReads {
    /// Idle connections are closed on a thread of their own: closing one
    /// blocks on the client's runtime, and the last reader may be dropped
    /// on an async thread.
    fn drop(&mut self) {
        let idle = std::mem::take(
            &mut self
                .pool
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .idle,
        );
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("journal-read-close".into())
                .spawn(move || drop(idle));
        }
    }
}

/// Why a read failed, and whether its connection can serve again.
struct Failure {
    error: QueryError,
    keep: bool,
}

fn run(client: &mut Client, statements: &[Statement<'_>]) -> Result<Vec<Vec<Vec<Cell>>>, Failure> {
    let failed = |error: postgres::Error| Failure {
        // A database error (statement_timeout, a missing table before the
        // first node created the schema) leaves the session usable; a
        // broken connection does not.
        keep: error.as_db_error().is_some() && !client_closed(&error),
        error: QueryError::Unavailable(error.to_string()),
    };
    let mut transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(failed)?;
    let mut results = Vec::with_capacity(statements.len());
    for statement in statements {
        let params: Vec<&(dyn ToSql + Sync)> = statement
            .params
            .iter()
            .map(|param| match param {
                Param::Int(value) => value as &(dyn ToSql + Sync),
                Param::Text(value) => value as &(dyn ToSql + Sync),
            })
            .collect();
        let rows = transaction.query(statement.sql, &params).map_err(failed)?;
        let mut cells = Vec::with_capacity(rows.len());
        for row in &rows {
            cells.push(row_cells(row).map_err(|error| Failure { error, keep: true })?);
        }
        results.push(cells);
    }
    transaction.commit().map_err(failed)?;
    Ok(results)
}

/// Whether `error` closed the session (the server shutting down sends a
/// database error, `57P01 admin_shutdown`, then closes).
fn client_closed(error: &postgres::Error) -> bool {
    error.is_closed()
        || error
            .code()
            .is_some_and(|code| code.code().starts_with("57P"))
}

/// One PostgreSQL row as cells: BIGINT/INTEGER/BOOLEAN as integers, TEXT
/// as text (the schema has no other types).
fn row_cells(row: &postgres::Row) -> Result<Vec<Cell>, QueryError> {
    let corrupt = |error: &dyn std::fmt::Display| QueryError::Corrupt(error.to_string());
    (0..row.len())
        .map(|i| {
            let column = &row.columns()[i];
            let cell = match *column.type_() {
                Type::INT8 => row
                    .try_get::<_, Option<i64>>(i)
                    .map(|value| value.map(Cell::Int)),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)
                    .map(|value| value.map(|value| Cell::Int(value.into()))),
                Type::BOOL => row
                    .try_get::<_, Option<bool>>(i)
                    .map(|value| value.map(|value| Cell::Int(value.into()))),
                Type::TEXT | Type::VARCHAR => row
                    .try_get::<_, Option<String>>(i)
                    .map(|value| value.map(Cell::Text)),
                ref other => {
                    return Err(QueryError::Corrupt(format!(
                        "column {} has type {other}",
                        column.name()
                    )));
                }
            };
            cell.map(|value| value.unwrap_or(Cell::Null))
                .map_err(|error| corrupt(&error))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JournalLocation;

    /// A database nobody listens for: every read is Unavailable, promptly,
    /// and a failed connection gives its slot back (more reads than
    /// `MAX_CONNECTIONS` never find the pool "busy").
    #[test]
    fn a_refused_database_is_unavailable_and_leaks_no_slot() {
        // Bound then released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let JournalLocation::Postgres(url) = format!("postgres://fd:pw@127.0.0.1:{port}/none")
            .parse()
            .unwrap()
        else {
            panic!("a postgres URL");
        };
        let reads = SharedReads::new(url, Duration::from_secs(2));
        for _ in 0..MAX_CONNECTIONS + 2 {
            let error = reads
                .read(&[Statement::new("SELECT 1", Vec::new())])
                .unwrap_err();
            let QueryError::Unavailable(reason) = &error else {
                panic!("{error}");
            };
            assert!(!reason.contains("busy"), "{reason}");
            assert!(!error.to_string().contains("pw@"), "{error}");
        }
        assert_eq!(reads.pool.lock().unwrap().open, 0);
    }
}
