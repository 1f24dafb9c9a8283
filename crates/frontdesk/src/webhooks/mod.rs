//! CRM webhooks (issue 26): every lead and call event a `[[webhooks]]`
//! entry hears is POSTed to it, signed, and retried until it answers 2xx,
//! across restarts.
//!
//! # The path of an event
//! The journal's writer queues the event in `webhook_outbox` in the same
//! transaction as the change it tells of (`records::webhooks`), so a
//! call or the desk only ever hands its step to the writer's bounded
//! channel, as before: no call waits on a receiver, however slow or dead.
//! This module is the delivery service: one task that takes due events
//! from the outbox (`records::WebhookOutbox`, a connection of its own,
//! used on the blocking pool) and leases them in memory ([`Leases`]: the
//! rows it has in flight are not taken again), POSTs each with [`client`]
//! (at most the webhook's `concurrency` at once, each bounded by its
//! `timeout`), and deletes it on a 2xx or reschedules it.
//!
//! # Where it runs
//! The service's task, and with it every outbox transaction, runs on the
//! daemon's background thread (`daemon::front::OwnRuntime::background`,
//! nice, ordinary class). The POSTs (connecting, signing, TLS, HTTP) run
//! on a runtime of their own, `webhook-send`, in the `SCHED_IDLE` class
//! (`OwnRuntime::idle`): a call's thread woken while a POST runs takes
//! the CPU at once, unless it has run ahead of its share (EEVDF then runs
//! the idle-class work out to its lag: up to a few ms, measured; so the
//! POSTs are kept cheap too). Nice alone did not do that (BENCHMARKS.md,
//! issue 26). The split is deliberate: a starved idle thread must hold
//! nothing a call's thread or the journal's writer waits for, and the
//! outbox's transactions hold the journal's write lock. When the
//! CPU is full, POSTs wait (their `timeout` may then pass and the event
//! is retried later); nothing is lost, and no call is slowed.
//!
//! # The request
//! `POST` to the URL with the event's JSON (DESIGN.md's lead object, or
//! the call's row; `records::webhooks::lead_body` and `call_body`), and
//! the headers `X-Frontdesk-Event` (the kind), `X-Frontdesk-Delivery` (the
//! event's id, the same on every try: a receiver drops repeats by it) and
//! `X-Frontdesk-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>`, lead intake's scheme (`crate::leads::signature`), `t`
//! being the time of the try so that a receiver's tolerance holds for a
//! retry too. Delivery is at least once and not ordered: each event has
//! its `at`.
//!
//! # Retries
//! A failed try (not 2xx, no answer within `timeout`, no connection)
//! pauses the webhook for [`backoff::retry_delay`] (exponential from
//! `retry_initial`, at most `retry_max`, with jitter) and puts the event
//! back for then. After the pause one event is tried alone; its 2xx
//! opens the webhook to its full `concurrency` again. So a dead receiver
//! costs one try per pause, not one per waiting event. Events are kept
//! until acknowledged; the outbox's bound (`max_pending`) is the only
//! way one is lost, and that is counted and alerted.
//!
//! # What an operator sees
//! `/metrics`: `frontdesk_webhook_deliveries_total{webhook,result}`
//! (`delivered`, `failed`), `frontdesk_webhook_pending{webhook}`,
//! `frontdesk_webhook_oldest_pending_seconds{webhook}`,
//! `frontdesk_webhook_dropped_total{webhook}`. Alerts (`/api/alerts`, the
//! dashboard), department `webhook:<name>`: `webhook_failing` while its
//! last try failed, `webhook_backlog_full` while events are being dropped.
//! Logs name the webhook, the event's id and kind and the failure; never
//! the body (it carries patient data).

pub mod backoff;
pub mod client;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use guard::WarnEvery;
use ivr::Dialplan;
use ivr::jiff::Timestamp;
use ivr::webhooks::Webhook;
use records::{Subscription, Subscriptions, WebhookOutbox};
use sip::digest::hex;
use tokio::runtime::Handle;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::LiveDialplan;
use crate::app::journal::CallJournal;
use client::{Client, Delivery, DeliveryError};

