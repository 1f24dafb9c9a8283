//! The journal of calls (`records`, SQLite under `--data`, or `--journal`;
//! with `--journal postgres://…` the calls are also shipped to a database
//! the cluster shares, see `records::replica`), the overload alerts
//! computed from it and from routing (and `journal_unavailable` while
//! PostgreSQL cannot be written), and the pseudonyms that keep patients'
//! numbers out of the logs.
//!
//! (Called `Leads` before web leads came: a call is one kind of lead, but
//! web-form leads get a service of their own.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivr::jiff::Timestamp;
use records::{
    AbandonmentTracker, AbandonmentWindow, CallEvent, Journal, JournalConfig, JournalEntry,
    JournalHandle, JournalLocation, Reader, ReplicaConfig, ReplicaStatus, TimeRange,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::App;

/// The journal's file under `--data`.
pub const JOURNAL_FILE: &str = "journal.db";
/// The pseudonym key's file under `--data` (kept, so a caller's pseudonym
/// is the same across restarts).
pub const PSEUDONYM_KEY_FILE: &str = "pseudonym.key";

/// How long closing the interrupted calls may take at start.
const CLOSE_INTERRUPTED_WITHIN: Duration = Duration::from_secs(30);

/// How the alerts are set up (`--alert-webhook`, `--alert-abandonment`).
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Where raised and cleared alerts are POSTed as JSON (`http://` only).
    pub webhook: Option<String>,
    /// A department's abandonment over [`AlertConfig::window`] past this
    /// share raises an alert.
    pub abandonment_rate: f64,
    /// The window for abandonment.
    pub window: Duration,
    /// At least this many waits must have ended in the window.
    pub min_resolved: u64,
    /// How often alerts are evaluated.
    pub every: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            webhook: None,
            abandonment_rate: 0.25,
            window: Duration::from_secs(15 * 60),
            min_resolved: 4,
            every: Duration::from_secs(2),
        }
    }
}

