//! One picture of the clinic, built from exactly what the JSON API serves:
//! the dashboard shows it whole, each agent's view a filtered part of it.
//!
//! The dashboard's document (`GET /api/events`, event `snapshot`):
//!
//! ```text
//! {
//!   "generated_at": "2026-11-27T15:04:05Z",
//!   "clinic": {"name": "Riverside Family Health", "time_zone": "America/Chicago"},
//!   "today": {"from": "<the clinic's last midnight, UTC>", "to": "<generated_at>"},
//!   "queues": [ GET /api/queues elements ],
//!   "queue_names": {"pediatrics": "Pediatrics", …},
//!   "departments": [ GET /api/reports/departments?from=<today.from>&to=<today.to> elements ],
//!   "totals": {"calls", "connected", "abandoned", "in_progress"},   // today, each call once
//!   "agents": [ GET /api/agents elements ],
//!   "agents_by_state": {"offline": 0, "available": 2, "ringing": 0, "on_call": 1, "wrap_up": 0, "away": 1},
//!   "calls": [ the first 25 of GET /api/calls ],
//!   "alerts": [ GET /api/alerts elements ],                           // emergency leads first
//!   "leads": [ the open leads: emergencies first, then the oldest; at most 50, each
//!              {"id","source","name","phone","department","intent","emergency","branch",
//!               "priority","state","created_at","respond_by","age_ms"} ],
//!   "waiting_chart": {"slot_ms": 5000, "from": "…", "waiting": [null, …, 0, 2]},
//!   "journal": "ok" | "unreadable"   // unreadable: calls, departments and totals are
//!                                    // empty, not stale, and the page says so
//! }
//! ```
//!
//! "Today" is the clinic's day: from midnight in the dialplan's time zone
//! to now. `totals` sums `GET /api/reports/sources` over the same range:
//! every call once, by its outcome so far (a call being talked on is still
//! `in_progress` there). The page's "connected" and "abandoned" today are
//! the sums of `departments`, which count a call when an agent answers it
//! and when its caller hangs up in a queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use ivr::jiff::Timestamp;
use records::TimeRange;
use routing::QueueStats;
use serde_json::{Value, json};

use super::series::WaitingSeries;
use crate::app::App;
use crate::http::agents::{self, AgentView};
use crate::http::calls;

/// Calls the snapshot reads (the agents' views filter them for their own).
pub const CALLS_SCANNED: usize = 500;
/// Calls the dashboard lists.
pub const DASHBOARD_CALLS: usize = 25;
/// Open leads the dashboard lists.
pub const DASHBOARD_LEADS: usize = 50;
/// Agent states, in the order the dashboard shows them.
pub const AGENT_STATES: [&str; 6] = [
    "available",
    "ringing",
    "on_call",
    "wrap_up",
    "away",
    "offline",
];

/// What one build of the picture holds.
#[derive(Debug)]
pub struct Snapshot {
    /// When it was built.
    pub generated_at: Timestamp,
    /// The dashboard's document, serialized once for every viewer.
    pub document: Arc<str>,
    /// The [`CALLS_SCANNED`] most recent calls, `/api/calls` elements.
    pub calls: Vec<Value>,
    /// Every agent, `/api/agents` elements.
    pub agents: Vec<AgentView>,
    /// Every queue's live figures, `/api/queues` elements.
    pub queues: Vec<Value>,
}

