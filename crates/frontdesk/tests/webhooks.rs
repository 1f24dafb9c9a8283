//! Issue 26, part 1, end to end: the CRM webhooks of `[[webhooks]]`.
//!
//! - A test receiver (a small HTTP server on loopback) gets each lead and
//!   call event (created, offered, owner changed, outcome, escalated,
//!   call ended), each with a valid `X-Frontdesk-Signature`.
//! - A receiver that is down gets the events it missed once it is back,
//!   including those queued before a restart of the daemon; the
//!   `webhook_failing` alert and `/metrics` show the backlog meanwhile.
//! - A receiver that takes 10 s to answer does not delay calls: each
//!   INVITE→200 is printed to the test's log (measured, not asserted).
//!
//! (`lead.contacted` needs a call out through a trunk: the journal's test
//! `crates/records/tests/webhooks.rs` covers its queuing.)

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sip::digest::{hex, hmac_sha256};
use support::call::{metric, open_clinic};
use support::http::request;
use support::leads::{Auth, body, post};
use support::raw::RawCall;
use support::{Daemon, Launch, TOKEN};

/// How long anything may take to show.
const BOUND: Duration = Duration::from_secs(30);
/// The webhook's secret in the test's dialplan.
const SECRET: &str = "test-webhook-secret-0123";

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    kind: String,
    delivery: String,
    signature_ok: bool,
    body: Value,
}

