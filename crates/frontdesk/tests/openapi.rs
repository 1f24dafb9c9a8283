//! Issue 26, part 2: the OpenAPI 3.1 document at `GET /api/openapi.json`
//! parses, and the live answer of every route it documents validates
//! against it.
//!
//! One daemon (the demo clinic): a rejected call and an abandoned one
//! reach the journal, agent 1003 registers and signs in to the agent
//! view, a signed emergency lead arrives (an `emergency_lead` alert), and
//! then every operation of the document is called (the table below: a
//! documented operation without a request here fails the test), each
//! answer's status must be one the document lists for it, and its body
//! must validate (JSON Schema 2020-12, `jsonschema`) against that
//! status's schema, where every object of the API's own schemas refuses
//! fields it does not name (`unevaluatedProperties: false`), so that a
//! field added to a body without its schema fails here. Bodies that are
//! not JSON are checked by their content type. The router's side (no
//! route left out of the document) is `http::openapi`'s unit test.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::leads::{Auth, WEBSITE_SECRET, now_s, post};
use support::people::patient;
use support::phone::RtpPeer;
use support::{Daemon, Launch, TOKEN};

/// A request: method, path, bearer token, JSON body.
struct Case {
    method: &'static str,
    /// The documented path (`/api/calls/{id}`).
    template: &'static str,
    /// The path requested.
    path: String,
    token: Option<String>,
    body: Option<String>,
}

fn case(method: &'static str, template: &'static str, path: impl Into<String>) -> Case {
    Case {
        method,
        template,
        path: path.into(),
        token: Some(TOKEN.to_string()),
        body: None,
    }
}

impl Case {
    fn token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_string);
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body.to_string());
        self
    }
}

/// What came back: status, content type, body (only the head for a
/// stream or an upgrade, which never end).
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// Sends `case` over a fresh connection; reads the whole answer unless
/// it is a stream (`text/event-stream`) or a WebSocket refusal, whose head
/// is enough.
fn send(http: SocketAddr, case: &Case) -> Answer {
    let mut stream = TcpStream::connect_timeout(&http, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n",
        case.method, case.path
    );
    if let Some(token) = &case.token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = case.body.clone().unwrap_or_default();
    if case.body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16384];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = stream.read(&mut buffer).unwrap_or(0);
        raw.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&raw);
        let streaming = text
            .split_once("\r\n\r\n")
            .is_some_and(|(head, _)| head.contains("text/event-stream"));
        if n == 0 || streaming || Instant::now() > deadline {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{} {}: no status in {head:?}", case.method, case.path));
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        content_type,
        body,
    }
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The document with every object schema of its components closed: a
/// field the schema does not name is an error (`unevaluatedProperties`,
/// which also sees the properties an `allOf` brings in).
/// A schema that another one extends (`allOf`, serde's `flatten`) stays
/// open: its closing would refuse the extension's fields.
fn closed(document: &Value) -> Value {
    let mut extended = Vec::new();
    extended_by_all_of(document, &mut extended);
    let mut document = document.clone();
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            if !extended.contains(&format!("#/components/schemas/{name}")) {
                close(schema);
            }
        }
    }
    document
}

/// Every `$ref` inside an `allOf`.
fn extended_by_all_of(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, item) in object {
                if key == "allOf" {
                    for part in item.as_array().into_iter().flatten() {
                        if let Some(target) = part["$ref"].as_str() {
                            found.push(target.to_string());
                        }
                    }
                }
                extended_by_all_of(item, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| extended_by_all_of(item, found)),
        _ => {}
    }
}

fn close(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let open = object.get("additionalProperties").is_some();
    if (object.contains_key("properties") || object.contains_key("allOf")) && !open {
        object.insert("unevaluatedProperties".into(), json!(false));
    }
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for property in properties.values_mut() {
            close(property);
            if let Some(items) = property.get_mut("items") {
                close(items);
            }
        }
    }
}

