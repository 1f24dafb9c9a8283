//! `GET /api/calls?limit=N` and `GET /api/queues` (DESIGN.md, "Admin HTTP
//! API"): the recent calls, newest first, and each queue's live figures.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ivr::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AppState, error_response};
use crate::app::App;

/// How many calls `/api/calls` lists without `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The most it lists.
const MAX_LIMIT: usize = 1000;

/// `/api/calls`'s query (`from`, `to` and `format` for the CSV export).
#[derive(Debug, Deserialize)]
pub struct CallsQuery {
    limit: Option<String>,
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/calls?limit=N`: the journal's calls, newest first (see
/// [`recent_calls`]); with `format=csv` (or `Accept: text/csv`) the
/// calls started in `from=`/`to=` as CSV ([`super::csv`]).
#[utoipa::path(
    get,
    path = "/api/calls",
    tag = "calls",
    params(("format" = Option<String>, Query, description = "`csv` for CSV (or `Accept: text/csv`); its columns: see the README's CSV exports"), ("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339"), ("limit" = Option<String>, Query, description = "1 to 1000, default 50")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Newest first; with `format=csv`, CSV" , content((super::openapi::CallList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad limit", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 422, description = "CSV: more than 100,000 rows; narrow `from`/`to`", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read (`journal_unavailable` with a `detail` on PostgreSQL)", body = crate::http::openapi::ApiError)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallsQuery>,
) -> Response {
    match super::csv::wanted(&headers, query.format.as_deref()) {
        Ok(true) => {
            let range = RangeQuery::new(query.from, query.to);
            return calls_csv(&state.app, &range).await;
        }
        Ok(false) => {}
        Err(error) => return error.into_response(),
    }
    let limit = match super::list_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT) {
        Ok(limit) => limit,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    match recent_calls(&state.app, limit).await {
        Ok(calls) => Json(super::openapi::CallList { calls }).into_response(),
        Err(response) => response,
    }
}

/// The `limit` most recent calls as `/api/calls` lists them, newest first:
/// the journal's calls, where a call this process still has in memory is
/// shown from there (it is the most current, up to the journal's batching
/// delay); calls from before a restart come from the journal alone, with
/// their transfers too. The dashboard reads the same list.
pub(crate) async fn recent_calls(app: &App, limit: usize) -> Result<Vec<Value>, Response> {
    // Journal calls become the records a live call keeps (their transfers
    // read from their steps), so that every call's JSON has one builder,
    // CallRecord::to_json.
    let journal = read_journal(app, move |reader| {
        reader
            .recent_calls(limit)?
            .into_iter()
            .map(|row| {
                let events = if row.transfers > 0 {
                    reader
                        .call(row.id.as_str())?
                        .map(|timeline| timeline.events)
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                Ok(call::CallRecord::from_journal(&row, &events))
            })
            .collect::<Result<Vec<_>, records::QueryError>>()
    })
    .await?;
    let mut live: std::collections::HashMap<String, call::CallRecord> = app
        .calls
        .recent(limit)
        .into_iter()
        .map(|call| (call.id.clone(), call))
        .collect();
    let mut merged: Vec<call::CallRecord> = journal
        .into_iter()
        .map(|row| live.remove(&row.id).unwrap_or(row))
        .collect();
    merged.extend(live.into_values());
    merged.sort_by_key(|call| std::cmp::Reverse(call.started_at));
    Ok(merged
        .iter()
        .take(limit)
        .map(call::CallRecord::to_json)
        .collect())
}

/// The calls started in `range` as CSV ([`super::csv::CALLS`]).
async fn calls_csv(app: &App, range: &RangeQuery) -> Response {
    let range = match range_of(range) {
        Ok(range) => range,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let query = records::CallQuery {
        limit: super::csv::MAX_ROWS + 1,
        range: Some(range),
        source: None,
        department: None,
    };
    let rows = match read_journal(app, move |reader| reader.calls(&query)).await {
        Ok(rows) => rows,
        Err(response) => return response,
    };
    if rows.len() > super::csv::MAX_ROWS {
        return super::csv::too_many();
    }
    let rows: Vec<Value> = rows.iter().map(records::CallRow::to_json_full).collect();
    let plan = app.dialplan.current();
    super::csv::response("calls", super::csv::CALLS, &rows, plan.clinic().time_zone())
}

/// A report's answer: `{"<key>": [...]}` as JSON, or its rows as CSV
/// under `columns` when the request asks for CSV.
fn report_answer(
    app: &App,
    csv: bool,
    key: &str,
    columns: &[super::csv::Column],
    reports: Value,
) -> Response {
    if csv {
        let rows = reports.as_array().cloned().unwrap_or_default();
        let plan = app.dialplan.current();
        return super::csv::response(key, columns, &rows, plan.clinic().time_zone());
    }
    Json(json!({ key: reports })).into_response()
}

/// `GET /api/queues`: every queue of the dialplan with its live figures.
#[utoipa::path(
    get,
    path = "/api/queues",
    tag = "calls",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every queue", body = super::openapi::QueueList),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 503, description = "Routing is not running", body = crate::http::openapi::ApiError)
    )
)]
pub async fn queues(State(state): State<AppState>) -> Response {
    let Ok(stats) = state.app.router.stats().await else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "routing is not running");
    };
    let queues: Vec<_> = stats
        .iter()
        .filter(|queue| !queue.retired)
        .map(queue_json)
        .collect();
    Json(super::openapi::QueueList { queues }).into_response()
}

/// One element of `GET /api/queues`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Queue)]
pub struct QueueView {
    /// The queue's id.
    pub id: String,
    /// Callers waiting, callbacks included.
    pub waiting: u64,
    /// Of them, callbacks keeping their place.
    pub callbacks: u64,
    /// The longest wait now.
    pub longest_wait_ms: u64,
    /// Agents free for it.
    pub agents_available: u64,
    /// Agents signed in who serve it.
    pub agents_signed_in: u64,
}

/// One element of `GET /api/queues`.
pub(crate) fn queue_json(queue: &routing::QueueStats) -> Value {
    json!(QueueView {
        id: queue.id.as_str().to_string(),
        waiting: queue.waiting as u64,
        callbacks: queue.callbacks as u64,
        longest_wait_ms: queue.longest_wait.as_millis() as u64,
        agents_available: queue.agents_available as u64,
        agents_signed_in: queue.agents_signed_in as u64,
    })
}

/// `POST /api/reload`: `{"reloaded":true}`, or 422 with the dialplan's
/// errors (`PATH:LINE:COLUMN: message`) while the running plan stays.
#[utoipa::path(
    post,
    path = "/api/reload",
    tag = "calls",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Reloaded", body = super::openapi::Reloaded),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 422, description = "Refused; the running dialplan stays", body = super::openapi::ReloadRefused)
    )
)]
pub async fn reload(State(state): State<AppState>) -> Response {
    match crate::app::dialplan::reload(&state.app).await {
        Ok(()) => Json(super::openapi::Reloaded { reloaded: true }).into_response(),
        Err(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(super::openapi::ReloadRefused { errors }),
        )
            .into_response(),
    }
}

/// `?from=&to=` of the reports: RFC 3339 times; `to` defaults to now and
/// `from` to a day before `to`. `format=csv` asks for CSV.
#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) format: Option<String>,
}

impl RangeQuery {
    /// A range's texts, as the query string gives them.
    pub(crate) fn new(from: Option<String>, to: Option<String>) -> Self {
        RangeQuery {
            from,
            to,
            format: None,
        }
    }
}

/// What a report's request asks: CSV or JSON (`format=`, `Accept`), and
/// its range; the answer to send instead when either is wrong (400),
/// boxed (a `Response` is large).
pub(crate) fn report_request(
    headers: &HeaderMap,
    query: &RangeQuery,
) -> Result<(bool, records::TimeRange), Box<Response>> {
    let csv = super::csv::wanted(headers, query.format.as_deref())
        .map_err(|error| Box::new(error.into_response()))?;
    let range = range_of(query)
        .map_err(|message| Box::new(error_response(StatusCode::BAD_REQUEST, &message)))?;
    Ok((csv, range))
}

/// The range of `query`, or what is wrong with it (a 400).
pub(crate) fn range_of(query: &RangeQuery) -> Result<records::TimeRange, String> {
    let parse = |name: &str, text: &Option<String>| -> Result<Option<Timestamp>, String> {
        text.as_deref()
            .map(|text| {
                text.parse::<Timestamp>().map_err(|_| {
                    format!("{name} must be an RFC 3339 time such as 2026-11-27T00:00:00Z")
                })
            })
            .transpose()
    };
    let to = parse("to", &query.to)?.unwrap_or_else(Timestamp::now);
    let from = parse("from", &query.from)?
        .unwrap_or_else(|| to - ivr::jiff::SignedDuration::from_hours(24));
    records::TimeRange::new(from, to).map_err(|error| error.to_string())
}

/// Runs a journal query off the async workers.
async fn query<T: Send + 'static>(
    state: &AppState,
    run: impl FnOnce(&records::Reader) -> Result<T, records::QueryError> + Send + 'static,
) -> Result<T, Response> {
    read_journal(&state.app, run).await
}

/// Runs a journal query of `app` off the async workers; an error is the
/// API's answer. With `--journal postgres://…` the calls are read from
/// PostgreSQL: while it cannot be read the answer is 503
/// `{"error":"journal_unavailable","detail":…}`, within the reader's
/// timeout (each statement and connection is bounded by it; the wait here
/// too, against a server that stops answering without closing).
pub(crate) async fn read_journal<T: Send + 'static>(
    app: &App,
    run: impl FnOnce(&records::Reader) -> Result<T, records::QueryError> + Send + 'static,
) -> Result<T, Response> {
    let reader = app.journal.reader().clone();
    // A route may run a few statements (a list's transfers): twice the
    // bound of one, then the answer goes (the blocking thread ends at its
    // own timeout or keepalive).
    let bound = reader.timeout().map(|timeout| timeout * 2);
    let task = tokio::task::spawn_blocking(move || run(&reader));
    let joined = match bound {
        Some(bound) => match tokio::time::timeout(bound, task).await {
            Ok(joined) => joined,
            Err(_) => {
                tracing::warn!(?bound, "journal query did not answer in time");
                return Err(journal_unavailable("PostgreSQL did not answer in time"));
            }
        },
        None => task.await,
    };
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error @ records::QueryError::Unavailable(_))) => {
            tracing::warn!(%error, "journal query failed");
            Err(journal_unavailable(
                "the calls database (PostgreSQL) cannot be read; see the daemon's log",
            ))
        }
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

