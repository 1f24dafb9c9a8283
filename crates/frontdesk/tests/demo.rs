//! `frontdesk demo`: the real binary with its simulated agents and patients
//! on free ports. Within a bound, every agent of the demo clinic registers
//! (digest auth over SIP from their own phones), and the calls the patients
//! place reach both ends: some connected to an agent and hung up, some
//! abandoned while waiting. SIGTERM then stops everything with exit 0.
//! The demo runs with `--open`, so what it shows does not depend on the
//! hour the test runs at.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Daemon, Launch, TOKEN};

/// How long the simulation may take to show what is asserted: usually
/// under a minute at 60 calls a minute. A connected call ends only after
/// its talk time (10 to 60 s), maybe behind an unanswered ring (20 s): the
/// bound leaves room for that.
const BOUND: Duration = Duration::from_secs(120);
/// Pause between two looks at the API.
const POLL_EVERY: Duration = Duration::from_millis(250);

fn api(daemon: &Daemon, path: &str) -> Value {
    let response = daemon.get(path, Some(TOKEN));
    assert_eq!(response.status, 200, "GET {path}: {}", response.body);
    response.json()
}

/// Polls `look` until it returns `Some`, within [`BOUND`].
fn wait_for<T>(daemon: &Daemon, what: &str, mut look: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(found) = look() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {BOUND:?}; calls: {}; the log:\n{}",
            daemon.get("/api/calls?limit=50", Some(TOKEN)).body,
            daemon.stderr()
        );
        std::thread::sleep(POLL_EVERY);
    }
}

#[test]
fn the_demo_registers_its_agents_and_its_patients_calls_connect_and_abandon() {
    let mut daemon = Launch::new()
        .demo()
        .args(["--rate", "60", "--seed", "20260101", "--open"])
        .start();

    // The dashboard link with its token, and what is simulated.
    let stdout = daemon.stdout_lines().to_vec();
    let dashboard = format!("dashboard http://{}/?token={TOKEN}", daemon.http());
    assert!(stdout.contains(&dashboard), "{stdout:?}");
    assert!(
        stdout.iter().any(|line| line
            .starts_with("demo: 7 simulated agents (1001 Alice, 1002 Bob")
            && line.contains("seed 20260101")
            && line.contains("the clinic runs as open at all hours (--open")),
        "{stdout:?}"
    );

    // Every agent of the clinic signs in from a phone of the simulation.
    let agents = wait_for(&daemon, "all agents registered", || {
        let agents = api(&daemon, "/api/agents")["agents"].clone();
        let list = agents.as_array()?;
        (list.len() == 7 && list.iter().all(|agent| agent["registered"] == true)).then_some(agents)
    });
    let ids: BTreeSet<&str> = agents
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|agent| agent["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["1001", "1002", "1003", "1004", "1005", "1006", "1007"])
    );

    // Patients' calls: some reach an agent and end, some are given up.
    let calls = wait_for(&daemon, "a connected and an abandoned call", || {
        let calls = api(&daemon, "/api/calls?limit=1000")["calls"].clone();
        let list = calls.as_array()?;
        let outcome = |wanted: &str| list.iter().any(|call| call["outcome"] == wanted);
        (outcome("connected") && outcome("abandoned")).then_some(calls)
    });
    let list = calls.as_array().expect("a list");
    for call in list {
        let caller = call["caller"].as_str().unwrap_or_default();
        assert!(
            caller.starts_with("+1312555"),
            "not a simulated patient: {call}"
        );
        let dialed = call["dialed"].as_str().unwrap_or_default();
        assert!(["+15550100", "+15550111"].contains(&dialed), "{call}");
    }
    // Run as open (--open), whatever the hour: the daytime menu sends
    // patients to the departments, not all to the after-hours nurse line.
    assert!(
        list.iter().any(|call| call["department"]
            .as_str()
            .is_some_and(|department| department != "nurse-line")),
        "{calls}"
    );
    let connected = list
        .iter()
        .find(|call| call["outcome"] == "connected")
        .expect("a connected call");
    let agent = connected["agent"].as_str().expect("the agent who took it");
    assert!(ids.contains(agent), "{connected}");
    assert!(connected["connected_at"].is_string(), "{connected}");
    assert!(connected["ended_at"].is_string(), "{connected}");
    let abandoned = list
        .iter()
        .find(|call| call["outcome"] == "abandoned")
        .expect("an abandoned call");
    assert!(abandoned["agent"].is_null(), "{abandoned}");
    assert!(abandoned["ended_at"].is_string(), "{abandoned}");

    // Ctrl-C or SIGTERM: everyone hangs up, exit 0.
    let status = daemon.terminate();
    assert!(
        status.success(),
        "{status:?}; the log:\n{}",
        daemon.stderr()
    );
}
