//! The leads' routes (DESIGN.md, "Leads"): `POST /api/leads` (a source's
//! signature or the admin token: it authenticates itself, see
//! [`super::router`]), `GET /api/leads?state=&limit=`, `GET
//! /api/leads/{id}` and `GET /api/reports/leads?from=&to=` (admin token),
//! and the admin's actions on a lead (issue 21): `POST
//! /api/leads/{id}/accept`, `/outcome` `{"outcome":"booked"}`, `/snooze`
//! `{"until":"…"}` and `/assign` `{"agent":"1003"}` (the agent's own are
//! under `/agent/leads/{id}/…`, [`super::agent_view`]).
//! The work is the leads service's ([`crate::leads`]); these only speak
//! HTTP.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ivr::jiff::Timestamp;
use records::{LeadOutcome, LeadQuery, LeadState};
use routing::{Actor, DeskError, LeadStatus, Phase};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::calls::{RangeQuery, range_of};
use super::openapi::OneLead;
use super::{AppState, auth, error_response};
use crate::leads::desk::{ActionError, LeadAction, state_of};
use crate::leads::{Accepted, Leads, Post, Refusal};

/// How many leads `/api/leads` lists without `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The most it lists (each with its history and related ids).
const MAX_LIMIT: usize = 500;

/// `POST /api/leads`: 201 with the new lead once it is durable, 200 with
/// the original for a repeated `Idempotency-Key`; 400 (per field), 401,
/// 422 or 503 otherwise, and then nothing is stored.
#[utoipa::path(
    post,
    path = "/api/leads",
    tag = "leads",
    security(("source_signature" = []), ("admin_token" = [])),
    params(("X-Frontdesk-Source" = Option<String>, Header, description = "The source's id, with a signature"), ("Idempotency-Key" = Option<String>, Header, description = "A repeat answers 200 with the first lead")),
    request_body = super::openapi::LeadForm,
    responses(
        (status = 201, description = "Stored", body = super::openapi::OneLead),
        (status = 200, description = "A repeated Idempotency-Key: the original lead", body = super::openapi::OneLead),
        (status = 400, description = "A field is wrong", body = super::openapi::LeadRefused),
        (status = 401, description = "No valid signature or admin token", body = super::openapi::ApiError),
        (status = 413, description = "Over 64 KiB", body = super::openapi::ApiError),
        (status = 422, description = "Refused by the desk", body = super::openapi::ApiError),
        (status = 503, description = "Busy (Retry-After) or the journal", body = super::openapi::ApiError)
    )
)]
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
            (StatusCode::CREATED, Json(OneLead { lead })).into_response()
        }
        Ok(Accepted::Repeated(lead)) => Json(OneLead { lead }).into_response(),
        Err(Refusal::Unauthorized(message)) => error_response(StatusCode::UNAUTHORIZED, &message),
        Err(Refusal::BadRequest { error, fields }) => (
            StatusCode::BAD_REQUEST,
            Json(super::openapi::LeadRefused {
                error,
                fields: json!(fields),
            }),
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

/// `/api/leads`'s query (`from`, `to` and `format` for the CSV export).
#[derive(Debug, Deserialize)]
pub struct LeadsQuery {
    state: Option<String>,
    limit: Option<String>,
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/leads?state=&limit=`: newest first; with `format=csv` (or
/// `Accept: text/csv`) the leads created in `from=`/`to=` as CSV
/// ([`super::csv`]).
#[utoipa::path(
    get,
    path = "/api/leads",
    tag = "leads",
    params(("format" = Option<String>, Query, description = "`csv` for CSV (or `Accept: text/csv`); its columns: see the README's CSV exports"), ("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339"), ("state" = Option<String>, Query, description = "waiting, offered, accepted, contacted, escalated or closed"), ("limit" = Option<String>, Query, description = "1 to 500, default 50")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Newest first; with `format=csv`, CSV", content((super::openapi::LeadList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad state or limit", body = super::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 422, description = "CSV: more than 100,000 rows; narrow `from`/`to`", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read", body = super::openapi::ApiError)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LeadsQuery>,
) -> Response {
    match super::csv::wanted(&headers, query.format.as_deref()) {
        Ok(true) => {
            let range = RangeQuery::new(query.from, query.to);
            return leads_csv(&state, &range).await;
        }
        Ok(false) => {}
        Err(error) => return error.into_response(),
    }
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
        Ok(leads) => Json(super::openapi::LeadList { leads }).into_response(),
        Err(response) => response,
    }
}

/// `GET /api/leads/{id}`.
#[utoipa::path(
    get,
    path = "/api/leads/{id}",
    tag = "leads",
    params(("id" = String, Path, description = "The lead's id (`l-…`)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The lead", body = OneLead),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 404, description = "No such lead", body = super::openapi::ApiError),
        (status = 503, description = "The journal cannot be read", body = super::openapi::ApiError)
    )
)]
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
        Ok(Some(lead)) => Json(OneLead { lead }).into_response(),
        Ok(None) => error_response(StatusCode::NOT_FOUND, &format!("no lead {id}")),
        Err(response) => response,
    }
}

/// `GET /api/reports/leads?from=&to=`: per source and per department.
#[utoipa::path(
    get,
    path = "/api/reports/leads",
    tag = "reports",
    params(("format" = Option<String>, Query, description = "`csv` for CSV (or `Accept: text/csv`); its columns: see the README's CSV exports"), ("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Per source, department and kind; with `format=csv`, CSV" , content((records::LeadReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad range", body = super::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 422, description = "CSV: more than 100,000 rows; narrow `from`/`to`", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read", body = super::openapi::ApiError)
    )
)]
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(range): Query<RangeQuery>,
) -> Response {
    let (csv, range) = match super::calls::report_request(&headers, &range) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let now = Timestamp::now();
    match read(&state.leads, move |reader| reader.lead_report(&range, now)).await {
        Ok(report) if csv => {
            let rows = super::csv::lead_report_rows(&json!(report));
            let plan = state.app.dialplan.current();
            super::csv::response(
                "lead-report",
                super::csv::LEAD_REPORT,
                &rows,
                plan.clinic().time_zone(),
            )
        }
        Ok(report) => Json(report).into_response(),
        Err(response) => response,
    }
}

/// The leads created in `range` as CSV ([`super::csv::LEADS`]).
async fn leads_csv(state: &AppState, range: &RangeQuery) -> Response {
    let range = match range_of(range) {
        Ok(range) => range,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let limit = super::csv::MAX_ROWS + 1;
    let rows = match read(&state.leads, move |reader| reader.leads_in(&range, limit)).await {
        Ok(rows) => rows,
        Err(response) => return response,
    };
    if rows.len() > super::csv::MAX_ROWS {
        return super::csv::too_many();
    }
    let rows: Vec<serde_json::Value> = rows.iter().map(|row| row.to_json(&[], &[])).collect();
    let plan = state.app.dialplan.current();
    super::csv::response("leads", super::csv::LEADS, &rows, plan.clinic().time_zone())
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

/// Reads an action's body: `accept` takes none (or `{}`), `outcome`
/// `{"outcome":"booked"}`, `snooze` `{"until":"<RFC 3339>"}`, `assign`
/// `{"agent":"1003"}`. The error says what was expected.
pub fn parse_action(action: &str, body: &[u8]) -> Result<LeadAction, String> {
    let object = || -> Result<serde_json::Map<String, serde_json::Value>, String> {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(fields)) => Ok(fields),
            _ => Err(format!("the body of `{action}` must be a JSON object")),
        }
    };
    let one = |name: &str, expected: &str| -> Result<String, String> {
        let fields = object()?;
        match (fields.len(), fields.get(name).and_then(|v| v.as_str())) {
            (1, Some(value)) => Ok(value.to_string()),
            _ => Err(format!("the body must be {expected}")),
        }
    };
    match action {
        "accept" => {
            if body.iter().all(u8::is_ascii_whitespace) || object().is_ok_and(|f| f.is_empty()) {
                Ok(LeadAction::Accept)
            } else {
                Err("accept takes no body (or {})".into())
            }
        }
        "outcome" => {
            let names: Vec<&str> = LeadOutcome::ALL.iter().map(|o| o.as_str()).collect();
            let expected = format!("{{\"outcome\": one of {}}}", names.join(", "));
            let name = one("outcome", &expected)?;
            name.parse::<LeadOutcome>()
                .map(LeadAction::Outcome)
                .map_err(|_| format!("the body must be {expected}"))
        }
        "snooze" => {
            let expected = "{\"until\": \"<RFC 3339 time>\"}";
            let until = one("until", expected)?;
            until
                .parse::<Timestamp>()
                .map(LeadAction::Snooze)
                .map_err(|_| format!("the body must be {expected}"))
        }
        "assign" => {
            let agent = one("agent", "{\"agent\": \"<agent id>\"}")?;
            Ok(LeadAction::Assign(routing::AgentId::new(agent.as_str())))
        }
        _ => Err(format!("no action `{action}`")),
    }
}

/// An action's answer: the lead's place on the desk.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeadPlace {
    /// The lead.
    pub lead: LeadPlaceOf,
}

/// A lead's place on the desk.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeadPlaceOf {
    /// `l-…`.
    pub id: String,
    /// The agent offered it or owning it.
    pub owner: Option<String>,
    /// `waiting`, `offered`, `accepted`, …
    pub state: String,
    /// RFC 3339: the offer's end.
    pub offer_until: Option<String>,
    /// RFC 3339.
    pub snoozed_until: Option<String>,
}

/// The answer to an action: 200 with the lead's place, or the refusal
/// (404 unknown lead or agent, 409 not yours or not now, 503 stopped).
pub fn action_response(result: Result<LeadStatus, ActionError>) -> Response {
    match result {
        Ok(status) => {
            let (offer_until, snoozed_until) = match &status.phase {
                Phase::Offered { until, .. } => (Some(*until), None),
                Phase::Owned { snoozed_until, .. } => (None, *snoozed_until),
                Phase::Waiting => (None, None),
            };
            let time = |at: Option<routing::Millis>| {
                at.and_then(|at| {
                    Timestamp::from_millisecond(i64::try_from(at.as_millis()).ok()?).ok()
                })
                .map(|at| at.to_string())
            };
            Json(LeadPlace {
                lead: LeadPlaceOf {
                    id: status.id.as_str().to_string(),
                    owner: status.phase.agent().map(|a| a.as_str().to_string()),
                    state: state_of(&status).as_str().to_string(),
                    offer_until: time(offer_until),
                    snoozed_until: time(snoozed_until),
                },
            })
            .into_response()
        }
        Err(ActionError::Desk(error)) => {
            let status = match error {
                DeskError::UnknownLead(_) | DeskError::UnknownAgent(_) => StatusCode::NOT_FOUND,
                DeskError::NotYours { .. } | DeskError::WrongState { .. } => StatusCode::CONFLICT,
                DeskError::Duplicate(_) => StatusCode::CONFLICT,
            };
            error_response(status, &error.to_string())
        }
        Err(error @ ActionError::Stopped) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, &error.to_string())
        }
    }
}

/// An admin action on lead `id` (the routes are explicit, so that
/// `/call`, built apart, has its own).
async fn admin_action(state: AppState, id: String, action: &str, body: Bytes) -> Response {
    let action = match parse_action(action, &body) {
        Ok(action) => action,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    action_response(state.leads.desk().act(&id, Actor::Admin, action).await)
}

/// `POST /api/leads/{id}/accept` (admin token): for the agent it is
/// offered to.
#[utoipa::path(
    post,
    path = "/api/leads/{id}/accept",
    tag = "leads",
    params(("id" = String, Path, description = "The lead's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The lead's place now", body = LeadPlace),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 400, description = "A body that is not the action's", body = super::openapi::ApiError),
        (status = 404, description = "No such lead or agent", body = super::openapi::ApiError),
        (status = 409, description = "Not yours, or not now", body = super::openapi::ApiError),
        (status = 503, description = "The desk is stopping", body = super::openapi::ApiError)
    )
)]
pub async fn admin_accept(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    admin_action(state, id, "accept", body).await
}

/// `POST /api/leads/{id}/outcome` (admin token).
#[utoipa::path(
    post,
    path = "/api/leads/{id}/outcome",
    tag = "leads",
    params(("id" = String, Path, description = "The lead's id")),
    security(("admin_token" = [])),
    request_body = super::openapi::OutcomeBody,
    responses(
        (status = 200, description = "The lead's place now", body = LeadPlace),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 400, description = "A body that is not the action's", body = super::openapi::ApiError),
        (status = 404, description = "No such lead or agent", body = super::openapi::ApiError),
        (status = 409, description = "Not yours, or not now", body = super::openapi::ApiError),
        (status = 503, description = "The desk is stopping", body = super::openapi::ApiError)
    )
)]
pub async fn admin_outcome(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    admin_action(state, id, "outcome", body).await
}

/// `POST /api/leads/{id}/snooze` (admin token).
#[utoipa::path(
    post,
    path = "/api/leads/{id}/snooze",
    tag = "leads",
    params(("id" = String, Path, description = "The lead's id")),
    security(("admin_token" = [])),
    request_body = super::openapi::SnoozeBody,
    responses(
        (status = 200, description = "The lead's place now", body = LeadPlace),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 400, description = "A body that is not the action's", body = super::openapi::ApiError),
        (status = 404, description = "No such lead or agent", body = super::openapi::ApiError),
        (status = 409, description = "Not yours, or not now", body = super::openapi::ApiError),
        (status = 503, description = "The desk is stopping", body = super::openapi::ApiError)
    )
)]
pub async fn admin_snooze(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    admin_action(state, id, "snooze", body).await
}

/// `POST /api/leads/{id}/assign` `{"agent":"1003"}` (admin token): the
/// agent owns it at once.
#[utoipa::path(
    post,
    path = "/api/leads/{id}/assign",
    tag = "leads",
    params(("id" = String, Path, description = "The lead's id")),
    security(("admin_token" = [])),
    request_body = super::openapi::AgentBody,
    responses(
        (status = 200, description = "The lead's place now", body = LeadPlace),
        (status = 401, description = "No or a wrong admin token", body = super::openapi::ApiError),
        (status = 400, description = "A body that is not the action's", body = super::openapi::ApiError),
        (status = 404, description = "No such lead or agent", body = super::openapi::ApiError),
        (status = 409, description = "Not yours, or not now", body = super::openapi::ApiError),
        (status = 503, description = "The desk is stopping", body = super::openapi::ApiError)
    )
)]
pub async fn admin_assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    admin_action(state, id, "assign", body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn action_bodies() {
        assert_eq!(parse_action("accept", b""), Ok(LeadAction::Accept));
        assert_eq!(parse_action("accept", b"{}"), Ok(LeadAction::Accept));
        assert!(parse_action("accept", b"{\"x\":1}").is_err());
        assert_eq!(
            parse_action("outcome", br#"{"outcome":"booked"}"#),
            Ok(LeadAction::Outcome(LeadOutcome::Booked))
        );
        assert!(parse_action("outcome", br#"{"outcome":"lost"}"#).is_err());
        assert!(parse_action("outcome", br#"{"outcome":"booked","x":1}"#).is_err());
        assert!(matches!(
            parse_action("snooze", br#"{"until":"2026-12-07T10:00:00Z"}"#),
            Ok(LeadAction::Snooze(_))
        ));
        assert!(parse_action("snooze", br#"{"until":"tomorrow"}"#).is_err());
        assert_eq!(
            parse_action("assign", br#"{"agent":"1003"}"#),
            Ok(LeadAction::Assign(routing::AgentId::new("1003")))
        );
        assert!(parse_action("call", b"{}").is_err());
    }

    proptest! {
        #[test]
        fn any_body_is_an_action_or_a_clear_error(
            action in prop::sample::select(vec!["accept", "outcome", "snooze", "assign", "x"]),
            body in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Err(message) = parse_action(action, &body) {
                prop_assert!(!message.is_empty());
            }
        }
    }
}
