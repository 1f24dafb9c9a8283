//! The journal's PostgreSQL replica against a real server (Debian's
//! `postgresql`, started by the starter frontdesk's e2e tests share): what
//! reaches PostgreSQL equals the local file, row for row and step for
//! step; two nodes share one database and a node's restart closes only its
//! own calls; an outage loses nothing and duplicates nothing. A server per
//! test (a static's server would never be stopped), a database per node.

mod support;

#[path = "../../frontdesk/tests/support/postgres.rs"]
mod pg_server;

use std::path::Path;
use std::time::{Duration, Instant};

use records::{
    CallQuery, ClaimChange, ClaimEnd, ClaimQuery, Journal, JournalConfig, JournalEntry,
    JournalHandle, JournalLocation, Outcome, QueryError, Reader, ReplicaConfig, ReplicaStatus,
    TimeRange,
};
use support::{
    PATIENCE, T0_MS, at, entered, quick, record_all, routine, scripted_calls, simple_call, started,
};

use pg_server::Postgres;

/// `quick()` with a replica of node `node` in `url`, retrying fast.
fn config(url: &str, node: &str) -> JournalConfig {
    let JournalLocation::Postgres(url) = url.parse().unwrap() else {
        panic!("a postgres URL");
    };
    let mut replica = ReplicaConfig::new(url, node);
    replica.retry = Duration::from_millis(50);
    replica.timeout = Duration::from_secs(2);
    JournalConfig {
        replica: Some(replica),
        ..quick()
    }
}

