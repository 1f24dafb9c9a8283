//! The journal's writer: one thread, one connection, fed by a bounded
//! channel that call controllers never wait on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use jiff::Timestamp;
use rusqlite::Connection;

use crate::callbacks::{CallbackChange, store as callback_store};
use crate::checkpoint::Checkpointer;
use crate::claims::ClaimChange;
use crate::entry::JournalEntry;
use crate::error::{JournalError, RecordError};
use crate::fault::FaultPlan;
use crate::leads::{LeadChange, LeadEvent, LeadReply, LeadStored, LeadWriteError, NewLead};
use crate::reader::Reader;
use crate::replica::{Replica, ReplicaConfig, ReplicaShared, ReplicaStatus};
use crate::schema::{self, Synchronous};
use crate::storage;
use crate::webhooks::{Hooks, Subscriptions, WebhookOutbox, WebhookQueue};

/// The longest [`JournalConfig::linger`] allowed: an entry is committed at
/// most this long after the writer takes it, which is what makes "a call
/// that ended more than a second before a crash is on disk" true by design.
pub const MAX_LINGER: Duration = Duration::from_millis(200);

/// How often, at most, a continuing loss (dropped or failed entries) is
/// logged again.
const LOSS_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How the journal behaves.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Entries the channel holds before [`JournalHandle::record`] drops
    /// (the backlog a slow disk may build). Default 16,384 (a few MB).
    pub capacity: usize,
    /// Most entries per transaction. Default 500.
    pub max_batch: usize,
    /// How long the writer waits for more entries after the first of a
    /// batch before committing; at most [`MAX_LINGER`]. Default 50 ms.
    pub linger: Duration,
    /// `PRAGMA synchronous`; default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// A cap on the database's size (SQLite `max_page_count`): past it,
    /// writes fail as on a full disk, counted in
    /// [`JournalStats::failed`]. Default none.
    pub max_database_bytes: Option<u64>,
    /// How long dropping a [`Journal`] that was not closed waits for the
    /// writer to drain. Default 5 s.
    pub close_timeout: Duration,
    /// How often the WAL is checkpointed, on a thread of its own so that
    /// commits never wait for it (see `checkpoint.rs`). Default 250 ms.
    pub checkpoint_every: Duration,
    /// The WAL's bound: once a checkpoint leaves the log longer than this,
    /// the writer checkpoints itself between two transactions, so that
    /// its next commit starts the log over, and the file is cut back to
    /// this size (`journal_size_limit`). Passive checkpoints alone never
    /// caught up under a steady stream of commits: at 1,000 leads a second
    /// the log grew by 30 MB a second, without end (BENCHMARKS.md, issue
    /// 26; `checkpoint.rs`). Default 64 MiB.
    pub wal_limit_bytes: u64,
    /// A PostgreSQL database the calls are shipped to (`--journal
    /// postgres://…`); default none (a single node). See
    /// [`crate::replica`].
    pub replica: Option<ReplicaConfig>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            capacity: 16_384,
            max_batch: 500,
            linger: Duration::from_millis(50),
            synchronous: Synchronous::Full,
            max_database_bytes: None,
            close_timeout: Duration::from_secs(5),
            checkpoint_every: Duration::from_millis(250),
            wal_limit_bytes: 64 * 1024 * 1024,
            replica: None,
        }
    }
}

impl JournalConfig {
    fn validate(&self) -> Result<(), JournalError> {
        if self.capacity == 0 {
            return Err(JournalError::Config("capacity must be at least 1".into()));
        }
        if self.max_batch == 0 {
            return Err(JournalError::Config("max_batch must be at least 1".into()));
        }
        if self.wal_limit_bytes == 0 {
            return Err(JournalError::Config(
                "wal_limit_bytes must be at least 1".into(),
            ));
        }
        if self.checkpoint_every.is_zero() {
            return Err(JournalError::Config(
                "checkpoint_every must be longer than zero".into(),
            ));
        }
        if self.linger > MAX_LINGER {
            return Err(JournalError::Config(format!(
                "linger {:?} is over {MAX_LINGER:?}: recent calls could be lost on a crash",
                self.linger
            )));
        }
        Ok(())
    }
}

/// The journal's counters at one moment, for metrics and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalStats {
    /// The channel's capacity ([`JournalConfig::capacity`]).
    pub capacity: u64,
    /// Entries accepted and not yet written or failed (a gauge).
    pub backlog: u64,
    /// Entries committed to the file (a counter).
    pub written: u64,
    /// Entries refused by [`JournalHandle::record`] because the backlog
    /// was full or the journal closed, or recorded while it was closing:
    /// never written (a counter).
    pub dropped: u64,
    /// Entries lost because their batch failed to write (I/O error, disk
    /// full): never written (a counter).
    pub failed: u64,
    /// Transactions committed (a counter).
    pub batches: u64,
    /// Whether the last batch failed (the disk is failing now).
    pub failing: bool,
    /// The most recent write failure, if any ever happened.
    pub last_error: Option<WriteFailure>,
}

