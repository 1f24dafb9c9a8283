//! The claim history (issue 24): `GET /api/claims` lists holdings of
//! agents by cluster nodes, `GET /api/reports/claims` checks them for
//! overlaps ([`crate::app::claim_history`]). Both read the journal: with
//! `--journal postgres://…` every node's holdings, from PostgreSQL.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::calls::{RangeQuery, range_of, read_journal};
use super::{AppState, MAX_ID, error_response};

/// How many holdings `/api/claims` lists without `limit`.
const DEFAULT_LIMIT: usize = 100;
/// The most it lists.
const MAX_LIMIT: usize = 1000;
/// The most holdings one check reads: past it, the range must be narrowed
/// (a check holds them all in memory).
pub const MAX_CHECKED: usize = 100_000;

/// The query of both routes: `agent`, `from`, `to` (RFC 3339), `limit`.
#[derive(Debug, Deserialize)]
pub struct ClaimsQuery {
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

impl ClaimsQuery {
    /// The journal's query, or a 400's message. A range only when `from`
    /// or `to` is given (then as the reports take it: `to` now, `from` a
    /// day before `to`, by default).
    fn to_query(&self, limit: usize) -> Result<records::ClaimQuery, String> {
        if self
            .agent
            .as_ref()
            .is_some_and(|agent| agent.is_empty() || agent.len() > MAX_ID)
        {
            return Err(format!("agent must be 1 to {MAX_ID} bytes"));
        }
        let range = if self.from.is_some() || self.to.is_some() {
            Some(range_of(&RangeQuery::new(
                self.from.clone(),
                self.to.clone(),
            ))?)
        } else {
            None
        };
        Ok(records::ClaimQuery {
            limit,
            agent: self.agent.clone(),
            range,
        })
    }
}

/// `GET /api/claims?agent=&from=&to=&limit=`: `{"claims":[…]}`, holdings
/// newest first ([`records::ClaimRow::to_json`]), at most `limit` (100 by
/// default, 1000 at most); with `from`/`to`, those that overlap the range.
#[utoipa::path(
    get,
    path = "/api/claims",
    tag = "cluster",
    params(
        ("agent" = Option<String>, Query, description = "One agent's holdings"),
        ("from" = Option<String>, Query, description = "RFC 3339; with `to`, holdings that overlap the range"),
        ("to" = Option<String>, Query, description = "RFC 3339; default now when `from` is given"),
        ("limit" = Option<String>, Query, description = "1 to 1000, default 100")
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Holdings of agents by nodes, newest first", body = super::openapi::ClaimList),
        (status = 400, description = "A bad agent, range or limit", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read (`journal_unavailable` with a `detail` on PostgreSQL)", body = crate::http::openapi::ApiError)
    )
)]
pub async fn list(State(state): State<AppState>, Query(query): Query<ClaimsQuery>) -> Response {
    let limit = match super::list_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT) {
        Ok(limit) => limit,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let query = match query.to_query(limit) {
        Ok(query) => query,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    match read_journal(&state.app, move |reader| reader.claims(&query)).await {
        Ok(rows) => {
            let claims = rows.iter().map(records::ClaimRow::to_json).collect();
            Json(super::openapi::ClaimList { claims }).into_response()
        }
        Err(response) => response,
    }
}

/// `GET /api/reports/claims?agent=&from=&to=`: the overlap check of the
/// holdings that overlap the range (all of them without one), as
/// [`crate::app::claim_history::ClaimCheck::to_json`]; 422 past
/// [`MAX_CHECKED`] holdings.
#[utoipa::path(
    get,
    path = "/api/reports/claims",
    tag = "cluster",
    params(
        ("agent" = Option<String>, Query, description = "One agent's holdings"),
        ("from" = Option<String>, Query, description = "RFC 3339; with `to`, holdings that overlap the range"),
        ("to" = Option<String>, Query, description = "RFC 3339; default now when `from` is given")
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The overlap check of the journalled holdings", body = crate::app::claim_history::ClaimCheckJson),
        (status = 400, description = "A bad agent or range, or a limit", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 422, description = "More holdings than one check reads: narrow the range or name an agent", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read (`journal_unavailable` with a `detail` on PostgreSQL)", body = crate::http::openapi::ApiError)
    )
)]
pub async fn report(State(state): State<AppState>, Query(query): Query<ClaimsQuery>) -> Response {
    if query.limit.is_some() {
        return error_response(StatusCode::BAD_REQUEST, "a report takes no limit");
    }
    let query = match query.to_query(MAX_CHECKED + 1) {
        Ok(query) => query,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    match read_journal(&state.app, move |reader| reader.claim_history(&query)).await {
        Ok(rows) if rows.len() > MAX_CHECKED => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("more than {MAX_CHECKED} holdings: narrow the range or name an agent"),
        ),
        Ok(rows) => Json(crate::app::claim_history::check(&rows).to_json()).into_response(),
        Err(response) => response,
    }
}
