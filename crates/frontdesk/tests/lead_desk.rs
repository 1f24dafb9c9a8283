//! Issue 21 end to end: the lead desk in the real daemon. A signed knee
//! lead is offered to a signed-in agent (a live `/agent` event stream), not
//! accepted in time → offered to the next agent, not contacted in time →
//! escalated with `lead_breach` in `/api/alerts`; accepted and booked →
//! the report counts it; a restart keeps its owner and `respond_by`; the
//! admin reassigns. Windows are shortened to seconds in the test's copy of
//! the demo dialplan; every wait polls a condition within a bound.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::call::open_clinic;
use support::http::request;
use support::leads::{Auth, body, post};
use support::{Daemon, Launch, TOKEN};

/// How long anything may take to show.
const BOUND: Duration = Duration::from_secs(20);

/// The demo clinic, open, with Bob (1002, north) taking orthopedics too and
/// the website's windows shortened.
fn clinic(dir: &std::path::Path, respond_within: &str, accept_within: &str) -> std::path::PathBuf {
    let respond = format!("respond_within = \"{respond_within}\"");
    let accept = format!("accept_within = \"{accept_within}\"");
    open_clinic(dir, move |text| {
        text.replacen(
            "name = \"Bob\"\npassword = \"demo-1002\"\nskills = [\"cardiology\"]",
            "name = \"Bob\"\npassword = \"demo-1002\"\nskills = [\"cardiology\", \"orthopedics\"]",
            1,
        )
        .replacen("respond_within = \"5m\"", &respond, 1)
        .replacen("accept_within = \"2m\"", &accept, 1)
    })
}

/// An agent's session token.
fn login(daemon: &Daemon, agent: &str) -> String {
    let response = request(
        daemon.http(),
        "POST",
        "/agent/login",
        None,
        Some(&json!({"user": agent, "password": format!("demo-{agent}")}).to_string()),
    )
    .expect("POST /agent/login");
    assert_eq!(response.status, 200, "{response:?}");
    response.json()["token"]
        .as_str()
        .expect("a token")
        .to_string()
}

/// An agent's open `/agent/events` stream: its `leads` events, in order.
struct AgentPage {
    leads: mpsc::Receiver<Value>,
}

impl AgentPage {
    fn open(daemon: &Daemon, token: &str) -> AgentPage {
        let mut stream = TcpStream::connect(daemon.http()).expect("connect");
        write!(
            stream,
            "GET /agent/events HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
            daemon.http()
        )
        .expect("send");
        let (send, leads) = mpsc::channel();
        std::thread::spawn(move || {
            let mut name = None;
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if let Some(event) = line.strip_prefix("event: ") {
                    name = Some(event.to_string());
                } else if let Some(data) = line.strip_prefix("data: ")
                    && name.take().as_deref() == Some("leads")
                    && send
                        .send(serde_json::from_str(data).expect("JSON data"))
                        .is_err()
                {
                    return;
                }
            }
        });
        AgentPage { leads }
    }

    /// Waits for a `leads` event whose list satisfies `wanted`.
    fn wait(&self, what: &str, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.leads.recv_timeout(left) {
                Ok(event) => {
                    let leads = event["leads"].as_array().cloned().unwrap_or_default();
                    if wanted(&leads) {
                        return leads;
                    }
                }
                Err(_) => panic!("no leads event with {what} within {BOUND:?}"),
            }
        }
    }
}

fn offered(id: &str) -> impl Fn(&[Value]) -> bool + '_ {
    move |leads| {
        leads
            .iter()
            .any(|lead| lead["id"] == id && !lead["offer_until"].is_null())
    }
}