/// 503 `{"error":"journal_unavailable","detail":…}`: the calls the cluster
/// shares cannot be read now (the alert of the same name says why).
fn journal_unavailable(detail: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(super::openapi::ApiError {
            error: "journal_unavailable".into(),
            detail: Some(detail.to_string()),
        }),
    )
        .into_response()
}

/// `GET /api/reports/departments?from=&to=`: every queue of the dialplan,
/// with zeros where no call was offered.
#[utoipa::path(
    get,
    path = "/api/reports/departments",
    tag = "reports",
    params(("format" = Option<String>, Query, description = "`csv` for CSV (or `Accept: text/csv`); its columns: see the README's CSV exports"), ("from" = Option<String>, Query, description = "RFC 3339; default a day before `to`"), ("to" = Option<String>, Query, description = "RFC 3339; default now")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every queue; with `format=csv`, CSV" , content((super::openapi::DepartmentReports = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad range", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 422, description = "CSV: more than 100,000 rows; narrow `from`/`to`", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read (`journal_unavailable` with a `detail` on PostgreSQL)", body = crate::http::openapi::ApiError)
    )
)]
pub async fn departments(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(range): Query<RangeQuery>,
) -> Response {
    let (csv, range) = match report_request(&headers, &range) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match department_reports(&state.app, range).await {
        Ok(reports) => report_answer(
            &state.app,
            csv,
            "departments",
            super::csv::DEPARTMENTS,
            json!(reports),
        ),
        Err(response) => response,
    }
}