/// A batch that could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// When.
    pub at: Timestamp,
    /// SQLite's error.
    pub message: String,
}

/// What the handles and the writer share.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    capacity: u64,
    backlog: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
    failing: AtomicBool,
    last_error: Mutex<Option<WriteFailure>>,
    faults: FaultPlan,
    /// When the journal opened, the origin of `last_drop_log`.
    opened: Instant,
    /// Milliseconds after `opened` of the last "entries dropped" log line,
    /// plus one (0: never).
    last_drop_log: AtomicU64,
    /// The PostgreSQL replica's state, if there is one.
    replica: Option<Arc<ReplicaShared>>,
    /// The webhooks' subscriptions and counts ([`crate::webhooks`]).
    webhooks: Arc<WebhookQueue>,
}

impl Shared {
    fn stats(&self) -> JournalStats {
        JournalStats {
            capacity: self.capacity,
            backlog: self.backlog.load(Ordering::SeqCst),
            written: self.written.load(Ordering::SeqCst),
            dropped: self.dropped.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
            batches: self.batches.load(Ordering::SeqCst),
            failing: self.failing.load(Ordering::SeqCst),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Counts a refused entry; logs it at most once per
    /// [`LOSS_LOG_INTERVAL`] (this runs on the call's path: no lock, no
    /// I/O unless a log line is due).
    fn count_drop(&self, error: RecordError) {
        let dropped = self.dropped.fetch_add(1, Ordering::SeqCst) + 1;
        let now = u64::try_from(self.opened.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last_drop_log.load(Ordering::Relaxed);
        let interval = LOSS_LOG_INTERVAL.as_millis() as u64;
        if (last == 0 || now.saturating_sub(last) >= interval)
            && self
                .last_drop_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(%error, dropped_total = dropped, "journal entries dropped");
        }
    }
}

/// A lead waiting for its commit, and whom to tell.
struct PendingLead {
    lead: NewLead,
    reply: LeadReply,
}

impl std::fmt::Debug for PendingLead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLead")
            .field("id", &self.lead.id)
            .finish_non_exhaustive()
    }
}

/// How long the writer waits, at most, for readers to leave the log when
/// it starts the log over (`Writer::start_log_over`).
const LOG_OVER_WAIT: Duration = Duration::from_millis(20);

/// A message to the writer.
#[derive(Debug)]
enum Message {
    Entry(JournalEntry),
    /// A lead, committed at once (with whatever else is queued).
    Lead(Box<PendingLead>),
    /// A step of a stored lead's history (a call out), batched like an entry.
    LeadEvent(Box<LeadEvent>),
    /// A change of a stored lead (the desk's), batched like an entry.
    LeadChange(Box<LeadChange>),
    /// A change of a callback entry, batched like an entry; an accepted
    /// one makes its batch commit at once.
    Callback(Box<CallbackChange>),
    /// A step of a claim holding, batched like an entry.
    Claim(Box<ClaimChange>),
    /// Commit everything before this, then answer.
    Flush(Sender<()>),
    /// Commit everything queued, then stop and answer.
    Close(Sender<()>),
    /// Commit everything before this, end the calls left in progress, then
    /// answer how many (or SQLite's error).
    CloseInterrupted(Sender<Result<u64, String>>),
}

/// Where call controllers send entries: cheap to clone, `Send + Sync`,
/// never blocks on the disk.
#[derive(Debug, Clone)]
pub struct JournalHandle {
    sender: Sender<Message>,
    shared: Arc<Shared>,
}

impl JournalHandle {
    /// Queues `entry` for the writer and returns at once. When the backlog
    /// is full (the disk is slow or stalled) or the journal is closed, the
    /// entry is dropped, counted in [`JournalStats::dropped`], logged (at
    /// most every 10 s) and the error says why; the call goes on either
    /// way, so callers may ignore the result.
    pub fn record(&self, entry: JournalEntry) -> Result<(), RecordError> {
        self.enqueue(Message::Entry(entry))
    }