/// Polls the replica's status until `done`, bounded.
fn wait_replica(handle: &JournalHandle, what: &str, done: impl Fn(&ReplicaStatus) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = handle.replica().expect("a replica");
        if done(&status) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything written locally is in PostgreSQL.
fn caught_up(handle: &JournalHandle) {
    handle.flush(PATIENCE).unwrap();
    wait_replica(handle, "caught up", |status| {
        status.up && status.backlog == 0
    });
}

const ROWS: &str = "SELECT id, outcome, coalesce(department, ''), coalesce(agent, ''),
        started_at, coalesce(wait_ms, -1), coalesce(talk_ms, -1), transfers, events
    FROM calls ORDER BY id";
const EVENTS: &str = "SELECT call_id, seq, at, kind, detail FROM call_events ORDER BY call_id, seq";

/// `sql`'s rows in the local file, as psql -At prints them.
fn local(path: &Path, sql: &str) -> String {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Text(text) => {
                            String::from_utf8_lossy(text).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|fields| fields.join("|"))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
        .join("\n")
}

#[test]
fn every_call_and_step_reaches_postgres_as_in_the_file() {
    let server = Postgres::start();
    let url = server.database("journal");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let (journal, handle) = Journal::open(&path, config(&url, "a")).unwrap();
    record_all(&handle, scripted_calls());
    caught_up(&handle);
    let rows = local(&path, ROWS);
    assert!(rows.lines().count() >= 10, "{rows}");
    assert_eq!(server.psql("journal", ROWS), rows);
    assert_eq!(server.psql("journal", EVENTS), local(&path, EVENTS));
    assert_eq!(
        server.psql("journal", "SELECT DISTINCT node FROM calls"),
        "a"
    );
    assert_eq!(
        server.psql("journal", "SELECT version FROM journal_schema"),
        "2"
    );
    let status = handle.replica().unwrap();
    assert!(!status.target.contains(pg_server::PASSWORD), "{status:?}");
    journal.close(PATIENCE).unwrap();
    // A second open (another node, or a restart) finds the schema there.
    let other = tempfile::tempdir().unwrap();
    let (journal, handle) =
        Journal::open(other.path().join("journal.db"), config(&url, "b")).unwrap();
    wait_replica(&handle, "up", |status| status.up);
    journal.close(PATIENCE).unwrap();
    assert_eq!(
        server.psql("journal", "SELECT count(*) FROM journal_schema"),
        "1"
    );
}

#[test]
fn a_node_restarting_closes_only_its_own_calls() {
    let server = Postgres::start();
    let url = server.database("cluster");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let path_b = dir_b.path().join("journal.db");
    let (journal_a, a) = Journal::open(dir_a.path().join("journal.db"), config(&url, "a")).unwrap();
    let (journal_b, b) = Journal::open(&path_b, config(&url, "b")).unwrap();
    for (handle, id) in [(&a, "c-a-1-1"), (&b, "c-b-1-1")] {
        record_all(
            handle,
            vec![
                JournalEntry::new(id, at(0), started("+13125550142", "+15550100", None)),
                JournalEntry::new(id, at(1_000), entered(Some("main-line"))),
                JournalEntry::new(id, at(2_000), routine("pediatrics")),
            ],
        );
    }
    caught_up(&a);
    caught_up(&b);
    let outcomes = "SELECT id, node, outcome FROM calls ORDER BY id";
    assert_eq!(
        server.psql("cluster", outcomes),
        "c-a-1-1|a|in_progress\nc-b-1-1|b|in_progress"
    );
    // Node b stops with its call up (as a kill would leave it), restarts.
    journal_b.close(PATIENCE).unwrap();
    let (journal_b, b) = Journal::open(&path_b, config(&url, "b")).unwrap();
    assert_eq!(journal_b.close_interrupted(PATIENCE).unwrap(), 1);
    caught_up(&b);
    assert_eq!(
        server.psql("cluster", outcomes),
        "c-a-1-1|a|in_progress\nc-b-1-1|b|interrupted",
        "a's live call untouched"
    );
    journal_a.close(PATIENCE).unwrap();
    journal_b.close(PATIENCE).unwrap();
}

#[test]
fn an_outage_loses_nothing_and_duplicates_nothing() {
    let mut server = Postgres::start();
    let url = server.database("outage");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let (journal, handle) = Journal::open(&path, config(&url, "a")).unwrap();
    let mut script = scripted_calls();
    let later = script.split_off(script.len() / 2);
    record_all(&handle, script);
    caught_up(&handle);

    server.stop();
    record_all(&handle, later);
    handle.flush(PATIENCE).unwrap();
    wait_replica(&handle, "down with a backlog", |status| {
        !status.up && status.backlog > 0 && status.down_since.is_some()
    });
    let down = handle.replica().unwrap();
    let error = down.last_error.clone().unwrap_or_default();
    assert!(!error.contains(pg_server::PASSWORD), "{error}");
    assert_eq!(handle.stats().failed, 0, "the local file took every step");

    server.resume();
    caught_up(&handle);
    let status = handle.replica().unwrap();
    assert!(status.down_since.is_none(), "{status:?}");
    assert_eq!(server.psql("outage", ROWS), local(&path, ROWS));
    assert_eq!(server.psql("outage", EVENTS), local(&path, EVENTS));
    // Once each: the timeline has exactly `events` steps, 1..=events.
    assert_eq!(
        server.psql(
            "outage",
            "SELECT count(*) FROM calls c WHERE c.events <> (SELECT count(*) FROM call_events e
                 WHERE e.call_id = c.id AND e.seq BETWEEN 1 AND c.events)"
        ),
        "0"
    );
    journal.close(PATIENCE).unwrap();
}

fn claimed(agent: &str, epoch: u64, node: &str, millis: i64) -> ClaimChange {
    ClaimChange::Claimed {
        agent: agent.into(),
        node: node.into(),
        epoch,
        call: Some(format!("c-{node}-1-{epoch}")),
        at: at(millis),
    }
}

fn ended(agent: &str, epoch: u64, node: &str, millis: i64, how: ClaimEnd) -> ClaimChange {
    ClaimChange::Ended {
        agent: agent.into(),
        node: node.into(),
        epoch,
        at: at(millis),
        how,
    }
}

