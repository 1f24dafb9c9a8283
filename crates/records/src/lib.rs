//! The durable journal of calls (leads) and the reports computed from it.
//!
//! # Model
//! Every call is a lead: one row in `calls` (who called, which number, its
//! source tag, department, priority, the agent who owns it, the outcome,
//! its times) and a timeline in `call_events` (entered, menu choice,
//! queued, offered to an agent, no answer, busy, connected, transferred,
//! overflowed, ended). The call controller never writes rows: it emits one
//! [`JournalEntry`] per step of the call as it happens — a [`CallId`], the
//! step's time and a [`CallEvent`] — and the writer folds each event into
//! the call's row and appends it to the timeline. SQLite in WAL mode; the
//! schema is versioned and migrated on open ([`schema`]).
//!
//! # The writer and its run loop
//! [`Journal::open`] opens the file (errors here are about the file), then
//! starts one writer thread fed by a bounded channel. The writer waits for
//! an entry, gathers more for up to [`JournalConfig::linger`] (50 ms by
//! default, at most [`MAX_LINGER`] = 200 ms) or [`JournalConfig::max_batch`]
//! entries, writes them in one transaction, and repeats. So an entry is on
//! disk within about `linger` plus one commit of being recorded, and a call
//! that ended a second before the daemon is killed (even with SIGKILL) is
//! in the file when it is reopened.
//!
//! [`JournalHandle::record`] never waits on the disk: it puts the entry in
//! the channel or, when the channel is full (the disk is slow or stalled)
//! or the journal is closed, drops it and counts it. A batch the disk
//! refuses is lost, counted and logged; the writer goes on with the next
//! batch, so it recovers as soon as writes succeed again. Nothing is lost
//! silently: [`JournalStats`] has every counter, and losses are logged with
//! `tracing` (at most every 10 s while they go on).
//!
//! Durability: `PRAGMA synchronous` is [`Synchronous::Full`] by default.
//! In WAL mode `NORMAL` already survives the process being killed (a
//! commit is in the OS's page cache when it returns); `FULL` adds an fsync
//! per commit so that a power cut loses nothing either. Batching makes the
//! fsync cheap (one per batch, ~20 per second at most with the default
//! linger), and a clinic's call records deserve it.
//!
//! # Wiring it into the daemon
//! - At start: `let (journal, handle) = Journal::open(data.join("journal.db"),
//!   JournalConfig::default())?;`, then, before any call is taken,
//!   [`Journal::close_interrupted`]: the calls a previous process left in
//!   progress (it was killed with them up) end with outcome `interrupted`,
//!   reported apart from abandoned; then `let reader = journal.reader()?;`.
//! - Each call's task gets a clone of the [`JournalHandle`] and records
//!   each step: `handle.record(JournalEntry::new(id, Timestamp::now(),
//!   CallEvent::Queued { .. }))`; the result may be ignored (a loss is
//!   counted either way). The order to emit: `Started` at the INVITE,
//!   `Entered` when the IVR answers, `MenuChoice` per menu decision,
//!   `Queued` per queue entered (after an `Overflowed` or a `Transferred`
//!   too), `Offered` / `NoAnswer` / `Busy` per agent leg, `Callback` per
//!   step of a callback (offered, accepted, refused), `Connected` when
//!   bridged, `Ended` once.
//! - Callbacks: [`JournalHandle::record_callback`] per change of an entry
//!   ([`CallbackChange`]: accepted, rescheduled, finished); at start,
//!   [`Reader::waiting_callbacks`] gives routing its entries back, their
//!   times mapped from the wall clock onto routing's.
//! - HTTP: inside `spawn_blocking`, [`Reader::recent_calls`] and
//!   [`CallRow::to_json`] give `GET /api/calls` (wrap as `{"calls":[…]}`),
//!   [`Reader::department_report`] gives `GET /api/reports/departments`
//!   (serialize the `Vec` under `"departments"`), [`Reader::call`],
//!   [`Reader::agent_report`] and [`Reader::source_report`] the rest.
//! - Alerts: [`Reader::abandonment_window`] over [`TimeRange::last`].
//! - Metrics from [`JournalHandle::stats`]: `backlog` as a gauge,
//!   `written`, `dropped`, `failed` as counters, `failing` as a 0/1 gauge.
//! - At shutdown: [`Journal::close`] with a grace period (on a blocking
//!   thread).
//! - Tests of the daemon can break the disk through
//!   [`JournalHandle::faults`] ([`FaultPlan`]).
//!
//! # Example
//! ```
//! use std::time::Duration;
//!
//! use jiff::{SignedDuration, Timestamp};
//! use records::{CallEvent, Journal, JournalConfig, JournalEntry, Outcome, Priority, TimeRange};
//!
//! let dir = tempfile::tempdir()?;
//! let (journal, handle) = Journal::open(dir.path().join("journal.db"), JournalConfig::default())?;
//!
//! // A call controller, step by step (a full backlog only costs the entry).
//! let t0 = Timestamp::now();
//! let step = |seconds: i64, event| {
//!     let _ = handle.record(JournalEntry::new("c-1", t0 + SignedDuration::from_secs(seconds), event));
//! };
//! step(0, CallEvent::Started {
//!     caller: "+13125550142".into(),
//!     dialed: "+15550100".into(),
//!     source: Some("main-line".into()),
//!     branch: None,
//! });
//! step(5, CallEvent::Queued {
//!     department: "pediatrics".into(),
//!     priority: Priority::Routine,
//!     sla_ms: 60_000,
//! });
//! step(9, CallEvent::Connected { agent: "1003".into(), branch: Some("south".into()) });
//! step(99, CallEvent::Ended { outcome: Outcome::Connected });
//!
//! // The admin API (inside `spawn_blocking` in the daemon).
//! journal.flush(Duration::from_secs(5))?;
//! let reader = journal.reader()?;
//! let calls = reader.recent_calls(50)?;
//! assert_eq!(calls[0].to_json()["wait_ms"], 4_000);
//! let hour = TimeRange::new(t0, t0 + SignedDuration::from_hours(1))?;
//! let departments = reader.department_report(&hour)?;
//! assert_eq!(departments[0].id, "pediatrics");
//! assert_eq!(departments[0].within_sla, 1.0);
//!
//! let stats = journal.close(Duration::from_secs(5))?;
//! assert_eq!((stats.written, stats.dropped, stats.failed), (4, 0, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Leads that are not calls (web forms) are in the same file, written by
//! the same writer: see [`leads`]. So are the callback entries of
//! routing's virtual hold, which a restart gives back to routing in their
//! place: see [`callbacks`]. So is the cluster's claim history (who held
//! which agent, from when to when): see [`claims`].
//!
//! Phone numbers are stored in full (the journal is the clinic's record);
//! redaction is for logs, and this crate logs no numbers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod callbacks;
mod checkpoint;
pub mod claims;
mod entry;
mod error;
mod fault;
mod journal;
pub mod leads;
mod location;
mod reader;
pub mod replica;
pub mod report;
pub mod schema;
mod shared;
mod sql;
mod storage;
mod timeline;
pub mod webhooks;
mod window;

