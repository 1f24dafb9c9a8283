//! `GET /api/calls?limit=N` and `GET /api/queues` (DESIGN.md, "Admin HTTP
//! API"): the recent calls, newest first, and each queue's live figures.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, error_response};

/// How many calls `/api/calls` lists without `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The most it lists.
const MAX_LIMIT: usize = 1000;

/// `/api/calls`'s query.
#[derive(Debug, Deserialize)]
pub struct CallsQuery {
    limit: Option<String>,
}

/// `GET /api/calls?limit=N`.
pub async fn list(State(state): State<AppState>, Query(query): Query<CallsQuery>) -> Response {
    let limit = match query.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("limit must be a number from 1 to {MAX_LIMIT}"),
            );
        }
    };
    let calls: Vec<_> = state
        .app
        .calls
        .recent(limit)
        .iter()
        .map(crate::calls::book::CallRecord::to_json)
        .collect();
    Json(json!({ "calls": calls })).into_response()
}

/// `GET /api/queues`: every queue of the dialplan with its live figures.
pub async fn queues(State(state): State<AppState>) -> Response {
    let Ok(stats) = state.app.router.stats().await else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "routing is not running");
    };
    let queues: Vec<_> = stats
        .iter()
        .filter(|queue| !queue.retired)
        .map(|queue| {
            json!({
                "id": queue.id.as_str(),
                "waiting": queue.waiting,
                "longest_wait_ms": queue.longest_wait.as_millis() as u64,
                "agents_available": queue.agents_available,
                "agents_signed_in": queue.agents_signed_in,
            })
        })
        .collect();
    Json(json!({ "queues": queues })).into_response()
}

/// `POST /api/reload`: `{"reloaded":true}`, or 422 with the dialplan's
/// errors (`PATH:LINE:COLUMN: message`) while the running plan stays.
pub async fn reload(State(state): State<AppState>) -> Response {
    match crate::daemon::reload(&state.app).await {
        Ok(()) => Json(json!({ "reloaded": true })).into_response(),
        Err(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "errors": errors })),
        )
            .into_response(),
    }
}