/// Events leased at once per webhook, at most (whatever its
/// `concurrency`): one outbox query per batch.
const CLAIM_BATCH: usize = 64;
/// How long, at most, the service waits after a try ends for others to
/// end too, before settling them (`--webhook-poll`, if shorter): it bounds
/// the outbox's transactions, each of which holds the journal's write lock,
/// to about two per window however many deliveries end.
const SETTLE_GATHER: Duration = Duration::from_millis(20);
/// A try whose result could not be written (the disk failed) keeps its
/// event out of the next rounds this long; then it is sent again.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The rows the service has in flight: its lease on them, in memory
/// (`records::WebhookOutbox::claim` leaves them out). A restart forgets
/// it, and sends every row not yet deleted again: at least once.
#[derive(Debug, Default)]
struct Leases {
    /// In flight, or held (below).
    rows: HashSet<i64>,
    /// Rows whose result could not be written, kept out until then.
    held: Vec<(i64, Instant)>,
}

impl Leases {
    /// Lets go of the held rows whose time has come.
    fn release_due(&mut self, now: Instant) {
        let Leases { rows, held } = self;
        held.retain(|(row, until)| {
            let keep = *until > now;
            if !keep {
                rows.remove(row);
            }
            keep
        });
    }
}
/// How often, at most, one webhook's failures are logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The alert kinds (DESIGN.md's `/api/alerts`).
pub const FAILING: &str = "webhook_failing";
/// See [`FAILING`].
pub const BACKLOG_FULL: &str = "webhook_backlog_full";

/// Which events the journal's writer queues for whom, from the plan.
pub fn subscriptions(plan: &Dialplan) -> Subscriptions {
    Subscriptions(
        plan.webhooks()
            .iter()
            .map(|hook| Subscription {
                webhook: hook.name().to_string(),
                events: hook.events().to_vec(),
                max_pending: hook.max_pending(),
            })
            .collect(),
    )
}

/// The alerts' department for webhook `name`.
pub fn department(name: &str) -> String {
    format!("webhook:{name}")
}

/// One webhook's state in the service.
struct Endpoint {
    hook: Webhook,
    in_flight: usize,
    /// Consecutive failed pauses (0: healthy).
    failures: u32,
    /// No new try before this (after a failure).
    paused_until: Option<Instant>,
    last_error: Option<String>,
    warn: WarnEvery,
    /// Events dropped as last seen (to tell new drops).
    dropped_seen: u64,
}

impl Endpoint {
    fn new(hook: Webhook) -> Self {
        Endpoint {
            hook,
            in_flight: 0,
            failures: 0,
            paused_until: None,
            last_error: None,
            warn: WarnEvery::new(WARN_EVERY),
            dropped_seen: 0,
        }
    }

    /// How many events to lease now.
    fn room(&self, now: Instant) -> usize {
        match self.paused_until {
            // Paused: nothing. After the pause: one probe at a time.
            Some(until) if now < until => 0,
            Some(_) => 1usize.saturating_sub(self.in_flight),
            None => (self.hook.concurrency() as usize).saturating_sub(self.in_flight),
        }
        .min(CLAIM_BATCH)
    }
}

/// The tries in flight, on the sending runtime.
#[derive(Default)]
struct Tries {
    set: JoinSet<Tried>,
    /// Each try's event, to settle it (as failed) should its task end
    /// without a result (a panic): its lease is then let go, and its
    /// webhook's room comes back.
    events: HashMap<tokio::task::Id, Tried>,
}

