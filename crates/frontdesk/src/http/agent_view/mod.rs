//! The agent's own view at `/agent` (DESIGN.md: "Agents sign in to their
//! own view with their SIP credentials").
//!
//! | route | answer |
//! |---|---|
//! | `GET /agent` | the page |
//! | `POST /agent/login` | body `{"user":"1003","password":"demo-1003"}` → `{"token":"…","expires_at":"…","agent":{…}}`; 401 for a wrong user or password, 429 with `Retry-After` after too many failures from one untrusted address or against one account ([`limit`]) |
//! | `GET /agent/events` | `Authorization: Bearer <session token>`: server-sent `view` events, one a second (below); a last `signed_out` event when the session ends |
//! | `GET /agent/events` also sends | `leads` events: `{"leads":[lead JSON + "offer_until", …]}`, the leads offered to or owned by the agent, at once on every change (issue 21) |
//! | `POST /agent/leads/{id}/accept` · `/outcome` · `/snooze` | the agent's own actions on a lead (session token); as `/api/leads/{id}/…` (`/call`: [`super::lead_call`]) |
//! | `PUT /agent/state` | `Authorization: Bearer <session token>`, body `{"state":"away"}` or `{"state":"available"}`: exactly `PUT /api/agents/{id}/state` for the signed-in agent |
//!
//! A `view` is the agent's part of the dashboard's snapshot, so it shows
//! what the API shows:
//!
//! ```text
//! {"generated_at": "…", "clinic": {"name": "…", "time_zone": "America/Chicago"},
//!  "agent": { GET /api/agents element },
//!  "queues": [ GET /api/queues elements of the queues the agent serves, with "name" ],
//!  "waiting": [{"id", "department", "priority", "caller": "•••0142", "started_at"}],
//!  "calls": [ GET /api/calls elements the agent answered or transferred, newest first, 20 at most ]}
//! ```
//!
//! An agent sees their own calls in full and, of the callers waiting in
//! their queues, only the last four digits; never another agent's calls,
//! never the admin token (a session token opens nothing under `/api`).

pub mod limit;
pub mod phone;
pub mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use ivr::jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, info};

pub use limit::SignInGuard;
pub use session::SessionKey;

use super::dashboard::Snapshot;
use super::{AppState, agents, error_response};
use crate::app::App;

/// Own calls a view lists.
pub const OWN_CALLS: usize = 20;

/// What the agents' sign-in keeps: the signing key and the failure tables.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentSessions {
    key: SessionKey,
    limiter: Arc<SignInGuard>,
}

impl Default for AgentSessions {
    fn default() -> Self {
        AgentSessions {
            key: SessionKey::random(),
            limiter: Arc::new(SignInGuard::default()),
        }
    }
}

/// 429 with `Retry-After`, saying why.
fn too_many(refusal: limit::Refusal) -> Response {
    let (retry, what) = match refusal {
        limit::Refusal::Source(retry) => (retry, "too many failed sign-ins from this address"),
        limit::Refusal::Account(retry) => (retry, "too many failed sign-ins to this account"),
    };
    let seconds = retry.as_secs().max(1);
    let reason = match refusal {
        limit::Refusal::Source(_) => "source",
        limit::Refusal::Account(_) => "account",
    };
    metrics::counter!("frontdesk_agent_sign_in_refused_total", "reason" => reason).increment(1);
    (
        [(RETRY_AFTER, seconds.to_string())],
        error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("{what}: try again in {seconds} s"),
        ),
    )
        .into_response()
}

/// `POST /agent/login`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

/// The SIP password of agent `id` in the dialplan in force.
fn password_of(app: &App, id: &str) -> Option<String> {
    app.dialplan
        .current()
        .agents()
        .iter()
        .find(|agent| agent.id().as_str() == id)
        .map(|agent| agent.password().to_string())
}

fn client_ip(connection: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    // Without connection info (a router served some other way) every
    // client shares one limit: stricter, never looser.
    connection.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(peer))| peer.ip(),
    )
}

