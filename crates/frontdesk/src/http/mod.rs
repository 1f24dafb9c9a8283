//! The admin HTTP listener (DESIGN.md, "Admin HTTP API"): health, metrics,
//! and the token-protected API under `/api`.
//!
//! Routes are added in [`router`]: public ones beside `/api/health`, admin
//! ones in the `/api` router, which the token middleware wraps whole (its
//! fallback included, so an unknown `/api/...` path answers 401 without a
//! token and never tells which routes exist). `POST /api/leads` is the one
//! route under `/api` that authenticates itself (a source's signature or
//! the token, [`leads`]). Handlers take `State<AppState>`; a new service
//! adds its handle to [`AppState`].

pub mod agent_view;
pub mod agents;
mod auth;
pub mod calls;
pub mod claims;
pub mod csv;
pub mod dashboard;
pub mod lead_call;
pub mod leads;
pub mod metrics;
pub mod openapi;
pub mod server;
pub mod voicemail;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

pub use auth::AdminToken;

use crate::app::App;

/// What the handlers share. Cheap to clone: handles and `Arc`s only.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The token every `/api` route but health requires.
    pub admin_token: AdminToken,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The SIP address once its sockets are bound; `None` before.
    pub sip: watch::Receiver<Option<SocketAddr>>,
    /// The application: routing, the registrar, the dialplan in force.
    pub app: Arc<App>,
    /// The dashboard's snapshots (`/api/events`, `/agent/events`).
    pub dashboard: dashboard::Live,
    /// Agents' sign-in to `/agent`.
    pub agent_sessions: agent_view::AgentSessions,
    /// Web-form leads: intake, the record, their alerts.
    pub leads: crate::leads::Leads,
    /// Click-to-call: calls out to leads' patients.
    pub originate: crate::calls::originate::Originator,
    /// The browser phones (`/agent/phone`).
    pub phone: crate::browser::Gateway,
}

/// Every route of the admin listener.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/agents", get(agents::list))
        .route("/cluster", get(agents::cluster))
        .route("/agents/{id}/state", put(agents::set_state))
        .route("/calls", get(calls::list))
        .route("/queues", get(calls::queues))
        .route("/reload", axum::routing::post(calls::reload))
        .route("/calls/{id}", get(calls::call))
        .route("/reports/departments", get(calls::departments))
        .route("/reports/agents", get(calls::agents))
        .route("/reports/sources", get(calls::sources))
        .route("/claims", get(claims::list))
        .route("/reports/claims", get(claims::report))
        .route("/leads/{id}", get(leads::one))
        .route(
            "/leads/{id}/call",
            axum::routing::post(lead_call::admin_call),
        )
        .route(
            "/leads/{id}/accept",
            axum::routing::post(leads::admin_accept),
        )
        .route(
            "/leads/{id}/outcome",
            axum::routing::post(leads::admin_outcome),
        )
        .route(
            "/leads/{id}/snooze",
            axum::routing::post(leads::admin_snooze),
        )
        .route(
            "/leads/{id}/assign",
            axum::routing::post(leads::admin_assign),
        )
        .route("/leads/{id}/voicemail", get(voicemail::admin_voicemail))
        .route("/reports/leads", get(leads::report))
        .route("/alerts", get(calls::alerts))
        .route("/events", get(dashboard::events))
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin_token,
        ));
    // `POST /api/leads` authenticates itself (a source's signature, or the
    // admin token): DESIGN.md's one exception to "everything under /api
    // needs the token". Its `GET` is the admin list, behind the token like
    // the rest. One route for both: a path cannot be both here and in the
    // nested admin router.
    let leads_route = get(leads::list)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin_token,
        ))
        .merge(axum::routing::post(leads::intake));
    Router::new()
        .route("/api/health", get(health))
        .route("/api/leads", leads_route)
        .route("/metrics", get(metrics::render))
        .route("/", get(dashboard::dashboard_page))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/agent", get(dashboard::agent_page))
        .route("/agent/login", axum::routing::post(agent_view::login))
        .route("/agent/events", get(agent_view::events))
        .route("/agent/phone", get(agent_view::phone::connect))
        .route("/agent/state", put(agent_view::set_state))
        .route(
            "/agent/leads/{id}/call",
            axum::routing::post(lead_call::agent_call),
        )
        .route(
            "/agent/leads/{id}/accept",
            axum::routing::post(agent_view::lead_accept),
        )
        .route(
            "/agent/leads/{id}/outcome",
            axum::routing::post(agent_view::lead_outcome),
        )
        .route(
            "/agent/leads/{id}/snooze",
            axum::routing::post(agent_view::lead_snooze),
        )
        .route(
            "/agent/leads/{id}/voicemail",
            get(voicemail::agent_voicemail),
        )
        .nest("/api", admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

pub use server::serve;

/// `GET /api/health`: `{"status":"ok"}` once SIP is listening.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "meta",
    responses(
        (status = 200, description = "SIP is listening", body = openapi::Health),
        (status = 503, description = "Still starting", body = openapi::Health)
    )
)]
async fn health(State(state): State<AppState>) -> Response {
    if state.sip.borrow().is_some() {
        Json(openapi::Health {
            status: "ok".into(),
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(openapi::Health {
                status: "starting".into(),
            }),
        )
            .into_response()
    }
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// A list's `?limit=`: `default` when absent, else a number from 1 to
/// `max`; anything else is refused with a 400 whose message says so.
pub fn list_limit(limit: Option<&str>, default: usize, max: usize) -> Result<usize, String> {
    match limit.map(str::parse::<usize>) {
        None => Ok(default),
        Some(Ok(limit)) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(format!("limit must be a number from 1 to {max}")),
    }
}

/// The longest id (a lead's, an agent's) a route takes from its path or
/// body; anything longer is refused before any lookup.
pub const MAX_ID: usize = 128;

/// The API's error shape: `{"error": "message"}`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let body = openapi::ApiError {
        error: message.to_string(),
        detail: None,
    };
    (status, Json(body)).into_response()
}