/// The journal's writing and reading ends, and what the daemon closes.
#[derive(Debug)]
pub struct CallJournal {
    handle: JournalHandle,
    reader: Reader,
    journal: Mutex<Option<Journal>>,
    alerts: Mutex<BTreeMap<(String, &'static str), Alert>>,
    /// Alerts raised and cleared by services as conditions come and go
    /// (`cluster_store_down`), apart from the ones `watch_alerts` computes.
    conditions: Mutex<BTreeMap<(String, &'static str), Alert>>,
    /// The abandonment window of the alerts, fed by every step recorded.
    abandonment: Mutex<AbandonmentTracker>,
    pseudonyms: Pseudonyms,
    /// Where it lives, for the log (a password redacted).
    location: String,
}

/// One active alert (`GET /api/alerts`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The queue id.
    pub department: String,
    /// `sla` or `abandonment`.
    pub kind: &'static str,
    /// When it was raised.
    pub since: Timestamp,
    /// What is wrong, for a person.
    pub detail: String,
}

/// An active alert as `/api/alerts` and the dashboard show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Alert)]
pub struct AlertJson {
    /// The queue concerned.
    pub department: String,
    /// `sla`, `abandonment`, `emergency_lead`, `lead_breach`, `journal_unavailable`, …
    pub kind: String,
    /// RFC 3339 UTC: when it was raised.
    pub since: String,
    /// What is wrong, for a person (no patient data).
    pub detail: String,
    /// The lead, for a lead's alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
}

impl Alert {
    /// DESIGN.md's shape.
    pub fn to_json(&self) -> Value {
        json!(AlertJson {
            department: self.department.clone(),
            kind: self.kind.to_string(),
            since: self.since.to_string(),
            detail: self.detail.clone(),
            lead: None,
        })
    }
}

impl CallJournal {
    /// Opens (or creates) the journal under `data`, and closes the calls a
    /// previous process left in progress as `interrupted` (it stopped with
    /// them up: killed, crashed, the power cut). This runs before the
    /// daemon takes any call; the agents those calls held are free because
    /// routing starts afresh, from registrations alone.
    ///
    /// `location` is `--journal`: `None` or `sqlite:<path>`, a SQLite file
    /// (by default `journal.db` under `data`); `postgres://…`, the file
    /// under `data` plus a replica in PostgreSQL written as node `node`
    /// (which the daemon requires then). A database down at start does not
    /// stop the start: the calls wait in the file's outbox, and the
    /// `journal_unavailable` alert says so.
    ///
    /// `webhooks` are set before the interrupted calls are closed, so
    /// that their `call.ended` events are queued too.
    pub fn open(
        data: &Path,
        location: Option<&JournalLocation>,
        node: Option<&str>,
        reveal_numbers: bool,
        window: Duration,
        webhooks: records::Subscriptions,
    ) -> anyhow::Result<Self> {
        let (path, replica) = match location {
            Some(JournalLocation::Sqlite(path)) => (path.clone(), None),
            Some(JournalLocation::Postgres(url)) => {
                let node = node.ok_or_else(|| {
                    anyhow::anyhow!("--journal postgres://… needs --node-id NAME")
                })?;
                (
                    data.join(JOURNAL_FILE),
                    Some(ReplicaConfig::new(url.clone(), node)),
                )
            }
            None => (data.join(JOURNAL_FILE), None),
        };
        let location = match location {
            Some(JournalLocation::Postgres(url)) => {
                format!("{} (outbox {})", url, path.display())
            }
            _ => path.display().to_string(),
        };
        // Created 0600 before SQLite opens it: its -wal and -shm files take
        // the database file's mode (crate::private).
        crate::private::create_empty(&path)?;
        let config = JournalConfig {
            replica,
            ..JournalConfig::default()
        };
        let (journal, handle) = Journal::open(path, config)?;
        handle.set_webhooks(webhooks);
        match journal.close_interrupted(CLOSE_INTERRUPTED_WITHIN) {
            Ok(0) => {}
            Ok(calls) => info!(
                calls,
                "calls up when the daemon last stopped closed as interrupted"
            ),
            // Not fatal: they stay `in_progress` and the next start tries
            // again; today's calls are journaled as usual.
            Err(error) => {
                warn!(%error, "calls up when the daemon last stopped are still in progress")
            }
        }
        let reader = journal.reader()?;
        let pseudonyms = Pseudonyms::open(data, reveal_numbers)?;
        // The waits that ended before a restart still count for the alerts
        // (an interrupted one is not a wait that ended: it counts nowhere).
        // With PostgreSQL, the cluster's waits (the reader's view); down at
        // start, none: the start goes on and the window fills as calls end.
        let mut abandonment = AbandonmentTracker::new(window);
        match reader.resolved_visits(&TimeRange::last(window, Timestamp::now())) {
            Ok(visits) => abandonment.seed(visits),
            Err(error @ records::QueryError::Unavailable(_)) => {
                warn!(%error, "the abandonment window starts empty")
            }
            Err(error) => return Err(error.into()),
        }
        Ok(CallJournal {
            handle,
            reader,
            journal: Mutex::new(Some(journal)),
            alerts: Mutex::new(BTreeMap::new()),
            conditions: Mutex::new(BTreeMap::new()),
            abandonment: Mutex::new(abandonment),
            pseudonyms,
            location,
        })
    }

    /// Records one step of call `id` now (never waits; a loss is counted).
    pub fn record(&self, id: &str, event: CallEvent) {
        self.record_entry(JournalEntry::new(id, Timestamp::now(), event));
    }

    /// Records an entry with its own time.
    pub fn record_entry(&self, entry: JournalEntry) {
        if let Ok(mut abandonment) = self.abandonment.lock() {
            abandonment.record(&entry);
        }
        let _ = self.handle.record(entry);
    }

    /// Per department, the waits that ended in the alerts' window up to
    /// `now` and how many of them were abandoned (no journal read).
    pub fn abandonment_window(&self, now: Timestamp) -> Vec<AbandonmentWindow> {
        self.abandonment
            .lock()
            .map(|mut abandonment| abandonment.window(now))
            .unwrap_or_default()
    }

    /// The read side, for the API (use it inside `spawn_blocking`).
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// The write side's counters.
    pub fn stats(&self) -> records::JournalStats {
        self.handle.stats()
    }

    /// The PostgreSQL replica's state (`--journal postgres://…`), if any.
    pub fn replica(&self) -> Option<ReplicaStatus> {
        self.handle.replica()
    }

    /// Where the journal lives, for the log (password redacted).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The fault plan (tests of the disk failing).
    pub fn faults(&self) -> &records::FaultPlan {
        self.handle.faults()
    }

    /// A number as the logs may show it.
    pub fn show(&self, number: &str) -> String {
        self.pseudonyms.show(number)
    }