/// `POST /agent/login`.
#[utoipa::path(
    post,
    path = "/agent/login",
    tag = "agent",
    request_body = crate::http::openapi::LoginBody,
    responses(
        (status = 200, description = "Signed in", body = crate::http::openapi::AgentSession),
        (status = 400, description = "Not {user, password}", body = crate::http::openapi::ApiError),
        (status = 401, description = "Wrong user or password", body = crate::http::openapi::ApiError),
        (status = 429, description = "Too many failures from this source", body = crate::http::openapi::ApiError)
    )
)]
pub async fn login(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    let ip = client_ip(connection);
    let sessions = &state.agent_sessions;
    let plan = state.app.dialplan.current();
    // Trusted sources (the clinic's own networks, loopback) skip the
    // limits, as for REGISTER (DESIGN.md "Trusted sources").
    let limits = (!plan.trust().is_trusted(ip)).then(|| &plan.limits().sign_in);
    if let Some(limits) = limits
        && let Err(refusal) = sessions.limiter.check_source(limits, Instant::now(), ip)
    {
        return too_many(refusal);
    }
    let login: Login = match serde_json::from_slice(&body) {
        Ok(login) => login,
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "the body must be {\"user\": \"…\", \"password\": \"…\"}",
            );
        }
    };
    if let Some(limits) = limits
        && let Err(refusal) =
            sessions
                .limiter
                .check_account(limits, Instant::now(), &login.user, ip)
    {
        info!(%ip, "agent sign-in refused: the account is locked for this address");
        return too_many(refusal);
    }
    let agent = plan
        .agents()
        .iter()
        .find(|agent| agent.id().as_str() == login.user);
    // An unknown user costs the same comparison as a known one.
    let right = session::password_matches(
        &login.password,
        agent.map_or("\0no such agent", |agent| agent.password()),
    );
    let Some(agent) = agent.filter(|_| right) else {
        metrics::counter!("frontdesk_agent_sign_in_failures_total").increment(1);
        debug!(%ip, "agent sign-in failed");
        if let Some(limits) = limits
            && let Some(delay) = sessions
                .limiter
                .failed(limits, Instant::now(), &login.user, ip)
        {
            // Slowed down: the answer waits (the connection is one of the
            // source's few, the body already read).
            tokio::time::sleep(delay).await;
        }
        return (
            [(WWW_AUTHENTICATE, "Bearer")],
            error_response(StatusCode::UNAUTHORIZED, "wrong user or password"),
        )
            .into_response();
    };
    if let Some(limits) = limits {
        sessions
            .limiter
            .succeeded(limits, Instant::now(), agent.id().as_str(), ip);
    }
    // Whole seconds: what the token carries.
    let expires = Timestamp::now()
        .checked_add(session::SESSION_LIFETIME)
        .and_then(|at| Timestamp::from_second(at.as_second()))
        .unwrap_or(Timestamp::MAX);
    let token = sessions
        .key
        .issue(agent.id().as_str(), agent.password(), expires);
    let view = agents::agent_views(&state.app, &state.leads)
        .into_iter()
        .find(|view| view.id == agent.id().as_str());
    info!(agent = %agent.id().as_str(), "agent signed in to the agent view");
    Json(crate::http::openapi::AgentSession {
        token,
        expires_at: expires.to_string(),
        agent: view,
    })
    .into_response()
}

/// A request without a session that opens the agent's view: 401.
#[derive(Debug)]
pub(crate) struct Refused(String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (
            [(WWW_AUTHENTICATE, "Bearer")],
            error_response(StatusCode::UNAUTHORIZED, &self.0),
        )
            .into_response()
    }
}

/// The agent a request's session token opens, with the token.
pub(crate) fn session_agent(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, String), Refused> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Refused("sign in first".to_string()))?;
    state
        .agent_sessions
        .key
        .verify(token, Timestamp::now(), |id| password_of(&state.app, id))
        .map(|agent| (agent, token.to_string()))
        .map_err(|error| Refused(error.to_string()))
}

/// `PUT /agent/state`: the admin API's state change, for the signed-in
/// agent only.
#[utoipa::path(
    put,
    path = "/agent/state",
    tag = "agent",
    security(("agent_session" = [])),
    request_body = crate::http::openapi::StateChange,
    responses(
        (status = 200, description = "The agent as it now is", body = crate::http::agents::AgentView),
        (status = 400, description = "Not that JSON object", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or an expired agent session", body = crate::http::openapi::ApiError),
        (status = 409, description = "The agent's state does not allow it", body = crate::http::openapi::ApiError),
        (status = 422, description = "Another state", body = crate::http::openapi::ApiError)
    )
)]
pub async fn set_state(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let agent = match session_agent(&state, &headers) {
        Ok((agent, _)) => agent,
        Err(refused) => return refused.into_response(),
    };
    agents::set_state(State(state), Path(agent), body).await
}

