//! Issue 10 end to end: every call a lead in the journal, reports with
//! exact numbers, SIGKILL durability, a failing disk, the API's errors,
//! metrics names, pseudonyms in logs, and overload alerts (SLA with a
//! webhook; abandonment, also after a restart).

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use support::call::{open_clinic, wait_for_call};
use support::people::{
    STEP_BOUND, agent_phone, answering_agent, patient, press_when_heard, wait_agent_state,
};
use support::phone::RtpPeer;
use support::{Daemon, Launch, TOKEN};

fn daemon_with(tweak: impl Fn(String) -> String, args: &[&str]) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), tweak);
    let daemon = Launch::new()
        .dialplan(plan)
        .args(args.iter().copied())
        .start();
    (dir, daemon)
}

/// Dermatology tells callers to call back after 2 s instead of moving
/// them to the front desk after 90 s.
fn impatient_dermatology(text: String) -> String {
    text.replacen(
        "strategy = \"fewest-calls\"\nring_timeout = \"15s\"\nwrap_up = \"2s\"\nmax_wait = \"90s\"\non_max_wait = { queue = \"front-desk\" }",
        "strategy = \"fewest-calls\"\nring_timeout = \"15s\"\nwrap_up = \"2s\"\nmax_wait = \"2s\"\non_max_wait = { message = \"prompts/call-back-later.wav\" }",
        1,
    )
}