pub use callbacks::{CallbackChange, CallbackRow, CallbackState};
pub use claims::{ClaimChange, ClaimEnd, ClaimQuery, ClaimRow, ClaimRowJson};
pub use entry::{CallEvent, CallId, IN_PROGRESS, JournalEntry, Outcome, Priority, UnknownName};
pub use error::{JournalError, QueryError, RangeError, RecordError};
pub use fault::FaultPlan;
pub use journal::{Journal, JournalConfig, JournalHandle, JournalStats, MAX_LINGER, WriteFailure};
pub use leads::{
    DeskRow, Idempotency, IntentJson, LeadChange, LeadEvent, LeadFields, LeadHistory,
    LeadHistoryStep, LeadId, LeadJson, LeadKind, LeadOutcome, LeadQuery, LeadReply, LeadReport,
    LeadRow, LeadSignature, LeadState, LeadStored, LeadTimeline, LeadWriteError, NewLead,
};
pub use location::{JournalLocation, LocationError, PostgresUrl};
pub use reader::{
    CallQuery, CallRow, CallRowJson, CallTimeline, CallTimelineJson, EventRow, EventRowJson, Reader,
};
pub use replica::{POSTGRES_SCHEMA_VERSION, ReplicaConfig, ReplicaStatus};
pub use report::{
    AbandonmentWindow, AgentReport, CallbackFigures, DepartmentReport, Percentiles, SourceReport,
    TimeRange,
};
pub use schema::{SCHEMA_VERSION, Synchronous};
pub use webhooks::{Subscription, Subscriptions, WebhookOutbox};
pub use window::AbandonmentTracker;
