//! `GET /metrics`: Prometheus text from the process-wide `metrics` recorder.
//! No patient data goes into a metric: labels are queue, agent and outcome
//! names, never numbers or URIs.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use super::AppState;

/// How often histograms are drained into their summaries.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Installs the process-wide recorder (once per process) and sets the
/// gauges that say the daemon is up and which build it is.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    describe_all();
    metrics::gauge!("frontdesk_up").set(1.0);
    metrics::gauge!("frontdesk_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// What a metric counts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the daemon and its crates publish, with its help text: one
/// table, so that `/metrics` carries `# HELP` for each (`promtool check
/// metrics` is clean) and a test can check that no metric published in
/// the code is missing here (`tests/prometheus.rs`).
const METRICS: &[(&str, Kind, &str)] = &[
    ("frontdesk_up", Kind::Gauge, "1 while the daemon is serving"),
    (
        "frontdesk_build_info",
        Kind::Gauge,
        "Always 1; the version label names the build",
    ),
    (
        "frontdesk_node_info",
        Kind::Gauge,
        "1, labelled with this node's --node-id (cluster nodes only)",
    ),
    (
        "frontdesk_dialplan_reloads_total",
        Kind::Counter,
        "Dialplan reloads, by result (ok or refused)",
    ),
    (
        "frontdesk_tls_reloads_total",
        Kind::Counter,
        "TLS certificate reloads, by result",
    ),
    // Calls.
    (
        "frontdesk_calls_total",
        Kind::Counter,
        "Calls ended, by outcome",
    ),
    (
        "frontdesk_queue_calls_total",
        Kind::Counter,
        "Calls ended, by the queue (department) they were last in and outcome",
    ),
    ("frontdesk_calls_active", Kind::Gauge, "Calls in progress"),
    (
        "frontdesk_calls_in_setup",
        Kind::Gauge,
        "Admission control: new calls admitted and not yet answered, rung or refused",
    ),
    (
        "frontdesk_calls_admitted_total",
        Kind::Counter,
        "Admission control: new calls admitted",
    ),
    (
        "frontdesk_calls_refused_total",
        Kind::Counter,
        "New calls refused with 503, by reason (in_setup, rate, refused: a retransmission of a refused call, per_source)",
    ),
    (
        "frontdesk_admission_rate",
        Kind::Gauge,
        "Admission control: new calls per second admitted at most now",
    ),
    (
        "frontdesk_event_loop_lag_seconds",
        Kind::Gauge,
        "How late the SIP endpoint's event loop runs (admission control holds it under --overload-lag)",
    ),
    (
        "frontdesk_late_answers_total",
        Kind::Counter,
        "Agents' 200 OKs that came after their call had gone elsewhere (hung up with BYE)",
    ),
    (
        "frontdesk_routing_decision_seconds",
        Kind::Histogram,
        "Time the router takes to pick an agent or a caller",
    ),
    (
        "frontdesk_queue_waiting",
        Kind::Gauge,
        "Callers waiting, by queue",
    ),
    (
        "frontdesk_queue_longest_wait_seconds",
        Kind::Gauge,
        "The longest wait of a caller now in the queue",
    ),
    (
        "frontdesk_queue_sla_seconds",
        Kind::Gauge,
        "The queue's answer target (the dialplan's sla)",
    ),
    ("frontdesk_agents", Kind::Gauge, "Agents, by state"),
    (
        "frontdesk_agent_state_changes_total",
        Kind::Counter,
        "Agents' state changes, by the state entered",
    ),
    (
        "frontdesk_agent_sign_in_failures_total",
        Kind::Counter,
        "Agents' feature-code sign-ins with a wrong PIN",
    ),
    (
        "frontdesk_agent_sign_in_refused_total",
        Kind::Counter,
        "Agents' feature-code sign-ins refused, by reason",
    ),
    (
        "frontdesk_alerts_active",
        Kind::Gauge,
        "Alerts raised now (SLA, abandonment, journal, cluster)",
    ),
    (
        "frontdesk_originate_total",
        Kind::Counter,
        "Calls out (click-to-call), by result: connected, or why they failed or were refused",
    ),
    (
        "frontdesk_active_originates",
        Kind::Gauge,
        "Calls out in progress",
    ),
    (
        "frontdesk_callbacks_total",
        Kind::Counter,
        "Callbacks, by result (held: a caller kept their place; connected)",
    ),
    // Leads.
    (
        "frontdesk_leads_received_total",
        Kind::Counter,
        "Web leads accepted",
    ),
    (
        "frontdesk_leads_refused_total",
        Kind::Counter,
        "Web leads refused, by reason",
    ),
    (
        "frontdesk_leads_repeated_total",
        Kind::Counter,
        "Web leads that repeated an open one, merged into it",
    ),
    (
        "frontdesk_leads_open",
        Kind::Gauge,
        "Leads without an outcome",
    ),
    (
        "frontdesk_leads_waiting",
        Kind::Gauge,
        "Leads waiting for an owner",
    ),
    (
        "frontdesk_lead_offers_total",
        Kind::Counter,
        "Leads offered to an agent",
    ),
    (
        "frontdesk_lead_offers_expired_total",
        Kind::Counter,
        "Lead offers not taken in time",
    ),
    (
        "frontdesk_lead_breaches_total",
        Kind::Counter,
        "Leads whose response timer ran out (escalated)",
    ),
    (
        "frontdesk_lead_alerts_active",
        Kind::Gauge,
        "Lead alerts raised now",
    ),
    (
        "frontdesk_call_leads_total",
        Kind::Counter,
        "Calls that became leads, by kind",
    ),
    (
        "frontdesk_call_leads_answered_total",
        Kind::Counter,
        "Call leads marked contacted because the caller reached an agent",
    ),
    (
        "frontdesk_call_leads_dropped_total",
        Kind::Counter,
        "Call leads lost on the way to the leads service, by reason",
    ),
    // The journal.
    (
        "frontdesk_journal_written_total",
        Kind::Counter,
        "Journal entries written",
    ),
    (
        "frontdesk_journal_dropped_total",
        Kind::Counter,
        "Journal entries lost (the writer's queue was full)",
    ),
    (
        "frontdesk_journal_failed_total",
        Kind::Counter,
        "Journal writes that failed",
    ),
    (
        "frontdesk_journal_failing",
        Kind::Gauge,
        "1 while journal writes fail",
    ),
    (
        "frontdesk_journal_backlog",
        Kind::Gauge,
        "Journal entries waiting to be written (locally and to PostgreSQL)",
    ),
    (
        "frontdesk_journal_up",
        Kind::Gauge,
        "1 while the shared journal (PostgreSQL) can be written, or there is none",
    ),
    // SIP.
    (
        "frontdesk_sip_requests_total",
        Kind::Counter,
        "SIP requests, by direction and method",
    ),
    (
        "frontdesk_sip_responses_total",
        Kind::Counter,
        "SIP responses, by direction and code",
    ),
    (
        "frontdesk_sip_unparseable_total",
        Kind::Counter,
        "SIP datagrams and stream messages that did not parse",
    ),
    (
        "frontdesk_sip_dropped_total",
        Kind::Counter,
        "SIP messages dropped unanswered, by reason",
    ),
    (
        "frontdesk_sip_routed_call_ids",
        Kind::Gauge,
        "Call-IDs routed to a call task",
    ),
    (
        "frontdesk_sip_sources_tracked",
        Kind::Gauge,
        "Sources the per-source limits track now",
    ),
    (
        "frontdesk_sip_untracked_total",
        Kind::Counter,
        "Messages from sources the per-source limits could not track (their table was full)",
    ),
    (
        "frontdesk_sip_banned_sources",
        Kind::Gauge,
        "Sources banned now",
    ),
    ("frontdesk_sip_bans_total", Kind::Counter, "Sources banned"),
    (
        "frontdesk_sip_connections_refused_total",
        Kind::Counter,
        "SIP TCP/TLS connections refused, by reason",
    ),
    (
        "frontdesk_register_failures_total",
        Kind::Counter,
        "REGISTERs refused for wrong credentials",
    ),
    (
        "frontdesk_register_locked_total",
        Kind::Counter,
        "REGISTERs refused while their user was locked out",
    ),
    (
        "frontdesk_register_banned_total",
        Kind::Counter,
        "REGISTERs from banned sources",
    ),
    (
        "frontdesk_register_busy_total",
        Kind::Counter,
        "REGISTERs refused with 503: the registrar's queue was full",
    ),
    (
        "frontdesk_http_connections",
        Kind::Gauge,
        "Admin HTTP connections open",
    ),
    (
        "frontdesk_http_connections_refused_total",
        Kind::Counter,
        "Admin HTTP connections refused, by reason",
    ),
    // Media.
    (
        "frontdesk_rtp_ports_available",
        Kind::Gauge,
        "RTP ports free to lease",
    ),
    (
        "frontdesk_rtp_ports_leased",
        Kind::Gauge,
        "RTP ports leased to calls",
    ),
    (
        "frontdesk_rtp_packets_received_total",
        Kind::Counter,
        "RTP packets received",
    ),
    (
        "frontdesk_rtp_packets_rejected_total",
        Kind::Counter,
        "RTP packets rejected (malformed, wrong SSRC or payload)",
    ),
    (
        "frontdesk_rtp_packets_lost_total",
        Kind::Counter,
        "RTP packets lost, from sequence gaps",
    ),
    (
        "frontdesk_rtp_packets_sent_total",
        Kind::Counter,
        "RTP packets sent",
    ),
    (
        "frontdesk_rtp_packets_foreign_total",
        Kind::Counter,
        "RTP packets from addresses that are not the leg's peer (strict RTP)",
    ),
    (
        "frontdesk_rtp_packets_learning_total",
        Kind::Counter,
        "RTP packets seen while a leg's peer was on probation",
    ),
    (
        "frontdesk_rtp_packets_withheld_total",
        Kind::Counter,
        "RTP packets not sent to an unconfirmed peer past the budget",
    ),
    (
        "frontdesk_rtp_relatches_total",
        Kind::Counter,
        "Legs whose confirmed peer moved to a new address after probation (a phone behind NAT re-bound)",
    ),
    (
        "frontdesk_srtp_auth_failures_total",
        Kind::Counter,
        "SRTP packets that failed authentication, by leg",
    ),
    (
        "frontdesk_srtp_replays_total",
        Kind::Counter,
        "SRTP packets refused as replays, by leg",
    ),
    // The cluster.
    (
        "frontdesk_cluster_redis_up",
        Kind::Gauge,
        "1 while the presence store (Redis) answers",
    ),
    (
        "frontdesk_cluster_store_up",
        Kind::Gauge,
        "1 while the claims store (Redis) answers",
    ),
    (
        "frontdesk_cluster_nodes_alive",
        Kind::Gauge,
        "Nodes whose heartbeat is fresh, this one included",
    ),
    (
        "frontdesk_cluster_notes_malformed_total",
        Kind::Counter,
        "Presence notes from Redis that did not parse",
    ),
    (
        "frontdesk_claims_total",
        Kind::Counter,
        "Agent claims, by result",
    ),
    (
        "frontdesk_claims_behind_total",
        Kind::Counter,
        "Agent claims refused because another live node's caller is ahead in the shared line",
    ),
    (
        "frontdesk_claim_seconds",
        Kind::Histogram,
        "Round trip of an agent claim to Redis",
    ),
    // CRM webhooks.
    (
        "frontdesk_webhook_deliveries_total",
        Kind::Counter,
        "Webhook deliveries, by webhook and result (delivered or failed)",
    ),
    (
        "frontdesk_webhook_pending",
        Kind::Gauge,
        "Webhook events waiting in the journal's outbox, by webhook",
    ),
    (
        "frontdesk_webhook_oldest_pending_seconds",
        Kind::Gauge,
        "Age of the oldest undelivered webhook event, by webhook",
    ),
    (
        "frontdesk_webhook_dropped_total",
        Kind::Counter,
        "Webhook events not queued because the webhook's outbox was full, by webhook",
    ),
    // Speech menus.
    (
        "frontdesk_speech_recognitions_total",
        Kind::Counter,
        "Utterances of speech menus, by result (heard, unavailable: over the budget, failed)",
    ),
    (
        "frontdesk_speech_decode_seconds",
        Kind::Histogram,
        "Time from an utterance's end to the recogniser's answer",
    ),
];

/// Gives every metric of [`METRICS`] its help text.
fn describe_all() {
    for &(name, kind, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// Runs the recorder's upkeep on a timer until `shutdown`.
pub async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = every.tick() => handle.run_upkeep(),
        }
    }
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses(
        (status = 200, description = "Prometheus text format (no patient data; no token)", content_type = "text/plain", body = String)
    )
)]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, PROMETHEUS_TEXT)], state.metrics.render())
}
