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
    metrics::describe_gauge!("frontdesk_up", "1 while the daemon is serving");
    metrics::describe_gauge!(
        "frontdesk_node_info",
        "1, labelled with this node's --node-id (cluster nodes only)"
    );
    metrics::describe_gauge!(
        "frontdesk_build_info",
        "Always 1; the labels name the build"
    );
    metrics::describe_counter!(
        "frontdesk_dialplan_reloads_total",
        "Dialplan reloads, by result (ok or refused)"
    );
    metrics::gauge!("frontdesk_up").set(1.0);
    metrics::gauge!("frontdesk_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
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
