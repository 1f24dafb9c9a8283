//! WAL checkpoints off the writer's path.
//!
//! SQLite checkpoints a WAL database from the connection that commits, once
//! the log passes 1,000 pages (`wal_autocheckpoint`): the commit that
//! crosses the mark copies the log into the database file and fsyncs it
//! before it returns, tens of milliseconds during which the writer takes
//! nothing from its channel. Calls never noticed (they do not wait on the
//! journal), but a lead's sender waits for its commit, and at 1,000 leads
//! a second every such checkpoint held up the fifty leads behind it
//! (BENCHMARKS.md, "Leads"). So the writer's connection checkpoints never
//! (`wal_autocheckpoint = 0`) and this thread, with a connection of its
//! own, runs `PRAGMA wal_checkpoint(PASSIVE)` every
//! [`JournalConfig::checkpoint_every`](crate::JournalConfig::checkpoint_every):
//! a passive checkpoint copies what it can without waiting for the writer
//! or the readers, and the writer starts the log over once it has all been
//! copied. Rows are still written by the one writer only; this thread
//! moves pages SQLite has already committed.
//!
//! Under a steady stream of commits a passive checkpoint from this
//! thread never has it all copied at a moment the writer begins a
//! transaction (the writer appends while it copies), so the log never
//! started over and grew without end (600 MB in 20 s at 1,000 leads a
//! second; BENCHMARKS.md, issue 26), every read and write slowing with it
//! (a page is looked up in each of the log's index blocks). So when a
//! checkpoint leaves more than
//! [`JournalConfig::wal_limit_bytes`](crate::JournalConfig::wal_limit_bytes)
//! in the log, this thread tells the writer ([`Checkpointer::log_over_limit`]),
//! which checkpoints once between two of its transactions, in `RESTART`
//! mode: nothing is appended meanwhile (it is the writer), so the copy is
//! complete (what this thread had not copied yet, and an fsync); it waits
//! at most 20 ms for readers still on the log (the webhooks' outbox, the
//! HTTP API's queries) to finish, and its next transaction starts the log
//! over, the file cut back to the bound (`journal_size_limit`). A reader
//! that outstays the wait only puts the restart off to the next round.
//! The same from this thread would hold off the writer for as long as the
//! readers take (over a second, measured with a reader that never
//! pauses); a passive checkpoint from the writer was not enough either,
//! as a reader on an older snapshot keeps frames from being copied. The
//! bound makes this rare: every few seconds at the heaviest load
//! measured, never at a clinic's pace.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use rusqlite::Connection;

use crate::error::JournalError;

/// The checkpoint thread: stopped (and joined) by [`Checkpointer::stop`].
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
    /// The last checkpoint left the log over its bound.
    over: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Opens a connection to `path` (already migrated, in WAL mode) and
    /// checkpoints every `every`, keeping the log under about
    /// `limit_bytes`.
    pub(crate) fn start(
        path: &Path,
        every: Duration,
        limit_bytes: u64,
    ) -> Result<Checkpointer, JournalError> {
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;
        let page_size: i64 = connection
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(open_error)?;
        let limit_frames =
            i64::try_from(limit_bytes / u64::try_from(page_size.max(512)).unwrap_or(4096))
                .unwrap_or(i64::MAX);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let over = Arc::new(AtomicBool::new(false));
        let told = Arc::clone(&over);
        let thread = std::thread::Builder::new()
            .name("records-checkpoint".into())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    match checkpoint(&connection) {
                        Ok(log) => {
                            if log > limit_frames {
                                told.store(true, Ordering::Relaxed);
                            }
                        }
                        Err(error) => tracing::warn!(%error, "journal checkpoint failed"),
                    }
                }
            })
            .map_err(JournalError::Spawn)?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
            over,
        })
    }

    /// Whether the log has passed its bound since last asked: the writer
    /// then checkpoints itself between two transactions (module docs).
    pub(crate) fn log_over_limit(&self) -> bool {
        self.over.swap(false, Ordering::Relaxed)
    }

    /// Stops the thread and waits for it (at most one checkpoint long).
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A passive checkpoint: the frames left in the log.
fn checkpoint(connection: &Connection) -> rusqlite::Result<i64> {
    // (busy, frames in the log, frames copied); -1s when not in WAL mode.
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}
