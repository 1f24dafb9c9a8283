//! CRM webhooks' durable outbox (issue 26): every lead and call event a
//! `[[webhooks]]` entry hears is queued here, in the journal's file, until
//! its receiver answers 2xx.
//!
//! # Why in the journal's writer
//! An event is written by the same transaction that writes the change it
//! tells of (a lead stored, a desk change folded into its row, a call's
//! end), so an event exists if and only if its change is on disk: a
//! crash can lose neither one alone, and nothing on a call's path or the
//! desk's waits for a receiver. The writer reads the row it has just
//! written and puts the event's JSON ([`lead_body`], [`call_body`]) in
//! `webhook_outbox` (schema version 7), one row per webhook that hears
//! the kind. Which webhooks hear what is [`Subscriptions`], set with
//! [`JournalHandle::set_webhooks`](crate::JournalHandle::set_webhooks)
//! at start and on each reload.
//!
//! # Delivering
//! The daemon's delivery service takes due rows with [`WebhookOutbox`], a
//! connection of its own on the same file like the replica's shipper
//! ([`crate::replica`]): [`WebhookOutbox::claim`] reads due rows, leaving
//! out those the service has in flight (its lease, kept in memory: a
//! restarted daemon has nothing in flight, and sends every row still
//! there again), then [`WebhookOutbox::settle`] deletes the rows that
//! got a 2xx and sets the next try of those that did not, in one
//! transaction per round. Deliveries of one
//! webhook are not ordered: each event carries its `id` and `at`.
//!
//! # Bounded
//! Each webhook keeps at most its `max_pending` undelivered events. When
//! that many wait, a new event for it is **not queued**: it is counted
//! ([`JournalHandle::webhook_dropped`](crate::JournalHandle::webhook_dropped)),
//! logged (rate-limited), and the daemon raises the alert
//! `webhook_backlog_full`. The events already waiting keep their place
//! (a receiver that comes back gets the oldest first), and the disk
//! stays bounded whatever a dead receiver does.

mod outbox;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use domain::WebhookEvent;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use crate::error::QueryError;
use crate::leads::read::{LEAD_COLUMNS, LeadRow};
use crate::reader::{CALL_COLUMNS, CallRow};
use crate::sql::Cell;

pub use outbox::{Claimed, PendingCount, WebhookOutbox};

/// How often, at most, dropped events are logged again.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Schema version 7: the outbox.
pub(crate) fn version_7(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(
        "CREATE TABLE webhook_outbox (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            webhook    TEXT NOT NULL,
            event_id   TEXT NOT NULL,
            kind       TEXT NOT NULL,
            body       TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            attempts   INTEGER NOT NULL DEFAULT 0,
            next_at    INTEGER NOT NULL,
            last_error TEXT
        );
        CREATE INDEX webhook_outbox_due ON webhook_outbox (webhook, next_at, id);",
    )
}

/// One webhook as the writer needs it: its name, the kinds it hears, its
/// bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The webhook's name (the outbox's key).
    pub webhook: String,
    /// The kinds it hears.
    pub events: Vec<WebhookEvent>,
    /// Its `max_pending`.
    pub max_pending: u64,
}

/// Every webhook the writer queues events for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions(pub Vec<Subscription>);

impl Subscriptions {
    fn hearing(&self, kind: WebhookEvent) -> impl Iterator<Item = &Subscription> {
        self.0.iter().filter(move |s| s.events.contains(&kind))
    }

    fn hears(&self, kind: WebhookEvent) -> bool {
        self.hearing(kind).next().is_some()
    }
}

/// What the writer and the outbox share.
#[derive(Debug)]
pub(crate) struct WebhookQueue {
    subscriptions: RwLock<Arc<Subscriptions>>,
    /// Webhook → events waiting, as last counted or tracked since (the
    /// bound is checked against it; the outbox corrects it on each
    /// count).
    pending: Mutex<HashMap<String, u64>>,
    /// Webhook → events dropped because its outbox was full.
    dropped: Mutex<BTreeMap<String, u64>>,
    opened: Instant,
    last_drop_log: Mutex<Option<Instant>>,
}

impl Default for WebhookQueue {
    fn default() -> Self {
        WebhookQueue {
            subscriptions: RwLock::default(),
            pending: Mutex::default(),
            dropped: Mutex::default(),
            opened: Instant::now(),
            last_drop_log: Mutex::default(),
        }
    }
}

impl WebhookQueue {
    pub(crate) fn set(&self, subscriptions: Subscriptions) {
        *self
            .subscriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(subscriptions);
    }