/// `GET /agent/events`: the signed-in agent's view, a `view` event per
/// snapshot, and a `leads` event (`{"leads":[…]}`, the leads offered to or
/// owned by the agent, with their context) after the first view and then
/// at once whenever that list changes; `signed_out` (and the end) when the session stops opening it.
/// While the stream is open the agent counts as signed in for leads
/// (DESIGN.md: "a live `/agent` session").
#[utoipa::path(
    get,
    path = "/agent/events",
    tag = "agent",
    security(("agent_session" = [])),
    responses(
        (status = 200, description = "`view`, `leads` and `signed_out` events", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or an expired agent session", body = crate::http::openapi::ApiError)
    )
)]
pub async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (agent, token) = match session_agent(&state, &headers) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let (snapshots, stop) = state.dashboard.viewer();
    let desk = state.leads.desk().clone();
    let mut board = desk.subscribe();
    board.mark_changed();
    let agent_id = routing::AgentId::new(agent.as_str());
    desk.session(&agent_id, true);
    let viewer = Viewer {
        app: Arc::clone(&state.app),
        key: state.agent_sessions.key.clone(),
        token,
        agent,
        snapshots,
        board,
        stop,
        ended: false,
        last_leads: String::new(),
        viewed: false,
        _session: LiveSession {
            desk,
            agent: agent_id,
        },
    };
    let stream = futures_util::stream::unfold(viewer, |mut viewer| async move {
        if viewer.ended {
            return None;
        }
        let event = viewer.next().await?;
        Some((Ok::<_, std::convert::Infallible>(event), viewer))
    });
    axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Marks the agent signed in for leads while their page's stream is open.
struct LiveSession {
    desk: crate::leads::desk::LeadDeskHandle,
    agent: routing::AgentId,
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.desk.session(&self.agent, false);
    }
}

/// One agent's event stream.
struct Viewer {
    app: Arc<App>,
    key: SessionKey,
    token: String,
    agent: String,
    snapshots: tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>,
    board: tokio::sync::watch::Receiver<Arc<crate::leads::desk::Board>>,
    stop: tokio_util::sync::CancellationToken,
    ended: bool,
    /// The last `leads` event's data: sent again only when it changes.
    last_leads: String,
    /// A `view` was sent: the first event of a stream is always one.
    viewed: bool,
    _session: LiveSession,
}

impl Viewer {
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return None,
                changed = self.snapshots.changed() => {
                    changed.ok()?;
                    let snapshot = self.snapshots.borrow_and_update().clone();
                    let Some(snapshot) = snapshot else { continue };
                    let app = &self.app;
                    match self.key.verify(&self.token, Timestamp::now(), |id| password_of(app, id)) {
                        Ok(_) => {
                            let view = view(app, &snapshot, &self.agent);
                            if !self.viewed {
                                // The leads follow the first view.
                                self.viewed = true;
                                self.board.mark_changed();
                            }
                            return Some(Event::default().event("view").data(view.to_string()));
                        }
                        Err(error) => {
                            self.ended = true;
                            return Some(
                                Event::default()
                                    .event("signed_out")
                                    .data(json!({ "reason": error.to_string() }).to_string()),
                            );
                        }
                    }
                }
                changed = self.board.changed() => {
                    changed.ok()?;
                    let board = Arc::clone(&self.board.borrow_and_update());
                    if !self.viewed {
                        continue;
                    }
                    let data = board.json_of(&self.agent).to_string();
                    if data != self.last_leads {
                        self.last_leads.clone_from(&data);
                        return Some(Event::default().event("leads").data(data));
                    }
                }
            }
        }
    }
}

/// An agent's action on a lead: the session's agent acts for themselves.
async fn agent_action(
    state: AppState,
    headers: &HeaderMap,
    id: String,
    action: &str,
    body: Bytes,
) -> Response {
    let agent = match session_agent(&state, headers) {
        Ok((agent, _)) => agent,
        Err(refused) => return refused.into_response(),
    };
    let action = match super::leads::parse_action(action, &body) {
        Ok(action) => action,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let by = routing::Actor::Agent(routing::AgentId::new(agent.as_str()));
    super::leads::action_response(state.leads.desk().act(&id, by, action).await)
}

/// `POST /agent/leads/{id}/accept` (agent session).
#[utoipa::path(
    post,
    path = "/agent/leads/{id}/accept",
    tag = "agent",
    params(("id" = String, Path, description = "The lead's id")),
    security(("agent_session" = [])),
    responses(
        (status = 200, description = "The lead's place now", body = crate::http::leads::LeadPlace),
        (status = 401, description = "No or an expired agent session", body = crate::http::openapi::ApiError),
        (status = 400, description = "A body that is not the action's", body = crate::http::openapi::ApiError),
        (status = 404, description = "No such lead", body = crate::http::openapi::ApiError),
        (status = 409, description = "Not yours, or not now", body = crate::http::openapi::ApiError),
        (status = 503, description = "The desk is stopping", body = crate::http::openapi::ApiError)
    )
)]
pub async fn lead_accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    agent_action(state, &headers, id, "accept", body).await
}