impl Tries {
    fn spawn(
        &mut self,
        try_one: impl std::future::Future<Output = Tried> + Send + 'static,
        on: &Handle,
        lost: Tried,
    ) {
        let id = self.set.spawn_on(try_one, on).id();
        self.events.insert(id, lost);
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next try to end, and what it came to.
    async fn next(&mut self) -> Option<Tried> {
        loop {
            let (id, tried) = match self.set.join_next_with_id().await? {
                Ok((id, tried)) => (id, Some(tried)),
                Err(error) => (error.id(), None),
            };
            let lost = self.events.remove(&id);
            if let Some(tried) = tried.or(lost) {
                return Some(tried);
            }
        }
    }
}

/// What one try came to.
struct Tried {
    webhook: String,
    row: i64,
    event_id: String,
    kind: String,
    result: Result<u16, DeliveryError>,
}

/// The delivery service: runs until `shutdown` (in-flight tries are then
/// dropped; their events are sent again after the next start). The POSTs
/// run on `send` (the idle runtime; see "Where it runs").
pub async fn run(
    journal: Arc<CallJournal>,
    dialplan: Arc<LiveDialplan>,
    poll: Duration,
    send: Handle,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let outbox = journal.handle().webhook_outbox()?;
    let outbox = Arc::new(Mutex::new(outbox));
    let client = Client::new(crate::app::PRODUCT)?;
    let mut endpoints: BTreeMap<String, Endpoint> = BTreeMap::new();
    let mut plan_seen: Option<Arc<Dialplan>> = None;
    let mut tries = Tries::default();
    let mut leases = Leases::default();
    let mut next_status = Instant::now();
    // A failing outbox (the disk) is logged and tried again next round:
    // the service never ends the daemon for it.
    let mut outbox_errors = WarnEvery::new(WARN_EVERY);
    loop {
        let plan = dialplan.current();
        if plan_seen
            .as_ref()
            .is_none_or(|seen| !Arc::ptr_eq(seen, &plan))
        {
            configure(&mut endpoints, &plan, &journal);
            let names: Vec<String> = endpoints.keys().cloned().collect();
            match blocking(&outbox, move |outbox| outbox.forget_others(&names)).await {
                Ok(0) => plan_seen = Some(plan),
                Ok(forgotten) => {
                    warn!(
                        events = forgotten,
                        "undelivered webhook events of webhooks no longer in the dialplan deleted"
                    );
                    plan_seen = Some(plan);
                }
                Err(error) => outbox_failed(&mut outbox_errors, &error),
            }
        }
        if !shutdown.is_cancelled()
            && let Err(error) = start_tries(
                &mut endpoints,
                &outbox,
                &client,
                &send,
                &mut tries,
                &mut leases,
            )
            .await
        {
            outbox_failed(&mut outbox_errors, &error);
        }
        if Instant::now() >= next_status {
            client.sweep();
            if let Err(error) = status(&mut endpoints, &outbox, &journal).await {
                outbox_failed(&mut outbox_errors, &error);
            }
            next_status = Instant::now() + poll;
        }
        let mut done = Vec::new();
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            Some(tried) = tries.next(), if !tries.is_empty() => {
                done.push(tried);
                // The tries ending within the gathering window are
                // settled, and their room leased again, in one round: at a
                // thousand deliveries a second, one pair of outbox
                // transactions per window, not per delivery.
                let until = tokio::time::Instant::now() + poll.min(SETTLE_GATHER);
                while let Ok(Some(tried)) = tokio::time::timeout_at(until, tries.next()).await {
                    done.push(tried);
                }
            }
            () = tokio::time::sleep(poll) => {}
        }
        // A result not written keeps its event held: it is tried again
        // when the hold ends.
        if !done.is_empty()
            && let Err(error) = settle(&mut endpoints, &outbox, done, &journal, &mut leases).await
        {
            outbox_failed(&mut outbox_errors, &error);
        }
    }
}

fn outbox_failed(warn_every: &mut WarnEvery, error: &anyhow::Error) {
    if let Some(count) = warn_every.hit(Instant::now()) {
        tracing::error!(error = %format!("{error:#}"), failures = count, "the webhooks' outbox cannot be read or written");
    }
}

/// Takes the plan's webhooks: new ones start healthy, changed ones keep
/// their state, removed ones go (with their alerts). Also tells the
/// journal's writer (App::reload does too, at once).
fn configure(endpoints: &mut BTreeMap<String, Endpoint>, plan: &Dialplan, journal: &CallJournal) {
    journal.handle().set_webhooks(subscriptions(plan));
    let mut kept = BTreeMap::new();
    for hook in plan.webhooks() {
        let name = hook.name().to_string();
        let endpoint = match endpoints.remove(&name) {
            Some(mut endpoint) => {
                endpoint.hook = hook.clone();
                endpoint
            }
            None => {
                info!(webhook = %name, url = ?hook.url(), events = hook.events().len(), "webhook configured");
                Endpoint::new(hook.clone())
            }
        };
        kept.insert(name, endpoint);
    }
    for name in endpoints.keys() {
        journal.set_condition(&department(name), FAILING, None);
        journal.set_condition(&department(name), BACKLOG_FULL, None);
    }
    *endpoints = kept;
}