/// Every queue of the dialplan over `range`, sorted by id, with zeros
/// where no call was offered: `GET /api/reports/departments`, which the
/// dashboard reads too.
pub(crate) async fn department_reports(
    app: &App,
    range: records::TimeRange,
) -> Result<Vec<records::DepartmentReport>, Response> {
    let mut reports = read_journal(app, move |reader| reader.department_report(&range)).await?;
    let plan = app.dialplan.current();
    for queue in plan.queues() {
        if !reports.iter().any(|r| r.id == queue.id().as_str()) {
            reports.push(records::DepartmentReport::empty(queue.id().as_str()));
        }
    }
    reports.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(reports)
}

/// `GET /api/reports/agents?from=&to=`: calls, talk time and misses per agent.
#[utoipa::path(
    get,
    path = "/api/reports/agents",
    tag = "reports",
    params(("format" = Option<String>, Query, description = "`csv` for CSV (or `Accept: text/csv`); its columns: see the README's CSV exports"), ("from" = Option<String>, Query, description = "RFC 3339; default a day before `to`"), ("to" = Option<String>, Query, description = "RFC 3339; default now")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Per agent; with `format=csv`, CSV" , content((super::openapi::AgentReports = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad range", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 422, description = "CSV: more than 100,000 rows; narrow `from`/`to`", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read (`journal_unavailable` with a `detail` on PostgreSQL)", body = crate::http::openapi::ApiError)
    )
)]
pub async fn agents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(range): Query<RangeQuery>,
) -> Response {
    let (csv, range) = match report_request(&headers, &range) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match query(&state, move |reader| reader.agent_report(&range)).await {
        Ok(reports) => report_answer(
            &state.app,
            csv,
            "agents",
            super::csv::AGENTS,
            json!(reports),
        ),
        Err(response) => response,
    }
}