/// Polls `GET path` (admin token) until `wanted` holds; answers the JSON.
fn poll(daemon: &Daemon, path: &str, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let response = daemon.get(path, Some(TOKEN));
        if response.status == 200 {
            let json = response.json();
            if wanted(&json) {
                return json;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {BOUND:?}; last {json:#}"
            );
        } else {
            assert!(Instant::now() < deadline, "{path}: {response:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn events_of(lead: &Value) -> Vec<(String, String)> {
    lead["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|step| {
            (
                step["event"].as_str().unwrap_or("").to_string(),
                step["agent"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn post_knee_lead(daemon: &Daemon) -> String {
    let response = post(
        daemon,
        &body("+13125550199", "my knee hurts", "60605"),
        &Auth::website(),
        None,
    );
    assert_eq!(response.status, 201, "{response:?}");
    response.json()["lead"]["id"]
        .as_str()
        .expect("an id")
        .to_string()
}

/// `POST path` with `token` and `body`.
fn act(daemon: &Daemon, path: &str, token: &str, body: &str) -> support::Response {
    request(daemon.http(), "POST", path, Some(token), Some(body)).expect("POST")
}

#[test]
fn an_unaccepted_lead_goes_to_the_next_agent_and_escalates_with_lead_breach() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = Launch::new()
        .dialplan(clinic(dir.path(), "6s", "2s"))
        .start();
    let dan = AgentPage::open(&daemon, &login(&daemon, "1004"));
    let bob = AgentPage::open(&daemon, &login(&daemon, "1002"));
    // Both sessions count before the lead comes.
    dan.wait("Dan's first list", |_| true);
    bob.wait("Bob's first list", |_| true);

    let id = post_knee_lead(&daemon);
    // Dan first (branch south), with the lead's context.
    let list = dan.wait("the offer to Dan", offered(&id));
    let lead = list.iter().find(|lead| lead["id"] == id.as_str()).unwrap();
    assert_eq!(lead["message"], "my knee hurts");
    assert_eq!(lead["source"], "website");
    assert_eq!(lead["campaign"], "fall-ortho");
    assert_eq!(lead["intent"], json!({"matched": "knee"}));
    assert_eq!(lead["branch"], "south");
    assert_eq!(lead["owner"], "1004");
    // Not accepted within 2 s: Bob is offered it, Dan no longer.
    bob.wait("the offer to Bob", offered(&id));
    dan.wait("the offer gone from Dan", |leads| !offered(&id)(leads));
    let path = format!("/api/leads/{id}");
    let lead = poll(&daemon, &path, "the second offer on record", |json| {
        json["lead"]["owner"] == "1002"
    });
    let history = events_of(&lead["lead"]);
    let expected = [
        ("offered", "1004"),
        ("offer_expired", "1004"),
        ("offered", "1002"),
    ];
    for (event, agent) in expected {
        assert!(
            history.contains(&(event.to_string(), agent.to_string())),
            "{event} {agent} in {history:?}"
        );
    }
    // Nobody reached the patient within 6 s: escalated, alerted, offered
    // again.
    let alerts = poll(&daemon, "/api/alerts", "the lead_breach alert", |json| {
        json["alerts"].as_array().is_some_and(|alerts| {
            alerts
                .iter()
                .any(|a| a["kind"] == "lead_breach" && a["lead"] == id.as_str())
        })
    });
    let alert = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "lead_breach")
        .unwrap()
        .clone();
    assert_eq!(alert["department"], "orthopedics");
    let lead = poll(&daemon, &path, "the escalation on record", |json| {
        events_of(&json["lead"])
            .iter()
            .any(|(event, _)| event == "escalated")
    });
    assert_eq!(lead["lead"]["state"], "escalated");
    assert_eq!(
        lead["lead"]["first_contact_at"],
        Value::Null,
        "nobody reached the patient"
    );
    // Offered again after the escalation, with its original age.
    let history = events_of(&lead["lead"]);
    let escalated = history.iter().position(|(e, _)| e == "escalated").unwrap();
    poll(&daemon, &path, "an offer after the escalation", |json| {
        events_of(&json["lead"])[escalated..]
            .iter()
            .any(|(event, _)| event == "offered")
    });
    assert!(
        !daemon.stderr().contains("5550199"),
        "the number stays out of the log"
    );
}

#[test]
fn accepted_and_booked_counts_in_the_report_and_a_restart_keeps_owner_and_respond_by() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let plan = clinic(dir.path(), "5m", "1m");
    let mut daemon = Launch::new()
        .dialplan(plan.clone())
        .data(data.clone())
        .start();
    let token = login(&daemon, "1004");
    let dan = AgentPage::open(&daemon, &token);
    let id = post_knee_lead(&daemon);
    dan.wait("the offer to Dan", offered(&id));
    // Bob cannot accept Dan's offer; Dan can.
    let bob = login(&daemon, "1002");
    let refused = act(&daemon, &format!("/agent/leads/{id}/accept"), &bob, "{}");
    assert_eq!(refused.status, 409, "{refused:?}");
    let accepted = act(&daemon, &format!("/agent/leads/{id}/accept"), &token, "{}");
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.json()["lead"]["state"], "accepted");
    assert_eq!(accepted.json()["lead"]["owner"], "1004");
    let agents = poll(&daemon, "/api/agents", "Dan's open lead", |json| {
        json["agents"].as_array().is_some_and(|agents| {
            agents
                .iter()
                .any(|a| a["id"] == "1004" && a["leads_open"] == 1)
        })
    });
    let dan_view = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "1004")
        .unwrap()
        .clone();
    assert_eq!(dan_view["devices"], json!([]), "no phone registered");
    let path = format!("/api/leads/{id}");
    let before = poll(&daemon, &path, "the accept on record", |json| {
        json["lead"]["state"] == "accepted"
    });

    // A restart keeps the owner and the deadline.
    drop(dan);
    assert!(daemon.terminate().success());
    let daemon = Launch::new().dialplan(plan).data(data).start();
    let after = daemon.get(&path, Some(TOKEN)).json();
    assert_eq!(after["lead"]["owner"], "1004");
    assert_eq!(after["lead"]["state"], "accepted");
    assert_eq!(after["lead"]["respond_by"], before["lead"]["respond_by"]);
    poll(
        &daemon,
        "/api/agents",
        "Dan's lead back on the desk",
        |json| {
            json["agents"].as_array().is_some_and(|agents| {
                agents
                    .iter()
                    .any(|a| a["id"] == "1004" && a["leads_open"] == 1)
            })
        },
    );

    // Sessions end with the process: Dan signs in again and books.
    let token = login(&daemon, "1004");
    let bad = act(
        &daemon,
        &format!("/agent/leads/{id}/outcome"),
        &token,
        r#"{"outcome":"won"}"#,
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    let booked = act(
        &daemon,
        &format!("/agent/leads/{id}/outcome"),
        &token,
        r#"{"outcome":"booked"}"#,
    );
    assert_eq!(booked.status, 200, "{booked:?}");
    let lead = poll(&daemon, &path, "the booking on record", |json| {
        json["lead"]["state"] == "closed"
    });
    assert_eq!(lead["lead"]["outcome"], "booked");
    assert!(lead["lead"]["first_contact_at"].is_string());
    let report = poll(
        &daemon,
        "/api/reports/leads",
        "the booking in the report",
        |json| json["sources"][0]["booked"] == 1,
    );
    let website = &report["sources"][0];
    assert_eq!(website["source"], "website");
    assert_eq!(website["leads"], 1);
    assert_eq!(website["contacted_within_window"], 1.0);
    assert_eq!(website["leaked"], 0);
    assert!(
        website["speed_to_lead_ms"]["p50"].as_u64().is_some(),
        "{website}"
    );
    assert_eq!(report["departments"][0]["department"], "orthopedics");
    assert_eq!(report["departments"][0]["booked"], 1);

    // The admin reassigns a second lead, and the history says so.
    let second = post_knee_lead(&daemon);
    let assigned = act(
        &daemon,
        &format!("/api/leads/{second}/assign"),
        TOKEN,
        r#"{"agent":"1003"}"#,
    );
    assert_eq!(assigned.status, 200, "{assigned:?}");
    assert_eq!(assigned.json()["lead"]["owner"], "1003");
    let lead = poll(
        &daemon,
        &format!("/api/leads/{second}"),
        "the assignment",
        |json| json["lead"]["owner"] == "1003",
    );
    assert!(events_of(&lead["lead"]).contains(&("assigned".to_string(), "1003".to_string())));
    let unknown = act(&daemon, "/api/leads/l-nope/accept", TOKEN, "{}");
    assert_eq!(unknown.status, 404);
    let without_token = act(
        &daemon,
        &format!("/agent/leads/{second}/accept"),
        "wrong",
        "{}",
    );
    assert_eq!(without_token.status, 401);
}
