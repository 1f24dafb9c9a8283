//! The dashboard and the agent view in a real headless Chromium (Debian's
//! `chromium`, driven over the DevTools protocol: `support/browser.rs`),
//! with calls placed by SIPp against the real daemon (and, for
//! click-to-call, a SIPp carrier trunk); and their HTTP contract (the event
//! stream's token, agents' sign-in, sessions).
//!
//! Screenshots are saved as test artifacts in `target/test-artifacts/`:
//! `dashboard.png` (desktop), `dashboard-phone.png` (390 px wide),
//! `agent.png`, `dashboard-leads.png`, `agent-lead.png` and
//! `agent-lead-call.png`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{Browser, DESKTOP, PHONE};
use support::call::{calls, free_udp_port, open_clinic, wait_for_call, with_carrier_trunk};
use support::http::request;
use support::people::{
    agent, answering_agent, patient, press_when_heard, sipp_phone, wait_agent_state,
};
use support::phone::{FILL, RtpPeer};
use support::{Daemon, Launch, TOKEN};

/// How long the page may take to show what happened (it is pushed every
/// second; calls take their own time).
const BOUND: Duration = Duration::from_secs(30);
/// The caller number of `tests/sipp/caller.xml`.
const CALLER: &str = "+13125550142";

/// Where screenshots go: `target/test-artifacts/`.
fn artifacts() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or(tmp.clone(), |target| target.join("test-artifacts"))
}

/// The demo clinic, open at any hour.
fn open_daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    json!(text).to_string()
}

/// The text of `selector`'s first match (`''` if none).
fn text_of(selector: &str) -> String {
    format!(
        "(document.querySelector({0}) || {{textContent: ''}}).textContent.trim()",
        js(selector)
    )
}

/// Asserts `png` is a PNG image `width` pixels wide.
fn assert_png(png: &[u8], width: u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let actual = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(actual, width, "PNG width");
    assert!(
        png.len() > 10_000,
        "a PNG of {} bytes is too small to show anything",
        png.len()
    );
}

/// Asserts the page reported nothing but the 401 that refused credentials
/// typed in on purpose (Chromium logs every failed request).
fn assert_only_refusals(errors: Vec<String>, path: &str) {
    assert!(!errors.is_empty(), "the refusal was not even logged?");
    for error in errors {
        assert!(error.contains("401") && error.contains(path), "{error}");
    }
}

