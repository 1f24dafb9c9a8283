//! A voicemail lead's recording: `GET /agent/leads/{id}/voicemail` (the
//! agent's session) and `GET /api/leads/{id}/voicemail` (admin token).
//!
//! An `<audio>` element cannot send an `Authorization` header, so the
//! agent page fetches the file with its session into a `Blob` and plays
//! that. Only the agent who holds the lead (offered or owner) gets it; for
//! anyone else, a lead that is not a voicemail, or a recording past its
//! retention, the answer is the same 404, so that a request learns nothing
//! about leads it may not see. The recording's content and name are never
//! logged.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use records::{LeadKind, LeadTimeline};

use super::{AppState, agent_view, error_response};

/// `GET /agent/leads/{id}/voicemail`: the WAV, for the lead's holder.
#[utoipa::path(
    get,
    path = "/agent/leads/{id}/voicemail",
    tag = "agent",
    params(("id" = String, Path, description = "The lead's id")),
    security(("agent_session" = [])),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav", body = Vec<u8>),
        (status = 401, description = "No or an expired agent session", body = super::openapi::ApiError),
        (status = 404, description = "No such voicemail (or not yours)", body = super::openapi::ApiError)
    )
)]
pub async fn agent_voicemail(
    State(state): State<AppState>,
    Path(lead): Path<String>,
    headers: HeaderMap,
) -> Response {
    let agent = match agent_view::session_agent(&state, &headers) {
        Ok((agent, _)) => agent,
        Err(refused) => return refused.into_response(),
    };
    serve(&state, lead, Some(agent)).await
}

/// `GET /api/leads/{id}/voicemail`: the WAV (admin token).
#[utoipa::path(
    get,
    path = "/api/leads/{id}/voicemail",
    tag = "leads",
    params(("id" = String, Path, description = "The lead's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav", body = Vec<u8>),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 404, description = "No such voicemail", body = super::openapi::ApiError),
        (status = 503, description = "The journal cannot be read", body = super::openapi::ApiError)
    )
)]
pub async fn admin_voicemail(State(state): State<AppState>, Path(lead): Path<String>) -> Response {
    serve(&state, lead, None).await
}

/// The recording a lead's history names, unless it was deleted since.
pub fn recording_of(timeline: &LeadTimeline) -> Option<String> {
    let mut recording = None;
    for step in &timeline.history {
        match step.event.as_str() {
            "voicemail_recorded" => {
                recording = step
                    .detail
                    .get("recording")
                    .and_then(|name| name.as_str())
                    .map(str::to_string);
            }
            "recording_deleted" => recording = None,
            _ => {}
        }
    }
    recording
}

async fn serve(state: &AppState, lead: String, agent: Option<String>) -> Response {
    let missing = || error_response(StatusCode::NOT_FOUND, "no such voicemail");
    if lead.is_empty() || lead.len() > super::MAX_ID {
        return missing();
    }
    let reader = state.leads.reader().clone();
    let found = tokio::task::spawn_blocking(move || reader.lead(&lead)).await;
    let timeline = match found {
        Ok(Ok(Some(timeline))) => timeline,
        Ok(Ok(None)) => return missing(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "journal query failed");
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the journal cannot be read",
            );
        }
        Err(_) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "journal query failed"),
    };
    if timeline.lead.kind != LeadKind::Voicemail {
        return missing();
    }
    if let Some(agent) = &agent
        && timeline.lead.owner.as_deref() != Some(agent.as_str())
    {
        return missing();
    }
    let Some(path) =
        recording_of(&timeline).and_then(|name| state.app.call_services.voicemail.path(&name))
    else {
        return missing();
    };
    // At most `max_length` of 16-bit audio at 8 kHz (1.9 MB for 120 s).
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = Body::from(bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => missing(),
    }
}
