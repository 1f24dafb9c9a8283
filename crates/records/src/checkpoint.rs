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

use std::path::Path;
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
}

impl Checkpointer {
    /// Opens a connection to `path` (already migrated, in WAL mode) and
    /// checkpoints every `every`.
    pub(crate) fn start(path: &Path, every: Duration) -> Result<Checkpointer, JournalError> {
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("records-checkpoint".into())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")
                    {
                        tracing::warn!(%error, "journal checkpoint failed");
                    }
                }
            })
            .map_err(JournalError::Spawn)?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most one checkpoint long).
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}
