//! The shared line against a real redis-server: a claim for a caller who
//! is not first in line across live nodes is refused, a dead node's
//! callers are dropped, `force` skips the check, sync and counts.

#[path = "../../frontdesk/tests/support/redis.rs"]
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cluster::claims::{ClaimError, ClaimStore, Epoch, Lease, NodeId, StoreConfig};
use cluster::line::{LineCheck, LineCount, LineOp, LineStore};
use domain::AgentId;
use support::RedisServer;

const ALIVE: Duration = Duration::from_secs(3);

fn config(redis: &RedisServer) -> StoreConfig {
    let mut config = StoreConfig::new(redis.url());
    config.command_timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    config
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("a valid node name")
}

fn unix_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

/// A heartbeat as the daemon writes it, `age` ms old.
fn beat(redis: &RedisServer, name: &str, age: u64) {
    let value = format!(
        r#"{{"node":"{name}","sip":"127.0.0.1:5060","started":0,"last_seen":{}}}"#,
        unix_ms() - age
    );
    redis.cli(&["HSET", "frontdesk:nodes", name, &value]);
}

fn add(queue: &str, call: u64, score: u64) -> LineOp {
    LineOp::Add {
        queue: queue.into(),
        call,
        score,
    }
}

fn check(queue: &str, call: u64, score: u64, lines: &[&str], force: bool) -> LineCheck {
    LineCheck {
        queue: queue.into(),
        call,
        score,
        lines: lines.iter().map(ToString::to_string).collect(),
        alive_within: ALIVE,
        force,
    }
}

fn lease() -> Lease {
    Lease::new(Duration::from_secs(30)).expect("a valid lease")
}

#[tokio::test]
async fn a_claim_waits_for_the_caller_first_in_line_on_a_live_node() {
    let redis = RedisServer::start();
    let (a, b) = (node("a"), node("b"));
    beat(&redis, "a", 0);
    beat(&redis, "b", 0);
    let line_a = LineStore::connect(config(&redis), a.clone()).await.unwrap();
    let line_b = LineStore::connect(config(&redis), b.clone()).await.unwrap();
    let claims = ClaimStore::connect(config(&redis)).await.unwrap();
    // a's caller 1 came first (score 100), b's caller 7 second (200).
    line_a.apply(&[add("pediatrics", 1, 100)]).await.unwrap();
    line_b.apply(&[add("pediatrics", 7, 200)]).await.unwrap();
    assert_eq!(line_b.ahead("pediatrics", 200).await.unwrap(), 1);
    assert_eq!(line_a.ahead("pediatrics", 100).await.unwrap(), 0);

    let carol = AgentId::new("1003");
    let refused = claims
        .claim_in_line(
            &carol,
            &b,
            Epoch::ZERO,
            lease(),
            &check("pediatrics", 7, 200, &["pediatrics"], false),
        )
        .await;
    match refused {
        Err(ClaimError::Behind { ahead, epoch }) => {
            assert_eq!(ahead, "a/1");
            assert_eq!(epoch, Epoch::ZERO);
        }
        other => panic!("expected behind, got {other:?}"),
    }
    // Nothing changed: the agent is free, b's caller still in line.
    assert_eq!(redis.cli(&["HGET", "frontdesk:agent:1003", "node"]), "");
    assert_eq!(
        redis.cli(&["ZSCORE", "frontdesk:line:pediatrics", "b/7"]),
        "200"
    );

    // a claims her for its first caller: granted, and a/1 leaves the line.
    let claim = claims
        .claim_in_line(
            &carol,
            &a,
            Epoch::ZERO,
            lease(),
            &check("pediatrics", 1, 100, &["pediatrics"], false),
        )
        .await
        .expect("a's caller is first");
    assert_eq!(claim.epoch, Epoch(1));
    assert_eq!(
        redis.cli(&["ZSCORE", "frontdesk:line:pediatrics", "a/1"]),
        ""
    );
    claims.release(&claim).await.unwrap();
    // Now b's caller is first: granted.
    claims
        .claim_in_line(
            &carol,
            &b,
            Epoch(1),
            lease(),
            &check("pediatrics", 7, 200, &["pediatrics"], false),
        )
        .await
        .expect("b's caller is first now");
}