/// The claim history of two nodes in one database of schema version 1
/// (upgraded in place): node a's holdings, its last one reaped by node b
/// after a dies; b's release written while PostgreSQL is down arrives
/// once it is back; a's restart closes its holding `interrupted` without
/// hiding b's end of it. The shared reader lists them.
#[test]
fn claim_holdings_of_two_nodes_meet_in_postgres() {
    let mut server = Postgres::start();
    let url = server.database("claims");
    server.psql(
        "claims",
        &format!(
            "CREATE TABLE journal_schema (version BIGINT NOT NULL);
             INSERT INTO journal_schema VALUES (1);
             ALTER TABLE journal_schema OWNER TO {};",
            pg_server::ROLE
        ),
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let path_a = dir_a.path().join("journal.db");
    let (journal_a, a) = Journal::open(&path_a, config(&url, "a")).unwrap();
    let (journal_b, b) = Journal::open(dir_b.path().join("journal.db"), config(&url, "b")).unwrap();
    for change in [
        claimed("1003", 1, "a", 1_000),
        ended("1003", 1, "a", 1_500, ClaimEnd::Released),
        claimed("1003", 2, "a", 2_000),
    ] {
        a.record_claim(change).unwrap();
    }
    caught_up(&a);
    // a dies holding epoch 2; b reaps it and claims.
    journal_a.close(PATIENCE).unwrap();
    let reaped = ClaimEnd::Reaped { by: "b".into() };
    b.record_claim(ended("1003", 2, "a", 4_000, reaped.clone()))
        .unwrap();
    b.record_claim(claimed("1003", 3, "b", 4_000)).unwrap();
    b.record_claim(claimed("1004", 1, "b", 4_100)).unwrap();
    caught_up(&b);
    server.stop();
    b.record_claim(ended("1003", 3, "b", 5_000, ClaimEnd::Released))
        .unwrap();
    b.flush(PATIENCE).unwrap();
    wait_replica(&b, "down with the release waiting", |status| {
        !status.up && status.backlog == 1
    });
    server.resume();
    caught_up(&b);
    // a restarts: its epoch 2 was left held in its file.
    let (journal_a, a) = Journal::open(&path_a, config(&url, "a")).unwrap();
    assert_eq!(journal_a.close_interrupted(PATIENCE).unwrap(), 0, "no call");
    caught_up(&a);
    assert_eq!(
        server.psql(
            "claims",
            &format!(
                "SELECT agent, epoch, node, coalesce(call_id, ''),
                        coalesce(claimed_at - {T0_MS}, -1), coalesce(ended_at - {T0_MS}, -1),
                        coalesce(ended, ''), coalesce(reaped_by, '')
                 FROM claims ORDER BY agent, epoch"
            )
        ),
        "1003|1|a|c-a-1-1|1000|1500|released|\n\
         1003|2|a|c-a-1-2|2000|4000|reaped|b\n\
         1003|3|b|c-b-1-3|4000|5000|released|\n\
         1004|1|b|c-b-1-1|4100|-1||"
    );
    assert_eq!(
        local(&path_a, "SELECT epoch, ended FROM claims ORDER BY epoch"),
        "1|released\n2|interrupted",
        "a's own file says only what a knew"
    );
    assert_eq!(
        server.psql("claims", "SELECT version FROM journal_schema"),
        "2"
    );
    // Any node reads every node's holdings.
    let reader = journal_a.reader().unwrap();
    let listed = |query: &ClaimQuery| -> Vec<(String, u64)> {
        reader
            .claims(query)
            .unwrap()
            .into_iter()
            .map(|row| (row.agent, row.epoch))
            .collect()
    };
    let all = ClaimQuery {
        limit: 100,
        agent: None,
        range: None,
    };
    let pairs = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(a, e)| (a.to_string(), *e)).collect()
    };
    assert_eq!(
        listed(&all),
        pairs(&[("1004", 1), ("1003", 3), ("1003", 2), ("1003", 1)])
    );
    let of_1003_then = ClaimQuery {
        limit: 100,
        agent: Some("1003".into()),
        range: Some(TimeRange::new(at(1_600), at(4_500)).unwrap()),
    };
    assert_eq!(listed(&of_1003_then), pairs(&[("1003", 3), ("1003", 2)]));
    let history = reader.claim_history(&all).unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[1].ended, Some(reaped));
    assert_eq!(
        (history[0].agent.as_str(), history[0].epoch),
        ("1003", 1),
        "agent by agent, in epoch order"
    );
    journal_a.close(PATIENCE).unwrap();
    journal_b.close(PATIENCE).unwrap();
}

