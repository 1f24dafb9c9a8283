//! Issue 26, part 3, end to end: CSV exports. A known lead (with an
//! injection attempt in its name and message) and a known call give exact
//! rows in `GET /api/leads?format=csv` and `GET /api/calls` with `Accept:
//! text/csv`: the named columns, times in the clinic's zone
//! (America/Chicago) with their offset, `from=`/`to=` bounding the rows,
//! and the formula-looking cells escaped with `'`. Each report answers
//! CSV under its named columns.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ivr::jiff::Timestamp;
use ivr::jiff::tz::TimeZone;
use serde_json::{Value, json};
use support::leads::{Auth, post};
use support::raw::RawCall;
use support::{Daemon, Launch, TOKEN};

const BOUND: Duration = Duration::from_secs(20);

/// `GET path` with the admin token and `accept`; the status, the
/// content type and the body.
fn get(daemon: &Daemon, path: &str, accept: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(daemon.http()).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n",
        daemon.http()
    )
    .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let response = support::http::parse_response(&raw).expect("a response");
    let kind = response.header("content-type").unwrap_or("").to_string();
    (response.status, kind, response.body)
}

/// The records of a CSV text: header first.
fn records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|record| {
            record
                .expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// An RFC 3339 time of the JSON, as the CSV writes it: Chicago's.
fn chicago(value: &Value) -> String {
    match value.as_str() {
        None => String::new(),
        Some(text) => text
            .parse::<Timestamp>()
            .expect("a time")
            .to_zoned_datetime(TimeZone::get("America/Chicago").expect("the zone"))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn range(from: Timestamp, to: Timestamp) -> String {
    format!("from={from}&to={to}")
}

#[test]
fn a_known_lead_and_call_are_exact_rows_and_an_injection_is_escaped() {
    let daemon = Launch::new().start();
    let before = Timestamp::now() - ivr::jiff::SignedDuration::from_secs(1);
    let lead_body = json!({
        "name": "=HYPERLINK(\"http://evil.example/x\",\"Click\")",
        "phone": "+13125550199",
        "email": null,
        "message": "@SUM(1+1) my knee hurts",
        "postal_code": "60605",
        "campaign": "fall-ortho",
        "consent": {"call": true},
    })
    .to_string();
    let response = post(&daemon, &lead_body, &Auth::website(), None);
    assert_eq!(response.status, 201, "{response:?}");
    let lead = response.json()["lead"].clone();
    let id = lead["id"].as_str().expect("an id").to_string();

    let media = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    RawCall::invite(
        &daemon,
        "+15550100",
        media.local_addr().expect("address"),
        1,
    )
    .ack_and_hang_up();
    let after = Timestamp::now() + ivr::jiff::SignedDuration::from_secs(1);

    // Leads, by ?format=csv.
    let (status, kind, body) = get(
        &daemon,
        &format!("/api/leads?format=csv&{}", range(before, after)),
        "*/*",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(kind, "text/csv; charset=utf-8");
    let rows = records(&body);
    assert_eq!(
        rows[0],
        [
            "id",
            "created_at",
            "kind",
            "source",
            "campaign",
            "name",
            "phone",
            "email",
            "message",
            "postal_code",
            "department",
            "intent",
            "emergency",
            "branch",
            "priority",
            "owner",
            "state",
            "outcome",
            "respond_by",
            "first_contact_at",
            "snoozed_until"
        ]
    );
    assert_eq!(rows.len(), 2, "{body}");
    // The lead as the desk may have moved it by now.
    let now = daemon.get(&format!("/api/leads/{id}"), Some(TOKEN)).json()["lead"].clone();
    let expected = [
        id.clone(),
        chicago(&lead["created_at"]),
        "web_form".into(),
        "website".into(),
        "fall-ortho".into(),
        "'=HYPERLINK(\"http://evil.example/x\",\"Click\")".into(),
        "+13125550199".into(),
        String::new(),
        "'@SUM(1+1) my knee hurts".into(),
        "60605".into(),
        "orthopedics".into(),
        "knee".into(),
        "false".into(),
        text(&lead["branch"]),
        "routine".into(),
        text(&now["owner"]),
        text(&now["state"]),
        String::new(),
        chicago(&lead["respond_by"]),
        String::new(),
        String::new(),
    ];
    assert_eq!(rows[1], expected);
    assert!(
        rows[1][1].ends_with("-06:00") || rows[1][1].ends_with("-05:00"),
        "Chicago's offset: {}",
        rows[1][1]
    );
    // Outside the range: no row.
    let (status, _, body) = get(
        &daemon,
        &format!("/api/leads?format=csv&{}", range(after, after)),
        "*/*",
    );
    assert_eq!((status, records(&body).len()), (200, 1), "{body}");

    // Calls, by Accept: text/csv, once the call's end is on record.
    let deadline = Instant::now() + BOUND;
    let rows = loop {
        let (status, kind, body) = get(
            &daemon,
            &format!("/api/calls?{}", range(before, after)),
            "text/csv",
        );
        assert_eq!(
            (status, kind.as_str()),
            (200, "text/csv; charset=utf-8"),
            "{body}"
        );
        let rows = records(&body);
        if rows.len() == 2 && !rows[1][13].is_empty() {
            break rows;
        }
        assert!(Instant::now() < deadline, "the call's row: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        rows[0],
        [
            "id",
            "started_at",
            "caller",
            "dialed",
            "source",
            "branch",
            "department",
            "priority",
            "agent",
            "outcome",
            "answered_at",
            "queued_at",
            "connected_at",
            "ended_at",
            "wait_ms",
            "talk_ms",
            "transfers",
            "sla_ms"
        ]
    );
    let call_id = rows[1][0].clone();
    let call = daemon
        .get(&format!("/api/calls/{call_id}"), Some(TOKEN))
        .json();
    let expected: Vec<String> = vec![
        call_id.clone(),
        chicago(&call["started_at"]),
        "+13125550142".into(),
        "+15550100".into(),
        "main-line".into(),
        text(&call["branch"]),
        String::new(),
        "routine".into(),
        String::new(),
        text(&call["outcome"]),
        chicago(&call["answered_at"]),
        String::new(),
        String::new(),
        chicago(&call["ended_at"]),
        String::new(),
        String::new(),
        "0".into(),
        String::new(),
    ];
    assert_eq!(rows[1], expected);
    assert_ne!(rows[1][9], "in_progress");

    // Each report under its columns.
    for (path, header) in [
        (
            "/api/reports/departments",
            "id,offered,connected,abandoned,abandonment_rate,time_to_connect_ms_p50,time_to_connect_ms_p90,within_sla,interrupted,callbacks_offered,callbacks_accepted,callbacks_refused,callbacks_completed,callbacks_failed",
        ),
        (
            "/api/reports/agents",
            "id,offered,answered,no_answer,busy,misses,talk_ms,interrupted",
        ),
        (
            "/api/reports/sources",
            "source,calls,offered,connected,abandoned,overflowed,rejected,after_hours,interrupted,in_progress,time_to_connect_ms_p50,time_to_connect_ms_p90",
        ),
        (
            "/api/reports/leads",
            "group,id,leads,contacted_within_window,speed_to_lead_ms_p50,speed_to_lead_ms_p90,leaked,booked",
        ),
    ] {
        let (status, kind, body) = get(
            &daemon,
            &format!("{path}?format=csv&{}", range(before, after)),
            "*/*",
        );
        assert_eq!(
            (status, kind.as_str()),
            (200, "text/csv; charset=utf-8"),
            "{path}: {body}"
        );
        assert_eq!(body.lines().next(), Some(header), "{path}");
    }
    let (_, _, body) = get(
        &daemon,
        &format!("/api/reports/leads?format=csv&{}", range(before, after)),
        "*/*",
    );
    assert!(
        records(&body)
            .iter()
            .any(|row| row[..3] == ["source".to_string(), "website".into(), "1".into()]),
        "{body}"
    );
    let (_, _, body) = get(
        &daemon,
        &format!("/api/reports/sources?format=csv&{}", range(before, after)),
        "*/*",
    );
    assert!(
        records(&body)
            .iter()
            .any(|row| row[..2] == ["main-line".to_string(), "1".into()]),
        "{body}"
    );
    // JSON stays the default, and a wrong format is refused.
    let (status, kind, _) = get(&daemon, "/api/calls", "*/*");
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    let (status, _, _) = get(&daemon, "/api/calls?format=xml", "*/*");
    assert_eq!(status, 400);
}
