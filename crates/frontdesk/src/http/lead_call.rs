//! Click-to-call's routes (DESIGN.md, "Leads"): `POST
//! /agent/leads/{id}/call` (the signed-in agent's own phone rings) and
//! `POST /api/leads/{id}/call` with `{"agent":"1004"}` (admin token). The
//! work is [`crate::calls::originate`]'s; these only speak HTTP.
//!
//! 202 `{"call":{"id","lead","agent","state":"ringing_agent"}}` once the
//! agent's phone is being rung; otherwise nothing was sent and the error
//! says why: 404 (no such lead or agent), 403 (`consent.call` is false, or
//! the number is not allowed by the trunk), 409 (the agent has no
//! registered SIP phone), 503 (no usable trunk, the journal, a stop).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AppState, agent_view, error_response};
use crate::calls::originate::Refusal;

/// `POST /api/leads/{id}/call`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallBody {
    agent: String,
}

/// `POST /agent/leads/{id}/call`: the signed-in agent calls the lead.
#[utoipa::path(
    post,
    path = "/agent/leads/{id}/call",
    tag = "agent",
    params(("id" = String, Path, description = "The lead's id")),
    security(("agent_session" = [])),
    responses(
        (status = 202, description = "The agent's phone rings", body = super::openapi::CallStarted),
        (status = 401, description = "No or an expired agent session", body = super::openapi::ApiError),
        (status = 400, description = "No lead or agent id", body = super::openapi::ApiError),
        (status = 403, description = "No consent, or a number the trunk may not call", body = super::openapi::CallRefused),
        (status = 404, description = "No such lead or agent", body = super::openapi::CallRefused),
        (status = 409, description = "The agent has no phone or is busy", body = super::openapi::CallRefused),
        (status = 503, description = "No usable trunk, or stopping", body = super::openapi::CallRefused)
    )
)]
pub async fn agent_call(
    State(state): State<AppState>,
    Path(lead): Path<String>,
    headers: HeaderMap,
) -> Response {
    let agent = match agent_view::session_agent(&state, &headers) {
        Ok((agent, _)) => agent,
        Err(refused) => return refused.into_response(),
    };
    call(&state, &lead, &agent).await
}

/// `POST /api/leads/{id}/call` with `{"agent":"1004"}`.
#[utoipa::path(
    post,
    path = "/api/leads/{id}/call",
    tag = "leads",
    params(("id" = String, Path, description = "The lead's id")),
    security(("admin_token" = [])),
    request_body = super::openapi::AgentBody,
    responses(
        (status = 202, description = "The agent's phone rings", body = super::openapi::CallStarted),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 400, description = "No lead or agent id", body = super::openapi::ApiError),
        (status = 403, description = "No consent, or a number the trunk may not call", body = super::openapi::CallRefused),
        (status = 404, description = "No such lead or agent", body = super::openapi::CallRefused),
        (status = 409, description = "The agent has no phone or is busy", body = super::openapi::CallRefused),
        (status = 503, description = "No usable trunk, or stopping", body = super::openapi::CallRefused)
    )
)]
pub async fn admin_call(
    State(state): State<AppState>,
    Path(lead): Path<String>,
    body: Bytes,
) -> Response {
    let body: CallBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "the body must be {\"agent\":\"<agent id>\"}",
            );
        }
    };
    call(&state, &lead, &body.agent).await
}

async fn call(state: &AppState, lead: &str, agent: &str) -> Response {
    if lead.is_empty()
        || lead.len() > super::MAX_ID
        || agent.is_empty()
        || agent.len() > super::MAX_ID
    {
        return error_response(StatusCode::BAD_REQUEST, "a lead id and an agent id");
    }
    match state.originate.call_lead(lead, agent).await {
        Ok(started) => (
            StatusCode::ACCEPTED,
            Json(super::openapi::CallStarted {
                call: started.to_json(),
            }),
        )
            .into_response(),
        Err(refusal) => {
            let status = match refusal {
                Refusal::UnknownLead(_) | Refusal::UnknownAgent(_) => StatusCode::NOT_FOUND,
                Refusal::NoConsent | Refusal::NumberNotAllowed => StatusCode::FORBIDDEN,
                Refusal::NoPhone(_) | Refusal::AgentBusy(_) => StatusCode::CONFLICT,
                Refusal::NoTrunk(_) | Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (
                status,
                Json(super::openapi::CallRefused {
                    error: refusal.to_string(),
                    reason: refusal.reason().to_string(),
                }),
            )
                .into_response()
        }
    }
}