    pub(crate) fn snapshot(&self) -> Arc<Subscriptions> {
        Arc::clone(
            &self
                .subscriptions
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    pub(crate) fn dropped(&self) -> BTreeMap<String, u64> {
        self.dropped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the tracked counts (after a failed batch: its inserts were
    /// rolled back); the next event of each webhook counts again.
    pub(crate) fn forget_counts(&self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub(crate) fn set_counts(&self, counts: impl IntoIterator<Item = (String, u64)>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.clear();
        pending.extend(counts);
    }

    pub(crate) fn delivered(&self, webhook: &str, count: u64) {
        if let Some(pending) = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(webhook)
        {
            *pending = pending.saturating_sub(count);
        }
    }

    /// Room for one more event of `webhook`: takes it and says yes, or
    /// counts a drop.
    fn admit(
        &self,
        connection: &Connection,
        subscription: &Subscription,
    ) -> rusqlite::Result<bool> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let count = match pending.get_mut(&subscription.webhook) {
            Some(count) => count,
            None => {
                let counted: i64 = connection
                    .prepare_cached("SELECT count(*) FROM webhook_outbox WHERE webhook = ?1")?
                    .query_row(params![subscription.webhook], |row| row.get(0))?;
                pending
                    .entry(subscription.webhook.clone())
                    .or_insert(counted.max(0) as u64)
            }
        };
        if *count < subscription.max_pending {
            *count += 1;
            return Ok(true);
        }
        drop(pending);
        let total = {
            let mut dropped = self.dropped.lock().unwrap_or_else(PoisonError::into_inner);
            let total = dropped.entry(subscription.webhook.clone()).or_insert(0);
            *total += 1;
            *total
        };
        let mut last = self
            .last_drop_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= DROP_LOG_INTERVAL) {
            *last = Some(Instant::now());
            tracing::error!(
                webhook = %subscription.webhook,
                max_pending = subscription.max_pending,
                dropped_total = total,
                since_open_s = self.opened.elapsed().as_secs(),
                "webhook outbox full: new events for it are dropped"
            );
        }
        Ok(false)
    }
}

/// One step of a lead's history, as an event.
#[derive(Debug, Clone, Copy)]
pub struct LeadStep<'a> {
    /// Its kind.
    pub kind: WebhookEvent,
    /// The lead's id.
    pub lead: &'a str,
    /// The step's place in the lead's history (`lead_events.seq`; 1 is
    /// its creation): the event's id is `<lead>.<seq>`.
    pub seq: i64,
    /// When it happened.
    pub at: Timestamp,
    /// The agent concerned.
    pub agent: Option<&'a str>,
    /// The step's detail (an offer's `until`, an outcome).
    pub detail: &'a Value,
}

/// The writer's view while it writes one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hooks<'a> {
    pub(crate) queue: &'a WebhookQueue,
    pub(crate) subscriptions: &'a Subscriptions,
}

impl Hooks<'_> {
    /// Whether any webhook hears `kind` (nothing to read otherwise).
    pub(crate) fn hears(&self, kind: WebhookEvent) -> bool {
        self.subscriptions.hears(kind)
    }

    /// Queues an event of lead `step.lead` (its row as just written) for
    /// each webhook that hears `step.kind`.
    pub(crate) fn lead(&self, connection: &Connection, step: LeadStep<'_>) -> rusqlite::Result<()> {
        if !self.hears(step.kind) {
            return Ok(());
        }
        let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?1");
        let row = connection
            .prepare_cached(&sql)?
            .query_row(params![step.lead], |row| Ok(LeadRow::from_row(row)))
            .optional()?;
        let row = match row {
            Some(Ok(row)) => row,
            Some(Err(error)) => {
                tracing::error!(%error, lead = step.lead, "lead row unreadable: no webhook event");
                return Ok(());
            }
            None => return Ok(()),
        };
        let body = lead_body(&step, &row);
        self.queue(
            connection,
            step.kind,
            &format!("{}.{}", step.lead, step.seq),
            step.at,
            &body,
        )
    }