/// Builds the picture now. `stats` are routing's queue figures (`None`
/// when routing has stopped: no queues shown).
pub async fn build(
    app: &App,
    leads: &crate::leads::Leads,
    stats: Option<&[QueueStats]>,
    series: &WaitingSeries,
) -> Snapshot {
    let now = Timestamp::now();
    let plan = app.dialplan.current();
    let today = today(plan.clinic().time_zone(), now);
    let queues: Vec<Value> = stats
        .unwrap_or_default()
        .iter()
        .filter(|queue| !queue.retired)
        .map(calls::queue_json)
        .collect();
    let queue_names: BTreeMap<&str, &str> = plan
        .queues()
        .map(|queue| (queue.id().as_str(), queue.name()))
        .collect();
    let agents = agents::agent_views(app, leads);
    let mut by_state: BTreeMap<&str, u32> = AGENT_STATES.iter().map(|s| (*s, 0)).collect();
    for agent in &agents {
        *by_state.entry(agent.state).or_default() += 1;
    }
    let mut journal_ok = true;
    let recent = calls::recent_calls(app, CALLS_SCANNED)
        .await
        .unwrap_or_else(|_| {
            journal_ok = false;
            Vec::new()
        });
    let departments = calls::department_reports(app, today)
        .await
        .unwrap_or_else(|_| {
            journal_ok = false;
            Vec::new()
        });
    let sources = calls::read_journal(app, move |reader| reader.source_report(&today))
        .await
        .unwrap_or_else(|_| {
            journal_ok = false;
            Vec::new()
        });
    let totals = json!({
        "calls": sources.iter().map(|s| s.calls).sum::<u64>(),
        "connected": sources.iter().map(|s| s.connected).sum::<u64>(),
        "abandoned": sources.iter().map(|s| s.abandoned).sum::<u64>(),
        "in_progress": sources.iter().map(|s| s.in_progress).sum::<u64>(),
    });
    let alerts = calls::all_alerts(app, leads);
    let open_leads = open_leads(leads, now).await.unwrap_or_else(|| {
        journal_ok = false;
        Vec::new()
    });
    let document = json!({
        "generated_at": now.to_string(),
        "clinic": {
            "name": plan.clinic().name(),
            "time_zone": plan.clinic().time_zone_name(),
        },
        "today": {"from": today.from().to_string(), "to": today.to().to_string()},
        "queues": queues,
        "queue_names": queue_names,
        "departments": departments,
        "totals": totals,
        "agents": agents,
        "agents_by_state": by_state,
        "calls": recent.iter().take(DASHBOARD_CALLS).collect::<Vec<_>>(),
        "alerts": alerts,
        "leads": open_leads,
        "waiting_chart": series.to_json(now),
        "journal": if journal_ok { "ok" } else { "unreadable" },
        "cluster": app.cluster.as_ref().map(|cluster| cluster.to_json()),
    });
    Snapshot {
        generated_at: now,
        document: Arc::from(document.to_string()),
        calls: recent,
        agents,
        queues,
    }
}

/// The open leads as the dashboard's panel lists them (emergencies first,
/// then the oldest); `None` when the journal cannot be read.
async fn open_leads(leads: &crate::leads::Leads, now: Timestamp) -> Option<Vec<Value>> {
    let reader = leads.reader().clone();
    let rows = tokio::task::spawn_blocking(move || reader.open_leads(DASHBOARD_LEADS))
        .await
        .ok()?
        .ok()?;
    Some(
        rows.iter()
            .map(|lead| {
                json!({
                    "id": lead.id.as_str(),
                    "source": lead.source,
                    "name": lead.name,
                    "phone": lead.phone,
                    "department": lead.department,
                    "intent": lead.intent,
                    "emergency": lead.emergency,
                    "branch": lead.branch,
                    "priority": lead.priority.as_str(),
                    "state": lead.state.as_str(),
                    "created_at": lead.created_at.to_string(),
                    "respond_by": lead.respond_by.to_string(),
                    "age_ms": (now.as_millisecond() - lead.created_at.as_millisecond()).max(0),
                })
            })
            .collect(),
    )
}

/// The clinic's day so far: `[midnight in `zone`, now)`. Should the
/// zone's midnight not exist (a DST jump at 00:00), jiff takes the first
/// instant of the day; should that fail anyway, the last 24 hours.
pub fn today(zone: &ivr::jiff::tz::TimeZone, now: Timestamp) -> TimeRange {
    now.to_zoned_datetime(zone.clone())
        .start_of_day()
        .ok()
        .and_then(|midnight| TimeRange::new(midnight.timestamp(), now).ok())
        .unwrap_or_else(|| TimeRange::last(std::time::Duration::from_secs(24 * 3600), now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_starts_at_the_clinics_midnight() {
        let zone = ivr::jiff::tz::TimeZone::get("America/Chicago").unwrap();
        // 2026-11-27 01:30 UTC is 2026-11-26 19:30 in Chicago (CST, -6).
        let now: Timestamp = "2026-11-27T01:30:00Z".parse().unwrap();
        let range = today(&zone, now);
        assert_eq!(range.from().to_string(), "2026-11-26T06:00:00Z");
        assert_eq!(range.to(), now);
    }
}
