//! `GET /api/agents` and `PUT /api/agents/{id}/state` (DESIGN.md, "Admin
//! HTTP API" and "Agent states").
//!
//! The list is every agent of the dialplan in force, sorted by id. Each
//! agent joins three owners' data, none of them asked through a channel:
//! the dialplan (name, skills, branch), routing's agent table (state,
//! calls today; lock-free snapshots) and the registrar's published
//! [`Locations`](crate::app::registrar::Locations) (registered). Changing
//! a state goes through the routing task, the table's one writer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use routing::{AgentId, AgentSnapshot, RequestedState, RoutingError};
use serde::{Deserialize, Serialize};

use super::{AppState, error_response};
use crate::app::App;

/// One agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Agent)]
pub struct AgentView {
    /// The SIP user name (`1003`).
    pub id: String,
    /// The display name (`Carol`).
    pub name: String,
    /// `offline`, `available`, `ringing`, `on_call`, `wrap_up` or `away`.
    #[schema(value_type = String)]
    pub state: &'static str,
    /// Whether the agent's phone holds a live registration.
    pub registered: bool,
    /// Skill names, in dialplan order.
    pub skills: Vec<String>,
    /// The branch, `null` when the dialplan gives none.
    pub branch: Option<String>,
    /// Calls answered today.
    pub calls_today: u32,
    /// Leads offered to or owned by the agent (issue 21).
    pub leads_open: u32,
    /// Where the agent can take a call: `sip` while a phone is
    /// registered, `browser` while their `/agent` page's phone is on.
    #[schema(value_type = Vec<String>)]
    pub devices: Vec<&'static str>,
}

/// `GET /api/agents`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentList {
    /// Every agent of the dialplan, sorted by id.
    agents: Vec<AgentView>,
}

/// `GET /api/cluster`: this node, Redis up or down, the nodes it hears
/// (404 without `--redis`).
#[utoipa::path(
    get,
    path = "/api/cluster",
    tag = "agents",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "This node and the nodes it hears", body = crate::app::cluster::ClusterJson),
        (status = 404, description = "Not in a cluster (no --redis)", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError)
    )
)]
pub async fn cluster(State(state): State<AppState>) -> Response {
    match &state.app.cluster {
        Some(cluster) => Json(cluster.to_json()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(super::openapi::ApiError {
                error: "not in a cluster (no --redis)".into(),
                detail: None,
            }),
        )
            .into_response(),
    }
}

/// `PUT /api/agents/{id}/state`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRequest {
    state: String,
}

/// Reads `{"state": "..."}`: a JSON object with that one string member
/// (serde alone would also take `["away"]` for the struct).
fn parse_state_request(body: &[u8]) -> Result<StateRequest, serde_json::Error> {
    match serde_json::from_slice::<serde_json::Value>(body)? {
        object @ serde_json::Value::Object(_) => serde_json::from_value(object),
        _ => Err(serde::de::Error::custom("not a JSON object")),
    }
}

/// Every agent of the dialplan in force, sorted by id.
pub fn agent_views(app: &App, leads: &crate::leads::Leads) -> Vec<AgentView> {
    let plan = app.dialplan.current();
    let board = leads.desk().board();
    let mut views: Vec<AgentView> = plan
        .agents()
        .iter()
        .map(|agent| {
            let mut view = view(app, agent);
            view.leads_open = board.leads_open(&view.id);
            view
        })
        .collect();
    views.sort_by(|a, b| a.id.cmp(&b.id));
    views
}

fn view(app: &App, agent: &ivr::Agent) -> AgentView {
    let id = agent.id().as_str();
    let snapshot = app.router.table().snapshot(&AgentId::new(id));
    view_with(app, agent, snapshot.as_ref())
}

