//! Issue 24: the journal on PostgreSQL (`--journal postgres://…`). Two
//! daemons (`--node-id a`, `--node-id b`) write one database through their
//! local outboxes: both calls arrive; a kill -9 of a with its call up and a
//! restart close that call `interrupted` and leave b's live call alone;
//! PostgreSQL stopped during a call: the call completes, the
//! `journal_unavailable` alert and `frontdesk_journal_up 0` show, and once
//! PostgreSQL is back the record arrives and the alert clears. Reads are
//! the shared database's: b's `/api/calls` lists a's call and
//! `/api/calls/{id}` on b shows a's timeline; with PostgreSQL stopped,
//! `/api/calls` answers 503 `journal_unavailable` promptly. A start with a
//! PostgreSQL journal and no `--node-id` is refused.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::call::{calls, metric, poll};
use support::postgres::{self, Postgres};
use support::raw::RawCall;
use support::{Daemon, Launch, TOKEN};

/// Generous: every wait polls for its condition.
const BOUND: Duration = Duration::from_secs(30);

fn node(name: &str, url: &str) -> Launch {
    Launch::new().args(["--node-id", name, "--journal", url])
}

/// Polls `sql` in database `db` until it prints `wanted`.
fn wait_sql(server: &Postgres, db: &str, sql: &str, wanted: &str, daemon: &Daemon) {
    let deadline = Instant::now() + BOUND;
    loop {
        let got = server.psql(db, sql);
        if got == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got:?}, wanted {wanted:?}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls b's `/api/calls` until it lists a call of node `node` (ids carry
/// the node: `c-<node>-…`); that call's id.
fn wait_listed(daemon: &Daemon, node: &str) -> String {
    let prefix = format!("c-{node}-");
    let deadline = Instant::now() + BOUND;
    loop {
        let calls = calls(daemon);
        if let Some(id) = calls
            .iter()
            .filter_map(|call| call["id"].as_str())
            .find(|id| id.starts_with(&prefix))
        {
            return id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no call of node {node} listed: {calls:#?}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_alert(alerts: &serde_json::Value, kind: &str) -> bool {
    alerts["alerts"]
        .as_array()
        .is_some_and(|alerts| alerts.iter().any(|alert| alert["kind"] == kind))
}

#[test]
fn a_postgres_journal_without_a_node_id_is_refused() {
    let finished = Launch::new()
        .args([
            "--journal",
            "postgres://fd:pg-s3cret-pw@127.0.0.1:9/journal",
        ])
        .run_to_exit(BOUND);
    assert!(!finished.status.success());
    assert!(finished.stderr.contains("--node-id"), "{}", finished.stderr);
    assert!(
        !finished.stderr.contains("pg-s3cret-pw"),
        "{}",
        finished.stderr
    );
}

#[test]
fn two_nodes_share_the_journal_a_killed_node_closes_only_its_calls_an_outage_loses_nothing() {
    let mut server = Postgres::start();
    let url = server.database("cluster");
    let media = UdpSocket::bind("127.0.0.1:0").expect("a media socket");
    let media = media.local_addr().expect("its address");
    let mut a = node("a", &url).start();
    let b = node("b", &url).start();
    for daemon in [&a, &b] {
        assert!(
            !daemon.stderr().contains(postgres::PASSWORD),
            "the password is never logged"
        );
    }
    let _up_on_a = RawCall::invite(&a, "+15550100", media, 1);
    let on_b = RawCall::invite(&b, "+15550100", media, 2);
    let by_node = "SELECT node, outcome, (SELECT count(*) > 0 FROM call_events e
                        WHERE e.call_id = c.id) FROM calls c ORDER BY node, id";
    wait_sql(
        &server,
        "cluster",
        by_node,
        "a|in_progress|t\nb|in_progress|t",
        &b,
    );
    // b reads the cluster's calls: a's call and its timeline.
    let of_a = wait_listed(&b, "a");
    let timeline = b.get(&format!("/api/calls/{of_a}"), Some(TOKEN));
    assert_eq!(timeline.status, 200, "{timeline:?}");
    let timeline = timeline.json();
    assert_eq!(timeline["id"], of_a.as_str());
    assert_eq!(timeline["events"][0]["kind"], "started", "{timeline:#}");

    // a dies with its call up, and comes back on the same data.
    a.stop_with(Signal::SIGKILL);
    let restarted = node("a", &url).data(a.data_dir()).start();
    wait_sql(
        &server,
        "cluster",
        by_node,
        "a|interrupted|t\nb|in_progress|t",
        &restarted,
    );

    // b's call ends normally.
    on_b.ack_and_hang_up();
    let b_open = "SELECT count(*) FROM calls WHERE node = 'b' AND outcome = 'in_progress'";
    wait_sql(&server, "cluster", b_open, "0", &b);

    // PostgreSQL stops; b takes a whole call meanwhile.
    server.stop();
    RawCall::invite(&b, "+15550100", media, 3).ack_and_hang_up();
    poll(&b, "/api/alerts", |alerts| {
        has_alert(alerts, "journal_unavailable")
    });
    assert_eq!(metric(&b, "frontdesk_journal_up"), Some(0.0));
    // Reads answer 503 journal_unavailable, within the reads' bound (twice
    // the 5 s statement timeout), never hang.
    let asked = Instant::now();
    let down = b.get("/api/calls", Some(TOKEN));
    assert_eq!(down.status, 503, "{down:?}");
    assert_eq!(down.json()["error"], "journal_unavailable", "{down:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    server.resume();
    let b_ended = "SELECT count(*) FROM calls WHERE node = 'b' AND outcome <> 'in_progress'
                   AND ended_at IS NOT NULL";
    wait_sql(&server, "cluster", b_ended, "2", &b);
    poll(&b, "/api/alerts", |alerts| {
        !has_alert(alerts, "journal_unavailable")
    });
    assert_eq!(metric(&b, "frontdesk_journal_up"), Some(1.0));
    // Each step once: every timeline has exactly its call's `events` steps.
    let torn = "SELECT count(*) FROM calls c WHERE c.events <> (SELECT count(*)
                FROM call_events e WHERE e.call_id = c.id)";
    assert_eq!(server.psql("cluster", torn), "0");
    drop(restarted);
}