#[test]
fn calls_placed_with_sipp_appear_on_the_live_dashboard() {
    let (_dir, mut daemon) = open_daemon();
    let base = format!("http://{}", daemon.http());
    let mut browser = Browser::launch(DESKTOP);

    // Without a token the page asks for one, and refuses a wrong one.
    browser.open(&format!("{base}/"));
    browser.wait_for("!document.getElementById('sign-in').hidden", BOUND);
    browser.type_into("#token", "not-the-token");
    browser.click("#token-form button[type=submit]");
    browser.wait_for(
        &format!("{}.includes('refused')", text_of("#token-error")),
        BOUND,
    );
    assert_eq!(
        browser.evaluate("sessionStorage.getItem('frontdesk.adminToken')"),
        Value::Null
    );
    assert_only_refusals(browser.take_errors(), "/api/events");

    // The demo's link carries the token once: kept in the tab, gone from
    // the address bar, and a reload needs it no more.
    browser.open(&format!("{base}/?token={TOKEN}"));
    browser.wait_for("document.body.dataset.connection === 'live'", BOUND);
    assert_eq!(browser.evaluate("location.href"), json!(format!("{base}/")));
    assert_eq!(
        browser.evaluate("sessionStorage.getItem('frontdesk.adminToken')"),
        json!(TOKEN)
    );
    browser.open(&format!("{base}/"));
    browser.wait_for("document.body.dataset.connection === 'live'", BOUND);
    browser.wait_for(
        &format!("{} === 'Riverside Family Health'", text_of("#clinic")),
        BOUND,
    );
    assert_eq!(
        browser.evaluate("document.querySelectorAll('#agents tbody tr[data-agent]').length"),
        json!(7)
    );
    assert_eq!(
        browser
            .evaluate("document.querySelectorAll('#departments tbody tr[data-department]').length"),
        json!(7)
    );

    // Carol's phone signs in: the page shows her available.
    let carol_audio = RtpPeer::start(0, false);
    let carol = answering_agent(&daemon, "1003", &carol_audio);
    browser.wait_for(
        "document.querySelector('#agents tr[data-agent=\"1003\"]').dataset.state === 'available'",
        BOUND,
    );
    browser.wait_for(
        "document.querySelector('#agents-by-state [data-state=available]').dataset.count === '1'",
        BOUND,
    );

    // A patient presses 2: cardiology has nobody, so they wait there.
    let waiting_audio = RtpPeer::start(0, false);
    let waiting = patient(&daemon, "caller.xml", "+15550100", &waiting_audio, 12_000);
    press_when_heard(&waiting_audio, '2');
    browser.wait_for(
        &format!(
            "{} === '1'",
            text_of("#departments tr[data-department=cardiology] .waiting")
        ),
        BOUND,
    );
    browser.wait_for(&format!("{} === '1'", text_of("#total-waiting")), BOUND);
    browser.wait_for(
        "document.querySelector('#calls tr[data-outcome=in_progress] .department[data-department=cardiology]')",
        BOUND,
    );

    // Another presses 3: Carol answers; the page shows her on the call.
    let talking_audio = RtpPeer::start(0, false);
    let talking = patient(&daemon, "caller.xml", "+15550100", &talking_audio, 3_000);
    press_when_heard(&talking_audio, '3');
    browser.wait_for(
        "document.querySelector('#agents tr[data-agent=\"1003\"]').dataset.state === 'on_call'",
        BOUND,
    );
    talking
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    carol.join().expect("agent phone").assert_all_succeeded(1);
    waiting
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    wait_for_call(&daemon, BOUND, |call| call["outcome"] != "in_progress");

    // Both calls, with their owner and outcome, and today's figures.
    let connected_row = "#calls tr[data-outcome=connected]:has(.department[data-department=pediatrics]):has(.owner[data-agent=\"1003\"])";
    browser.wait_for(
        &format!("document.querySelector({})", js(connected_row)),
        BOUND,
    );
    assert_eq!(
        browser.evaluate(&text_of(&format!("{connected_row} .caller"))),
        json!(CALLER)
    );
    assert!(
        browser
            .evaluate(&text_of(&format!("{connected_row} .owner")))
            .as_str()
            .is_some_and(|owner| owner.contains("Carol")),
    );
    browser.wait_for(
        "document.querySelector('#calls tr[data-outcome=abandoned] .department[data-department=cardiology]')",
        BOUND,
    );
    browser.wait_for(&format!("{} === '1'", text_of("#connected-today")), BOUND);
    browser.wait_for(&format!("{} === '1'", text_of("#abandoned-today")), BOUND);
    browser.wait_for(&format!("{} === '2'", text_of("#calls-today")), BOUND);
    browser.wait_for(
        &format!(
            "{} === '1'",
            text_of("#departments tr[data-department=pediatrics] .connected")
        ),
        BOUND,
    );
    browser.wait_for(
        &format!(
            "{} === '1'",
            text_of("#departments tr[data-department=cardiology] .abandoned")
        ),
        BOUND,
    );
    browser.wait_for(
        &format!(
            "{} === '0'",
            text_of("#departments tr[data-department=cardiology] .waiting")
        ),
        BOUND,
    );
    let time_to_connect =
        browser.evaluate(&text_of("#departments tr[data-department=pediatrics] .ttc"));
    assert!(
        time_to_connect
            .as_str()
            .is_some_and(|ttc| ttc.ends_with(" s") && !ttc.contains('–')),
        "p50 / p90 shown: {time_to_connect}"
    );
    assert_eq!(
        browser.evaluate(&text_of("#departments tr[data-department=pediatrics] .sla")),
        json!("100 %")
    );
    // The cardiology caller waited ~10 s: the last hour's chart saw them.
    browser.wait_for(
        "Number(document.getElementById('chart').dataset.peak) >= 1",
        BOUND,
    );

    // The page lists exactly what the API lists, owner and outcome alike.
    let mut from_api: Vec<(String, String, String)> = calls(&daemon)
        .iter()
        .map(|call| {
            (
                call["id"].as_str().unwrap_or_default().to_string(),
                call["outcome"].as_str().unwrap_or_default().to_string(),
                call["agent"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut on_page: Vec<(String, String, String)> = serde_json::from_value(browser.evaluate(
        "[...document.querySelectorAll('#calls tbody tr[data-call]')].map(r => \
         [r.dataset.call, r.dataset.outcome, r.querySelector('.owner').dataset.agent])",
    ))
    .expect("rows");
    from_api.sort();
    on_page.sort();
    assert_eq!(on_page, from_api);
    assert_eq!(on_page.len(), 2);

    let desktop = browser.screenshot(&artifacts().join("dashboard.png"));
    assert_png(&desktop, DESKTOP.width);

    // On a phone: one column, nothing wider than the screen (wide tables
    // scroll inside their card).
    browser.set_viewport(PHONE);
    browser.wait_for(
        "document.documentElement.scrollWidth <= window.innerWidth",
        BOUND,
    );
    let phone = browser.screenshot(&artifacts().join("dashboard-phone.png"));
    assert_png(&phone, PHONE.width);

    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );

    // An open dashboard does not hold up the daemon's shutdown.
    let stopping = Instant::now();
    assert!(daemon.terminate().success());
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "the daemon took {:?} to stop with a dashboard open",
        stopping.elapsed()
    );
    browser.wait_for("document.body.dataset.connection !== 'live'", BOUND);
}

#[test]
fn an_agent_signs_in_goes_away_and_back_and_the_api_agrees() {
    let (_dir, daemon) = open_daemon();
    let base = format!("http://{}", daemon.http());
    let carol_audio = RtpPeer::start(0, false);
    let carol = answering_agent(&daemon, "1003", &carol_audio);
    wait_agent_state(&daemon, "1003", "available");

    // Someone else's call: cardiology, abandoned. Carol must never see it.
    let other_audio = RtpPeer::start(0, false);
    let other = patient(&daemon, "caller.xml", "+15550100", &other_audio, 500);
    press_when_heard(&other_audio, '2');
    other.join().expect("caller thread").assert_all_succeeded(1);
    let other_call = wait_for_call(&daemon, BOUND, |call| call["outcome"] == "abandoned");

    let mut browser = Browser::launch(PHONE);
    browser.open(&format!("{base}/agent"));
    browser.wait_for("!document.getElementById('sign-in').hidden", BOUND);
    browser.type_into("#user", "1003");
    browser.type_into("#password", "not-my-password");
    browser.click("#login-form button[type=submit]");
    browser.wait_for(
        &format!("{} === 'Wrong user or password.'", text_of("#login-error")),
        BOUND,
    );
    assert_only_refusals(browser.take_errors(), "/agent/login");
    browser.evaluate("document.getElementById('password').value = ''");
    browser.type_into("#password", "demo-1003");
    browser.click("#login-form button[type=submit]");
    browser.wait_for(&format!("{} === 'Carol (1003)'", text_of("#who")), BOUND);
    browser.wait_for(&format!("{} === 'available'", text_of("#state")), BOUND);
    browser.wait_for(
        "document.querySelector('#queues tr[data-queue=pediatrics]')",
        BOUND,
    );
    assert_eq!(
        browser.evaluate("document.querySelectorAll('#queues tr[data-queue]').length"),
        json!(1),
        "Carol serves pediatrics only"
    );
    // The page holds its own session, never the admin token.
    assert!(
        browser
            .evaluate("sessionStorage.getItem('frontdesk.agentSession')")
            .is_string()
    );
    assert_eq!(
        browser.evaluate("sessionStorage.getItem('frontdesk.adminToken')"),
        Value::Null
    );

    // Away, as the API sees it too.
    browser.click("#set-away");
    browser.wait_for(&format!("{} === 'away'", text_of("#state")), BOUND);
    assert_eq!(agent(&daemon, "1003")["state"], "away");

    // A patient waits in pediatrics while she is away: she sees them,
    // their number masked.
    let patient_audio = RtpPeer::start(0, false);
    let caller = patient(&daemon, "caller.xml", "+15550100", &patient_audio, 3_000);
    press_when_heard(&patient_audio, '3');
    let waiting = browser.wait_for(&text_of("#waiting li[data-department=pediatrics]"), BOUND);
    let waiting = waiting.as_str().unwrap_or_default().to_string();
    assert!(waiting.contains("•••0142"), "{waiting}");
    assert!(!waiting.contains(CALLER), "{waiting}");
    browser.wait_for(
        &format!(
            "{} === '1'",
            text_of("#queues tr[data-queue=pediatrics] .waiting")
        ),
        BOUND,
    );

    // Available again: the API agrees, and routing offers her the caller.
    browser.click("#set-available");
    wait_agent_state(&daemon, "1003", "on_call");
    caller
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    carol.join().expect("agent phone").assert_all_succeeded(1);
    let her_call = wait_for_call(&daemon, BOUND, |call| {
        call["agent"] == "1003" && call["outcome"] == "connected"
    });

    // Her recent calls: that one, in full, and nobody else's.
    let row = format!(
        "#calls tr[data-call={}][data-outcome=connected]",
        js(her_call["id"].as_str().unwrap_or_default())
    );
    browser.wait_for(&format!("document.querySelector({})", js(&row)), BOUND);
    assert_eq!(
        browser.evaluate(&text_of(&format!("{row} .caller"))),
        json!(CALLER)
    );
    let listed: Vec<String> = serde_json::from_value(browser.evaluate(
        "[...document.querySelectorAll('#calls tbody tr[data-call]')].map(r => r.dataset.call)",
    ))
    .expect("ids");
    assert_eq!(
        listed,
        vec![her_call["id"].as_str().unwrap_or_default().to_string()]
    );
    assert!(!listed.contains(&other_call["id"].as_str().unwrap_or_default().to_string()));
    assert!(
        !browser
            .evaluate("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .contains(TOKEN),
        "the admin token is nowhere in the agent's page"
    );

    let png = browser.screenshot(&artifacts().join("agent.png"));
    assert_png(&png, PHONE.width);
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}

/// `POST /agent/login` with `user` and `password`.
fn login(daemon: &Daemon, user: &str, password: &str) -> support::Response {
    request(
        daemon.http(),
        "POST",
        "/agent/login",
        None,
        Some(&json!({"user": user, "password": password}).to_string()),
    )
    .expect("POST /agent/login")
}

/// The first event of an event stream at `path`, with `token`, as
/// (event name, data); or the status of a refused request.
fn first_event(daemon: &Daemon, path: &str, token: &str) -> Result<(String, Value), u16> {
    let mut stream = TcpStream::connect(daemon.http()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    write!(
        stream,
        // HTTP/1.0: the body is not chunked, it ends when the server closes.
        "GET {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
        daemon.http()
    )
    .expect("send");
    let mut lines = BufReader::new(stream).lines();
    let status_line = lines.next().expect("a status line").expect("read");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status");
    if status != 200 {
        return Err(status);
    }
    let mut name = None;
    for line in lines {
        let line = line.expect("an event line within 10 s");
        if let Some(event) = line.strip_prefix("event: ") {
            name = Some(event.to_string());
        } else if let Some(data) = line.strip_prefix("data: ")
            && let Some(name) = name.take()
        {
            return Ok((name, serde_json::from_str(data).expect("JSON data")));
        }
    }
    panic!("the stream ended before an event");
}

#[test]
fn the_event_stream_and_agent_sessions_open_only_what_they_should() {
    let (_dir, daemon) = open_daemon();

    // The dashboard's stream takes the admin token like all of /api, and
    // its snapshot is the API's data.
    assert_eq!(
        first_event(&daemon, "/api/events", "wrong").unwrap_err(),
        401
    );
    let (name, snapshot) = first_event(&daemon, "/api/events", TOKEN).expect("a snapshot");
    assert_eq!(name, "snapshot");
    assert_eq!(
        snapshot["queues"],
        daemon.get("/api/queues", Some(TOKEN)).json()["queues"]
    );
    assert_eq!(
        snapshot["agents"],
        daemon.get("/api/agents", Some(TOKEN)).json()["agents"]
    );
    assert_eq!(snapshot["clinic"]["time_zone"], "America/Chicago");
    assert_eq!(
        snapshot["waiting_chart"]["waiting"]
            .as_array()
            .map(Vec::len),
        Some(720)
    );
    let today = &snapshot["today"];
    let path = format!(
        "/api/reports/departments?from={}&to={}",
        today["from"].as_str().unwrap_or_default(),
        today["to"].as_str().unwrap_or_default()
    );
    assert_eq!(
        snapshot["departments"],
        daemon.get(&path, Some(TOKEN)).json()["departments"]
    );

    // A session opens the agent's view and nothing under /api; the admin
    // token opens nothing under /agent.
    let signed_in = login(&daemon, "1003", "demo-1003");
    assert_eq!(signed_in.status, 200, "{signed_in:?}");
    let session = signed_in.json()["token"]
        .as_str()
        .expect("a token")
        .to_string();
    assert_eq!(signed_in.json()["agent"]["id"], "1003");
    assert_eq!(daemon.get("/api/agents", Some(&session)).status, 401);
    assert_eq!(
        first_event(&daemon, "/agent/events", TOKEN).unwrap_err(),
        401
    );
    let (name, view) = first_event(&daemon, "/agent/events", &session).expect("a view");
    assert_eq!(name, "view");
    assert_eq!(view["agent"]["id"], "1003");
    assert_eq!(view["queues"].as_array().map(Vec::len), Some(1));
    let last = if session.ends_with('0') { "1" } else { "0" };
    let tampered = format!("{}{last}", &session[..session.len() - 1]);
    assert_eq!(
        first_event(&daemon, "/agent/events", &tampered).unwrap_err(),
        401
    );
    // Her state change answers what the admin API answers: Carol's phone is
    // not registered, so she cannot be made available.
    let mine = request(
        daemon.http(),
        "PUT",
        "/agent/state",
        Some(&session),
        Some(r#"{"state":"available"}"#),
    )
    .expect("PUT /agent/state");
    let admin = request(
        daemon.http(),
        "PUT",
        "/api/agents/1003/state",
        Some(TOKEN),
        Some(r#"{"state":"available"}"#),
    )
    .expect("PUT /api/agents/1003/state");
    assert_eq!((mine.status, mine.json()), (admin.status, admin.json()));
    assert_eq!(mine.status, 409);
    let unsigned = request(
        daemon.http(),
        "PUT",
        "/agent/state",
        None,
        Some(r#"{"state":"away"}"#),
    )
    .expect("PUT /agent/state");
    assert_eq!(unsigned.status, 401);

    // Wrong passwords and unknown users: 401. (Loopback is trusted: the
    // sign-in limits, per untrusted source and per account, are shown from
    // other addresses in tests/http_limits.rs.)
    assert_eq!(login(&daemon, "9999", "demo-9999").status, 401);
    assert_eq!(login(&daemon, "1003", "").status, 401);
    assert_eq!(login(&daemon, "1003", "demo-1004").status, 401);
    // The session issued before still works.
    assert_eq!(
        first_event(&daemon, "/agent/events", &session).map(|(name, _)| name),
        Ok("view".to_string())
    );
}

#[test]
fn the_pages_and_their_files_are_served_with_a_strict_policy() {
    let (_dir, daemon) = open_daemon();
    for path in [
        "/",
        "/agent",
        "/assets/common.js",
        "/assets/dashboard.js",
        "/assets/agent.js",
        "/assets/style.css",
    ] {
        let response = daemon.get(path, None);
        assert_eq!(response.status, 200, "{path}");
        let policy = response
            .header("content-security-policy")
            .unwrap_or_default();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert_eq!(
            response.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    assert!(daemon.get("/", None).body.contains("/assets/dashboard.js"));
    assert_eq!(daemon.get("/assets/missing.js", None).status, 404);
    assert_eq!(daemon.get("/api/events", None).status, 401);
}

#[test]
fn open_leads_appear_on_the_dashboard_emergencies_first() {
    use support::leads::{Auth, body, post};
    let (_dir, daemon) = open_daemon();
    let knee = post(
        &daemon,
        &body("+13125550199", "my knee hurts since Sunday", "60605"),
        &Auth::website(),
        None,
    );
    assert_eq!(knee.status, 201, "{knee:?}");
    let chest = post(
        &daemon,
        &body("+13125550142", "chest pain since this morning", "60614"),
        &Auth::website(),
        None,
    );
    assert_eq!(chest.status, 201, "{chest:?}");
    let knee_id = knee.json()["lead"]["id"].as_str().unwrap().to_string();
    let chest_id = chest.json()["lead"]["id"].as_str().unwrap().to_string();

    let mut browser = Browser::launch(DESKTOP);
    browser.open(&format!("http://{}/?token={TOKEN}", daemon.http()));
    browser.wait_for("document.body.dataset.connection === 'live'", BOUND);
    browser.wait_for(
        "document.querySelectorAll('#leads tbody tr[data-lead]').length === 2",
        BOUND,
    );
    // The emergency first, though it came second; then the knee.
    let rows: Vec<(String, String, String)> = serde_json::from_value(browser.evaluate(
        "[...document.querySelectorAll('#leads tbody tr[data-lead]')].map(r => \
         [r.dataset.lead, r.dataset.emergency, r.dataset.department])",
    ))
    .expect("rows");
    assert_eq!(
        rows,
        [
            (chest_id.clone(), "true".into(), "urgent-care".into()),
            (knee_id.clone(), "false".into(), "orthopedics".into()),
        ]
    );
    let first = format!("#leads tr[data-lead=\"{chest_id}\"]");
    assert!(
        browser
            .evaluate(&text_of(&format!("{first} .name")))
            .as_str()
            .is_some_and(|name| name.starts_with("emergency")),
    );
    assert_eq!(
        browser.evaluate(&text_of(&format!("{first} .intent"))),
        json!("“chest pain”")
    );
    assert_eq!(
        browser.evaluate(&text_of(&format!(
            "#leads tr[data-lead=\"{knee_id}\"] .branch"
        ))),
        json!("south")
    );
    assert_eq!(browser.evaluate(&text_of("#leads-count")), json!("(2)"));
    // The alert leads the alerts.
    assert_eq!(
        browser
            .evaluate("(document.querySelector('#alerts li') || {dataset: {}}).dataset.kind || ''"),
        json!("emergency_lead")
    );
    assert_eq!(
        browser.evaluate("document.querySelector('#alerts li').dataset.lead"),
        json!(chest_id)
    );
    browser.screenshot(&artifacts().join("dashboard-leads.png"));
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}

/// Dan (1004) signs in to `/agent` in `browser`; the signed knee lead
/// (+13125550199, 60605) comes in from the website, is offered to him with
/// its context and a chime, and he clicks `lead-accept`. The lead's id.
fn dan_accepts_the_knee_lead(browser: &mut Browser, daemon: &Daemon) -> String {
    use support::leads::{Auth, body, post};
    browser.open(&format!("http://{}/agent", daemon.http()));
    browser.wait_for("!document.getElementById('sign-in').hidden", BOUND);
    browser.type_into("#user", "1004");
    browser.type_into("#password", "demo-1004");
    browser.click("#login-form button[type=submit]");
    browser.wait_for(&format!("{} === 'Dan (1004)'", text_of("#who")), BOUND);
    browser.wait_for(
        &format!("{} === 'No leads for you now.'", text_of("#leads")),
        BOUND,
    );
    let knee = post(
        daemon,
        &body("+13125550199", "my knee hurts since Sunday", "60605"),
        &Auth::website(),
        None,
    );
    assert_eq!(knee.status, 201, "{knee:?}");
    let id = knee.json()["lead"]["id"].as_str().unwrap().to_string();
    let offer = format!("[data-testid=lead-offer][data-lead=\"{id}\"]");
    browser.wait_for(&format!("document.querySelector({})", js(&offer)), BOUND);
    assert_eq!(
        browser.evaluate(&text_of(&format!("{offer} [data-testid=lead-message]"))),
        json!("my knee hurts since Sunday")
    );
    let context = browser.evaluate(&text_of(&format!("{offer} .note")));
    let context = context.as_str().unwrap_or_default();
    for part in [
        "orthopedics",
        "branch south",
        "source website",
        "campaign fall-ortho",
        "“knee”",
    ] {
        assert!(context.contains(part), "{part} in {context:?}");
    }
    // A new offer chimes.
    browser.wait_for("Number(document.body.dataset.leadChimes || 0) >= 1", BOUND);
    browser.click(&format!("{offer} [data-testid=lead-accept]"));
    browser.wait_for(
        &format!(
            "document.querySelector({})",
            js(&format!("[data-testid=lead-owned][data-lead=\"{id}\"]"))
        ),
        BOUND,
    );
    id
}

#[test]
fn agent_1004_sees_the_signed_knee_lead_offered_and_accepts_it() {
    use support::leads::{Auth, body, post};
    let (_dir, daemon) = open_daemon();
    let mut browser = Browser::launch(PHONE);
    // Signed in by the open page alone (no phone): the lead comes to Dan.
    let id = dan_accepts_the_knee_lead(&mut browser, &daemon);
    assert!(
        browser
            .evaluate(&format!(
                "document.querySelectorAll({}).length",
                js(&format!("[data-testid=lead-outcome][data-lead=\"{id}\"]"))
            ))
            .as_u64()
            .is_some_and(|buttons| buttons == 5),
        "one button per outcome"
    );
    let lead = daemon.get(&format!("/api/leads/{id}"), Some(TOKEN)).json();
    assert_eq!(lead["lead"]["owner"], "1004");
    let call = |lead: &str| format!("[data-testid=lead-call][data-lead=\"{lead}\"]");
    assert_eq!(
        browser.evaluate(&format!(
            "document.querySelector({}).disabled",
            js(&call(&id))
        )),
        json!(false),
        "his lead can be called"
    );
    // But not now: his phone is not registered. The refusal's words show,
    // and nothing was sent.
    browser.click(&call(&id));
    let status = format!("[data-testid=lead-call-status][data-lead=\"{id}\"]");
    browser.wait_for(
        &format!(
            "document.querySelector({}).dataset.state === 'refused'",
            js(&status)
        ),
        BOUND,
    );
    assert_eq!(
        browser.evaluate(&text_of(&status)),
        json!("Not called: agent 1004 has no registered SIP phone.")
    );
    // Chromium logs the refused request, and only that.
    let errors = browser.take_errors();
    assert!(!errors.is_empty(), "the refusal was not even logged?");
    for error in errors {
        assert!(error.contains("409") && error.contains("/call"), "{error}");
    }
    let lead = daemon.get(&format!("/api/leads/{id}"), Some(TOKEN)).json();
    let history = lead["lead"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        history
            .iter()
            .any(|step| step["event"] == "call_refused" && step["reason"] == "no_phone"),
        "{lead}"
    );
    assert!(
        !history.iter().any(|step| step["event"] == "call_started"),
        "{lead}"
    );

    // A patient who did not consent to calls: his second lead (capacity 2)
    // shows no way to call, and says why.
    let mut unwilling: Value =
        serde_json::from_str(&body("+13125550142", "my knee is swollen", "60605")).unwrap();
    unwilling["consent"] = json!({ "call": false });
    let response = post(&daemon, &unwilling.to_string(), &Auth::website(), None);
    assert_eq!(response.status, 201, "{response:?}");
    let other = response.json()["lead"]["id"].as_str().unwrap().to_string();
    let offer = format!("[data-testid=lead-offer][data-lead=\"{other}\"]");
    browser.wait_for(&format!("document.querySelector({})", js(&offer)), BOUND);
    browser.click(&format!("{offer} [data-testid=lead-accept]"));
    browser.wait_for(
        &format!("document.querySelector({})", js(&call(&other))),
        BOUND,
    );
    assert_eq!(
        browser.evaluate(&format!(
            "document.querySelector({}).disabled",
            js(&call(&other))
        )),
        json!(true)
    );
    let other_status = format!("[data-testid=lead-call-status][data-lead=\"{other}\"]");
    assert_eq!(
        browser.evaluate(&text_of(&other_status)),
        json!("No calls: the patient did not consent to calls (consent.call is false).")
    );
    // Two owned leads' buttons wrap: nothing is wider than the phone.
    assert_eq!(
        browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth"),
        json!(true)
    );
    browser.screenshot(&artifacts().join("agent-lead.png"));
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}

/// Polls `GET path` (admin token) until `done` holds of its JSON; the JSON.
fn poll_json(daemon: &Daemon, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let json = daemon.get(path, Some(TOKEN)).json();
        if done(&json) {
            return json;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} at {path}: {json}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn agent_1004_accepts_the_knee_lead_calls_it_from_the_page_and_books_it() {
    // The carrier's trunk: SIPp on a free port, written into the dialplan
    // copy; it challenges with 407, checks the digest fields and answers
    // the INVITE for +13125550199 only.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let trunk_port = free_udp_port();
    let plan = open_clinic(dir.path(), |text| with_carrier_trunk(text, trunk_port));
    let daemon = Launch::new().dialplan(plan).start();

    // Dan's phone answers at once; the page is open too.
    let agent_audio = RtpPeer::start(0, false);
    let phone = answering_agent(&daemon, "1004", &agent_audio);
    wait_agent_state(&daemon, "1004", "available");
    let mut browser = Browser::launch(PHONE);
    let id = dan_accepts_the_knee_lead(&mut browser, &daemon);

    // The patient talks 3 s, then hangs up.
    let patient_audio = RtpPeer::start(0, false);
    let trunk = sipp_phone(
        &daemon,
        "trunk-auth.xml",
        trunk_port,
        [
            "-d",
            "3000",
            "-set",
            "rtp_port",
            &patient_audio.port().to_string(),
        ]
        .map(String::from)
        .to_vec(),
    );

    let call = format!("[data-testid=lead-call][data-lead=\"{id}\"]");
    let status = format!("[data-testid=lead-call-status][data-lead=\"{id}\"]");
    browser.wait_for(
        &format!(
            "document.querySelector({0}) && !document.querySelector({0}).disabled",
            js(&call)
        ),
        BOUND,
    );
    browser.click(&call);
    // Dan's phone rang and answered, the trunk got the INVITE for the
    // lead's number and answered (SIPp checks both), and each side hears
    // the other through the relay.
    assert!(
        agent_audio.wait_until(BOUND, |p| p.uniform(FILL) >= 25),
        "the agent heard no patient: {} packets\n{}",
        agent_audio.received().len(),
        daemon.stderr()
    );
    assert!(
        patient_audio.wait_until(BOUND, |p| p.uniform(FILL) >= 25),
        "the patient heard no agent: {} packets\n{}",
        patient_audio.received().len(),
        daemon.stderr()
    );
    // The page followed: calling, then connected when the patient answered.
    browser.wait_for(
        &format!(
            "(document.querySelector({}) || {{dataset: {{}}}}).dataset.state === 'connected'",
            js(&status)
        ),
        BOUND,
    );
    assert_eq!(
        browser.evaluate(&text_of(&status)),
        json!("Connected: the patient answered.")
    );
    trunk
        .join()
        .expect("the trunk's SIPp")
        .assert_all_succeeded(1);
    phone
        .join()
        .expect("the agent's SIPp")
        .assert_all_succeeded(1);

    // Dan records the booking.
    browser.click(&format!(
        "[data-testid=lead-outcome][data-lead=\"{id}\"][data-outcome=booked]"
    ));
    let lead = poll_json(&daemon, &format!("/api/leads/{id}"), "booking", |json| {
        json["lead"]["state"] == "closed"
    });
    assert_eq!(lead["lead"]["outcome"], "booked", "{lead}");
    assert_eq!(lead["lead"]["owner"], "1004", "{lead}");
    assert!(lead["lead"]["first_contact_at"].is_string(), "{lead}");

    // The report: one website lead, contacted within its window, booked,
    // with its speed to lead measured.
    let report = poll_json(
        &daemon,
        "/api/reports/leads",
        "booking in the report",
        |json| json["sources"][0]["booked"] == 1,
    );
    let website = &report["sources"][0];
    assert_eq!(website["source"], "website", "{report}");
    assert_eq!(website["leads"], 1, "{report}");
    assert_eq!(website["contacted_within_window"], 1.0, "{report}");
    assert_eq!(website["booked"], 1, "{report}");
    assert!(
        website["speed_to_lead_ms"]["p50"]
            .as_u64()
            .is_some_and(|p50| p50 > 0),
        "{report}"
    );
    browser.screenshot(&artifacts().join("agent-lead-call.png"));
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}

/// Issue 22: a patient leaves a voicemail for pediatrics (menu key 8 in
/// this test's dialplan); Carol (1003, pediatrics) signs in, is offered the
/// lead, and plays the message in the page: fetched with her session into
/// a Blob, loaded (a duration) and playing (its time advances).
#[test]
fn agent_1003_plays_a_voicemail_lead_in_the_page() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| {
        text.replacen(
            "\"9\" = { queue = \"urgent-care\", priority = \"urgent\" }",
            "\"9\" = { queue = \"urgent-care\", priority = \"urgent\" }\n\"8\" = { voicemail = \"pediatrics\" }",
            1,
        )
        .replace(
            "greeting = \"prompts/voicemail-greeting.wav\"",
            "greeting = \"prompts/digit-1.wav\"",
        )
    });
    let daemon = Launch::new().dialplan(plan).start();
    let mut browser = Browser::launch(DESKTOP);
    browser.open(&format!("http://{}/agent", daemon.http()));
    browser.wait_for("!document.getElementById('sign-in').hidden", BOUND);
    browser.type_into("#user", "1003");
    browser.type_into("#password", "demo-1003");
    browser.click("#login-form button[type=submit]");
    browser.wait_for(
        &format!("{} === 'No leads for you now.'", text_of("#leads")),
        BOUND,
    );
    // The patient speaks a tone after the beep, then hangs up.
    let peer = RtpPeer::start(0, false);
    let tone: Vec<u8> = (0..8000)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let sample = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            media::g711::ulaw_encode(sample)
        })
        .collect();
    peer.speak(tone);
    let caller = patient(&daemon, "caller.xml", "+15550100", &peer, 4000);
    press_when_heard(&peer, '8');
    caller
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    let play = "[data-testid=voicemail-play]";
    browser.wait_for(&format!("document.querySelector({})", js(play)), BOUND);
    let id = browser.evaluate(&format!(
        "document.querySelector({}).dataset.lead",
        js(play)
    ));
    let id = id.as_str().expect("the lead's id").to_string();
    browser.click(play);
    browser.wait_for(
        "(() => { const a = document.getElementById('voicemail-player'); \
         return a.src.startsWith('blob:') && a.duration > 1 && a.currentTime > 0.2; })()",
        BOUND,
    );
    assert_eq!(
        browser.evaluate("document.getElementById('voicemail-player').dataset.lead"),
        json!(id)
    );
    let errors = browser.take_errors();
    assert!(errors.is_empty(), "{errors:?}");
    // Another agent's session gets nothing.
    let dan = request(
        daemon.http(),
        "POST",
        "/agent/login",
        None,
        Some(&json!({"user": "1004", "password": "demo-1004"}).to_string()),
    )
    .expect("POST /agent/login");
    assert_eq!(dan.status, 200, "{dan:?}");
    let dan = dan.json()["token"].as_str().expect("a token").to_string();
    let refused = daemon.get(&format!("/agent/leads/{id}/voicemail"), Some(&dan));
    assert_eq!(refused.status, 404, "{refused:?}");
}