/// Leases what each webhook has room for and starts the tries.
async fn start_tries(
    endpoints: &mut BTreeMap<String, Endpoint>,
    outbox: &Arc<Mutex<WebhookOutbox>>,
    client: &Client,
    send: &Handle,
    tries: &mut Tries,
    leases: &mut Leases,
) -> anyhow::Result<()> {
    let now = Instant::now();
    leases.release_due(now);
    for (name, endpoint) in endpoints.iter_mut() {
        // Batches until the webhook's room is full or nothing more is due.
        loop {
            let room = endpoint.room(now);
            if room == 0 {
                break;
            }
            let webhook = name.clone();
            // A copy for the blocking pool: at most `concurrency` rows
            // (256) and the held ones.
            let leased = leases.rows.clone();
            let claimed = blocking(outbox, move |outbox| {
                outbox.claim(&webhook, Timestamp::now().as_millisecond(), room, &leased)
            })
            .await?;
            let all_due_taken = claimed.len() < room;
            for event in claimed {
                endpoint.in_flight += 1;
                leases.rows.insert(event.row);
                let client = client.clone();
                let url = endpoint.hook.url().clone();
                let secret = endpoint.hook.secret().clone();
                let timeout = endpoint.hook.timeout();
                let webhook = name.clone();
                let what = Tried {
                    webhook: name.clone(),
                    row: event.row,
                    event_id: event.event_id.clone(),
                    kind: event.kind.clone(),
                    result: Err(DeliveryError::Transport(
                        "the try ended without a result".into(),
                    )),
                };
                let try_one = async move {
                    let body = Bytes::from(event.body);
                    let t = Timestamp::now().as_second();
                    let signature = format!(
                        "t={t},v1={}",
                        hex(&crate::leads::signature::sign(secret.as_bytes(), t, &body))
                    );
                    let result = client
                        .post(
                            &url,
                            Delivery {
                                kind: &event.kind,
                                event_id: &event.event_id,
                                signature: &signature,
                                body,
                            },
                            timeout,
                        )
                        .await;
                    Tried {
                        webhook,
                        row: event.row,
                        event_id: event.event_id,
                        kind: event.kind,
                        result,
                    }
                };
                tries.spawn(try_one, send, what);
            }
            if all_due_taken {
                break;
            }
        }
    }
    Ok(())
}