    /// The pseudonyms, for another service that logs numbers.
    pub fn pseudonyms(&self) -> Pseudonyms {
        self.pseudonyms.clone()
    }

    /// Another handle on the journal's writer (the leads service stores
    /// its leads through the same single writer).
    pub fn handle(&self) -> JournalHandle {
        self.handle.clone()
    }

    /// The active alerts, by department and kind, then the cluster's.
    pub fn alerts(&self) -> Vec<Alert> {
        // Held only to copy the maps out; never across an await.
        let mut alerts: Vec<Alert> = self
            .alerts
            .lock()
            .map(|alerts| alerts.values().cloned().collect())
            .unwrap_or_default();
        if let Ok(conditions) = self.conditions.lock() {
            alerts.extend(conditions.values().cloned());
        }
        alerts
    }

    /// Raises (`Some(detail)`) or clears (`None`) an alert a service
    /// watches itself (`cluster_store_down`: app/claims.rs, app/cluster.rs;
    /// `dialplan_mismatch`), apart from the ones `watch_alerts` computes;
    /// logged and counted like the others. Returns whether it was raised or
    /// cleared now (a new detail for a standing alert is not a change).
    pub fn set_condition(
        &self,
        department: &str,
        kind: &'static str,
        detail: Option<String>,
    ) -> bool {
        let Ok(mut conditions) = self.conditions.lock() else {
            return false;
        };
        let key = (department.to_string(), kind);
        let changed = match detail {
            Some(detail) => match conditions.get_mut(&key) {
                Some(alert) => {
                    alert.detail = detail;
                    false
                }
                None => {
                    warn!(department, kind, %detail, "alert raised");
                    conditions.insert(
                        key,
                        Alert {
                            department: department.to_string(),
                            kind,
                            since: Timestamp::now(),
                            detail,
                        },
                    );
                    true
                }
            },
            None => {
                let removed = conditions.remove(&key).is_some();
                if removed {
                    info!(department, kind, "alert cleared");
                }
                removed
            }
        };
        drop(conditions);
        if changed {
            metrics::gauge!("frontdesk_alerts_active").set(self.alerts().len() as f64);
        }
        changed
    }

    /// [`CallJournal::set_condition`] for department `cluster`.
    pub fn set_cluster_alert(&self, kind: &'static str, detail: Option<String>) -> bool {
        self.set_condition("cluster", kind, detail)
    }

    /// Flushes and closes the journal (at shutdown), within `grace`.
    pub fn close(&self, grace: Duration) {
        let journal = self.journal.lock().ok().and_then(|mut slot| slot.take());
        if let Some(journal) = journal {
            match journal.close(grace) {
                Ok(stats) => info!(
                    written = stats.written,
                    dropped = stats.dropped,
                    failed = stats.failed,
                    "journal closed"
                ),
                Err(error) => warn!(%error, "journal not closed cleanly"),
            }
        }
    }
}

/// Keyed pseudonyms for patients' numbers in logs: `p-` and 10 hex digits
/// of SHA-256(key ‖ number), the key random and kept under `--data`. One
/// caller's calls can be followed in the logs without the number in them.
/// `--log-patient-numbers` shows numbers in full instead.
#[derive(Debug, Clone)]
pub struct Pseudonyms {
    key: [u8; 32],
    reveal: bool,
}

impl Pseudonyms {
    fn open(data: &Path, reveal: bool) -> anyhow::Result<Self> {
        let path = data.join(PSEUDONYM_KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                key
            }
            _ => {
                let key: [u8; 32] = rand::random();
                crate::private::write(&path, &key)?;
                key
            }
        };
        Ok(Pseudonyms { key, reveal })
    }

    /// `number` as the logs may show it.
    pub fn show(&self, number: &str) -> String {
        if self.reveal {
            return number.to_string();
        }
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(number.as_bytes());
        let digest = hasher.finalize();
        let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        format!("p-{hex}")
    }
}