fn view_with(app: &App, agent: &ivr::Agent, snapshot: Option<&AgentSnapshot>) -> AgentView {
    let id = agent.id().as_str();
    let registered = app.registrar.locations().is_registered(id);
    AgentView {
        id: id.to_string(),
        name: agent.name().to_string(),
        // An agent a reload added before routing learnt of them cannot be
        // offered calls: offline is the truth for routing.
        state: snapshot.map_or("offline", |s| s.state.as_str()),
        registered,
        skills: agent
            .skills()
            .iter()
            .map(|(skill, _)| skill.as_str().to_string())
            .collect(),
        branch: agent.branch().map(|b| b.as_str().to_string()),
        calls_today: snapshot.map_or(0, |s| s.calls_today),
        leads_open: 0,
        devices: app.registrar.locations().devices(id),
    }
}

/// `GET /api/agents`.
#[utoipa::path(
    get,
    path = "/api/agents",
    tag = "agents",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every agent", body = AgentList),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError)
    )
)]
pub async fn list(State(state): State<AppState>) -> Response {
    Json(AgentList {
        agents: agent_views(&state.app, &state.leads),
    })
    .into_response()
}

/// `PUT /api/agents/{id}/state` with `{"state":"available"}` or
/// `{"state":"away"}`: answers the agent as it now is. 404 for an agent
/// the dialplan does not have, 400 for a body that is not that JSON
/// object, 422 for another state, 409 when the agent's state does not
/// allow it (an offline agent cannot be made available).
#[utoipa::path(
    put,
    path = "/api/agents/{id}/state",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id")),
    security(("admin_token" = [])),
    request_body = super::openapi::StateChange,
    responses(
        (status = 200, description = "The agent as it now is", body = AgentView),
        (status = 400, description = "Not that JSON object", body = crate::http::openapi::ApiError),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError),
        (status = 404, description = "No such agent", body = crate::http::openapi::ApiError),
        (status = 409, description = "The agent's state does not allow it", body = crate::http::openapi::ApiError),
        (status = 422, description = "Another state", body = crate::http::openapi::ApiError),
        (status = 503, description = "Routing is stopping", body = crate::http::openapi::ApiError)
    )
)]
pub async fn set_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let app = &state.app;
    let plan = app.dialplan.current();
    let Some(agent) = plan.agents().iter().find(|a| a.id().as_str() == id) else {
        return error_response(StatusCode::NOT_FOUND, &format!("no agent `{id}`"));
    };
    let request = match parse_state_request(&body) {
        Ok(request) => request,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("the body must be {{\"state\": \"available\" | \"away\"}}: {error}"),
            );
        }
    };
    let Some(requested) = RequestedState::from_name(&request.state) else {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "state `{}` cannot be set: use `available` or `away`",
                request.state
            ),
        );
    };
    match app
        .router
        .set_state(AgentId::new(id.as_str()), requested)
        .await
    {
        Ok(Ok(snapshot)) => {
            let mut view = view_with(app, agent, Some(&snapshot));
            view.leads_open = state.leads.desk().board().leads_open(&view.id);
            Json(view).into_response()
        }
        Ok(Err(error @ RoutingError::UnknownAgent(_))) => {
            error_response(StatusCode::NOT_FOUND, &error.to_string())
        }
        Ok(Err(error @ RoutingError::WrongState { .. })) => {
            error_response(StatusCode::CONFLICT, &error.to_string())
        }
        Ok(Err(error)) => error_response(StatusCode::CONFLICT, &error.to_string()),
        Err(stopped) => error_response(StatusCode::SERVICE_UNAVAILABLE, &stopped.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_body_is_one_object_with_a_state_string() {
        let state = |body: &str| parse_state_request(body.as_bytes()).map(|r| r.state);
        assert_eq!(state(r#"{"state":"away"}"#).unwrap(), "away");
        assert_eq!(state(r#" { "state" : "on_call" } "#).unwrap(), "on_call");
        for bad in [
            "",
            r#"{"state":"#,
            r#"["away"]"#,
            r#""away""#,
            r#"{"state":5}"#,
            r#"{}"#,
            r#"{"state":"away","until":"noon"}"#,
        ] {
            assert!(state(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
