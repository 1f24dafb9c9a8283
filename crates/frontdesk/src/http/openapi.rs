//! `GET /api/openapi.json`: the admin listener's OpenAPI 3.1 document,
//! generated from the code with utoipa (issue 26).
//!
//! utoipa rather than aide or a hand-kept file: it derives each schema
//! from the Rust type the handler serializes (`#[derive(ToSchema)]` beside
//! `Serialize`), documents each route on its handler
//! (`#[utoipa::path]`), works with axum 0.8's plain `Router` (so the
//! router in [`super::router`] stays as it is), and is maintained. The
//! bodies the handlers build are the types in this module and beside the
//! handlers; where a body holds an already-serialized value (a call's JSON
//! from the `call` crate), its schema names the type that serialized it
//! (`value_type`), and the end-to-end test
//! (`crates/frontdesk/tests/openapi.rs`) checks every live answer against
//! the schema.
//!
//! The document needs the admin token like the rest of `/api`: it holds
//! no secret, but the unknown-route fallback answers 401 so that a
//! stranger cannot list the routes, and the document would list them.
//!
//! Room left for parts 1 and 3 of issue 26: the webhook events are
//! documented in [`ApiDoc`]'s `webhooks` (OpenAPI 3.1's top-level map,
//! empty until the events exist), and a CSV variant of a route is another
//! `content_type = "text/csv"` entry in that route's 200 answer.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The API's error body: `{"error": "…"}`, with `detail` where the cause
/// has more to say (`journal_unavailable`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong, for a person (or a stable code such as
    /// `journal_unavailable`).
    pub error: String,
    /// More about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /api/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok` once SIP listens, `starting` before (with 503).
    pub status: String,
}

/// `GET /api/calls`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallList {
    /// Newest first.
    #[schema(value_type = Vec<call::CallJson>)]
    pub calls: Vec<Value>,
}

/// `GET /api/claims`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimList {
    /// Newest first.
    pub claims: Vec<records::ClaimRowJson>,
}

/// `GET /api/queues`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    /// Every queue of the dialplan in force.
    #[schema(value_type = Vec<crate::http::calls::QueueView>)]
    pub queues: Vec<Value>,
}

/// `POST /api/reload`: done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    /// Always `true`.
    pub reloaded: bool,
}

/// `POST /api/reload`: refused (422); the running dialplan stays.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadRefused {
    /// `PATH:LINE:COLUMN: message` each.
    pub errors: Vec<String>,
}

/// `GET /api/reports/departments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentReports {
    /// Every queue, sorted by id.
    pub departments: Vec<records::DepartmentReport>,
}

/// `GET /api/reports/agents`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentReports {
    /// Per agent.
    pub agents: Vec<records::AgentReport>,
}

/// `GET /api/reports/sources`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceReports {
    /// Per source tag.
    pub sources: Vec<records::SourceReport>,
}

/// `GET /api/alerts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    /// Emergency leads first, oldest first.
    #[schema(value_type = Vec<crate::app::journal::AlertJson>)]
    pub alerts: Vec<Value>,
}

/// `GET /api/leads`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadList {
    /// Newest first.
    #[schema(value_type = Vec<records::LeadJson>)]
    pub leads: Vec<Value>,
}

/// `GET /api/leads/{id}`, and `POST /api/leads`'s 201 and 200.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneLead {
    /// The lead.
    #[schema(value_type = records::LeadJson)]
    pub lead: Value,
}

/// `POST /api/leads`'s 400: the fields that were wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadRefused {
    /// What was wrong.
    pub error: String,
    /// Field name → what is wrong with it.
    #[schema(value_type = Object)]
    pub fields: Value,
}

/// Body of `POST /api/leads`; the intake reads it field by field (see
/// `leads::form`), this is its shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadForm {
    /// The patient's name.
    pub name: Option<String>,
    /// The patient's number.
    pub phone: String,
    /// Their e-mail.
    pub email: Option<String>,
    /// What they wrote.
    pub message: String,
    /// Their postal code.
    pub postal_code: Option<String>,
    /// The campaign.
    pub campaign: Option<String>,
    /// `{"call": true}`.
    #[schema(value_type = Object)]
    pub consent: Value,
    /// With the admin token: the source.
    pub source: Option<String>,
}