/// A CRM's endpoint: answers each POST 200 after `delay`, keeps what it
/// got; stopped, its port refuses connections.
struct Receiver {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, delay: Duration, hits: Arc<Mutex<Vec<Hit>>>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let addr = listener.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let hits = Arc::clone(&hits);
                std::thread::spawn(move || serve(stream, delay, &hits));
            }
        });
        Receiver {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/frontdesk", self.addr)
    }

    /// Closes the port (a connection wakes the accept loop).
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, delay: Duration, hits: &Mutex<Vec<Hit>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let hit = Hit {
        kind: header("x-frontdesk-event"),
        delivery: header("x-frontdesk-delivery"),
        signature_ok: verify(&header("x-frontdesk-signature"), &body),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    std::thread::sleep(delay);
    hits.lock().expect("not poisoned").push(hit);
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// The receiver's check: `t=<unix s>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<body>")>`, `t` within 5 minutes of now.
fn verify(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut macs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => macs.push(value.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let now = ivr::jiff::Timestamp::now().as_second();
    let expected = hex(&hmac_sha256(
        SECRET.as_bytes(),
        &[t.to_string().as_bytes(), b".", body],
    ));
    (now - t).abs() <= 300 && macs.contains(&expected)
}

/// The demo clinic, open, the website's windows shortened, and one
/// webhook `crm` to `url` hearing every kind.
fn clinic(dir: &Path, url: &str, respond_within: &str, timeout: &str) -> PathBuf {
    let respond = format!("respond_within = \"{respond_within}\"");
    let webhook = format!(
        "\n[[webhooks]]\nname = \"crm\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
         events = [\"lead.created\", \"lead.offered\", \"lead.owner_changed\", \"lead.contacted\", \
         \"lead.outcome\", \"lead.escalated\", \"call.ended\"]\n\
         timeout = \"{timeout}\"\nretry_initial = \"100ms\"\nretry_max = \"400ms\"\n"
    );
    open_clinic(dir, move |text| {
        let text = text
            .replacen("respond_within = \"5m\"", &respond, 1)
            .replacen("accept_within = \"2m\"", "accept_within = \"1m\"", 1);
        format!("{text}{webhook}")
    })
}

fn start(plan: &Path, data: &Path) -> Daemon {
    Launch::new()
        .dialplan(plan)
        .data(data)
        .args(["--webhook-poll", "50"])
        .start()
}

/// Waits until the receiver got what `wanted` looks for.
fn wait_hits(hits: &Mutex<Vec<Hit>>, what: &str, wanted: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
    let deadline = Instant::now() + BOUND;
    loop {
        let got = hits.lock().expect("not poisoned").clone();
        if wanted(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {BOUND:?}; got {:#?}",
            got.iter()
                .map(|h| (&h.kind, &h.delivery))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has(hits: &[Hit], kind: &str, lead: &str) -> bool {
    hits.iter()
        .any(|h| h.kind == kind && h.body["lead"]["id"] == lead)
}

/// A knee lead from `phone` (each post's body differs: a signature is
/// accepted once).
fn post_knee_lead(daemon: &Daemon, phone: &str) -> String {
    let response = post(
        daemon,
        &body(phone, &format!("my knee hurts ({phone})"), "60605"),
        &Auth::website(),
        None,
    );
    assert_eq!(response.status, 201, "{response:?}");
    response.json()["lead"]["id"]
        .as_str()
        .expect("an id")
        .to_string()
}

/// Dan (1004, orthopedics) signs in and keeps his agent page open.
fn dan_signs_in(daemon: &Daemon) -> (String, TcpStream) {
    let response = request(
        daemon.http(),
        "POST",
        "/agent/login",
        None,
        Some(&json!({"user": "1004", "password": "demo-1004"}).to_string()),
    )
    .expect("POST /agent/login");
    assert_eq!(response.status, 200, "{response:?}");
    let token = response.json()["token"]
        .as_str()
        .expect("a token")
        .to_string();
    let mut page = TcpStream::connect(daemon.http()).expect("connect");
    write!(
        page,
        "GET /agent/events HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
        daemon.http()
    )
    .expect("send");
    (token, page)
}

fn act(daemon: &Daemon, path: &str, token: &str, body: &str) {
    let response = request(daemon.http(), "POST", path, Some(token), Some(body)).expect("POST");
    assert_eq!(response.status, 200, "{path}: {response:?}");
}

fn a_short_call(daemon: &Daemon, n: usize) -> Duration {
    let media = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let started = Instant::now();
    let call = RawCall::invite(daemon, "+15550100", media.local_addr().expect("address"), n);
    let answered = started.elapsed();
    call.ack_and_hang_up();
    answered
}

#[test]
fn each_lead_and_call_event_reaches_the_receiver_signed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let hits = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Duration::ZERO, Arc::clone(&hits));
    let plan = clinic(dir.path(), &receiver.url(), "3s", "2s");
    let daemon = start(&plan, &dir.path().join("data"));
    let (token, _page) = dan_signs_in(&daemon);

    // A: offered to Dan, accepted, booked.
    let a = post_knee_lead(&daemon, "+13125550199");
    wait_hits(&hits, "A offered", |h| has(h, "lead.offered", &a));
    act(&daemon, &format!("/agent/leads/{a}/accept"), &token, "{}");
    act(
        &daemon,
        &format!("/agent/leads/{a}/outcome"),
        &token,
        r#"{"outcome":"booked"}"#,
    );
    // B: offered, never accepted: escalated after its 3 s.
    let b = post_knee_lead(&daemon, "+13125550198");
    // A call that ends.
    a_short_call(&daemon, 1);

    let got = wait_hits(&hits, "every kind", |h| {
        has(h, "lead.created", &a)
            && has(h, "lead.owner_changed", &a)
            && has(h, "lead.outcome", &a)
            && has(h, "lead.escalated", &b)
            && h.iter().any(|hit| hit.kind == "call.ended")
    });
    // Each body is what the OpenAPI document's `webhooks` says of its
    // kind (JSON Schema 2020-12; the event object closed).
    let document: Value = serde_json::from_str(&daemon.get("/api/openapi.json", Some(TOKEN)).body)
        .expect("the OpenAPI document");
    for hit in &got {
        assert!(hit.signature_ok, "a valid signature: {hit:?}");
        assert_eq!(hit.body["kind"], hit.kind.as_str(), "{hit:?}");
        assert_eq!(hit.body["id"], hit.delivery.as_str(), "{hit:?}");
        let schema = &document["webhooks"][hit.kind.as_str()]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert!(
            schema.is_object(),
            "{} is not in the document's webhooks",
            hit.kind
        );
        let root = json!({
            "components": document["components"],
            "allOf": [schema],
            "unevaluatedProperties": false,
        });
        let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&hit.body)
            .map(|error| format!("{error} at {}", error.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:?}\n{:#}",
            hit.kind,
            hit.body
        );
    }
    let find = |kind: &str, lead: &str| {
        got.iter()
            .find(|h| h.kind == kind && h.body["lead"]["id"] == lead)
            .expect("the event")
            .body
            .clone()
    };
    let created = find("lead.created", &a);
    assert_eq!(created["id"], format!("{a}.1"));
    assert_eq!(created["lead"]["source"], "website");
    assert_eq!(created["lead"]["department"], "orthopedics");
    assert_eq!(created["lead"]["phone"], "+13125550199");
    assert!(created["lead"]["respond_by"].is_string(), "{created}");
    assert_eq!(created["lead"]["owner"], Value::Null);
    let offered = find("lead.offered", &a);
    assert_eq!(
        (&offered["agent"], &offered["lead"]["owner"]),
        (&json!("1004"), &json!("1004"))
    );
    assert!(offered["detail"]["until"].is_i64(), "{offered}");
    let owner = find("lead.owner_changed", &a);
    assert_eq!(owner["lead"]["owner"], "1004");
    assert_eq!(owner["lead"]["state"], "accepted");
    let outcome = find("lead.outcome", &a);
    assert_eq!(outcome["lead"]["outcome"], "booked");
    assert_eq!(outcome["detail"]["outcome"], "booked");
    let escalated = find("lead.escalated", &b);
    assert_eq!(escalated["lead"]["state"], "escalated");
    let ended = got
        .iter()
        .find(|h| h.kind == "call.ended")
        .expect("call.ended")
        .body
        .clone();
    assert_eq!(ended["call"]["dialed"], "+15550100");
    assert_eq!(ended["call"]["source"], "main-line");
    assert!(ended["call"]["ended_at"].is_string(), "{ended}");
    assert!(ended["call"].get("owner").is_some(), "{ended}");
    let ids: BTreeSet<&str> = got.iter().map(|h| h.delivery.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "each event once: {ids:?}");
    assert!(
        metric(
            &daemon,
            "frontdesk_webhook_deliveries_total{webhook=\"crm\",result=\"delivered\"}"
        )
        .is_some_and(|n| n >= got.len() as f64),
        "{}",
        daemon.get("/metrics", None).body
    );
    let log = daemon.stderr();
    assert!(
        !log.contains("5550199") && !log.contains("5550198"),
        "the patients' numbers stay out of the log"
    );
    receiver.stop();
}

#[test]
fn a_receiver_that_was_down_gets_the_missed_events_also_across_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let hits = Arc::new(Mutex::new(Vec::new()));
    // A port that refuses: the receiver is down.
    let port = {
        let receiver = Receiver::start(0, Duration::ZERO, Arc::clone(&hits));
        let port = receiver.addr.port();
        receiver.stop();
        port
    };
    let url = format!("http://127.0.0.1:{port}/hooks/frontdesk");
    let plan = clinic(dir.path(), &url, "5m", "2s");
    let mut daemon = start(&plan, &data);
    let first = post_knee_lead(&daemon, "+13125550199");
    // The failure shows: an alert and the backlog.
    let deadline = Instant::now() + BOUND;
    loop {
        let alerts = daemon.get("/api/alerts", Some(TOKEN)).json();
        let failing = alerts["alerts"].as_array().is_some_and(|alerts| {
            alerts
                .iter()
                .any(|a| a["kind"] == "webhook_failing" && a["department"] == "webhook:crm")
        });
        let pending = metric(&daemon, "frontdesk_webhook_pending{webhook=\"crm\"}");
        if failing && pending.is_some_and(|n| n >= 1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no webhook_failing alert: {alerts}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        metric(
            &daemon,
            "frontdesk_webhook_deliveries_total{webhook=\"crm\",result=\"failed\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    // A restart: the events wait in the journal.
    daemon.terminate();
    drop(daemon);
    let daemon = start(&plan, &data);
    let second = post_knee_lead(&daemon, "+13125550198");
    assert!(hits.lock().expect("not poisoned").is_empty());
    // The receiver comes back on its port.
    let receiver = Receiver::start(port, Duration::ZERO, Arc::clone(&hits));
    let got = wait_hits(&hits, "both leads' creation", |h| {
        has(h, "lead.created", &first) && has(h, "lead.created", &second)
    });
    assert!(got.iter().all(|h| h.signature_ok), "{got:?}");
    // Delivered, the alert clears and nothing waits.
    let deadline = Instant::now() + BOUND;
    loop {
        let alerts = daemon.get("/api/alerts", Some(TOKEN)).json();
        let failing = alerts["alerts"]
            .as_array()
            .is_some_and(|alerts| alerts.iter().any(|a| a["kind"] == "webhook_failing"));
        let pending = metric(&daemon, "frontdesk_webhook_pending{webhook=\"crm\"}");
        if !failing && pending == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still failing or pending ({pending:?}): {alerts}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    receiver.stop();
}

#[test]
fn a_receiver_that_takes_ten_seconds_does_not_delay_calls() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let hits = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Duration::from_secs(10), Arc::clone(&hits));
    let plan = clinic(dir.path(), &receiver.url(), "5m", "15s");
    let daemon = start(&plan, &dir.path().join("data"));
    // Each call's end is an event the receiver holds for 10 s.
    let mut answers = Vec::new();
    for n in 1..=6 {
        answers.push(a_short_call(&daemon, n));
    }
    // Straight to stderr, past the test harness's capture, so that
    // tests/run's log keeps the figures.
    let mut log = std::io::stderr();
    for (n, answered) in answers.iter().enumerate() {
        let _ = writeln!(
            log,
            "webhooks: INVITE→200 of call {} with a 10 s receiver: {:.1} ms",
            n + 1,
            answered.as_secs_f64() * 1000.0
        );
    }
    // The receiver was being held meanwhile: the calls did not wait for it.
    let deadline = Instant::now() + BOUND;
    while metric(&daemon, "frontdesk_webhook_pending{webhook=\"crm\"}").is_none_or(|n| n < 1.0) {
        assert!(
            Instant::now() < deadline,
            "the call.ended events are queued"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        hits.lock().expect("not poisoned").len() < 6,
        "the receiver answers after 10 s, the calls were done before"
    );
    drop(daemon);
    receiver.stop();
}