/// Raises and clears overload alerts: a department whose longest wait is
/// past its SLA, or whose abandonment over the window is past the
/// threshold. Each change is logged and POSTed to the webhook.
pub async fn watch_alerts(app: Arc<App>, config: AlertConfig, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(config.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut now_active: BTreeMap<(String, &'static str), String> = BTreeMap::new();
        if let Ok(stats) = app.router.stats().await {
            for queue in stats.iter().filter(|q| !q.retired && q.over_sla()) {
                now_active.insert(
                    (queue.id.as_str().to_string(), "sla"),
                    format!(
                        "longest wait {} s > SLA {} s",
                        queue.longest_wait.as_secs(),
                        queue.sla.as_secs()
                    ),
                );
            }
        }
        for window in app.journal.abandonment_window(Timestamp::now()) {
            if window.resolved >= config.min_resolved
                && window.abandonment_rate > config.abandonment_rate
            {
                now_active.insert(
                    (window.department.clone(), "abandonment"),
                    format!(
                        "{} of {} callers abandoned in the last {} min ({:.0} % > {:.0} %)",
                        window.abandoned,
                        window.resolved,
                        config.window.as_secs() / 60,
                        window.abandonment_rate * 100.0,
                        config.abandonment_rate * 100.0
                    ),
                );
            }
        }
        if let Some(replica) = app.journal.replica().filter(|replica| !replica.up) {
            now_active.insert(
                ("journal".to_string(), "journal_unavailable"),
                format!(
                    "PostgreSQL {} cannot be written{}: {} calls wait in the local outbox ({})",
                    replica.target,
                    replica
                        .down_since
                        .map(|since| format!(" since {since}"))
                        .unwrap_or_default(),
                    replica.backlog,
                    replica.last_error.as_deref().unwrap_or("not connected yet"),
                ),
            );
        }
        let changes = update_alerts(&app.journal, now_active);
        // Every tick, not only on a change: the gauge exists (0) from the
        // first tick, so that a rule or a panel can read it.
        metrics::gauge!("frontdesk_alerts_active").set(app.journal.alerts().len() as f64);
        for (alert, raised) in changes {
            if raised {
                warn!(department = %alert.department, kind = alert.kind, detail = %alert.detail, "alert raised");
            } else {
                info!(department = %alert.department, kind = alert.kind, "alert cleared");
            }
            if let Some(url) = &config.webhook {
                let mut body = alert.to_json();
                body["state"] = json!(if raised { "raised" } else { "cleared" });
                let url = url.clone();
                tokio::spawn(async move {
                    if let Err(error) = post_json(&url, &body).await {
                        warn!(%error, "alert webhook failed");
                    }
                });
            }
        }
    }
}

/// Replaces the active set; returns each alert raised (`true`) or cleared.
fn update_alerts(
    journal: &CallJournal,
    now_active: BTreeMap<(String, &'static str), String>,
) -> Vec<(Alert, bool)> {
    // Held only while comparing maps; never across an await.
    let Ok(mut alerts) = journal.alerts.lock() else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    alerts.retain(|key, alert| {
        let keep = now_active.contains_key(key);
        if !keep {
            changes.push((alert.clone(), false));
        }
        keep
    });
    for (key, detail) in now_active {
        match alerts.get_mut(&key) {
            Some(alert) => alert.detail = detail,
            None => {
                let alert = Alert {
                    department: key.0.clone(),
                    kind: key.1,
                    since: Timestamp::now(),
                    detail,
                };
                changes.push((alert.clone(), true));
                alerts.insert(key, alert);
            }
        }
    }
    changes
}

/// POSTs `body` to an `http://host:port/path` URL (plain HTTP/1.1; the
/// webhook receiver is the clinic's own service).
pub(crate) async fn post_json(url: &str, body: &Value) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// webhooks are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let payload = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: {}\r\n\r\n{payload}",
        payload.len(),
        super::PRODUCT
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange).await??;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no HTTP status from {url}"))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_optional() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pseudonyms::open(dir.path(), false).unwrap();
        let shown = first.show("+13125550142");
        assert!(shown.starts_with("p-") && shown.len() == 12, "{shown}");
        assert!(!shown.contains("555"));
        assert_eq!(
            first.show("+13125550142"),
            shown,
            "same caller, same pseudonym"
        );
        assert_ne!(first.show("+13125550143"), shown);
        let again = Pseudonyms::open(dir.path(), false).unwrap();
        assert_eq!(
            again.show("+13125550142"),
            shown,
            "the key is kept across restarts"
        );
        let other = Pseudonyms::open(tempfile::tempdir().unwrap().path(), false).unwrap();
        assert_ne!(
            other.show("+13125550142"),
            shown,
            "another key, another pseudonym"
        );
        let reveal = Pseudonyms::open(dir.path(), true).unwrap();
        assert_eq!(reveal.show("+13125550142"), "+13125550142");
    }
}