    /// Queues a message nobody waits on (a call's step, a lead's step or
    /// change): dropped, counted and logged when the backlog is full or
    /// the journal closed, as [`Self::record`] says.
    fn enqueue(&self, message: Message) -> Result<(), RecordError> {
        // Count first so that `backlog` never reads below what the writer
        // is about to subtract.
        self.shared.backlog.fetch_add(1, Ordering::SeqCst);
        match self.sender.try_send(message) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.shared.backlog.fetch_sub(1, Ordering::SeqCst);
                let error = match error {
                    TrySendError::Full(_) => RecordError::Full,
                    TrySendError::Disconnected(_) => RecordError::Closed,
                };
                self.shared.count_drop(error);
                Err(error)
            }
        }
    }

    /// Queues a step of a stored lead's history ([`LeadEvent`]) and
    /// returns at once; dropped and counted like [`Self::record`]'s
    /// entries when the backlog is full or the journal closed.
    pub fn record_lead_event(&self, event: LeadEvent) -> Result<(), RecordError> {
        self.enqueue(Message::LeadEvent(Box::new(event)))
    }

    /// Queues `lead` for the writer, which commits it at once (grouped
    /// with whatever else is queued) and then calls `reply` with what it
    /// did: [`LeadStored::Created`], [`LeadStored::Existing`] for an
    /// idempotency key already claimed, or the write's failure. Returns
    /// at once; `Err` (the backlog is full, or the journal closed) means
    /// nothing was queued and `reply` is never called. Unlike
    /// [`Self::record`], nothing is dropped silently: the caller is told.
    pub fn store_lead(
        &self,
        lead: NewLead,
        reply: impl FnOnce(Result<LeadStored, LeadWriteError>) + Send + 'static,
    ) -> Result<(), LeadWriteError> {
        self.shared.backlog.fetch_add(1, Ordering::SeqCst);
        let pending = Box::new(PendingLead {
            lead,
            reply: Box::new(reply),
        });
        match self.sender.try_send(Message::Lead(pending)) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.shared.backlog.fetch_sub(1, Ordering::SeqCst);
                Err(match error {
                    TrySendError::Full(_) => LeadWriteError::Full,
                    TrySendError::Disconnected(_) => LeadWriteError::Closed,
                })
            }
        }
    }

    /// Queues a change of a stored lead (the desk's offers, accepts,
    /// outcomes) and returns at once, like [`Self::record`]: batched,
    /// never waited on, dropped and counted when the backlog is full.
    pub fn record_lead(&self, change: LeadChange) -> Result<(), RecordError> {
        self.enqueue(Message::LeadChange(Box::new(change)))
    }

    /// Queues a change of a callback entry (routing's virtual hold) and
    /// returns at once, like [`Self::record`]: never waited on, dropped and
    /// counted when the backlog is full or the journal closed. Changes are
    /// written in the order they were recorded; a
    /// [`CallbackChange::Accepted`] is committed at once rather than
    /// after the linger (the patient was told they will be called back).
    /// See [`crate::callbacks`].
    pub fn record_callback(&self, change: CallbackChange) -> Result<(), RecordError> {
        self.enqueue(Message::Callback(Box::new(change)))
    }

    /// Queues a step of a cluster claim's holding (see [`crate::claims`])
    /// and returns at once, like [`Self::record`]: batched, never waited
    /// on, dropped and counted when the backlog is full or the journal
    /// closed. With a replica, shipped to PostgreSQL like calls.
    pub fn record_claim(&self, change: ClaimChange) -> Result<(), RecordError> {
        self.enqueue(Message::Claim(Box::new(change)))
    }

    /// The counters now.
    pub fn stats(&self) -> JournalStats {
        self.shared.stats()
    }

    /// Waits until every entry recorded before this call is committed or
    /// counted failed: `Ok` says the writer has caught up, not that the
    /// disk took everything ([`JournalStats::failed`] says that). Blocks:
    /// from async code, call it on a blocking thread.
    pub fn flush(&self, timeout: Duration) -> Result<(), JournalError> {
        let deadline = Instant::now() + timeout;
        let (ack, done) = crossbeam_channel::bounded(1);
        match self.sender.send_deadline(Message::Flush(ack), deadline) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(JournalError::Timeout(timeout)),
            Err(SendTimeoutError::Disconnected(_)) => return Err(JournalError::Stopped),
        }
        match done.recv_deadline(deadline) {
            Ok(()) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(JournalError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(JournalError::Stopped),
        }
    }

    /// Ends every call the journal shows in progress with outcome
    /// [`Outcome::Interrupted`](crate::Outcome::Interrupted), at the time of
    /// its last recorded step, and returns how many. A daemon calls it once
    /// at start, before it records a call of its own: a call in progress
    /// then was up when the previous process stopped (SIGKILL, a crash, a
    /// power cut) and will never record its end. Its `ended` event is
    /// appended to its timeline like any other, so reports, the calls'
    /// list and the abandonment window read it as they read the rest.
    /// Blocks: from async code, call it on a blocking thread.
    pub fn close_interrupted(&self, timeout: Duration) -> Result<u64, JournalError> {
        let deadline = Instant::now() + timeout;
        let (ack, done) = crossbeam_channel::bounded(1);
        match self
            .sender
            .send_deadline(Message::CloseInterrupted(ack), deadline)
        {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(JournalError::Timeout(timeout)),
            Err(SendTimeoutError::Disconnected(_)) => return Err(JournalError::Stopped),
        }
        match done.recv_deadline(deadline) {
            Ok(result) => result.map_err(JournalError::CloseInterrupted),
            Err(RecvTimeoutError::Timeout) => Err(JournalError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(JournalError::Stopped),
        }
    }

    /// The fault-injection seam of this journal (see [`FaultPlan`]).
    pub fn faults(&self) -> &FaultPlan {
        &self.shared.faults
    }

    /// The PostgreSQL replica's state, if the journal has one
    /// ([`JournalConfig::replica`]).
    pub fn replica(&self) -> Option<ReplicaStatus> {
        self.shared.replica.as_ref().map(|replica| replica.status())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Sets which webhooks hear which events (at start and on each
    /// reload); events written from then on are queued for them
    /// ([`crate::webhooks`]).
    pub fn set_webhooks(&self, subscriptions: Subscriptions) {
        self.shared.webhooks.set(subscriptions);
    }

    /// Webhook → events not queued because its outbox was full (counters).
    pub fn webhook_dropped(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.webhooks.dropped()
    }

    /// A connection of the webhooks' delivery service on the outbox.
    pub fn webhook_outbox(&self) -> Result<WebhookOutbox, JournalError> {
        WebhookOutbox::open(&self.shared.path, Arc::clone(&self.shared.webhooks))
    }
}

/// The journal: owns the writer thread. Dropping it closes the journal
/// (bounded by [`JournalConfig::close_timeout`]); prefer [`Journal::close`]
/// to see how it went. Handles outlive it but then drop every entry.
#[derive(Debug)]
pub struct Journal {
    handle: JournalHandle,
    thread: Option<JoinHandle<()>>,
    close_timeout: Duration,
    replica: Option<Replica>,
    /// Where [`Journal::reader`] reads the calls with a replica, and its
    /// bound.
    shared_reads: Option<(crate::PostgresUrl, Duration)>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, migrates its
    /// schema, and starts the writer thread. Errors here are about the
    /// file; once open, write errors are counted, not returned.
    pub fn open(
        path: impl AsRef<Path>,
        config: JournalConfig,
    ) -> Result<(Journal, JournalHandle), JournalError> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        let connection = schema::open_writer(&path, config.synchronous, config.max_database_bytes)?;
        // Checkpoints run on their own thread, never inside a commit.
        // And the log's file is cut back to the bound when it starts over.
        let limit = i64::try_from(config.wal_limit_bytes).unwrap_or(i64::MAX);
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .and_then(|()| connection.pragma_update(None, "journal_size_limit", limit))
            .map_err(|source| JournalError::Open {
                path: path.clone(),
                source,
            })?;
        let checkpointer =
            Checkpointer::start(&path, config.checkpoint_every, config.wal_limit_bytes)?;
        let replica = match config.replica.clone() {
            Some(replica) => Some(Replica::start(&path, replica)?),
            None => None,
        };
        let (sender, receiver) = crossbeam_channel::bounded(config.capacity);
        let shared = Arc::new(Shared {
            path,
            capacity: config.capacity as u64,
            backlog: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            faults: FaultPlan::default(),
            opened: Instant::now(),
            last_drop_log: AtomicU64::new(0),
            replica: replica.as_ref().map(|replica| Arc::clone(replica.shared())),
            webhooks: Arc::default(),
        });
        let writer = Writer {
            connection: Some(connection),
            checkpointer: Some(checkpointer),
            receiver,
            shared: Arc::clone(&shared),
            max_batch: config.max_batch,
            linger: config.linger,
            failure_log: FailureLog::default(),
        };
        let thread = std::thread::Builder::new()
            .name("records-journal".into())
            .spawn(move || writer.run())
            .map_err(JournalError::Spawn)?;
        let handle = JournalHandle { sender, shared };
        tracing::info!(path = %handle.path().display(), "journal open");
        let journal = Journal {
            handle: handle.clone(),
            thread: Some(thread),
            close_timeout: config.close_timeout,
            shared_reads: config
                .replica
                .as_ref()
                .map(|replica| (replica.url.clone(), replica.timeout)),
            replica,
        };
        Ok((journal, handle))
    }

    /// Another handle.
    pub fn handle(&self) -> JournalHandle {
        self.handle.clone()
    }

    /// A reader on the same file; with a replica
    /// ([`JournalConfig::replica`]), one whose calls are read from the
    /// PostgreSQL database every node ships to ([`Reader::open_shared`],
    /// bounded by the replica's timeout), leads from the file.
    pub fn reader(&self) -> Result<Reader, JournalError> {
        match &self.shared_reads {
            Some((url, timeout)) => Reader::open_shared(self.handle.path(), url.clone(), *timeout),
            None => Reader::open(self.handle.path()),
        }
    }

    /// A reader of the file alone, even with a replica (what this node
    /// wrote, its outbox's view).
    pub fn local_reader(&self) -> Result<Reader, JournalError> {
        Reader::open(self.handle.path())
    }

    /// The counters now.
    pub fn stats(&self) -> JournalStats {
        self.handle.stats()
    }

    /// See [`JournalHandle::flush`].
    pub fn flush(&self, timeout: Duration) -> Result<(), JournalError> {
        self.handle.flush(timeout)
    }

    /// See [`JournalHandle::close_interrupted`].
    pub fn close_interrupted(&self, timeout: Duration) -> Result<u64, JournalError> {
        self.handle.close_interrupted(timeout)
    }

    /// Drains the backlog, commits, checkpoints the WAL and stops the
    /// writer, within `timeout`. Entries recorded afterwards are dropped
    /// ([`RecordError::Closed`]). Blocks: from async code, call it on a
    /// blocking thread.
    pub fn close(mut self, timeout: Duration) -> Result<JournalStats, JournalError> {
        self.shut_down(timeout)?;
        Ok(self.stats())
    }

    fn shut_down(&mut self, timeout: Duration) -> Result<(), JournalError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        let (ack, done) = crossbeam_channel::bounded(1);
        match self
            .handle
            .sender
            .send_deadline(Message::Close(ack), deadline)
        {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(JournalError::Timeout(timeout)),
            Err(SendTimeoutError::Disconnected(_)) => {
                let _ = thread.join();
                return Err(JournalError::Stopped);
            }
        }
        match done.recv_deadline(deadline) {
            Ok(()) => {
                // The writer answers as its last act: this join is short.
                let _ = thread.join();
                // Then the replica ships what it can in the time left.
                if let Some(mut replica) = self.replica.take() {
                    replica.stop(deadline.saturating_duration_since(Instant::now()));
                }
                let stats = self.stats();
                tracing::info!(
                    written = stats.written,
                    dropped = stats.dropped,
                    failed = stats.failed,
                    "journal closed"
                );
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err(JournalError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                Err(JournalError::Stopped)
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down(self.close_timeout) {
            tracing::warn!(%error, "journal not closed cleanly");
        }
    }
}

/// The writer thread's state.
struct Writer {
    /// `None` only while closing.
    connection: Option<Connection>,
    /// Checkpoints the WAL meanwhile; stopped before the last checkpoint.
    checkpointer: Option<Checkpointer>,
    receiver: Receiver<Message>,
    shared: Arc<Shared>,
    max_batch: usize,
    linger: Duration,
    failure_log: FailureLog,
}

/// A lead's step (a call out's) or change (the desk's), kept in order.
enum LeadWrite {
    Event(LeadEvent),
    Change(LeadChange),
}

/// What the writer collected for one transaction.
#[derive(Default)]
struct Batch {
    entries: Vec<JournalEntry>,
    leads: Vec<PendingLead>,
    /// Steps and changes of stored leads, in the order they came.
    lead_writes: Vec<LeadWrite>,
    /// Changes of callback entries, in the order they came.
    callbacks: Vec<CallbackChange>,
    /// Steps of claim holdings, in the order they came.
    claims: Vec<ClaimChange>,
    /// One of `callbacks` is a [`CallbackChange::Accepted`].
    callback_accepted: bool,
    flushes: Vec<Sender<()>>,
    close_interrupted: Vec<Sender<Result<u64, String>>>,
    close: Option<Sender<()>>,
    /// Every handle is gone: nothing more can come.
    disconnected: bool,
}

impl Batch {
    fn take(&mut self, message: Message) {
        match message {
            Message::Entry(entry) => self.entries.push(entry),
            Message::Lead(lead) => self.leads.push(*lead),
            Message::LeadEvent(event) => self.lead_writes.push(LeadWrite::Event(*event)),
            Message::LeadChange(change) => self.lead_writes.push(LeadWrite::Change(*change)),
            Message::Callback(change) => {
                self.callback_accepted |= matches!(*change, CallbackChange::Accepted(_));
                self.callbacks.push(*change);
            }
            Message::Claim(change) => self.claims.push(*change),
            Message::Flush(ack) => self.flushes.push(ack),
            Message::Close(ack) => self.close = Some(ack),
            Message::CloseInterrupted(ack) => self.close_interrupted.push(ack),
        }
    }

    /// Whether to commit now rather than wait for more: someone waits
    /// (a flush, a lead's sender), a patient was promised a callback, or
    /// the journal is closing.
    fn urgent(&self) -> bool {
        !self.flushes.is_empty()
            || !self.close_interrupted.is_empty()
            || !self.leads.is_empty()
            || self.callback_accepted
            || self.close.is_some()
            || self.disconnected
    }

    /// Items that count toward [`JournalConfig::max_batch`].
    fn len(&self) -> usize {
        self.entries.len()
            + self.leads.len()
            + self.lead_writes.len()
            + self.callbacks.len()
            + self.claims.len()
    }
}

impl Writer {
    /// The run loop: wait for a first message, collect more until the batch
    /// is full, `linger` has passed, or someone waits on a flush; write the
    /// batch in one transaction; answer flushes; repeat. On close (or when
    /// every handle is gone), drain what is queued, checkpoint and stop.
    fn run(mut self) {
        loop {
            let mut batch = Batch::default();
            match self.receiver.recv() {
                Ok(message) => batch.take(message),
                Err(_) => batch.disconnected = true,
            }
            let deadline = Instant::now() + self.linger;
            while !batch.urgent() && batch.len() < self.max_batch {
                match self.receiver.recv_deadline(deadline) {
                    Ok(message) => batch.take(message),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => batch.disconnected = true,
                }
            }
            // Leads and accepted callbacks are committed at once, with
            // everything queued behind them (group commit: one fsync for
            // the lot).
            while (!batch.leads.is_empty() || batch.callback_accepted)
                && batch.len() < self.max_batch
            {
                match self.receiver.try_recv() {
                    Ok(message) => batch.take(message),
                    Err(_) => break,
                }
            }
            if batch.close.is_some() || batch.disconnected {
                // Whatever is queued now was recorded before the close.
                while let Ok(message) = self.receiver.try_recv() {
                    batch.take(message);
                }
            }
            for chunk in batch.entries.chunks(self.max_batch) {
                self.write(chunk);
            }
            for ack in batch.close_interrupted {
                let _ = ack.send(self.close_interrupted());
            }
            if !batch.leads.is_empty() {
                self.write_leads(std::mem::take(&mut batch.leads));
            }
            // After the leads: a step may follow its lead's store in one
            // batch. In order, each run of one kind in a transaction.
            let mut writes = std::mem::take(&mut batch.lead_writes)
                .into_iter()
                .peekable();
            while let Some(first) = writes.next() {
                match first {
                    LeadWrite::Event(event) => {
                        let mut events = vec![event];
                        while let Some(LeadWrite::Event(event)) =
                            writes.next_if(|write| matches!(write, LeadWrite::Event(_)))
                        {
                            events.push(event);
                        }
                        self.write_lead_events(&events);
                    }
                    LeadWrite::Change(change) => {
                        let mut changes = vec![change];
                        while let Some(LeadWrite::Change(change)) =
                            writes.next_if(|write| matches!(write, LeadWrite::Change(_)))
                        {
                            changes.push(change);
                        }
                        self.write_lead_changes(&changes);
                    }
                }
            }
            // In order, at most `max_batch` per transaction (a close may
            // drain more).
            for chunk in batch.callbacks.chunks(self.max_batch) {
                self.write_callbacks(chunk);
            }
            for chunk in batch.claims.chunks(self.max_batch) {
                self.write_claims(chunk);
            }
            for ack in batch.flushes {
                let _ = ack.send(());
            }
            if self
                .checkpointer
                .as_ref()
                .is_some_and(Checkpointer::log_over_limit)
            {
                self.start_log_over();
            }
            if batch.close.is_some() || batch.disconnected {
                self.finish();
                self.count_late_entries();
                if let Some(ack) = batch.close {
                    let _ = ack.send(());
                }
                return;
            }
        }
    }

    /// Checkpoints between two transactions, so that the next one starts
    /// the log over (`checkpoint.rs`): in `RESTART` mode, which copies
    /// what is left (nothing is appended meanwhile: this is the writer)
    /// and waits for the readers still on the log to finish, at most
    /// [`LOG_OVER_WAIT`]; if they do not, the next round tries again.
    fn start_log_over(&mut self) {
        /// The busy handler while restarting: a bounded wait.
        fn briefly(tries: i32) -> bool {
            schema::wait_a_millisecond(tries, LOG_OVER_WAIT)
        }
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        let restarted = connection.busy_handler(Some(briefly)).and_then(|()| {
            connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
            })
        });
        match restarted {
            Ok((0, frames)) => tracing::debug!(frames, "journal log copied: it starts over"),
            Ok((_, frames)) => {
                tracing::debug!(frames, "journal log still read: it starts over later");
            }
            Err(error) => tracing::warn!(%error, "journal checkpoint failed"),
        }
        // The writer's own waiting again.
        if let Err(error) = schema::writing(connection) {
            tracing::warn!(%error, "the journal's busy handler could not be set again");
        }
    }

    fn write(&mut self, entries: &[JournalEntry]) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        self.shared.faults.before_batch();
        let ship = self.shared.replica.is_some();
        let subscriptions = self.shared.webhooks.snapshot();
        let hooks = Hooks {
            queue: &self.shared.webhooks,
            subscriptions: &subscriptions,
        };
        let result = storage::write_batch(connection, entries, &self.shared.faults, ship, hooks)
            .map_err(|error| error.to_string());
        self.shipping(result.is_ok());
        self.account(entries.len() as u64, result);
    }

    /// A commit of calls' steps or claim holdings (the only rows the
    /// replica ships): it has them to ship ([`crate::replica`]'s backlog),
    /// and is woken. Leads, their steps and callbacks wake it no more.
    fn shipping(&self, committed: bool) {
        if committed && let Some(replica) = &self.shared.replica {
            replica.queued();
        }
    }

    /// Counts one transaction of `count` items: written, or failed with
    /// SQLite's message (kept for the health check, logged rate-limited);
    /// either way they leave the backlog.
    fn account(&mut self, count: u64, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.shared.written.fetch_add(count, Ordering::SeqCst);
                self.shared.batches.fetch_add(1, Ordering::SeqCst);
                self.shared.failing.store(false, Ordering::SeqCst);
                self.failure_log.recovered();
            }
            Err(message) => {
                // Webhook events queued by the batch were rolled back too.
                self.shared.webhooks.forget_counts();
                self.shared.failed.fetch_add(count, Ordering::SeqCst);
                self.shared.failing.store(true, Ordering::SeqCst);
                *self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(WriteFailure {
                    at: Timestamp::now(),
                    message: message.clone(),
                });
                self.failure_log.failed(count, &message);
            }
        }
        self.shared.backlog.fetch_sub(count, Ordering::SeqCst);
    }

    /// See [`JournalHandle::close_interrupted`].
    fn close_interrupted(&mut self) -> Result<u64, String> {
        let Some(connection) = self.connection.as_mut() else {
            return Err("the journal is closing".into());
        };
        let ship = self.shared.replica.is_some();
        let subscriptions = self.shared.webhooks.snapshot();
        let hooks = Hooks {
            queue: &self.shared.webhooks,
            subscriptions: &subscriptions,
        };
        let result = storage::close_interrupted(connection, ship, hooks);
        self.shipping(result.is_ok());
        match result {
            Ok(closed) => {
                if closed > 0 {
                    tracing::warn!(
                        calls = closed,
                        "calls left in progress by a stopped daemon closed as interrupted"
                    );
                }
                Ok(closed)
            }
            Err(error) => {
                tracing::error!(%error, "closing the interrupted calls failed");
                Err(error.to_string())
            }
        }
    }

    /// Writes steps of leads' histories in one transaction (after the
    /// batch's leads, so a step of a lead stored in the same batch finds it).
    fn write_lead_events(&mut self, events: &[LeadEvent]) {
        let result = match self.connection.as_mut() {
            Some(connection) => {
                self.shared.faults.before_batch();
                crate::leads::events::write_lead_events(connection, events)
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            }
            None => Err("the journal is closing".to_string()),
        };
        self.account(events.len() as u64, result);
    }

    /// Writes lead changes in one transaction, counted like entries.
    fn write_lead_changes(&mut self, changes: &[LeadChange]) {
        let result = match self.connection.as_mut() {
            Some(connection) => {
                self.shared.faults.before_batch();
                let subscriptions = self.shared.webhooks.snapshot();
                let hooks = Hooks {
                    queue: &self.shared.webhooks,
                    subscriptions: &subscriptions,
                };
                crate::leads::store::write_changes(connection, changes, &self.shared.faults, hooks)
                    .map_err(|error| error.to_string())
            }
            None => Err("the journal is closing".to_string()),
        };
        self.account(changes.len() as u64, result);
    }

    /// Writes changes of callback entries in one transaction, counted like
    /// entries.
    fn write_callbacks(&mut self, changes: &[CallbackChange]) {
        let result = match self.connection.as_mut() {
            Some(connection) => {
                self.shared.faults.before_batch();
                callback_store::write_callbacks(connection, changes, &self.shared.faults)
                    .map_err(|error| error.to_string())
            }
            None => Err("the journal is closing".to_string()),
        };
        self.account(changes.len() as u64, result);
    }

    /// Writes steps of claim holdings in one transaction, counted like
    /// entries (and marked to ship with a replica).
    fn write_claims(&mut self, changes: &[ClaimChange]) {
        let ship = self.shared.replica.is_some();
        let result = match self.connection.as_mut() {
            Some(connection) => {
                self.shared.faults.before_batch();
                crate::claims::write_claims(connection, changes, &self.shared.faults, ship)
                    .map_err(|error| error.to_string())
            }
            None => Err("the journal is closing".to_string()),
        };
        self.shipping(result.is_ok());
        self.account(changes.len() as u64, result);
    }

    /// Writes `leads` in one transaction, then tells each sender.
    fn write_leads(&mut self, leads: Vec<PendingLead>) {
        let count = leads.len() as u64;
        let result = match self.connection.as_mut() {
            Some(connection) => {
                self.shared.faults.before_batch();
                let subscriptions = self.shared.webhooks.snapshot();
                let hooks = Hooks {
                    queue: &self.shared.webhooks,
                    subscriptions: &subscriptions,
                };
                crate::leads::store::write_leads(
                    connection,
                    leads.iter().map(|pending| &pending.lead),
                    &self.shared.faults,
                    hooks,
                )
                .map_err(|error| error.to_string())
            }
            None => Err("the journal is closing".to_string()),
        };
        self.shared.backlog.fetch_sub(count, Ordering::SeqCst);
        match result {
            Ok(stored) => {
                self.shared.written.fetch_add(count, Ordering::SeqCst);
                self.shared.batches.fetch_add(1, Ordering::SeqCst);
                self.shared.failing.store(false, Ordering::SeqCst);
                self.failure_log.recovered();
                for (pending, stored) in leads.into_iter().zip(stored) {
                    (pending.reply)(Ok(stored));
                }
            }
            Err(message) => {
                // Webhook events queued by the batch were rolled back too.
                self.shared.webhooks.forget_counts();
                self.shared.failed.fetch_add(count, Ordering::SeqCst);
                self.shared.failing.store(true, Ordering::SeqCst);
                *self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(WriteFailure {
                    at: Timestamp::now(),
                    message: message.clone(),
                });
                self.failure_log.failed(count, &message);
                for pending in leads {
                    (pending.reply)(Err(LeadWriteError::Failed(message.clone())));
                }
            }
        }
    }

    /// Entries recorded while the last batch was being written, after the
    /// close: counted as dropped rather than lost without a trace. (One
    /// recorded in the instant between this and the channel's end is
    /// still lost uncounted; the daemon records nothing once its calls are
    /// drained, which is when it closes the journal.)
    fn count_late_entries(&mut self) {
        let late = self
            .receiver
            .try_iter()
            .filter_map(|message| match message {
                Message::Entry(_)
                | Message::LeadEvent(_)
                | Message::LeadChange(_)
                | Message::Callback(_)
                | Message::Claim(_) => Some(()),
                // Its sender is told: nothing was stored.
                Message::Lead(pending) => {
                    (pending.reply)(Err(LeadWriteError::Closed));
                    Some(())
                }
                _ => None,
            })
            .count() as u64;
        if late > 0 {
            self.shared.dropped.fetch_add(late, Ordering::SeqCst);
            self.shared.backlog.fetch_sub(late, Ordering::SeqCst);
            tracing::error!(
                dropped = late,
                "journal entries recorded after its close dropped"
            );
        }
    }

    /// Checkpoints the WAL into the database and closes the connection.
    fn finish(&mut self) {
        if let Some(mut checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
        if let Some(connection) = self.connection.take() {
            if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                tracing::warn!(%error, "journal checkpoint on close failed");
            }
            if let Err((_, error)) = connection.close() {
                tracing::warn!(%error, "journal close failed");
            }
        }
    }
}