#[test]
fn a_start_with_postgres_down_starts_anyway() {
    // Nothing listens on this port (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!(
        "postgres://frontdesk:{}@127.0.0.1:{port}/none",
        pg_server::PASSWORD
    );
    let dir = tempfile::tempdir().unwrap();
    let (journal, handle) =
        Journal::open(dir.path().join("journal.db"), config(&url, "a")).unwrap();
    record_all(
        &handle,
        vec![JournalEntry::new(
            "c-a-1-1",
            at(0),
            support::ended(Outcome::Abandoned),
        )],
    );
    handle.flush(PATIENCE).unwrap();
    wait_replica(&handle, "down, its error known", |status| {
        !status.up && status.backlog == 1 && status.last_error.is_some()
    });
    assert_eq!(handle.stats().written, 1);
    assert!(!format!("{:?}", handle.replica()).contains(pg_server::PASSWORD));
    journal.close(Duration::from_secs(5)).unwrap();
}

/// Every call-side query of the reader `journal.reader()` gives with a
/// replica, on PostgreSQL.
fn every_call_query(reader: &Reader) -> Vec<String> {
    let hour = TimeRange::new(at(0), at(3_600_000)).unwrap();
    let ranges = [
        hour,
        TimeRange::new(at(-200_000), at(4_000_000)).unwrap(),
        TimeRange::new(at(30_000), at(200_000)).unwrap(),
        TimeRange::new(at(5_000_000), at(6_000_000)).unwrap(),
    ];
    let mut answers = Vec::new();
    let mut queries = vec![CallQuery::recent(100), CallQuery::recent(3)];
    for source in [None, Some("main-line"), Some("nowhere")] {
        for department in [None, Some("pediatrics"), Some("cardiology")] {
            for range in [None, Some(hour)] {
                queries.push(CallQuery {
                    limit: 50,
                    range,
                    source: source.map(str::to_string),
                    department: department.map(str::to_string),
                });
            }
        }
    }
    for query in &queries {
        let calls = reader.calls(query).unwrap();
        answers.push(format!("{query:?} -> {calls:?}"));
    }
    for call in reader.calls(&CallQuery::recent(100)).unwrap() {
        answers.push(format!("{:?}", reader.call(call.id.as_str()).unwrap()));
    }
    answers.push(format!("{:?}", reader.call("no-such-call").unwrap()));
    for range in &ranges {
        answers.push(format!("{:?}", reader.department_report(range).unwrap()));
        answers.push(format!("{:?}", reader.agent_report(range).unwrap()));
        answers.push(format!("{:?}", reader.source_report(range).unwrap()));
        answers.push(format!("{:?}", reader.abandonment_window(range).unwrap()));
        answers.push(format!("{:?}", reader.resolved_visits(range).unwrap()));
    }
    answers
}

#[test]
fn the_reader_answers_from_postgres_as_from_the_file() {
    let server = Postgres::start();
    // Text compared as a person reads it (ICU's en-US: `a` before `B`),
    // unlike SQLite's bytes (`B` before `a`), as a production database's
    // en_US.UTF-8 would.
    server.psql(
        "postgres",
        &format!(
            "CREATE DATABASE reads OWNER {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
            pg_server::ROLE
        ),
    );
    let url = server.url("reads");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let (journal, handle) = Journal::open(&path, config(&url, "a")).unwrap();
    let mut script = scripted_calls();
    // Two calls started at the same moment whose ids sort differently by
    // bytes and by the database's collation: the tie-break is bytes.
    script.extend(simple_call("c-a-1", 2_000_000));
    script.extend(simple_call("c-B-1", 2_000_000));
    record_all(&handle, script);
    caught_up(&handle);

    let shared = journal.reader().unwrap();
    assert!(shared.is_shared());
    let file = Reader::open(&path).unwrap();
    assert!(!file.is_shared());
    let from_postgres = every_call_query(&shared);
    let from_the_file = every_call_query(&file);
    assert_eq!(from_postgres.len(), from_the_file.len());
    for (postgres, file) in from_postgres.iter().zip(&from_the_file) {
        assert_eq!(postgres, file);
    }
    // The collation would order them the other way.
    assert_eq!(
        server.psql(
            "reads",
            "SELECT id FROM calls WHERE id LIKE 'c-%-1' ORDER BY id DESC"
        ),
        "c-B-1\nc-a-1"
    );
    // Not vacuous: the file's answers hold the script's calls.
    let recent = file.calls(&CallQuery::recent(100)).unwrap();
    assert_eq!(recent.len(), 14, "{recent:?}");
    assert_eq!(
        shared.recent_calls(3).unwrap()[1..]
            .iter()
            .map(|call| call.id.as_str())
            .collect::<Vec<_>>(),
        ["c-a-1", "c-B-1"]
    );
    journal.close(PATIENCE).unwrap();
}