/// An agent's state change: `PUT /api/agents/{id}/state`, `PUT /agent/state`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateChange {
    /// `available` or `away`.
    pub state: String,
}

/// `POST …/leads/{id}/outcome`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeBody {
    /// `booked`, `reached`, `no_answer`, `wrong_number`, `duplicate`.
    pub outcome: String,
}

/// `POST …/leads/{id}/snooze`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnoozeBody {
    /// RFC 3339.
    pub until: String,
}

/// `POST /api/leads/{id}/assign` and `POST /api/leads/{id}/call`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentBody {
    /// The agent's id.
    pub agent: String,
}

/// `POST /agent/login`'s body.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginBody {
    /// The agent's SIP user.
    pub user: String,
    /// Their SIP password.
    pub password: String,
}

/// `POST /agent/login`: the session.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentSession {
    /// The bearer token of the agent's routes.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    /// The agent as `/api/agents` shows them.
    pub agent: Option<super::agents::AgentView>,
}

/// Click-to-call: 202, the agent's phone rings.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallStarted {
    /// The call out.
    #[schema(value_type = crate::calls::originate::StartedJson)]
    pub call: Value,
}

/// Click-to-call refused: nothing was sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallRefused {
    /// For a person.
    pub error: String,
    /// A stable code (`no_consent`, `no_phone`, …).
    pub reason: String,
}

/// The security schemes the routes name.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what.to_string()))
                    .build(),
            )
        };
        components.add_security_scheme(
            "admin_token",
            bearer("`--admin-token` (or the token printed at start)"),
        );
        components.add_security_scheme("agent_session", bearer("the token of `POST /agent/login`"));
        components.add_security_scheme(
            "source_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Frontdesk-Signature",
                "t=<unix s>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>, with X-Frontdesk-Source",
            ))),
        );
    }
}

/// The document. Every route of [`super::router`] is listed here; the
/// unit test below and `tests/openapi.rs` fail when one is missing.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "frontdesk admin API",
        description = "The admin HTTP API of frontdesk, a SIP call router and IVR for clinics (DESIGN.md, \"Admin HTTP API\"). Times are RFC 3339 UTC; durations are integer milliseconds with a `_ms` suffix."
    ),
    paths(
        super::health,
        document,
        super::metrics::render,
        super::agents::list,
        super::agents::cluster,
        super::claims::list,
        super::claims::report,
        super::agents::set_state,
        super::calls::list,
        super::calls::queues,
        super::calls::reload,
        super::calls::call,
        super::calls::departments,
        super::calls::agents,
        super::calls::sources,
        super::calls::alerts,
        super::leads::intake,
        super::leads::list,
        super::leads::one,
        super::leads::report,
        super::leads::admin_accept,
        super::leads::admin_outcome,
        super::leads::admin_snooze,
        super::leads::admin_assign,
        super::lead_call::admin_call,
        super::lead_call::agent_call,
        super::voicemail::admin_voicemail,
        super::voicemail::agent_voicemail,
        super::dashboard::events,
        super::dashboard::assets::dashboard_page,
        super::dashboard::assets::agent_page,
        super::dashboard::assets::asset,
        super::agent_view::login,
        super::agent_view::events,
        super::agent_view::set_state,
        super::agent_view::lead_accept,
        super::agent_view::lead_outcome,
        super::agent_view::lead_snooze,
        super::agent_view::phone::connect,
    ),
    components(schemas(
        ApiError,
        call::CallJson,
        call::TransferJson,
        records::CallRowJson,
        records::EventRowJson,
        records::LeadJson,
        records::LeadFields,
        records::webhooks::LeadEventJson,
        records::webhooks::CallEventJson,
        records::webhooks::WebhookCall,
        records::LeadHistoryStep,
        crate::app::journal::AlertJson,
        crate::http::calls::QueueView,
    )),
    modifiers(&Security),
    // The webhook events go in OpenAPI 3.1's top-level `webhooks` map,
    // which utoipa 5 cannot derive: added by `json()`.
)]
pub struct ApiDoc;

