//! The crate's errors: one enum per kind of operation, one variant per
//! cause a caller can act on.

use std::path::PathBuf;
use std::time::Duration;

/// Opening, migrating, flushing or closing the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A [`JournalConfig`](crate::JournalConfig) value is out of range.
    #[error("invalid journal configuration: {0}")]
    Config(String),
    /// The database file cannot be opened or set up (path, permissions, not
    /// a database).
    #[error("cannot open the journal {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// SQLite would not put the file in WAL mode (a file system without
    /// shared memory, such as some network mounts).
    #[error("the journal {path} cannot use WAL mode (journal_mode is {mode})")]
    WalUnavailable {
        /// The database file.
        path: PathBuf,
        /// The mode SQLite kept.
        mode: String,
    },
    /// The file was written by a newer frontdesk: refuse rather than guess.
    #[error("the journal's schema version {found} is newer than this build knows ({supported})")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build can migrate to.
        supported: i64,
    },
    /// A reader found a file that was not migrated yet; open it with
    /// [`Journal::open`](crate::Journal::open) first.
    #[error(
        "the journal's schema version {found} is older than {expected}: open it with the writer first"
    )]
    SchemaTooOld {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The version this build reads.
        expected: i64,
    },
    /// A migration step failed; the file stays at the previous version.
    #[error("migrating the journal to schema version {version} failed: {source}")]
    Migration {
        /// The step that failed.
        version: i64,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the journal writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The writer did not finish in time (slow or stuck disk).
    #[error("the journal writer did not finish within {0:?}")]
    Timeout(Duration),
    /// The writer thread is gone (closed, or it panicked).
    #[error("the journal writer has stopped")]
    Stopped,
    /// Closing the calls a stopped daemon left in progress failed (SQLite's
    /// message); they stay `in_progress` and the next start tries again.
    #[error("closing the interrupted calls failed: {0}")]
    CloseInterrupted(String),
}

/// Why [`JournalHandle::record`](crate::JournalHandle::record) did not
/// queue an entry. Either way the entry is counted in
/// [`JournalStats::dropped`](crate::JournalStats::dropped) and the call
/// goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The writer is behind by the whole channel capacity (slow disk).
    #[error("journal backlog full: entry dropped")]
    Full,
    /// The journal was closed.
    #[error("journal closed: entry dropped")]
    Closed,
}

/// A query on the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// SQLite failed (I/O error, locked beyond the busy timeout).
    #[error("journal query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A new read connection could not be opened.
    #[error("cannot open a journal reader: {0}")]
    Open(#[source] Box<JournalError>),
    /// The shared journal (`--journal postgres://…`) cannot be read:
    /// PostgreSQL refused, timed out, or is down (its client's message,
    /// which never quotes the password). Reads of the calls answer this
    /// until it is back; the API maps it to 503 `journal_unavailable`.
    #[error("the shared journal (PostgreSQL) cannot be read: {0}")]
    Unavailable(String),
    /// A stored value does not decode (written by a different version, or
    /// edited by hand).
    #[error("the journal holds a value it cannot read ({0})")]
    Corrupt(String),
}

/// `from` is after `to`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time range: from {from} is after to {to}")]
pub struct RangeError {
    /// The start given.
    pub from: jiff::Timestamp,
    /// The end given.
    pub to: jiff::Timestamp,
}
