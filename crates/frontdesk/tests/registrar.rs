//! Agents sign in (issue 4), end to end: SIPp scenarios from `tests/sipp/`
//! and a raw UDP socket against the real daemon on free ports, checked
//! through SIPp's exit status and statistics files and the admin API.
//!
//! Every wait is bounded and polls for an event (an API answer, a process
//! exit); nothing sleeps for a guessed time and no log is read for success.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use sip::digest::{Algorithm, Challenge, Credentials};
use support::sipp::{Sipp, SippRun};
use support::{Daemon, Launch, TOKEN};

/// How long the API may take to show a change the SIP side has made.
const API_BOUND: Duration = Duration::from_secs(10);
/// Pause between two API polls.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long a UDP response may take.
const UDP_BOUND: Duration = Duration::from_secs(10);

/// The untrusted source flood tests send from (DESIGN.md "Trusted sources").
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The registrar's first response delay for a source that keeps failing
/// (`sip::registrar::FailureLimits::default().first_delay`, 500 ms), less
/// SIPp's 4 ms clock ticks and some slack.
const HELD_BACK_MS: u64 = 450;

// ----- SIPp -------------------------------------------------------------------

/// An injection line for `user` with `password`, registering a contact on
/// port 5099 for `expires` seconds (the format of
/// `tests/sipp/register-agent.xml`).
fn credentials(user: &str, password: &str, expires: u32) -> String {
    format!("{user};[authentication username={user} password={password}];5099;{expires}")
}

/// `scenario` of `tests/sipp/` for one call with `credentials`, keeping
/// per-message counts and response times.
fn sipp(daemon: &Daemon, scenario: &str, credentials: String) -> Sipp {
    Sipp::new(scenario, daemon.sip())
        .calls(1)
        .inject([credentials])
        .trace_messages()
}

/// The SIPp run, then the daemon's log, for failure messages.
fn report(run: &SippRun, daemon: &Daemon) -> String {
    format!("{run}\n--- frontdesk log:\n{}", daemon.stderr())
}

/// SIPp exited 0 after `calls` successful calls and no failed one.
fn expect_ok(run: &SippRun, calls: u64, daemon: &Daemon) {
    assert_eq!(run.status.code(), Some(0), "{}", report(run, daemon));
    assert_eq!(
        run.count("SuccessfulCall(C)"),
        calls,
        "{}",
        report(run, daemon)
    );
    assert_eq!(run.count("FailedCall(C)"), 0, "{}", report(run, daemon));
}

/// Registers `user` from loopback with `tests/sipp/register-agent.xml`,
/// checking the exchange: one 401, one 200.
fn register(daemon: &Daemon, user: &str, expires: u32) -> SippRun {
    let password = format!("demo-{user}");
    let run = sipp(
        daemon,
        "register-agent.xml",
        credentials(user, &password, expires),
    )
    .run();
    expect_ok(&run, 1, daemon);
    assert_eq!(
        run.message_count("3_401_Recv"),
        1,
        "{}",
        report(&run, daemon)
    );
    assert_eq!(
        run.message_count("6_200_Recv"),
        1,
        "{}",
        report(&run, daemon)
    );
    run
}

// ----- the admin API ----------------------------------------------------------

fn agents(daemon: &Daemon) -> Vec<Value> {
    let response = daemon.get("/api/agents", Some(TOKEN));
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{response:?}"
    );
    match response.json() {
        Value::Object(mut body) if body.len() == 1 => match body.remove("agents") {
            Some(Value::Array(agents)) => agents,
            other => panic!("`agents` is not a list: {other:?}"),
        },
        other => panic!("not {{\"agents\": [...]}}: {other}"),
    }
}

fn agent(daemon: &Daemon, id: &str) -> Value {
    agents(daemon)
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("agent {id} is not listed"))
}