/// The document as JSON (built once per request: a few milliseconds, and
/// only an admin asks).
pub fn json() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    document["webhooks"] = webhooks();
    document
}

/// OpenAPI 3.1's `webhooks`: one POST per event kind a `[[webhooks]]`
/// entry can hear, its body `LeadWebhookEvent` or `CallWebhookEvent`
/// (their types are the ones `records::webhooks` serializes), signed in
/// `X-Frontdesk-Signature` as lead intake is, acknowledged by any 2xx.
fn webhooks() -> Value {
    let mut map = serde_json::Map::new();
    for kind in ivr::WebhookEvent::ALL {
        let schema = if kind == ivr::WebhookEvent::CallEnded {
            "CallWebhookEvent"
        } else {
            "LeadWebhookEvent"
        };
        map.insert(
            kind.as_str().to_string(),
            serde_json::json!({
                "post": {
                    "summary": format!("`{}`, to each `[[webhooks]]` entry that hears it", kind.as_str()),
                    "parameters": [
                        {"name": "X-Frontdesk-Event", "in": "header", "required": true, "schema": {"type": "string"}, "description": "The event's kind"},
                        {"name": "X-Frontdesk-Delivery", "in": "header", "required": true, "schema": {"type": "string"}, "description": "The event's id, the same on every retry: drop repeats by it"},
                        {"name": "X-Frontdesk-Signature", "in": "header", "required": true, "schema": {"type": "string"}, "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the webhook's secret>, as lead intake's"},
                    ],
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
                    },
                    "responses": {
                        "2XX": {"description": "Delivered: the event leaves the outbox"},
                        "default": {"description": "Not delivered: retried with backoff until a 2xx"}
                    }
                }
            }),
        );
    }
    Value::Object(map)
}

/// `GET /api/openapi.json`: this document (admin token).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object),
        (status = 401, description = "No or a wrong admin token", body = ApiError),
    )
)]
pub async fn document() -> Response {
    Json(json()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route("…", …)` of `router()`'s source, with its methods: the
    /// router cannot be asked for its routes, so its source is read.
    fn routed() -> Vec<(String, String)> {
        let source = include_str!("mod.rs");
        let body = &source[source
            .find("pub fn router(")
            .expect("router() is in mod.rs")..];
        let body = &body[..body.find("\n}\n").expect("router() ends")];
        let admin_end = body
            .find("let leads_route")
            .expect("the admin router comes first");
        let mut routes = Vec::new();
        for (at, _) in body.match_indices(".route(") {
            let rest = &body[at + ".route(".len()..];
            let rest = rest.trim_start();
            let Some(path) = rest
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .map(|(p, _)| p)
            else {
                continue;
            };
            let path = if at < admin_end {
                format!("/api{path}")
            } else {
                path.to_string()
            };
            let args = &rest[..rest.find(")\n").unwrap_or(rest.len())];
            let method = if path == "/api/leads" {
                vec!["get", "post"]
            } else {
                ["get(", "put(", "post(", "delete(", "patch("]
                    .iter()
                    .filter(|m| args.contains(*m))
                    .map(|m| m.trim_end_matches('('))
                    .collect()
            };
            assert!(!method.is_empty(), "no method for {path}");
            for method in method {
                routes.push((method.to_string(), path.clone()));
            }
        }
        routes
    }

    #[test]
    fn every_route_of_the_router_is_in_the_document() {
        let document = json();
        let routes = routed();
        assert!(routes.len() >= 35, "{routes:?}");
        let mut missing = Vec::new();
        for (method, path) in &routes {
            if document["paths"][path][method].is_null() {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI document: {missing:?}"
        );
        // And the document names no route the router does not have.
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    routes.iter().any(|(m, p)| m == method && p == path),
                    "{method} {path} is documented but not routed"
                );
            }
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_with_its_security_schemes() {
        let document = json();
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        for scheme in ["admin_token", "agent_session", "source_signature"] {
            assert!(
                !document["components"]["securitySchemes"][scheme].is_null(),
                "{scheme}"
            );
        }
        let calls = &document["components"]["schemas"]["Call"];
        assert!(calls["properties"]["transfers"].is_object(), "{calls}");
    }
}