/// Validates `answer` against what `document` says of `case` at that
/// status.
fn check(document: &Value, case: &Case, answer: &Answer) -> Result<(), String> {
    let what = format!("{} {} ({})", case.method, case.path, case.template);
    let operation = &document["paths"][case.template][case.method.to_ascii_lowercase()];
    if operation.is_null() {
        return Err(format!("{what}: not in the document"));
    }
    let documented = &operation["responses"][answer.status.to_string()];
    if documented.is_null() {
        return Err(format!(
            "{what}: answered {} ({}), which the document does not list",
            answer.status, answer.body
        ));
    }
    let content = &documented["content"];
    if answer.status == 101 || content.is_null() {
        return Ok(());
    }
    if let Some(schema) = content.get("application/json").map(|c| &c["schema"]) {
        if !answer.content_type.starts_with("application/json") {
            return Err(format!("{what}: content type {}", answer.content_type));
        }
        let instance: Value = serde_json::from_str(&answer.body)
            .map_err(|error| format!("{what}: not JSON ({error}): {}", answer.body))?;
        let mut root = json!({ "components": document["components"] });
        root["allOf"] = json!([schema]);
        let validator = jsonschema::draft202012::new(&root)
            .map_err(|error| format!("{what}: the schema does not compile: {error}"))?;
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| format!("{} at {}", error, error.instance_path))
            .collect();
        if !errors.is_empty() {
            return Err(format!("{what}: {errors:?}\n{instance:#}"));
        }
        return Ok(());
    }
    let types: Vec<&String> = content
        .as_object()
        .map(|c| c.keys().collect())
        .unwrap_or_default();
    let essence = answer.content_type.split(';').next().unwrap_or("").trim();
    let matches = types.iter().any(|t| {
        t.as_str() == essence || (t.as_str() == "application/octet-stream" && !essence.is_empty())
    });
    if !matches {
        return Err(format!(
            "{what}: content type {essence:?}, documented {types:?}"
        ));
    }
    Ok(())
}