/// Carol as DESIGN.md shows her, in `state`, registered or not (her SIP
/// phone is her one device while registered; she owns no lead).
fn carol(state: &str, registered: bool) -> Value {
    let devices: &[&str] = if registered { &["sip"] } else { &[] };
    json!({
        "id": "1003",
        "name": "Carol",
        "state": state,
        "registered": registered,
        "skills": ["pediatrics"],
        "branch": "south",
        "calls_today": 0,
        "leads_open": 0,
        "devices": devices
    })
}

/// Polls `/api/agents` until agent `id` is `expected`, within [`API_BOUND`].
fn wait_for_agent(daemon: &Daemon, id: &str, expected: &Value) {
    let deadline = Instant::now() + API_BOUND;
    loop {
        let seen = agent(daemon, id);
        if &seen == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "agent {id} is {seen}, not {expected}, after {API_BOUND:?}; the log:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(POLL_EVERY);
    }
}

/// `PUT path` with a body; answers the status and the JSON body.
fn put(daemon: &Daemon, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let addr = daemon.http();
    let mut request = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = TcpStream::connect_timeout(&addr, API_BOUND).expect("connect to the API");
    stream.set_read_timeout(Some(API_BOUND)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("send the PUT");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"));
    (status, body)
}

// ----- the flood-test dialplan ------------------------------------------------

/// The demo clinic with trust switched off for [`FLOODER`] (DESIGN.md
/// "Trusted sources"), written next to a link to the real prompts so that
/// it stays the clinic of `dialplans/clinic.toml` in every other respect.
fn flood_dialplan(dir: &Path) -> PathBuf {
    let path = support::copy_clinic_into(dir);
    let clinic = std::fs::read_to_string(&path).expect("read the clinic copy");
    let trust = "\n[trust]\n";
    assert_eq!(
        clinic.matches(trust).count(),
        1,
        "dialplans/clinic.toml has one [trust] section"
    );
    // The guesses below are a few dozen messages: the SIP rate limit is
    // raised out of their way, so that what acts is the digest limit.
    let flood = clinic.replacen(trust, "\n[trust]\nuntrusted = [\"127.0.0.2\"]\n", 1)
        + "\n[limits.sip]\nrate = 1000\nburst = 1000\n";
    std::fs::write(&path, flood).expect("write the flood dialplan");
    path
}

// ----- raw SIP over UDP -------------------------------------------------------

/// A REGISTER for agent 1003 from `local`, as bytes.
fn register_request(
    sip: SocketAddr,
    local: SocketAddr,
    branch: &str,
    cseq: u32,
    authorization: Option<&str>,
) -> Vec<u8> {
    let host = sip.ip();
    let mut request = format!(
        "REGISTER sip:{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1003@{host}>;tag=retransmitted\r\n\
         To: <sip:1003@{host}>\r\n\
         Call-ID: retransmission-test@{local}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:1003@{local}>\r\n\
         Expires: 3600\r\n"
    );
    if let Some(authorization) = authorization {
        request.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    request.into_bytes()
}

fn exchange(socket: &UdpSocket, sip: SocketAddr, request: &[u8]) -> Vec<u8> {
    socket.send_to(request, sip).expect("send the REGISTER");
    let mut buffer = vec![0u8; 65_536];
    let (len, from) = socket
        .recv_from(&mut buffer)
        .unwrap_or_else(|e| panic!("no response within {UDP_BOUND:?}: {e}"));
    assert_eq!(from, sip);
    buffer.truncate(len);
    buffer
}

fn status_of(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a SIP response: {text}"))
}

/// The first `WWW-Authenticate` challenge of a 401.
fn first_challenge(response: &[u8]) -> Challenge {
    let text = String::from_utf8_lossy(response);
    let header = text
        .lines()
        .find_map(|line| line.strip_prefix("WWW-Authenticate: "))
        .unwrap_or_else(|| panic!("no challenge in {text}"));
    let param = |name: &str| -> Option<String> {
        let start = header.find(&format!("{name}="))? + name.len() + 1;
        let rest = &header[start..];
        Some(match rest.strip_prefix('"') {
            Some(quoted) => quoted[..quoted.find('"')?].to_string(),
            None => rest.split([',', ' ']).next()?.to_string(),
        })
    };
    Challenge {
        realm: param("realm").expect("realm"),
        nonce: param("nonce").expect("nonce"),
        opaque: param("opaque"),
        algorithm: Algorithm::parse(&param("algorithm").expect("algorithm")).expect("known"),
        qop_auth: param("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")),
        stale: param("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    }
}

// ----- the tests --------------------------------------------------------------

#[test]
fn an_agent_registers_with_digest_auth_and_shows_available() {
    let daemon = Launch::new().start();
    let listed: Vec<Value> = agents(&daemon);
    let ids: Vec<&str> = listed.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["1001", "1002", "1003", "1004", "1005", "1006", "1007"],
        "every agent of the dialplan, sorted by id"
    );
    assert_eq!(agent(&daemon, "1003"), carol("offline", false));

    // REGISTER -> 401 -> REGISTER with credentials -> 200.
    register(&daemon, "1003", 3600);
    wait_for_agent(&daemon, "1003", &carol("available", true));
    // Nobody else changed.
    for other in agents(&daemon).iter().filter(|a| a["id"] != "1003") {
        assert_eq!(other["state"], "offline", "{other}");
        assert_eq!(other["registered"], false, "{other}");
    }
    assert_eq!(
        agent(&daemon, "1004"),
        json!({"id": "1004", "name": "Dan", "state": "offline", "registered": false,
               "skills": ["dermatology", "orthopedics"], "branch": "south", "calls_today": 0,
               "leads_open": 0, "devices": []})
    );
}

#[test]
fn un_register_makes_the_agent_offline() {
    let daemon = Launch::new().start();
    register(&daemon, "1003", 3600);
    wait_for_agent(&daemon, "1003", &carol("available", true));

    // Expires: 0 on the one contact.
    register(&daemon, "1003", 0);
    wait_for_agent(&daemon, "1003", &carol("offline", false));

    // Registered again, then every contact removed with Contact: *.
    register(&daemon, "1003", 3600);
    wait_for_agent(&daemon, "1003", &carol("available", true));
    let run = sipp(
        &daemon,
        "unregister-agent.xml",
        credentials("1003", "demo-1003", 0),
    )
    .run();
    expect_ok(&run, 1, &daemon);
    wait_for_agent(&daemon, "1003", &carol("offline", false));
}

#[test]
fn a_wrong_password_or_an_unknown_user_is_refused_with_403() {
    let daemon = Launch::new().start();
    // REGISTER -> 401 -> REGISTER with the wrong password -> 403, no new
    // challenge; an unknown user gets exactly the same.
    for (user, password) in [("1003", "demo-1004"), ("1099", "demo-1099")] {
        let run = sipp(
            &daemon,
            "register-wrong-password.xml",
            credentials(user, password, 3600),
        )
        .run();
        expect_ok(&run, 1, &daemon);
        assert_eq!(
            run.message_count("2_401_Recv"),
            1,
            "{}",
            report(&run, &daemon)
        );
        assert_eq!(
            run.message_count("5_403_Recv"),
            1,
            "{}",
            report(&run, &daemon)
        );
    }
    assert_eq!(agent(&daemon, "1003"), carol("offline", false));
    // The right password still works afterwards: loopback is trusted.
    register(&daemon, "1003", 3600);
    wait_for_agent(&daemon, "1003", &carol("available", true));
}

#[test]
fn a_retransmitted_register_is_absorbed_by_its_transaction() {
    let daemon = Launch::new().start();
    let sip = daemon.sip();
    let socket = UdpSocket::bind((LOOPBACK, 0)).expect("bind a UDP socket");
    socket.set_read_timeout(Some(UDP_BOUND)).expect("timeout");
    let local = socket.local_addr().expect("local address");

    // The challenge, twice: the same response, byte for byte (a second
    // pass through the registrar would draw a new To tag and nonce).
    let first = register_request(sip, local, "first", 1, None);
    let challenged = exchange(&socket, sip, &first);
    assert_eq!(status_of(&challenged), 401);
    assert_eq!(exchange(&socket, sip, &first), challenged);

    let challenge = first_challenge(&challenged);
    assert_eq!(challenge.algorithm, Algorithm::Md5, "MD5 is offered first");
    let uri = format!("sip:{sip}");
    let credentials = Credentials::answer(
        &challenge,
        "1003",
        "demo-1003",
        "REGISTER",
        &uri,
        "c0ffee",
        1,
    );
    let authorization = credentials.to_params().to_string();

    // The authenticated REGISTER, twice: the same 200. Handled twice, the
    // second would be a replayed nonce count and get a 401.
    let second = register_request(sip, local, "second", 2, Some(&authorization));
    let accepted = exchange(&socket, sip, &second);
    assert_eq!(
        status_of(&accepted),
        200,
        "{}",
        String::from_utf8_lossy(&accepted)
    );
    assert_eq!(exchange(&socket, sip, &second), accepted);

    // The same credentials in a new transaction are a replay: 401 stale.
    let replay = register_request(sip, local, "replay", 3, Some(&authorization));
    let refused = exchange(&socket, sip, &replay);
    assert_eq!(status_of(&refused), 401);
    assert!(first_challenge(&refused).stale, "{refused:?}");

    wait_for_agent(&daemon, "1003", &carol("available", true));
}

/// The users in `bindings.json`, sorted, once the file exists.
fn stored_users(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let stored: Value = serde_json::from_str(&text).expect("bindings.json is JSON");
    let mut users: Vec<String> = stored
        .as_array()
        .expect("bindings.json is a list")
        .iter()
        .map(|binding| binding["user"].as_str().expect("a user").to_string())
        .collect();
    users.sort();
    Some(users)
}

#[test]
fn bindings_survive_a_restart() {
    let data = tempfile::tempdir().expect("a data directory");
    let file = data.path().join("bindings.json");

    // Written soon after the REGISTER, without waiting for a shutdown: a
    // crash (SIGKILL) loses nothing once it is there.
    let mut first = Launch::new().data(data.path()).start();
    register(&first, "1003", 3600);
    wait_for_agent(&first, "1003", &carol("available", true));
    let deadline = Instant::now() + API_BOUND;
    while stored_users(&file) != Some(vec!["1003".to_string()]) {
        assert!(
            Instant::now() < deadline,
            "bindings.json is {:?} after {API_BOUND:?}",
            std::fs::read_to_string(&file)
        );
        std::thread::sleep(POLL_EVERY);
    }
    first.stop_with(Signal::SIGKILL);

    // No new REGISTER: the binding is back, and so is the agent.
    let mut second = Launch::new().data(data.path()).start();
    wait_for_agent(&second, "1003", &carol("available", true));

    // A registration just before SIGTERM is kept as well.
    register(&second, "1004", 3600);
    assert!(second.terminate().success(), "{}", second.stderr());
    assert_eq!(
        stored_users(&file),
        Some(vec!["1003".to_string(), "1004".to_string()])
    );
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("bindings.json")).unwrap();
    for binding in kept.as_array().unwrap() {
        let user = binding["user"].as_str().unwrap();
        assert_eq!(binding["contact"], format!("<sip:{user}@127.0.0.1:5099>"));
    }

    let third = Launch::new().data(data.path()).start();
    wait_for_agent(&third, "1003", &carol("available", true));
    let dan = agent(&third, "1004");
    assert_eq!(
        (&dan["state"], &dan["registered"]),
        (&json!("available"), &json!(true))
    );
}

#[test]
fn brute_force_from_an_untrusted_source_is_throttled_while_loopback_registers() {
    let plan_dir = tempfile::tempdir().expect("a directory for the dialplan");
    let daemon = Launch::new()
        .dialplan(flood_dialplan(plan_dir.path()))
        .start();

    // Ten guesses of 1003's password from 127.0.0.2, 20 a second, all in
    // flight at once if need be: FailureLimits::default() bans at the 10th.
    let calls = 10;
    let run = sipp(
        &daemon,
        "register-brute-force.xml",
        credentials("1003", "guess", 3600),
    )
    .from(FLOODER)
    .calls(calls)
    .rate(20)
    .args(["-l", "10"])
    .run();
    expect_ok(&run, calls, &daemon);
    let report = || report(&run, &daemon);
    // Every guess was challenged and refused; the last one's 403 is the
    // last thing the source hears.
    assert_eq!(run.message_count("4_403_Recv"), calls, "{}", report());
    assert_eq!(run.message_count("1_403_Recv"), 0, "{}", report());
    // Slowed down before the ban: responses held back for 0.5 s and more.
    let times = run.response_times();
    let held = times.iter().filter(|(_, ms)| *ms >= HELD_BACK_MS).count();
    assert!(held >= 1, "nothing held back: {times:?}; {}", report());

    // Banned, and a digest ban is a ban of the source: even the right
    // password goes unanswered now (nothing more to learn from us).
    let socket = UdpSocket::bind((FLOODER, 0)).expect("bind 127.0.0.2");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a read timeout");
    let local = socket.local_addr().expect("its address");
    socket
        .send_to(
            &register_request(daemon.sip(), local, "banned1", 1, None),
            daemon.sip(),
        )
        .expect("send");
    let mut buffer = [0u8; 4096];
    assert!(
        socket.recv_from(&mut buffer).is_err(),
        "a banned source was answered"
    );

    // Meanwhile loopback registers as usual.
    assert_eq!(agent(&daemon, "1003"), carol("offline", false));
    register(&daemon, "1003", 3600);
    wait_for_agent(&daemon, "1003", &carol("available", true));
}

#[test]
fn loopback_sources_are_trusted_unless_the_dialplan_says_otherwise() {
    // The same guesses against the demo clinic, which trusts loopback:
    // every guess is challenged and refused, none is banned.
    let daemon = Launch::new().start();
    let calls = 20;
    let run = sipp(
        &daemon,
        "register-brute-force.xml",
        credentials("1003", "guess", 3600),
    )
    .from(FLOODER)
    .calls(calls)
    .rate(20)
    .args(["-l", "20"])
    .run();
    expect_ok(&run, calls, &daemon);
    assert_eq!(
        run.message_count("1_403_Recv"),
        0,
        "{}",
        report(&run, &daemon)
    );
    assert_eq!(
        run.message_count("4_403_Recv"),
        calls,
        "{}",
        report(&run, &daemon)
    );
    let run = sipp(
        &daemon,
        "register-agent.xml",
        credentials("1003", "demo-1003", 3600),
    )
    .from(FLOODER)
    .run();
    expect_ok(&run, 1, &daemon);
    wait_for_agent(&daemon, "1003", &carol("available", true));
}

#[test]
fn the_api_sets_an_agent_away_and_available() {
    let daemon = Launch::new().start();
    register(&daemon, "1003", 3600);
    wait_for_agent(&daemon, "1003", &carol("available", true));

    let (status, body) = put(
        &daemon,
        "/api/agents/1003/state",
        Some(TOKEN),
        r#"{"state":"away"}"#,
    );
    assert_eq!((status, body), (200, carol("away", true)));
    assert_eq!(agent(&daemon, "1003"), carol("away", true));

    // A registration refresh never changes `away` (DESIGN.md "Agent states").
    register(&daemon, "1003", 3600);
    assert_eq!(agent(&daemon, "1003"), carol("away", true));

    let (status, body) = put(
        &daemon,
        "/api/agents/1003/state",
        Some(TOKEN),
        r#"{"state":"available"}"#,
    );
    assert_eq!((status, body), (200, carol("available", true)));
    assert_eq!(agent(&daemon, "1003"), carol("available", true));
}

#[test]
fn the_state_api_refuses_what_it_cannot_do_in_the_error_shape() {
    let daemon = Launch::new().start();
    let error = |body: &Value| {
        body.as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| panic!("not {{\"error\": \"...\"}}: {body}"))
    };
    let away = r#"{"state":"away"}"#;
    let cases: [(&str, Option<&str>, &str, u16); 9] = [
        ("/api/agents/1003/state", None, away, 401),
        ("/api/agents/1003/state", Some("wrong"), away, 401),
        ("/api/agents/9999/state", Some(TOKEN), away, 404),
        ("/api/agents/1003/state", Some(TOKEN), r#"{"state":"#, 400),
        ("/api/agents/1003/state", Some(TOKEN), r#"["away"]"#, 400),
        ("/api/agents/1003/state", Some(TOKEN), r#"{"state":5}"#, 400),
        (
            "/api/agents/1003/state",
            Some(TOKEN),
            r#"{"state":"away","x":1}"#,
            400,
        ),
        (
            "/api/agents/1003/state",
            Some(TOKEN),
            r#"{"state":"on_call"}"#,
            422,
        ),
        // Offline: not registered, so neither available nor away.
        ("/api/agents/1001/state", Some(TOKEN), away, 409),
    ];
    for (path, token, body, expected) in cases {
        let (status, answer) = put(&daemon, path, token, body);
        assert_eq!(status, expected, "PUT {path} {body}: {answer}");
        assert!(!error(&answer).is_empty(), "PUT {path} {body}: {answer}");
    }
    // Nothing changed.
    assert_eq!(agent(&daemon, "1003"), carol("offline", false));
    let get = daemon.get("/api/agents", None);
    assert_eq!(get.status, 401, "{get:?}");
}

/// The challenges of a REGISTER without credentials, in order.
fn challenges(daemon: &Daemon) -> Vec<Challenge> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let me = socket.local_addr().expect("address");
    let sip = daemon.sip();
    let register = format!(
        "REGISTER sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKalgs{port};rport\r\n\
         From: <sip:1003@{sip}>;tag=algs\r\nTo: <sip:1003@{sip}>\r\nCall-ID: algs-{port}@test\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:1003@{me}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        port = me.port()
    );
    socket.send_to(register.as_bytes(), sip).expect("send");
    let mut buffer = [0u8; 4096];
    let length = socket.recv(&mut buffer).expect("a 401");
    let frame = sip::message::parse_datagram(
        bytes::Bytes::copy_from_slice(&buffer[..length]),
        &Default::default(),
    )
    .expect("parses");
    let sip::message::Frame::Message(sip::message::Message::Response(response)) = frame else {
        panic!("not a response");
    };
    assert_eq!(response.status.as_u16(), 401);
    response
        .headers
        .www_authenticates()
        .expect("challenges")
        .iter()
        .map(|params| Challenge::from_params(params).expect("digest"))
        .collect()
}

#[test]
fn the_digest_challenges_and_their_order_are_configurable() {
    // Default: MD5 alone (Debian's baresip refuses a 401 offering more).
    let daemon = Launch::new().start();
    let algorithms: Vec<Algorithm> = challenges(&daemon).iter().map(|c| c.algorithm).collect();
    assert_eq!(algorithms, vec![Algorithm::Md5]);
    drop(daemon);
    // Both, SHA-256 first: an agent answering the first one signs in with it.
    let daemon = Launch::new()
        .args(["--digest-algorithms", "sha-256,md5"])
        .start();
    let algorithms: Vec<Algorithm> = challenges(&daemon).iter().map(|c| c.algorithm).collect();
    assert_eq!(algorithms, vec![Algorithm::Sha256, Algorithm::Md5]);
    support::phone::register(daemon.sip(), "1003", 5999, 600);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon
        .get("/api/agents", Some(TOKEN))
        .body
        .contains("\"registered\":true")
    {
        assert!(Instant::now() < deadline, "1003 never registered");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A typo is refused before anything starts.
    let refused = Launch::new()
        .args(["--digest-algorithms", "md4"])
        .run_to_exit(Duration::from_secs(20));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        refused.stderr.contains("unknown digest algorithm `md4`"),
        "{}",
        refused.stderr
    );
}