#[tokio::test]
async fn a_multi_queue_agent_is_checked_against_every_queue_they_serve() {
    let redis = RedisServer::start();
    let (a, b) = (node("a"), node("b"));
    beat(&redis, "a", 0);
    beat(&redis, "b", 0);
    let line_a = LineStore::connect(config(&redis), a.clone()).await.unwrap();
    let claims = ClaimStore::connect(config(&redis)).await.unwrap();
    // a's dermatology caller is ahead of b's orthopedics caller; Dan does both.
    line_a.apply(&[add("dermatology", 1, 100)]).await.unwrap();
    let dan = AgentId::new("1004");
    let lines = ["dermatology", "orthopedics"];
    let refused = claims
        .claim_in_line(
            &dan,
            &b,
            Epoch::ZERO,
            lease(),
            &check("orthopedics", 3, 150, &lines, false),
        )
        .await;
    assert!(
        matches!(refused, Err(ClaimError::Behind { .. })),
        "{refused:?}"
    );
    // An agent who serves orthopedics only is not held back by dermatology.
    let other = AgentId::new("2000");
    claims
        .claim_in_line(
            &other,
            &b,
            Epoch::ZERO,
            lease(),
            &check("orthopedics", 3, 150, &["orthopedics"], false),
        )
        .await
        .expect("nobody ahead in orthopedics");
    // Forced (b yielded once and nobody took Dan): granted.
    claims
        .claim_in_line(
            &dan,
            &b,
            Epoch::ZERO,
            lease(),
            &check("orthopedics", 3, 150, &lines, true),
        )
        .await
        .expect("forced");
}

#[tokio::test]
async fn a_dead_nodes_callers_are_dropped_and_do_not_hold_anyone_back() {
    let redis = RedisServer::start();
    let (a, b) = (node("a"), node("b"));
    beat(&redis, "a", 60_000); // a's heartbeat lapsed a minute ago
    beat(&redis, "b", 0);
    let line_a = LineStore::connect(config(&redis), a.clone()).await.unwrap();
    let line_b = LineStore::connect(config(&redis), b.clone()).await.unwrap();
    let claims = ClaimStore::connect(config(&redis)).await.unwrap();
    line_a
        .apply(&[add("pediatrics", 1, 100), add("pediatrics", 2, 110)])
        .await
        .unwrap();
    // Garbage in our key is dropped too, never a panic or a refusal.
    redis.cli(&["ZADD", "frontdesk:line:pediatrics", "50", "not a member"]);
    line_b.apply(&[add("pediatrics", 7, 200)]).await.unwrap();
    claims
        .claim_in_line(
            &AgentId::new("1003"),
            &b,
            Epoch::ZERO,
            lease(),
            &check("pediatrics", 7, 200, &["pediatrics"], false),
        )
        .await
        .expect("a is dead: b's caller is first");
    assert_eq!(redis.cli(&["ZCARD", "frontdesk:line:pediatrics"]), "0");

    // sync: b's members become exactly what it says; a's (dead) go.
    line_a.apply(&[add("front-desk", 4, 10)]).await.unwrap();
    line_b
        .apply(&[add("front-desk", 8, 20), add("front-desk", 9, 30)])
        .await
        .unwrap();
    let queues = ["front-desk".to_string(), "pediatrics".to_string()];
    let removed = line_b
        .sync(
            &queues,
            &[("front-desk".into(), 9, 30), ("pediatrics".into(), 11, 40)],
            ALIVE,
        )
        .await
        .unwrap();
    assert_eq!(removed, 2, "a/4 (dead) and b/8 (gone)");
    beat(&redis, "c", 0);
    LineStore::connect(config(&redis), node("c"))
        .await
        .unwrap()
        .apply(&[add("pediatrics", 1, 5)])
        .await
        .unwrap();
    assert_eq!(
        line_b.counts(&queues).await.unwrap(),
        [
            LineCount {
                queue: "front-desk".into(),
                nodes: vec![("b".into(), 1)]
            },
            LineCount {
                queue: "pediatrics".into(),
                nodes: vec![("b".into(), 1), ("c".into(), 1)]
            },
        ]
    );
}