    /// Queues `call.ended` for call `call` (its row as just written).
    pub(crate) fn call_ended(
        &self,
        connection: &Connection,
        call: &str,
        at: Timestamp,
    ) -> rusqlite::Result<()> {
        let kind = WebhookEvent::CallEnded;
        if !self.hears(kind) {
            return Ok(());
        }
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1");
        let mut statement = connection.prepare_cached(&sql)?;
        let columns = statement.column_count();
        let cells = statement
            .query_row(params![call], |row| {
                (0..columns)
                    .map(|i| row.get_ref(i).map(Cell::from_sqlite))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .optional()?;
        let Some(cells) = cells else {
            return Ok(());
        };
        let row = cells
            .into_iter()
            .collect::<Result<Vec<_>, QueryError>>()
            .and_then(|cells| CallRow::from_cells(&cells));
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                tracing::error!(%error, call, "call row unreadable: no webhook event");
                return Ok(());
            }
        };
        let body = call_body(at, &row);
        self.queue(connection, kind, &format!("{call}.ended"), at, &body)
    }

    fn queue(
        &self,
        connection: &Connection,
        kind: WebhookEvent,
        event_id: &str,
        at: Timestamp,
        body: &Value,
    ) -> rusqlite::Result<()> {
        let body = body.to_string();
        let now = Timestamp::now().as_millisecond();
        for subscription in self.subscriptions.hearing(kind) {
            if !self.queue.admit(connection, subscription)? {
                continue;
            }
            connection
                .prepare_cached(
                    "INSERT INTO webhook_outbox (webhook, event_id, kind, body, created_at, next_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    subscription.webhook,
                    event_id,
                    kind.as_str(),
                    body,
                    at.as_millisecond(),
                    now
                ])?;
        }
        Ok(())
    }
}

/// A lead event's body (the OpenAPI document's `LeadWebhookEvent`, under
/// its `webhooks`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = LeadWebhookEvent)]
pub struct LeadEventJson {
    /// `<lead>.<seq>`: the same on every retry (`X-Frontdesk-Delivery`).
    pub id: String,
    /// `lead.created`, `lead.offered`, `lead.owner_changed`,
    /// `lead.contacted`, `lead.outcome` or `lead.escalated`.
    pub kind: String,
    /// When it happened, RFC 3339 UTC.
    pub at: String,
    /// The lead as `GET /api/leads/{id}` shows it, without `history` and
    /// `related`: with its `owner`, its timers (`created_at`, `respond_by`,
    /// `first_contact_at`, `snoozed_until`) and its `source`.
    pub lead: crate::LeadFields,
    /// The agent concerned.
    pub agent: Option<String>,
    /// The step's own detail (an offer's `until`, an outcome), or `null`.
    #[schema(value_type = Object, nullable)]
    pub detail: Value,
}

/// `call.ended`'s body (the OpenAPI document's `CallWebhookEvent`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = CallWebhookEvent)]
pub struct CallEventJson {
    /// `<call>.ended`.
    pub id: String,
    /// `call.ended`.
    pub kind: String,
    /// When it ended, RFC 3339 UTC.
    pub at: String,
    /// The call with every column, and its owner.
    pub call: WebhookCall,
}

/// The call of `call.ended`: `GET /api/calls`' fields plus `branch`,
/// `answered_at`, `queued_at`, `talk_ms`, `transfers`, `sla_ms`, and
/// `owner`, the agent who last answered it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookCall {
    /// The call (flattened: the same object).
    #[serde(flatten)]
    pub row: crate::CallRowJson,
    /// The agent who last answered it.
    pub owner: Option<String>,
}

/// The JSON of a lead event ([`LeadEventJson`]).
pub fn lead_body(step: &LeadStep<'_>, row: &LeadRow) -> Value {
    json!(LeadEventJson {
        id: format!("{}.{}", step.lead, step.seq),
        kind: step.kind.as_str().to_string(),
        at: step.at.to_string(),
        lead: row.fields(),
        agent: step.agent.map(str::to_string),
        detail: step.detail.clone(),
    })
}

/// The JSON of `call.ended` ([`CallEventJson`]).
pub fn call_body(at: Timestamp, row: &CallRow) -> Value {
    json!(CallEventJson {
        id: format!("{}.ended", row.id.as_str()),
        kind: WebhookEvent::CallEnded.as_str().to_string(),
        at: at.to_string(),
        call: WebhookCall {
            row: row.view(),
            owner: row.agent.clone(),
        },
    })
}

/// Which webhook event a desk change is, if any.
pub(crate) fn of_lead_change(event: &str) -> Option<WebhookEvent> {
    match event {
        "offered" => Some(WebhookEvent::LeadOffered),
        "accepted" | "assigned" => Some(WebhookEvent::LeadOwnerChanged),
        "contacted" => Some(WebhookEvent::LeadContacted),
        "closed" => Some(WebhookEvent::LeadOutcome),
        "escalated" => Some(WebhookEvent::LeadEscalated),
        _ => None,
    }
}