/// `GET /api/reports/sources?from=&to=`: each campaign number's leads,
/// followed end to end.
#[utoipa::path(
    get,
    path = "/api/reports/sources",
    tag = "reports",
    params(("format" = Option<String>, Query, description = "`csv` for CSV (or `Accept: text/csv`); its columns: see the README's CSV exports"), ("from" = Option<String>, Query, description = "RFC 3339; default a day before `to`"), ("to" = Option<String>, Query, description = "RFC 3339; default now")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Per source tag; with `format=csv`, CSV" , content((super::openapi::SourceReports = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad range", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 422, description = "CSV: more than 100,000 rows; narrow `from`/`to`", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read (`journal_unavailable` with a `detail` on PostgreSQL)", body = crate::http::openapi::ApiError)
    )
)]
pub async fn sources(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(range): Query<RangeQuery>,
) -> Response {
    let (csv, range) = match report_request(&headers, &range) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match query(&state, move |reader| reader.source_report(&range)).await {
        Ok(reports) => report_answer(
            &state.app,
            csv,
            "sources",
            super::csv::SOURCES,
            json!(reports),
        ),
        Err(response) => response,
    }
}

/// `GET /api/calls/{id}`: one call with its timeline.
#[utoipa::path(
    get,
    path = "/api/calls/{id}",
    tag = "calls",
    params(("id" = String, Path, description = "The call's id (`c-…`)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The call and its timeline", body = records::CallTimelineJson),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 404, description = "No such call", body = crate::http::openapi::ApiError),
        (status = 503, description = "The journal cannot be read (`journal_unavailable` with a `detail` on PostgreSQL)", body = crate::http::openapi::ApiError)
    )
)]
pub async fn call(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let wanted = id.clone();
    match query(&state, move |reader| reader.call(&wanted)).await {
        Ok(Some(timeline)) => Json(timeline.to_json()).into_response(),
        Ok(None) => error_response(StatusCode::NOT_FOUND, &format!("no call {id}")),
        Err(response) => response,
    }
}

/// `GET /api/alerts`: the active alerts, emergency leads first.
#[utoipa::path(
    get,
    path = "/api/alerts",
    tag = "calls",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The active alerts", body = super::openapi::AlertList),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError)
    )
)]
pub async fn alerts(State(state): State<AppState>) -> Response {
    Json(super::openapi::AlertList {
        alerts: all_alerts(&state.app, &state.leads),
    })
    .into_response()
}

/// Every active alert as `/api/alerts` and the dashboard show them: the
/// `emergency_lead` alerts first (oldest first), then the overload ones.
pub(crate) fn all_alerts(app: &App, leads: &crate::leads::Leads) -> Vec<Value> {
    leads
        .alerts()
        .iter()
        .map(|alert| alert.to_json())
        .chain(app.journal.alerts().iter().map(|alert| alert.to_json()))
        .collect()
}