/// `POST /agent/leads/{id}/outcome` `{"outcome":"booked"}` (agent session).
#[utoipa::path(
    post,
    path = "/agent/leads/{id}/outcome",
    tag = "agent",
    params(("id" = String, Path, description = "The lead's id")),
    security(("agent_session" = [])),
    request_body = crate::http::openapi::OutcomeBody,
    responses(
        (status = 200, description = "The lead's place now", body = crate::http::leads::LeadPlace),
        (status = 401, description = "No or an expired agent session", body = crate::http::openapi::ApiError),
        (status = 400, description = "A body that is not the action's", body = crate::http::openapi::ApiError),
        (status = 404, description = "No such lead", body = crate::http::openapi::ApiError),
        (status = 409, description = "Not yours, or not now", body = crate::http::openapi::ApiError),
        (status = 503, description = "The desk is stopping", body = crate::http::openapi::ApiError)
    )
)]
pub async fn lead_outcome(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    agent_action(state, &headers, id, "outcome", body).await
}

/// `POST /agent/leads/{id}/snooze` `{"until":"…"}` (agent session).
#[utoipa::path(
    post,
    path = "/agent/leads/{id}/snooze",
    tag = "agent",
    params(("id" = String, Path, description = "The lead's id")),
    security(("agent_session" = [])),
    request_body = crate::http::openapi::SnoozeBody,
    responses(
        (status = 200, description = "The lead's place now", body = crate::http::leads::LeadPlace),
        (status = 401, description = "No or an expired agent session", body = crate::http::openapi::ApiError),
        (status = 400, description = "A body that is not the action's", body = crate::http::openapi::ApiError),
        (status = 404, description = "No such lead", body = crate::http::openapi::ApiError),
        (status = 409, description = "Not yours, or not now", body = crate::http::openapi::ApiError),
        (status = 503, description = "The desk is stopping", body = crate::http::openapi::ApiError)
    )
)]
pub async fn lead_snooze(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    agent_action(state, &headers, id, "snooze", body).await
}

/// The last four characters of a caller's number, the rest hidden.
fn masked(number: &str) -> String {
    let count = number.chars().count();
    let tail: String = number.chars().skip(count.saturating_sub(4)).collect();
    format!("•••{tail}")
}

/// Agent `id`'s part of `snapshot` (see the module docs).
pub fn view(app: &App, snapshot: &Snapshot, id: &str) -> Value {
    let plan = app.dialplan.current();
    let serves: Vec<(&str, &str)> = plan
        .agents()
        .iter()
        .find(|agent| agent.id().as_str() == id)
        .map(|agent| {
            plan.queues()
                .filter(|queue| agent.can_serve(queue))
                .map(|queue| (queue.id().as_str(), queue.name()))
                .collect()
        })
        .unwrap_or_default();
    let queues: Vec<Value> = snapshot
        .queues
        .iter()
        .filter_map(|queue| {
            let (_, name) = serves.iter().find(|(id, _)| queue["id"] == *id)?;
            let mut queue = queue.clone();
            queue["name"] = json!(name);
            Some(queue)
        })
        .collect();
    let in_my_queues = |call: &Value| {
        call["department"]
            .as_str()
            .is_some_and(|department| serves.iter().any(|(id, _)| *id == department))
    };
    let waiting: Vec<Value> = snapshot
        .calls
        .iter()
        .filter(|call| {
            call["outcome"] == "in_progress" && call["connected_at"].is_null() && in_my_queues(call)
        })
        .map(|call| {
            json!({
                "id": call["id"],
                "department": call["department"],
                "priority": call["priority"],
                "caller": masked(call["caller"].as_str().unwrap_or("")),
                "started_at": call["started_at"],
            })
        })
        .collect();
    let mine = |call: &&Value| {
        call["agent"] == id
            || call["transfers"]
                .as_array()
                .is_some_and(|transfers| transfers.iter().any(|t| t["from_agent"] == id))
    };
    let calls: Vec<&Value> = snapshot.calls.iter().filter(mine).take(OWN_CALLS).collect();
    let agent = snapshot.agents.iter().find(|agent| agent.id == id);
    json!({
        "generated_at": snapshot.generated_at.to_string(),
        "clinic": {
            "name": plan.clinic().name(),
            "time_zone": plan.clinic().time_zone_name(),
        },
        "agent": agent,
        "queues": queues,
        "waiting": waiting,
        "calls": calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_four_characters_of_a_waiting_caller_show() {
        assert_eq!(masked("+13125550142"), "•••0142");
        assert_eq!(masked("12"), "•••12");
        assert_eq!(masked(""), "•••");
        assert_eq!(masked("ünïcödé"), "•••cödé");
    }
}