#[test]
fn reads_of_another_node_and_while_postgres_is_down() {
    let mut server = Postgres::start();
    let url = server.database("nodes");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (journal_a, a) = Journal::open(dir_a.path().join("journal.db"), config(&url, "a")).unwrap();
    let (journal_b, _b) =
        Journal::open(dir_b.path().join("journal.db"), config(&url, "b")).unwrap();
    record_all(&a, simple_call("c-a-1-1", 1_000));
    caught_up(&a);
    // Node b's reader sees node a's call and its timeline; b's file has
    // none of it.
    let reader_b = journal_b.reader().unwrap();
    let calls = reader_b.recent_calls(10).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id.as_str(), "c-a-1-1");
    assert_eq!(calls[0].outcome, Some(Outcome::Connected));
    let timeline = reader_b.call("c-a-1-1").unwrap().unwrap();
    assert_eq!(timeline.events.len(), 4);
    assert_eq!(
        timeline
            .events
            .iter()
            .map(|event| event.seq)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let file_b = Reader::open(dir_b.path().join("journal.db")).unwrap();
    assert!(file_b.recent_calls(10).unwrap().is_empty());

    // Down: every call-side read is Unavailable (within the 2 s bound of
    // config(), the PATIENCE here only guards against a hang).
    server.stop();
    let started = Instant::now();
    let hour = TimeRange::new(at(0), at(3_600_000)).unwrap();
    assert!(matches!(
        reader_b.recent_calls(10),
        Err(QueryError::Unavailable(_))
    ));
    assert!(matches!(
        reader_b.call("c-a-1-1"),
        Err(QueryError::Unavailable(_))
    ));
    let error = reader_b.department_report(&hour).unwrap_err();
    assert!(matches!(error, QueryError::Unavailable(_)), "{error}");
    assert!(!error.to_string().contains(pg_server::PASSWORD), "{error}");
    assert!(started.elapsed() < PATIENCE);
    // Leads stay node-local: the same reader still reads them from b's
    // file.
    assert!(reader_b.open_leads(10).unwrap().is_empty());

    // Back: the same reader reconnects.
    server.resume();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match reader_b.recent_calls(10) {
            Ok(calls) => {
                assert_eq!(calls.len(), 1);
                break;
            }
            Err(error) => assert!(Instant::now() < deadline, "{error}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    journal_a.close(PATIENCE).unwrap();
    journal_b.close(PATIENCE).unwrap();
}

/// Right after a flush, "up with nothing waiting" must mean it is in
/// PostgreSQL: the backlog reads the commit until the shipper has shipped
/// it. It read the shipper's last idle look instead, and a test stopped
/// PostgreSQL with three holdings it took for shipped.
#[test]
fn up_with_nothing_waiting_means_shipped() {
    let server = Postgres::start();
    let url = server.database("backlog");
    let dir = tempfile::tempdir().unwrap();
    let (journal, handle) =
        Journal::open(dir.path().join("journal.db"), config(&url, "a")).unwrap();
    wait_replica(&handle, "up", |status| status.up && status.backlog == 0);
    for epoch in 1..=20u64 {
        handle
            .record_claim(claimed("1003", epoch, "a", epoch as i64 * 1_000))
            .unwrap();
        handle.flush(PATIENCE).unwrap();
        // Read at once: `shipped` counts each holding shipped.
        let status = handle.replica().unwrap();
        if status.up && status.backlog == 0 {
            assert!(status.shipped >= epoch, "caught up, it said: {status:?}");
        }
    }
    caught_up(&handle);
    assert_eq!(server.psql("backlog", "SELECT count(*) FROM claims"), "20");
    journal.close(PATIENCE).unwrap();
}