fn report(daemon: &Daemon, query: &str) -> Vec<Value> {
    let response = daemon.get(&format!("/api/reports/departments{query}"), Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    body["departments"]
        .as_array()
        .cloned()
        .expect("departments")
}

fn department<'a>(reports: &'a [Value], id: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {reports:#?}"))
}

#[test]
fn a_scripted_morning_gives_exact_report_numbers() {
    let (_dir, daemon) = daemon_with(impatient_dermatology, &[]);
    let started = ivr::jiff::Timestamp::now() - ivr::jiff::SignedDuration::from_secs(1);

    // A: pediatrics, Carol answers: connected.
    let carol_audio = RtpPeer::start(0, false);
    let carol = answering_agent(&daemon, "1003", &carol_audio);
    wait_agent_state(&daemon, "1003", "available");
    let a_audio = RtpPeer::start(0, false);
    let a = patient(&daemon, "caller.xml", "+15550100", &a_audio, 3000);
    press_when_heard(&a_audio, '3');
    // B: cardiology with nobody signed in, hangs up: abandoned.
    let b_audio = RtpPeer::start(0, false);
    let b = patient(&daemon, "caller.xml", "+15550100", &b_audio, 2500);
    press_when_heard(&b_audio, '2');
    // C: dermatology, told to call back after its 2 s max wait: overflowed.
    let c_audio = RtpPeer::start(0, false);
    let c = patient(&daemon, "caller-hungup.xml", "+15550100", &c_audio, 0);
    press_when_heard(&c_audio, '4');
    a.join().expect("A").assert_all_succeeded(1);
    b.join().expect("B").assert_all_succeeded(1);
    c.join().expect("C").assert_all_succeeded(1);
    carol.join().expect("Carol").assert_all_succeeded(1);

    // D: the front desk (Alice) transfers to cardiology (Bob): transferred,
    // then connected there.
    let alice_audio = RtpPeer::start(0, false);
    let alice = agent_phone(
        &daemon,
        "1001",
        "agent-transfer.xml",
        &[
            "-set",
            "rtp_port",
            &alice_audio.port().to_string(),
            "-set",
            "target",
            "cardiology",
        ]
        .map(String::from),
    );
    let bob_audio = RtpPeer::start(0, false);
    let bob = answering_agent(&daemon, "1002", &bob_audio);
    wait_agent_state(&daemon, "1001", "available");
    wait_agent_state(&daemon, "1002", "available");
    let d_audio = RtpPeer::start(0, false);
    let d = patient(&daemon, "caller.xml", "+15550100", &d_audio, 6000);
    press_when_heard(&d_audio, '1');
    wait_for_call(&daemon, STEP_BOUND, |call| call["agent"] == "1002");
    d.join().expect("D").assert_all_succeeded(1);
    alice.join().expect("Alice").assert_all_succeeded(1);
    bob.join().expect("Bob").assert_all_succeeded(1);

    // Four calls, each ended, in the journal.
    let deadline = Instant::now() + STEP_BOUND;
    let outcomes = loop {
        let response = daemon.get("/api/calls?limit=10", Some(TOKEN));
        let calls: Value = serde_json::from_str(&response.body).expect("JSON");
        let mut outcomes: Vec<String> = calls["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .map(|c| c["outcome"].as_str().unwrap_or("").to_string())
            .collect();
        outcomes.sort();
        if !outcomes.iter().any(|o| o == "in_progress") && outcomes.len() == 4 {
            break outcomes;
        }
        assert!(Instant::now() < deadline, "{calls:#}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        outcomes,
        vec!["abandoned", "connected", "connected", "overflowed"]
    );

    let range = format!(
        "?from={}&to={}",
        started,
        ivr::jiff::Timestamp::now() + ivr::jiff::SignedDuration::from_secs(1)
    );
    let reports = report(&daemon, &range);
    let counts = |id: &str| {
        let r = department(&reports, id);
        (
            r["offered"].clone(),
            r["connected"].clone(),
            r["abandoned"].clone(),
            r["abandonment_rate"].clone(),
            r["within_sla"].clone(),
        )
    };
    // Every queue a call entered counts it offered; connected and abandoned
    // count where that happened.
    assert_eq!(
        counts("pediatrics"),
        (json!(1), json!(1), json!(0), json!(0.0), json!(1.0))
    );
    assert_eq!(
        counts("cardiology"),
        (json!(2), json!(1), json!(1), json!(0.5), json!(0.5))
    );
    assert_eq!(
        counts("dermatology"),
        (json!(1), json!(0), json!(0), json!(0.0), json!(0.0))
    );
    assert_eq!(
        counts("front-desk"),
        (json!(1), json!(1), json!(0), json!(0.0), json!(1.0))
    );
    assert_eq!(
        counts("orthopedics"),
        (json!(0), json!(0), json!(0), json!(0.0), json!(0.0))
    );
    for id in ["pediatrics", "cardiology", "front-desk"] {
        let p = &department(&reports, id)["time_to_connect_ms"];
        assert!(p["p50"].is_u64() && p["p90"].is_u64(), "{id}: {p}");
    }
    assert_eq!(
        department(&reports, "dermatology")["time_to_connect_ms"],
        json!({"p50": null, "p90": null})
    );
    // A range before the calls has none of them.
    let empty = report(
        &daemon,
        "?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
    );
    assert!(empty.iter().all(|r| r["offered"] == 0), "{empty:#?}");
}

#[test]
fn sigkill_loses_no_call_that_ended_a_second_before() {
    let (_dir, mut daemon) = daemon_with(|text| text, &[]);
    support::sipp::Sipp::new("caller-404.xml", daemon.sip())
        .calls(3)
        .args(["-s", "+19995550000"])
        .run()
        .assert_all_succeeded(3);
    let audio = RtpPeer::start(0, false);
    // Past the 4.7 s emergency notice, into the urgent-care queue.
    patient(&daemon, "caller.xml", "+15550111", &audio, 5500)
        .join()
        .expect("patient")
        .assert_all_succeeded(1);
    // The requirement's "more than a second before": the only sleep here.
    std::thread::sleep(Duration::from_millis(1500));
    daemon.stop_with(Signal::SIGKILL);
    let reader =
        records::Reader::open(daemon.data_dir().join("journal.db")).expect("the journal opens");
    let calls = reader.recent_calls(10).expect("calls");
    let outcomes: Vec<&str> = calls
        .iter()
        .map(|c| c.outcome.map_or("in_progress", |o| o.as_str()))
        .collect();
    assert_eq!(calls.len(), 4, "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| **o == "rejected").count(),
        3,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&"abandoned"), "{outcomes:?}");
    let urgent = calls
        .iter()
        .find(|c| c.dialed == "+15550111")
        .expect("the urgent-care call");
    assert_eq!(urgent.department.as_deref(), Some("urgent-care"));
}

#[test]
fn a_failing_disk_does_not_stop_calls_and_the_loss_is_counted() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new()
        .dialplan(plan)
        .env("FRONTDESK_TEST_JOURNAL_FAULT", "fail")
        .start();
    let audio = RtpPeer::start(0, false);
    patient(&daemon, "caller.xml", "+15550100", &audio, 1000)
        .join()
        .expect("patient")
        .assert_all_succeeded(1);
    // The call itself is fine (and listed from memory)...
    let call = wait_for_call(&daemon, STEP_BOUND, |call| call["outcome"] != "in_progress");
    assert_eq!(call["outcome"], "abandoned");
    // ...and the lost journal entries are counted and logged.
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let metrics = daemon.get("/metrics", None).body;
        let failed = metrics
            .lines()
            .find(|l| l.starts_with("frontdesk_journal_failed_total "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if failed > 0.0 && metrics.contains("frontdesk_journal_failing 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.wait_for_log(
        |line| line.contains("journal") && line.contains("WARN"),
        STEP_BOUND,
    );
}

#[test]
fn the_api_refuses_bad_requests_in_its_error_shape() {
    let (_dir, daemon) = daemon_with(|text| text, &[]);
    let error = |path: &str, token: Option<&str>, status: u16| {
        let response = daemon.get(path, token);
        assert_eq!(response.status, status, "{path}: {response:?}");
        let body: Value = serde_json::from_str(&response.body).expect("JSON");
        assert!(body["error"].is_string(), "{path}: {body}");
    };
    for path in [
        "/api/calls",
        "/api/calls/c-1",
        "/api/queues",
        "/api/reports/departments",
        "/api/reports/agents",
        "/api/reports/sources",
        "/api/alerts",
    ] {
        error(path, None, 401);
        error(path, Some("wrong"), 401);
    }
    error("/api/reports/departments?from=yesterday", Some(TOKEN), 400);
    error(
        "/api/reports/departments?from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z",
        Some(TOKEN),
        400,
    );
    error("/api/calls?limit=0", Some(TOKEN), 400);
    error("/api/calls?limit=many", Some(TOKEN), 400);
    error("/api/calls/c-nope", Some(TOKEN), 404);
    let reload =
        support::http::request(daemon.http(), "POST", "/api/reload", None, None).expect("POST");
    assert_eq!(reload.status, 401);
    let unknown = support::http::request(
        daemon.http(),
        "PUT",
        "/api/agents/1003/state",
        Some(TOKEN),
        Some("{not json"),
    )
    .expect("PUT");
    assert_eq!(unknown.status, 400, "{unknown:?}");
}

#[test]
fn metrics_cover_calls_queues_agents_sip_rtp_routing_and_the_journal() {
    let (_dir, daemon) = daemon_with(|text| text, &[]);
    let carol_audio = RtpPeer::start(0, false);
    let carol = answering_agent(&daemon, "1003", &carol_audio);
    wait_agent_state(&daemon, "1003", "available");
    let audio = RtpPeer::start(0, false);
    let call = patient(&daemon, "caller.xml", "+15550100", &audio, 1500);
    press_when_heard(&audio, '3');
    call.join().expect("patient").assert_all_succeeded(1);
    carol.join().expect("Carol").assert_all_succeeded(1);
    let names = [
        "frontdesk_up ",
        "frontdesk_calls_active ",
        "frontdesk_calls_total{outcome=\"connected\"}",
        "frontdesk_queue_waiting{queue=\"pediatrics\"}",
        "frontdesk_agents{state=\"",
        "frontdesk_sip_requests_total{direction=\"in\",method=\"INVITE\"}",
        "frontdesk_sip_responses_total{direction=\"out\",code=\"200\"}",
        "frontdesk_rtp_packets_sent_total{leg=\"caller\"}",
        "frontdesk_rtp_packets_lost_total{leg=\"agent\"}",
        "frontdesk_routing_decision_seconds",
        "frontdesk_journal_backlog ",
        "frontdesk_journal_dropped_total ",
        "frontdesk_rtp_ports_leased ",
    ];
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let metrics = daemon.get("/metrics", None).body;
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !metrics.contains(n))
            .collect();
        if missing.is_empty() {
            // No patient data in metrics.
            assert!(!metrics.contains("3125550142"), "{metrics}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing {missing:?} in\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn patients_numbers_are_pseudonyms_in_logs_unless_an_operator_opts_in() {
    for reveal in [false, true] {
        let args: &[&str] = if reveal {
            &["--log-patient-numbers"]
        } else {
            &[]
        };
        let (_dir, daemon) = daemon_with(|text| text, args);
        let audio = RtpPeer::start(0, false);
        patient(&daemon, "caller.xml", "+15550100", &audio, 300)
            .join()
            .expect("patient")
            .assert_all_succeeded(1);
        daemon.wait_for_log(|line| line.contains("call ended"), STEP_BOUND);
        let log = daemon.stderr();
        if reveal {
            assert!(log.contains("caller=+13125550142"), "{log}");
        } else {
            assert!(!log.contains("3125550142"), "the number leaked:\n{log}");
            let pseudonym = log
                .split("caller=")
                .nth(1)
                .map(|rest| rest.chars().take(12).collect::<String>())
                .expect("a caller field");
            assert!(pseudonym.starts_with("p-"), "{pseudonym}");
        }
    }
}

/// A local webhook receiver: every POST body, in order.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut raw = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&raw);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        if let Ok(json) = serde_json::from_str::<Value>(&body[..length]) {
                            seen.lock().expect("not poisoned").push(json);
                        }
                        let _ = stream
                            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
                        break;
                    }
                }
            }
        }
    });
    (url, bodies)
}

