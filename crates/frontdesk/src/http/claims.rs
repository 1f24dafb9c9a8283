//! The claim history (issue 24): `GET /api/claims` lists holdings of
//! agents by cluster nodes, `GET /api/reports/claims` checks them for
//! overlaps ([`crate::app::claim_history`]). Both read the journal: with
//! `--journal postgres://…` every node's holdings, from PostgreSQL.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

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
            let claims: Vec<_> = rows.iter().map(records::ClaimRow::to_json).collect();
            Json(json!({ "claims": claims })).into_response()
        }
        Err(response) => response,
    }
}

/// `GET /api/reports/claims?agent=&from=&to=`: the overlap check of the
/// holdings that overlap the range (all of them without one), as
/// [`crate::app::claim_history::ClaimCheck::to_json`]; 422 past
/// [`MAX_CHECKED`] holdings.
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
