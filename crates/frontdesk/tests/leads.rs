//! Issue 20 end to end: web-form leads into the real daemon. A signed
//! post is classified (intent, branch), durable before its 201, listed,
//! and still there (and still not replayable) after a restart; refused
//! posts (unsigned, forged, expired, replayed, a bad phone, 65 KiB) store
//! nothing; an idempotent repeat gives the same lead; an emergency is
//! urgent and raises the alert (API and webhook); the report counts; a
//! lead's `related` names the same patient's earlier call.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::leads::{Auth, WEBSITE_SECRET, body, headers, now_s, post, post_raw};
use support::{Daemon, Launch, TOKEN};

const ANA: &str = "+13125550199";

fn leads(daemon: &Daemon) -> Vec<Value> {
    let response = daemon.get("/api/leads?limit=100", Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    response.json()["leads"].as_array().cloned().expect("leads")
}

#[test]
fn a_signed_knee_lead_is_classified_stored_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let mut daemon = Launch::new().data(data.clone()).start();
    let text = body("(312) 555-0199", "my knee hurts since Sunday", "60605");
    let t = now_s();
    let auth = Auth::Signed {
        source: "website",
        secret: WEBSITE_SECRET,
        t,
    };
    let response = post(&daemon, &text, &auth, None);
    assert_eq!(response.status, 201, "{response:?}");
    let lead = response.json()["lead"].clone();
    let id = lead["id"].as_str().expect("an id").to_string();
    assert!(id.starts_with("l-"), "{id}");
    for (field, expected) in [
        ("kind", json!("web_form")),
        ("source", json!("website")),
        ("campaign", json!("fall-ortho")),
        ("phone", json!(ANA)),
        ("department", json!("orthopedics")),
        ("intent", json!({"matched": "knee"})),
        ("emergency", json!(false)),
        ("branch", json!("south")),
        ("priority", json!("routine")),
        ("state", json!("waiting")),
        ("owner", Value::Null),
        ("outcome", Value::Null),
        ("consent", json!({"call": true})),
        ("related", json!([])),
    ] {
        assert_eq!(lead[field], expected, "{field} in {lead:#}");
    }
    assert_eq!(lead["history"][0]["event"], "created");
    assert!(lead["respond_by"].as_str().unwrap() > lead["created_at"].as_str().unwrap());

    let listed = leads(&daemon);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let one = daemon.get(&format!("/api/leads/{id}"), Some(TOKEN));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["lead"], lead);
    assert_eq!(daemon.get(&format!("/api/leads/{id}"), None).status, 401);
    assert_eq!(daemon.get("/api/leads", None).status, 401);
    assert_eq!(daemon.get("/api/leads/l-nope", Some(TOKEN)).status, 404);
    assert!(
        !daemon.stderr().contains("555-0199") && !daemon.stderr().contains("5550199"),
        "the number stays out of the log"
    );

    daemon.terminate();
    let daemon = Launch::new().data(data).start();
    let again = daemon.get(&format!("/api/leads/{id}"), Some(TOKEN));
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["lead"], lead);
    // The same signed post, replayed after the restart, is still refused.
    let replay = post(&daemon, &text, &auth, None);
    assert_eq!(replay.status, 401, "{replay:?}");
    assert_eq!(leads(&daemon).len(), 1);
}

