//! Presence, states, reload notes and heartbeats against a real
//! redis-server on a free loopback port. Waits are bounded.

#[path = "../../frontdesk/tests/support/redis.rs"]
mod support;

use std::time::Duration;

use cluster::claims::{NodeId, StoreConfig};
use cluster::presence::{FeedItem, Note, NoteFeed, PresenceStore, Snapshot};
use domain::AgentId;
use support::RedisServer;

/// Generous: bounds waits, no timing claim.
const DEADLINE: Duration = Duration::from_secs(20);

fn config(redis: &RedisServer) -> StoreConfig {
    let mut config = StoreConfig::new(redis.url());
    config.command_timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    config
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("a valid node name")
}

async fn next_note(feed: &mut NoteFeed) -> Note {
    match tokio::time::timeout(DEADLINE, feed.next()).await {
        Ok(Some(FeedItem::Note(note))) => note,
        other => panic!("expected a note, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_put_read_deleted_and_noted_per_node() {
    let redis = RedisServer::start();
    let mut feed = NoteFeed::subscribe(config(&redis)).await.unwrap();
    let a = PresenceStore::connect(config(&redis), node("a"))
        .await
        .unwrap();
    let b = PresenceStore::connect(config(&redis), node("b"))
        .await
        .unwrap();
    let agent = AgentId::new("1003");

    a.put_bindings(&agent, Some(r#"[{"from":"a"}]"#))
        .await
        .unwrap();
    b.put_bindings(&agent, Some(r#"[{"from":"b"}]"#))
        .await
        .unwrap();
    assert_eq!(
        next_note(&mut feed).await,
        Note::Presence {
            node: node("a"),
            agent: agent.clone()
        }
    );
    assert_eq!(next_note(&mut feed).await.node(), &node("b"));
    assert_eq!(
        b.bindings(&agent).await.unwrap(),
        [
            (node("a"), r#"[{"from":"a"}]"#.to_string()),
            (node("b"), r#"[{"from":"b"}]"#.to_string())
        ]
    );

    a.put_bindings(&agent, None).await.unwrap();
    assert_eq!(next_note(&mut feed).await.node(), &node("a"));
    assert_eq!(
        a.bindings(&agent).await.unwrap(),
        [(node("b"), r#"[{"from":"b"}]"#.to_string())]
    );
    b.put_bindings(&agent, None).await.unwrap();
    assert!(a.bindings(&agent).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_reads_every_agent_and_state_and_skips_foreign_keys() {
    let redis = RedisServer::start();
    let a = PresenceStore::connect(config(&redis), node("a"))
        .await
        .unwrap();
    for n in 0..700 {
        // More than one SCAN batch.
        a.put_bindings(&AgentId::new(format!("agent{n:03}")), Some("[]"))
            .await
            .unwrap();
    }
    a.put_state(&AgentId::new("agent001"), "away")
        .await
        .unwrap();
    a.put_state(&AgentId::new("agent002"), "available")
        .await
        .unwrap();
    // Someone else's keys under the prefix: skipped.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("frontdesk:presence:bad name")
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();

    let Snapshot { presence, states } = a.snapshot().await.unwrap();
    assert_eq!(presence.len(), 700);
    assert_eq!(presence[1].0, AgentId::new("agent001"));
    assert_eq!(presence[1].1, [(node("a"), "[]".to_string())]);
    assert_eq!(
        states,
        [
            (AgentId::new("agent001"), "away".to_string()),
            (AgentId::new("agent002"), "available".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_reloads_and_heartbeats_are_shared() {
    let redis = RedisServer::start();
    let mut feed = NoteFeed::subscribe(config(&redis)).await.unwrap();
    let a = PresenceStore::connect(config(&redis), node("a"))
        .await
        .unwrap();
    let agent = AgentId::new("1001");
    a.put_state(&agent, "away").await.unwrap();
    assert_eq!(
        next_note(&mut feed).await,
        Note::State {
            node: node("a"),
            agent: agent.clone(),
            state: "away".into()
        }
    );
    assert_eq!(a.state(&agent).await.unwrap().as_deref(), Some("away"));
    assert!(a.put_state(&agent, "on_call").await.is_err());

    let hash = "0f".repeat(32);
    a.announce_reload(&hash).await.unwrap();
    assert_eq!(
        next_note(&mut feed).await,
        Note::Reload {
            node: node("a"),
            hash
        }
    );
    assert!(a.announce_reload("nothex").await.is_err());

    a.heartbeat(r#"{"sip":"127.0.0.11:5060"}"#).await.unwrap();
    assert_eq!(
        a.nodes().await.unwrap(),
        [(node("a"), r#"{"sip":"127.0.0.11:5060"}"#.to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_calls_fail_in_bounded_time_and_the_feed_ends() {
    let mut redis = RedisServer::start();
    let mut feed = NoteFeed::subscribe(config(&redis)).await.unwrap();
    let a = PresenceStore::connect(config(&redis), node("a"))
        .await
        .unwrap();
    redis.kill();
    let ended = tokio::time::timeout(DEADLINE, feed.next()).await;
    assert!(matches!(ended, Ok(None)), "{ended:?}");
    let put =
        tokio::time::timeout(DEADLINE, a.put_bindings(&AgentId::new("1003"), Some("[]"))).await;
    assert!(matches!(put, Ok(Err(_))), "{put:?}");

    // Back, empty: the same store works again (it reconnects).
    redis.restart();
    let deadline = std::time::Instant::now() + DEADLINE;
    while a.heartbeat("{}").await.is_err() {
        assert!(std::time::Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval, bounded
    }
    assert_eq!(a.nodes().await.unwrap().len(), 1);
}