/// Logs write failures without flooding: the first of a run of failures at
/// once, then a summary at most every [`LOSS_LOG_INTERVAL`], and the total
/// when writes succeed again.
#[derive(Debug, Default)]
struct FailureLog {
    /// Entries lost since writes last succeeded.
    lost_in_run: u64,
    /// Entries lost since the last log line.
    unlogged: u64,
    last_logged: Option<Instant>,
}

impl FailureLog {
    fn failed(&mut self, lost: u64, message: &str) {
        self.lost_in_run += lost;
        self.unlogged += lost;
        let due = self
            .last_logged
            .is_none_or(|at| at.elapsed() >= LOSS_LOG_INTERVAL);
        if due {
            tracing::error!(
                error = message,
                lost = self.unlogged,
                lost_since_writes_failed = self.lost_in_run,
                "journal write failed: entries lost"
            );
            self.unlogged = 0;
            self.last_logged = Some(Instant::now());
        }
    }

    fn recovered(&mut self) {
        if self.lost_in_run > 0 {
            tracing::warn!(
                lost = self.lost_in_run,
                "journal writes succeed again after losing entries"
            );
        }
        *self = FailureLog::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::{CallbackRow, CallbackState};
    use crate::entry::Priority;

    fn accepted(id: &str) -> CallbackChange {
        let at = Timestamp::from_millisecond(1_000).expect("a valid time");
        CallbackChange::Accepted(CallbackRow {
            id: id.into(),
            call: "c-1".into(),
            queue: "pediatrics".into(),
            priority: Priority::Routine,
            branch: None,
            language: None,
            number: "+13125550142".into(),
            enqueued_at: at,
            accepted_at: at,
            attempts: 0,
            not_before: None,
            state: CallbackState::Waiting,
            agent: None,
            ended_at: None,
            reason: None,
        })
    }

    #[test]
    fn an_accepted_callback_makes_its_batch_urgent() {
        let mut batch = Batch::default();
        batch.take(Message::Callback(Box::new(CallbackChange::Rescheduled {
            id: "cb-0".into(),
            attempts: 1,
            not_before: Timestamp::UNIX_EPOCH,
        })));
        assert!(!batch.urgent(), "a reschedule lingers like a call's step");
        batch.take(Message::Callback(Box::new(accepted("cb-1"))));
        assert!(batch.urgent(), "the patient was promised a callback");
        assert_eq!(batch.len(), 2);
        assert_eq!(
            batch
                .callbacks
                .iter()
                .map(CallbackChange::id)
                .collect::<Vec<_>>(),
            ["cb-0", "cb-1"],
            "in the order recorded"
        );
    }
}