#[test]
fn refused_posts_store_nothing() {
    let daemon = Launch::new().start();
    let text = body(ANA, "my knee hurts", "60605");
    let forged = Auth::Signed {
        source: "website",
        secret: "not-the-website-secret",
        t: now_s(),
    };
    let expired = Auth::Signed {
        source: "website",
        secret: WEBSITE_SECRET,
        t: now_s() - 3600,
    };
    let stranger = Auth::Signed {
        source: "newsletter",
        secret: WEBSITE_SECRET,
        t: now_s(),
    };
    for (what, auth) in [
        ("unsigned", Auth::None),
        ("forged", forged),
        ("expired", expired),
        ("unknown source", stranger),
        ("wrong token", Auth::Token("not-the-token")),
    ] {
        let response = post(&daemon, &text, &auth, None);
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert!(response.json()["error"].is_string(), "{what}");
    }

    // Replayed: the first post is taken, the same bytes again are not.
    let auth = Auth::website();
    let first = post(&daemon, &text, &auth, None);
    assert_eq!(first.status, 201, "{first:?}");
    let replayed = post(&daemon, &text, &auth, None);
    assert_eq!(replayed.status, 401, "{replayed:?}");
    assert_eq!(replayed.json()["error"], "this signature was already used");

    // A bad phone number: 400 with fields.phone; so is a missing one. A
    // refused post does not use its signature up: sent again, it is
    // refused for its body again, not as a replay.
    let bad = body("555-01", "my knee hurts", "60605");
    let signed = Auth::website();
    for _ in 0..2 {
        let response = post(&daemon, &bad, &signed, None);
        assert_eq!(response.status, 400, "{response:?}");
        assert_eq!(
            response.json()["fields"]["phone"],
            "is not a valid phone number"
        );
    }
    let response = post(&daemon, r#"{"message":"hi"}"#, &Auth::website(), None);
    assert_eq!(response.json()["fields"]["phone"], "is required");
    // The admin token must name a known source.
    let response = post(&daemon, &text, &Auth::Token(TOKEN), None);
    assert_eq!(response.status, 400, "{response:?}");
    assert!(response.json()["fields"]["source"].is_string());
    let response = post(&daemon, &text, &Auth::Token(TOKEN), Some("é"));
    assert_eq!(response.status, 400, "{response:?}");

    // 65 KiB: 413 before anything is read or checked.
    let huge = format!(
        r#"{{"phone":"{ANA}","message":"{}"}}"#,
        "a".repeat(65 * 1024)
    );
    let response = post_raw(
        daemon.http(),
        &headers(&Auth::website(), huge.as_bytes(), None),
        huge.as_bytes(),
    )
    .expect("an answer");
    assert_eq!(response.status, 413, "{response:?}");

    // Only the first post is stored.
    let stored = leads(&daemon);
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["id"], first.json()["lead"]["id"]);

    // With the admin token and the source named, the lead is taken; its
    // `related` names the same patient's earlier lead.
    let with_source = serde_json::from_str::<Value>(&text)
        .map(|mut v| {
            v["source"] = json!("website");
            v.to_string()
        })
        .unwrap();
    let response = post(&daemon, &with_source, &Auth::Token(TOKEN), None);
    assert_eq!(response.status, 201, "{response:?}");
    assert_eq!(response.json()["lead"]["related"], json!([stored[0]["id"]]));
}

#[test]
fn an_idempotent_repeat_gives_the_same_lead() {
    let daemon = Launch::new().start();
    let text = body(ANA, "a rash on my arm", "60614");
    let first = post(&daemon, &text, &Auth::website(), Some("form-4711"));
    assert_eq!(first.status, 201, "{first:?}");
    let lead = first.json()["lead"].clone();
    assert_eq!(lead["department"], "dermatology");
    assert_eq!(lead["branch"], "north");
    // The sender retries: signed again (a new timestamp), the same key.
    let retry = Auth::Signed {
        source: "website",
        secret: WEBSITE_SECRET,
        t: now_s() + 1,
    };
    let repeat = post(&daemon, &text, &retry, Some("form-4711"));
    assert_eq!(repeat.status, 200, "{repeat:?}");
    assert_eq!(repeat.json()["lead"], lead);
    // The same key for another request is refused, and stores nothing.
    let other = body(ANA, "my knee", "60614");
    let reused = post(&daemon, &other, &Auth::website(), Some("form-4711"));
    assert_eq!(reused.status, 422, "{reused:?}");
    assert_eq!(leads(&daemon).len(), 1);
}

/// A local webhook receiver: every POST body, in order.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut raw = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&raw).into_owned();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .and_then(|v| v.trim().parse::<usize>().ok())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    if let Ok(json) = serde_json::from_str::<Value>(&body[..length]) {
                        seen.lock().expect("not poisoned").push(json);
                    }
                    let _ =
                        stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
                    break;
                }
            }
        }
    });
    (url, bodies)
}