/// Writes the tries' results (one transaction) and updates each
/// webhook's pause, counters and alert.
async fn settle(
    endpoints: &mut BTreeMap<String, Endpoint>,
    outbox: &Arc<Mutex<WebhookOutbox>>,
    done: Vec<Tried>,
    journal: &CallJournal,
    leases: &mut Leases,
) -> anyhow::Result<()> {
    let now = Instant::now();
    let now_ms = Timestamp::now().as_millisecond();
    let mut delivered: Vec<(String, i64)> = Vec::new();
    let mut failed: Vec<(i64, i64, String)> = Vec::new();
    let mut removed: Vec<i64> = Vec::new();
    for tried in done {
        let Some(endpoint) = endpoints.get_mut(&tried.webhook) else {
            // Removed meanwhile: its events are being forgotten.
            removed.push(tried.row);
            continue;
        };
        endpoint.in_flight = endpoint.in_flight.saturating_sub(1);
        let label = tried.webhook.clone();
        match tried.result {
            Ok(_) => {
                metrics::counter!("frontdesk_webhook_deliveries_total", "webhook" => label, "result" => "delivered")
                    .increment(1);
                if endpoint.failures > 0 {
                    info!(webhook = %tried.webhook, "webhook delivers again");
                    journal.set_condition(&department(&tried.webhook), FAILING, None);
                }
                endpoint.failures = 0;
                endpoint.paused_until = None;
                endpoint.last_error = None;
                delivered.push((tried.webhook, tried.row));
            }
            Err(error) => {
                metrics::counter!("frontdesk_webhook_deliveries_total", "webhook" => label, "result" => "failed")
                    .increment(1);
                // Tries that were in flight together fail together: one
                // step of the backoff for them all.
                if endpoint.paused_until.is_none_or(|until| until <= now) {
                    endpoint.failures = endpoint.failures.saturating_add(1);
                }
                let delay = backoff::retry_delay(
                    endpoint.failures,
                    endpoint.hook.retry_initial(),
                    endpoint.hook.retry_max(),
                    rand::random::<f64>(),
                );
                endpoint.paused_until = Some(now + delay);
                let message = error.to_string();
                if let Some(count) = endpoint.warn.hit(now) {
                    warn!(
                        webhook = %tried.webhook,
                        event = %tried.event_id,
                        kind = %tried.kind,
                        error = %message,
                        failures = count,
                        retry_in_ms = delay.as_millis() as u64,
                        "webhook delivery failed"
                    );
                }
                journal.set_condition(
                    &department(&tried.webhook),
                    FAILING,
                    Some(format!(
                        "deliveries to {:?} fail ({message}); retrying in {} s",
                        endpoint.hook.url(),
                        delay.as_secs().max(1)
                    )),
                );
                endpoint.last_error = Some(message.clone());
                let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                failed.push((tried.row, now_ms.saturating_add(delay_ms), message));
            }
        }
    }
    let rows: Vec<i64> = delivered
        .iter()
        .map(|(_, row)| *row)
        .chain(failed.iter().map(|(row, ..)| *row))
        .chain(removed)
        .collect();
    let written = blocking(outbox, move |outbox| outbox.settle(&delivered, &failed)).await;
    match written {
        // Deleted or rescheduled: no longer in flight.
        Ok(()) => {
            for row in rows {
                leases.rows.remove(&row);
            }
        }
        Err(_) => {
            let until = now + LEASE_MARGIN;
            leases.held.extend(rows.into_iter().map(|row| (row, until)));
        }
    }
    written
}

/// Counts each webhook's backlog for the gauges and the full-outbox alert.
async fn status(
    endpoints: &mut BTreeMap<String, Endpoint>,
    outbox: &Arc<Mutex<WebhookOutbox>>,
    journal: &CallJournal,
) -> anyhow::Result<()> {
    let pending: BTreeMap<String, records::webhooks::PendingCount> =
        blocking(outbox, |outbox| outbox.pending())
            .await?
            .into_iter()
            .collect();
    let dropped = journal.handle().webhook_dropped();
    let now_ms = Timestamp::now().as_millisecond();
    for (name, endpoint) in endpoints.iter_mut() {
        let count = pending.get(name).copied().unwrap_or_default();
        metrics::gauge!("frontdesk_webhook_pending", "webhook" => name.clone())
            .set(count.events as f64);
        let oldest_s = count.oldest_ms.map_or(0.0, |oldest| {
            (now_ms.saturating_sub(oldest)).max(0) as f64 / 1000.0
        });
        metrics::gauge!("frontdesk_webhook_oldest_pending_seconds", "webhook" => name.clone())
            .set(oldest_s);
        let dropped_total = dropped.get(name).copied().unwrap_or(0);
        metrics::counter!("frontdesk_webhook_dropped_total", "webhook" => name.clone())
            .absolute(dropped_total);
        let dropping = dropped_total > endpoint.dropped_seen;
        endpoint.dropped_seen = dropped_total;
        let full = count.events >= endpoint.hook.max_pending();
        journal.set_condition(
            &department(name),
            BACKLOG_FULL,
            (dropping || full).then(|| {
                format!(
                    "{} events wait (max_pending {}); {dropped_total} new events dropped since start",
                    count.events,
                    endpoint.hook.max_pending()
                )
            }),
        );
    }
    Ok(())
}

/// Runs `work` on the outbox on the blocking pool. The lock is only
/// contended by this service's own sequential calls.
async fn blocking<T: Send + 'static>(
    outbox: &Arc<Mutex<WebhookOutbox>>,
    work: impl FnOnce(&mut WebhookOutbox) -> Result<T, records::QueryError> + Send + 'static,
) -> anyhow::Result<T> {
    let outbox = Arc::clone(outbox);
    let result = tokio::task::spawn_blocking(move || {
        let mut outbox = outbox.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut outbox)
    })
    .await?;
    Ok(result?)
}
