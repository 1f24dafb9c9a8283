//! The leads' routes (DESIGN.md, "Leads"): `POST /api/leads` (a source's
//! signature or the admin token: it authenticates itself, see
//! [`super::router`]), `GET /api/leads?state=&limit=`, `GET
//! /api/leads/{id}` and `GET /api/reports/leads?from=&to=` (admin token).
//! The work is the leads service's ([`crate::leads`]); these only speak
//! HTTP.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ivr::jiff::Timestamp;
use records::{LeadQuery, LeadState};
use serde::Deserialize;
use serde_json::json;

use super::calls::{RangeQuery, range_of};
use super::{AppState, auth, error_response};
use crate::leads::{Accepted, Leads, Post, Refusal};

/// How many leads `/api/leads` lists without `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The most it lists (each with its history and related ids).
const MAX_LIMIT: usize = 500;

/// `POST /api/leads`: 201 with the new lead once it is durable, 200 with
/// the original for a repeated `Idempotency-Key`; 400 (per field), 401,
/// 422 or 503 otherwise, and then nothing is stored.
pub async fn intake(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let admin = auth::bearer(&headers).is_some_and(|token| state.admin_token.verify(token));
    let post = Post {
        source: header("x-frontdesk-source"),
        signature: header("x-frontdesk-signature"),
        admin,
        idempotency_key: header("idempotency-key"),
        body: &body,
    };
    // A header present but not text is as good as a wrong one.
    let unreadable = [
        "x-frontdesk-source",
        "x-frontdesk-signature",
        "idempotency-key",
    ]
    .iter()
    .any(|name| headers.get(*name).is_some_and(|v| v.to_str().is_err()));
    if unreadable {
        return error_response(StatusCode::BAD_REQUEST, "a header is not visible ASCII");
    }
    match state.leads.intake(post).await {
        Ok(Accepted::Created(lead)) => {
            (StatusCode::CREATED, Json(json!({ "lead": lead }))).into_response()
        }
        Ok(Accepted::Repeated(lead)) => Json(json!({ "lead": lead })).into_response(),
        Err(Refusal::Unauthorized(message)) => error_response(StatusCode::UNAUTHORIZED, &message),
        Err(Refusal::BadRequest { error, fields }) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": error, "fields": fields })),
        )
            .into_response(),
        Err(Refusal::Conflict(message)) => {
            error_response(StatusCode::UNPROCESSABLE_ENTITY, &message)
        }
        Err(Refusal::Busy(message)) => (
            [(RETRY_AFTER, crate::leads::RETRY_AFTER.as_secs().to_string())],
            error_response(StatusCode::SERVICE_UNAVAILABLE, &message),
        )
            .into_response(),
        Err(Refusal::Unavailable(message)) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, &message)
        }
    }
}

/// `/api/leads`'s query.
#[derive(Debug, Deserialize)]
pub struct LeadsQuery {
    state: Option<String>,
    limit: Option<String>,
}

/// `GET /api/leads?state=&limit=`: newest first.
pub async fn list(State(state): State<AppState>, Query(query): Query<LeadsQuery>) -> Response {
    let limit = match super::list_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT) {
        Ok(limit) => limit,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(name) => match name.parse::<LeadState>() {
            Ok(wanted) => Some(wanted),
            Err(_) => {
                let known: Vec<&str> = LeadState::ALL.iter().map(|s| s.as_str()).collect();
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("state must be one of {}", known.join(", ")),
                );
            }
        },
    };
    let query = LeadQuery {
        limit,
        state: wanted,
    };
    let found = read(&state.leads, move |reader| {
        reader
            .leads(&query)?
            .iter()
            .map(|timeline| Leads::lead_json(reader, timeline))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    match found {
        Ok(leads) => Json(json!({ "leads": leads })).into_response(),
        Err(response) => response,
    }
}

/// `GET /api/leads/{id}`.
pub async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let wanted = id.clone();
    let found = read(&state.leads, move |reader| {
        reader
            .lead(&wanted)?
            .map(|timeline| Leads::lead_json(reader, &timeline))
            .transpose()
    })
    .await;
    match found {
        Ok(Some(lead)) => Json(json!({ "lead": lead })).into_response(),
        Ok(None) => error_response(StatusCode::NOT_FOUND, &format!("no lead {id}")),
        Err(response) => response,
    }
}

/// `GET /api/reports/leads?from=&to=`: per source and per department.
pub async fn report(State(state): State<AppState>, Query(range): Query<RangeQuery>) -> Response {
    let range = match range_of(&range) {
        Ok(range) => range,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let now = Timestamp::now();
    match read(&state.leads, move |reader| reader.lead_report(&range, now)).await {
        Ok(report) => Json(report).into_response(),
        Err(response) => response,
    }
}

/// Runs a journal query off the async workers; an error is the answer.
async fn read<T: Send + 'static>(
    leads: &Leads,
    run: impl FnOnce(&records::Reader) -> Result<T, records::QueryError> + Send + 'static,
) -> Result<T, Response> {
    let reader = leads.reader().clone();
    match tokio::task::spawn_blocking(move || run(&reader)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            tracing::warn!(%error, "journal query failed");
            Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the journal cannot be read",
            ))
        }
        Err(_) => Err(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "journal query failed",
        )),
    }
}