#[test]
fn an_sla_alert_fires_and_clears_and_the_webhook_hears_both() {
    let (url, posted) = webhook();
    let (_dir, daemon) = daemon_with(
        |text| {
            text.replacen(
                "max_wait = \"90s\"\non_max_wait = { queue = \"front-desk\" }\nsla = \"60s\"",
                "max_wait = \"90s\"\non_max_wait = { queue = \"front-desk\" }\nsla = \"1s\"",
                1,
            )
        },
        &["--alert-webhook", &url],
    );
    // Cardiology's SLA is now 1 s and nobody answers there.
    let audio = RtpPeer::start(0, false);
    let call = patient(&daemon, "caller.xml", "+15550100", &audio, 5000);
    press_when_heard(&audio, '2');
    let deadline = Instant::now() + STEP_BOUND;
    let alert = loop {
        let body: Value =
            serde_json::from_str(&daemon.get("/api/alerts", Some(TOKEN)).body).expect("JSON");
        if let Some(alert) = body["alerts"].as_array().and_then(|a| a.first()).cloned() {
            break alert;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (&alert["department"], &alert["kind"]),
        (&json!("cardiology"), &json!("sla"))
    );
    assert!(
        alert["since"].is_string() && alert["detail"].as_str().unwrap_or("").contains("SLA 1 s"),
        "{alert}"
    );
    call.join().expect("patient").assert_all_succeeded(1);
    // The caller left: the alert clears.
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let body: Value =
            serde_json::from_str(&daemon.get("/api/alerts", Some(TOKEN)).body).expect("JSON");
        let states: Vec<Value> = posted
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|b| b["state"].clone())
            .collect();
        if body["alerts"].as_array().is_some_and(Vec::is_empty)
            && states == vec![json!("raised"), json!("cleared")]
        {
            break;
        }
        assert!(Instant::now() < deadline, "{body} {states:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let posts = posted.lock().expect("not poisoned").clone();
    assert_eq!(posts[0]["department"], "cardiology");
    assert_eq!(posts[0]["kind"], "sla");
    daemon.wait_for_log(|line| line.contains("alert raised"), STEP_BOUND);
    daemon.wait_for_log(|line| line.contains("alert cleared"), STEP_BOUND);
}

/// The first active alert of `kind`, waiting for it up to [`STEP_BOUND`].
fn wait_for_alert(daemon: &Daemon, kind: &str) -> Value {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let body: Value =
            serde_json::from_str(&daemon.get("/api/alerts", Some(TOKEN)).body).expect("JSON");
        let found = body["alerts"]
            .as_array()
            .and_then(|alerts| alerts.iter().find(|a| a["kind"] == kind).cloned());
        if let Some(alert) = found {
            return alert;
        }
        assert!(Instant::now() < deadline, "no {kind} alert: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_abandonment_alert_is_raised_and_comes_back_after_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let data = dir.path().join("data");
    let launch = || {
        Launch::new()
            .dialplan(plan.clone())
            .data(data.clone())
            .start()
    };
    let mut daemon = launch();
    // Four callers to urgent care, where nobody is signed in: past the
    // 4.7 s emergency notice into the queue, where each hangs up.
    let peers: Vec<RtpPeer> = (0..4).map(|_| RtpPeer::start(0, false)).collect();
    let calls: Vec<_> = peers
        .iter()
        .map(|peer| patient(&daemon, "caller.xml", "+15550111", peer, 5500))
        .collect();
    for call in calls {
        call.join().expect("patient").assert_all_succeeded(1);
    }
    let alert = wait_for_alert(&daemon, "abandonment");
    assert_eq!(alert["department"], "urgent-care", "{alert}");
    assert!(
        alert["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("4 of 4 callers abandoned in the last 15 min")),
        "{alert}"
    );
    assert!(daemon.terminate().success());
    // A new process, no new call: the waits that ended before the restart
    // still count (read from the journal once, at start).
    let daemon = launch();
    let alert = wait_for_alert(&daemon, "abandonment");
    assert_eq!(alert["department"], "urgent-care", "{alert}");
    assert!(
        alert["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("4 of 4 callers abandoned")),
        "{alert}"
    );
}

/// Issue 18: a daemon killed (SIGKILL) with one call talking to an agent
/// and one waiting in a queue, restarted on the same `--data`: both calls
/// are `interrupted` (not abandoned) in `/api/calls` and in the reports,
/// and the agent who had the call is available again.
#[test]
fn calls_up_when_the_daemon_is_killed_are_interrupted_after_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let data = dir.path().join("data");
    let launch = || {
        Launch::new()
            .dialplan(plan.clone())
            .data(data.clone())
            .start()
    };
    let mut daemon = launch();
    let (pids, sipp_pids) = std::sync::mpsc::channel();

    // Carol (1003, pediatrics) answers.
    let agent_audio = RtpPeer::start(0, false);
    let agent_port = support::call::free_udp_port();
    let agent = {
        let sip = daemon.sip();
        let args = [
            "-p".to_string(),
            agent_port.to_string(),
            "-d".into(),
            "0".into(),
            "-set".into(),
            "rtp_port".into(),
            agent_audio.port().to_string(),
        ];
        let pids = pids.clone();
        std::thread::spawn(move || {
            support::sipp::Sipp::new("agent.xml", sip)
                .calls(1)
                .args(args)
                .pid_to(pids)
                .run()
        })
    };
    support::people::wait_port_taken(agent_port);
    support::phone::register(daemon.sip(), "1003", agent_port, 3600);
    wait_agent_state(&daemon, "1003", "available");
    // Her binding is on disk before the daemon dies (written once a second).
    let bindings = data.join("bindings.json");
    let deadline = Instant::now() + STEP_BOUND;
    while !std::fs::read_to_string(&bindings).is_ok_and(|text| text.contains("1003")) {
        assert!(
            Instant::now() < deadline,
            "1003's binding never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A patient presses 3 and talks to Carol; another waits in urgent care,
    // where nobody is signed in. Both would stay on for a minute.
    let caller = |number: &'static str, peer: &RtpPeer| {
        let sip = daemon.sip();
        let args = [
            "-s".to_string(),
            number.into(),
            "-set".into(),
            "rtp_port".into(),
            peer.port().to_string(),
            "-set".into(),
            "dtmf".into(),
            "0".into(),
            "-d".into(),
            "50000".into(),
        ];
        let pids = pids.clone();
        std::thread::spawn(move || {
            support::sipp::Sipp::new("caller.xml", sip)
                .calls(1)
                .args(args)
                .pid_to(pids)
                .run()
        })
    };
    let talking_audio = RtpPeer::start(0, false);
    let talking = caller("+15550100", &talking_audio);
    press_when_heard(&talking_audio, '3');
    wait_agent_state(&daemon, "1003", "on_call");
    let waiting_audio = RtpPeer::start(0, false);
    let waiting = caller("+15550111", &waiting_audio);
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let queues: Value =
            serde_json::from_str(&daemon.get("/api/queues", Some(TOKEN)).body).expect("JSON");
        let urgent = queues["queues"]
            .as_array()
            .and_then(|queues| queues.iter().find(|q| q["id"] == "urgent-care"))
            .map_or(0, |queue| queue["waiting"].as_u64().unwrap_or(0));
        if urgent == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the second caller never queued");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Both steps are on disk (the writer commits every 50 ms): read back
    // from the file, as the restarted daemon will.
    let reader = records::Reader::open(data.join("journal.db")).expect("the journal opens");
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let rows = reader.recent_calls(10).expect("calls");
        let on_disk = |dialed: &str, department: &str| {
            rows.iter()
                .any(|row| row.dialed == dialed && row.department.as_deref() == Some(department))
        };
        let connected = rows.iter().any(|row| row.agent.as_deref() == Some("1003"));
        if connected && on_disk("+15550100", "pediatrics") && on_disk("+15550111", "urgent-care") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the calls never reached the journal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    daemon.stop_with(Signal::SIGKILL);
    let daemon = launch();

    let calls = support::call::calls(&daemon);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let call = |dialed: &str| {
        calls
            .iter()
            .find(|c| c["dialed"] == dialed)
            .unwrap_or_else(|| panic!("no call to {dialed}: {calls:#?}"))
    };
    let talked = call("+15550100");
    assert_eq!(talked["outcome"], "interrupted", "{talked}");
    assert_eq!(talked["department"], "pediatrics");
    assert_eq!(talked["agent"], "1003");
    assert!(talked["ended_at"].is_string(), "{talked}");
    let waited = call("+15550111");
    assert_eq!(waited["outcome"], "interrupted", "{waited}");
    assert_eq!(waited["department"], "urgent-care");

    let departments = report(&daemon, "");
    for id in ["pediatrics", "urgent-care"] {
        let department = department(&departments, id);
        assert_eq!(department["interrupted"], 1, "{department}");
        assert_eq!(department["abandoned"], 0, "{department}");
    }
    let agents: Value =
        serde_json::from_str(&daemon.get("/api/reports/agents", Some(TOKEN)).body).expect("JSON");
    let carol = agents["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == "1003"))
        .cloned()
        .expect("1003 in the agents' report");
    assert_eq!(carol["interrupted"], 1, "{carol}");
    let sources: Value =
        serde_json::from_str(&daemon.get("/api/reports/sources", Some(TOKEN)).body).expect("JSON");
    for source in sources["sources"].as_array().expect("sources") {
        assert_eq!(source["interrupted"], 1, "{source}");
        assert_eq!(source["abandoned"], 0, "{source}");
        assert_eq!(source["in_progress"], 0, "{source}");
    }
    // Carol is free: registered from her stored binding, and available.
    wait_agent_state(&daemon, "1003", "available");

    // The SIPp phones of the killed daemon's calls: ours, stopped by id.
    drop(pids);
    for pid in sipp_pids.try_iter() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits i32")),
            Signal::SIGKILL,
        );
    }
    for phone in [agent, talking, waiting] {
        let _ = phone.join();
    }
}