#[test]
fn an_emergency_lead_is_urgent_first_and_raises_the_alert() {
    let (url, posted) = webhook();
    let daemon = Launch::new().args(["--alert-webhook", &url]).start();
    let routine = post(
        &daemon,
        &body(ANA, "my knee hurts", "60605"),
        &Auth::website(),
        None,
    );
    assert_eq!(routine.status, 201);
    let response = post(
        &daemon,
        &body("+13125550142", "chest pain since this morning", "60614"),
        &Auth::website(),
        None,
    );
    assert_eq!(response.status, 201, "{response:?}");
    let lead = response.json()["lead"].clone();
    assert_eq!(lead["department"], "urgent-care");
    assert_eq!(lead["priority"], "urgent");
    assert_eq!(lead["emergency"], true);
    assert_eq!(lead["intent"], json!({"matched": "chest pain"}));
    let id = lead["id"].as_str().unwrap().to_string();

    let alerts = daemon.get("/api/alerts", Some(TOKEN)).json()["alerts"].clone();
    assert_eq!(alerts[0]["kind"], "emergency_lead", "{alerts:#}");
    assert_eq!(alerts[0]["department"], "urgent-care");
    assert_eq!(alerts[0]["lead"], id.as_str());
    assert!(!alerts[0]["detail"].as_str().unwrap().contains("5550142"));

    // The webhook hears it, as it hears the overload alerts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let heard = posted.lock().expect("not poisoned").clone();
        if let Some(alert) = heard.iter().find(|a| a["kind"] == "emergency_lead") {
            assert_eq!(alert["state"], "raised");
            assert_eq!(alert["lead"], id.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "no webhook POST: {heard:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.wait_for_log(
        |line| line.contains("alert raised") && line.contains("emergency_lead"),
        Duration::from_secs(5),
    );
}

#[test]
fn the_report_counts_three_known_posts_for_the_website() {
    let daemon = Launch::new().start();
    let from = ivr::jiff::Timestamp::now() - ivr::jiff::SignedDuration::from_secs(60);
    for (phone, message) in [
        (ANA, "my knee hurts since Sunday"),
        ("+13125550142", "a rash"),
        ("+13125550143", "chest pain since this morning"),
    ] {
        let response = post(
            &daemon,
            &body(phone, message, "60605"),
            &Auth::website(),
            None,
        );
        assert_eq!(response.status, 201, "{response:?}");
    }
    let to = ivr::jiff::Timestamp::now() + ivr::jiff::SignedDuration::from_secs(60);
    let response = daemon.get(
        &format!("/api/reports/leads?from={from}&to={to}"),
        Some(TOKEN),
    );
    assert_eq!(response.status, 200, "{response:?}");
    let report = response.json();
    assert_eq!(
        report["sources"],
        json!([{
            "source": "website",
            "leads": 3,
            "contacted_within_window": 0.0,
            "speed_to_lead_ms": {"p50": null, "p90": null},
            "leaked": 0,
            "booked": 0,
        }])
    );
    let departments: Vec<(String, u64)> = report["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["department"].as_str().unwrap().to_string(),
                d["leads"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        departments,
        [
            ("dermatology".to_string(), 1),
            ("orthopedics".to_string(), 1),
            ("urgent-care".to_string(), 1)
        ]
    );
    // Listed newest first, filtered by state.
    let waiting = daemon
        .get("/api/leads?state=waiting&limit=2", Some(TOKEN))
        .json();
    assert_eq!(waiting["leads"].as_array().unwrap().len(), 2);
    assert_eq!(waiting["leads"][0]["department"], "urgent-care");
    assert_eq!(daemon.get("/api/leads?state=lost", Some(TOKEN)).status, 400);
    assert_eq!(
        daemon.get("/api/leads?state=closed", Some(TOKEN)).json()["leads"],
        json!([])
    );
    assert_eq!(
        daemon
            .get("/api/reports/leads?from=yesterday", Some(TOKEN))
            .status,
        400
    );
}

#[test]
fn a_lead_names_the_same_patients_earlier_call_in_related() {
    let daemon = Launch::new().start();
    // A call from +13125550142 (RawCall's caller), answered by the IVR and
    // hung up, on the record before the lead comes.
    let audio = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let media = audio.local_addr().expect("its address");
    support::raw::RawCall::invite(&daemon, "+15550100", media, 1).ack_and_hang_up();
    let deadline = Instant::now() + Duration::from_secs(10);
    let call = loop {
        let calls = support::call::calls(&daemon);
        if let Some(call) = calls.iter().find(|c| c["outcome"] != "in_progress") {
            break call.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the call did not end: {calls:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The same patient writes, the number as typed in a form.
    let response = post(
        &daemon,
        &body("(312) 555-0142", "my knee hurts", "60605"),
        &Auth::website(),
        None,
    );
    assert_eq!(response.status, 201, "{response:?}");
    let lead = response.json()["lead"].clone();
    assert_eq!(lead["phone"], "+13125550142");
    assert_eq!(lead["related"], json!([call["id"]]), "{lead:#}");
    // Another patient's lead is related to nothing.
    let other = post(
        &daemon,
        &body(ANA, "my knee", "60605"),
        &Auth::website(),
        None,
    );
    assert_eq!(other.json()["lead"]["related"], json!([]));
}