fn wait_for(daemon: &Daemon, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = daemon.get(path, Some(TOKEN));
        if response.status == 200 {
            let value = response.json();
            if ready(&value) {
                return value;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{path} never ready: {response:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_route_answers_as_the_openapi_document_says() {
    let daemon = Launch::new().start();
    let http = daemon.http();

    // The document: behind the token, OpenAPI 3.1.
    let unauthorized = daemon.get("/api/openapi.json", None);
    assert_eq!(unauthorized.status, 401);
    let response = daemon.get("/api/openapi.json", Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    let document = response.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        document["openapi"]
    );
    assert!(document["info"]["title"].is_string());
    assert!(document["paths"].as_object().is_some_and(|p| p.len() >= 30));
    // A lead's history steps carry their own fields (`reason`, `from`,
    // `until`, …) beside `at`/`event`/`agent`: the schema says so, and the
    // closed reading below leaves it open.
    assert!(
        !document["components"]["schemas"]["LeadHistoryStep"]["additionalProperties"].is_null(),
        "{}",
        document["components"]["schemas"]["LeadHistoryStep"]
    );
    let strict = closed(&document);

    // Something in every list: a refused call, an abandoned one, an
    // agent signed in, an emergency lead.
    support::sipp::Sipp::new("caller-404.xml", daemon.sip())
        .calls(1)
        .args(["-s", "+19995550000"])
        .run()
        .assert_all_succeeded(1);
    let audio = RtpPeer::start(0, false);
    patient(&daemon, "caller.xml", "+15550111", &audio, 500)
        .join()
        .expect("patient")
        .assert_all_succeeded(1);
    let calls = wait_for(&daemon, "/api/calls", |v| {
        v["calls"].as_array().is_some_and(|c| c.len() >= 2)
    });
    let call = calls["calls"][0]["id"].as_str().unwrap().to_string();
    let agent_port = support::call::free_udp_port();
    support::phone::register(daemon.sip(), "1003", agent_port, 3600);
    wait_for(&daemon, "/api/agents", |v| {
        v["agents"].as_array().is_some_and(|agents| {
            agents
                .iter()
                .any(|a| a["id"] == "1003" && a["state"] == "available")
        })
    });
    let lead_body = json!({
        "name": "Ana Diaz", "phone": "+13125550199", "email": null,
        "message": "chest pain since this morning", "postal_code": "60605",
        "campaign": "fall-ortho", "consent": {"call": true}
    })
    .to_string();
    let auth = Auth::Signed {
        source: "website",
        secret: WEBSITE_SECRET,
        t: now_s(),
    };
    let created = post(&daemon, &lead_body, &auth, None);
    assert_eq!(created.status, 201, "{created:?}");
    let lead = created.json()["lead"]["id"].as_str().unwrap().to_string();
    // The alert list is not empty when its schema is tried (the actions
    // below clear the alert).
    wait_for(&daemon, "/api/alerts", |v| {
        v["alerts"].as_array().is_some_and(|a| !a.is_empty())
    });
    let login = support::http::request(
        http,
        "POST",
        "/agent/login",
        None,
        Some(r#"{"user":"1003","password":"demo-1003"}"#),
    )
    .expect("POST /agent/login");
    assert_eq!(login.status, 200, "{login:?}");
    let session = login.json()["token"].as_str().unwrap().to_string();
    let session = Some(session.as_str());

    let mut cases = vec![
        case("GET", "/api/health", "/api/health").token(None),
        case("GET", "/api/openapi.json", "/api/openapi.json"),
        case("GET", "/api/openapi.json", "/api/openapi.json").token(None),
        case("GET", "/metrics", "/metrics").token(None),
        case("GET", "/api/agents", "/api/agents"),
        case("GET", "/api/agents", "/api/agents").token(Some("wrong")),
        case("GET", "/api/cluster", "/api/cluster"),
        case("GET", "/api/claims", "/api/claims"),
        case(
            "GET",
            "/api/claims",
            "/api/claims?agent=1003&from=2026-01-01T00:00:00Z",
        ),
        case("GET", "/api/claims", "/api/claims?limit=0"),
        case("GET", "/api/reports/claims", "/api/reports/claims"),
        case("GET", "/api/reports/claims", "/api/reports/claims?limit=5"),
        case("PUT", "/api/agents/{id}/state", "/api/agents/1003/state")
            .body(json!({"state": "away"})),
        case("PUT", "/api/agents/{id}/state", "/api/agents/1003/state")
            .body(json!({"state": "lunch"})),
        case("PUT", "/api/agents/{id}/state", "/api/agents/9999/state")
            .body(json!({"state": "away"})),
        case("GET", "/api/calls", "/api/calls"),
        case("GET", "/api/calls", "/api/calls?limit=0"),
        case("GET", "/api/calls/{id}", format!("/api/calls/{call}")),
        case("GET", "/api/calls/{id}", "/api/calls/c-nowhere"),
        case("GET", "/api/queues", "/api/queues"),
        case("POST", "/api/reload", "/api/reload"),
        case(
            "GET",
            "/api/reports/departments",
            "/api/reports/departments",
        ),
        case(
            "GET",
            "/api/reports/departments",
            "/api/reports/departments?from=yesterday",
        ),
        case("GET", "/api/reports/agents", "/api/reports/agents"),
        case("GET", "/api/reports/sources", "/api/reports/sources"),
        case("GET", "/api/alerts", "/api/alerts"),
        case("GET", "/api/events", "/api/events"),
        case("GET", "/api/leads", "/api/leads"),
        case("GET", "/api/leads", "/api/leads?state=lost"),
        case("POST", "/api/leads", "/api/leads")
            .token(None)
            .body(json!({"phone": "+13125550199"})),
        case("GET", "/api/leads/{id}", format!("/api/leads/{lead}")),
        case("GET", "/api/leads/{id}", "/api/leads/l-nowhere"),
        case("GET", "/api/reports/leads", "/api/reports/leads"),
        case(
            "POST",
            "/api/leads/{id}/assign",
            format!("/api/leads/{lead}/assign"),
        )
        .body(json!({"agent": "1003"})),
        case(
            "POST",
            "/api/leads/{id}/accept",
            format!("/api/leads/{lead}/accept"),
        ),
        case(
            "POST",
            "/api/leads/{id}/snooze",
            format!("/api/leads/{lead}/snooze"),
        )
        .body(json!({"until": "2031-01-01T00:00:00Z"})),
        case(
            "POST",
            "/api/leads/{id}/outcome",
            format!("/api/leads/{lead}/outcome"),
        )
        .body(json!({"outcome": "lost"})),
        case(
            "POST",
            "/api/leads/{id}/call",
            format!("/api/leads/{lead}/call"),
        )
        .body(json!({"agent": "1003"})),
        case(
            "GET",
            "/api/leads/{id}/voicemail",
            format!("/api/leads/{lead}/voicemail"),
        ),
        case("GET", "/", "/").token(None),
        case("GET", "/agent", "/agent").token(None),
        case("GET", "/assets/{name}", "/assets/dashboard.js").token(None),
        case("GET", "/assets/{name}", "/assets/nothing.js").token(None),
        case("POST", "/agent/login", "/agent/login")
            .token(None)
            .body(json!({"user": "1003", "password": "wrong"})),
        case("GET", "/agent/events", "/agent/events").token(session),
        case("GET", "/agent/events", "/agent/events").token(None),
        case("PUT", "/agent/state", "/agent/state")
            .token(session)
            .body(json!({"state": "available"})),
        case(
            "POST",
            "/agent/leads/{id}/accept",
            format!("/agent/leads/{lead}/accept"),
        )
        .token(session),
        case(
            "POST",
            "/agent/leads/{id}/snooze",
            format!("/agent/leads/{lead}/snooze"),
        )
        .token(session)
        .body(json!({"until": "2031-01-01T00:00:00Z"})),
        case(
            "POST",
            "/agent/leads/{id}/call",
            format!("/agent/leads/{lead}/call"),
        )
        .token(session),
        case(
            "POST",
            "/agent/leads/{id}/outcome",
            format!("/agent/leads/{lead}/outcome"),
        )
        .token(session)
        .body(json!({"outcome": "booked"})),
        case(
            "GET",
            "/agent/leads/{id}/voicemail",
            format!("/agent/leads/{lead}/voicemail"),
        )
        .token(session),
        case("GET", "/agent/phone", "/agent/phone").token(None),
    ];
    // The lead list and the alerts after the actions, with owner and
    // outcome set.
    cases.push(case("GET", "/api/leads/{id}", format!("/api/leads/{lead}")));
    cases.push(case("GET", "/api/alerts", "/api/alerts"));

    // Every documented operation is exercised.
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                cases
                    .iter()
                    .any(|c| c.template == path && c.method.eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not exercised here"
            );
        }
    }
    let mut failures = Vec::new();
    let mut statuses = Vec::new();
    for case in &cases {
        let answer = send(http, case);
        statuses.push(format!("{} {} → {}", case.method, case.path, answer.status));
        if let Err(failure) = check(&strict, case, &answer) {
            failures.push(failure);
        }
    }
    println!("{}", statuses.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_body_that_breaks_its_schema_is_caught() {
    // The check itself can fail: an agent with a field its schema does
    // not name, and one without a required field.
    let daemon = Launch::new().start();
    let document = closed(&daemon.get("/api/openapi.json", Some(TOKEN)).json());
    let mut agents = daemon.get("/api/agents", Some(TOKEN)).json();
    let case = case("GET", "/api/agents", "/api/agents");
    let answer = |body: &Value| Answer {
        status: 200,
        content_type: "application/json".into(),
        body: body.to_string(),
    };
    assert_eq!(check(&document, &case, &answer(&agents)), Ok(()));
    agents["agents"][0]["nickname"] = json!("Ally");
    assert!(check(&document, &case, &answer(&agents)).is_err());
    agents["agents"][0]
        .as_object_mut()
        .unwrap()
        .remove("nickname");
    agents["agents"][0].as_object_mut().unwrap().remove("state");
    assert!(check(&document, &case, &answer(&agents)).is_err());
    let teapot = Answer {
        status: 418,
        content_type: "application/json".into(),
        body: "{}".into(),
    };
    assert!(check(&document, &case, &teapot).is_err());
}
