//! Agent claims against a real redis-server on a free loopback port: races,
//! leases, the feed, stale epochs, Redis killed. Waits poll a condition
//! under a deadline; leases are shortened to a few hundred milliseconds.

#[path = "../../frontdesk/tests/support/redis.rs"]
mod support;

use std::time::{Duration, Instant};

use cluster::claims::{
    AgentChange, ChangeFeed, ChangeKind, Claim, ClaimError, ClaimStore, Epoch, FeedEvent, Lease,
    NodeId, StoreConfig, find_violations, holdings,
};
use domain::AgentId;
use support::RedisServer;

/// Generous: the machine is shared; this bounds waits, it is no timing claim.
const DEADLINE: Duration = Duration::from_secs(20);

fn config(redis: &RedisServer) -> StoreConfig {
    let mut config = StoreConfig::new(redis.url());
    config.command_timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    config.feed_block = Duration::from_millis(200);
    config
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("a valid node name")
}

fn lease(ms: u64) -> Lease {
    Lease::new(Duration::from_millis(ms)).expect("a valid lease")
}

/// Reads the feed until it has given the change numbered `seq`.
async fn read_until(feed: &mut ChangeFeed, seq: u64) -> Vec<AgentChange> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while feed.seq() < seq {
        assert!(
            Instant::now() < deadline,
            "the feed stopped at {} of {seq}",
            feed.seq()
        );
        match feed.next().await.expect("the feed reads") {
            Some(FeedEvent::Changes(changes)) => got.extend(changes),
            Some(FeedEvent::Resync(snapshot)) => panic!("unexpected resync: {snapshot:?}"),
            None => {}
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_the_same_agents_win_exactly_once_per_round() {
    let redis = RedisServer::start();
    let (mut feed, _) = ChangeFeed::open(config(&redis)).await.unwrap();
    let a = ClaimStore::connect(config(&redis)).await.unwrap();
    let b = ClaimStore::connect(config(&redis)).await.unwrap();
    let (node_a, node_b) = (node("node-a"), node("node-b"));
    const AGENTS: usize = 8;
    const ROUNDS: u64 = 60;

    let mut races = tokio::task::JoinSet::new();
    for index in 0..AGENTS {
        let (a, b, node_a, node_b) = (a.clone(), b.clone(), node_a.clone(), node_b.clone());
        races.spawn(async move {
            let agent = AgentId::new(format!("10{index:02}"));
            let mut epoch = Epoch::ZERO;
            let mut wins = [0u64; 2];
            for _ in 0..ROUNDS {
                let (first, second) = tokio::join!(
                    a.claim(&agent, &node_a, epoch, lease(60_000)),
                    b.claim(&agent, &node_b, epoch, lease(60_000)),
                );
                let (winner, loser, store) = match (first, second) {
                    (Ok(claim), Err(error)) => {
                        wins[0] += 1;
                        (claim, error, &a)
                    }
                    (Err(error), Ok(claim)) => {
                        wins[1] += 1;
                        (claim, error, &b)
                    }
                    other => panic!("not exactly one winner: {other:?}"),
                };
                assert!(winner.epoch > epoch, "epochs strictly increase");
                assert_eq!(winner.epoch, Epoch(epoch.0 + 1));
                match loser {
                    ClaimError::Taken {
                        by, epoch: held, ..
                    } => {
                        assert_eq!((by, held), (winner.node.clone(), winner.epoch));
                    }
                    other => panic!("the loser should see the winner's claim: {other}"),
                }
                epoch = winner.epoch;
                store.release(&winner).await.unwrap();
            }
            wins
        });
    }
    let mut wins = [0u64; 2];
    while let Some(result) = races.join_next().await {
        let [x, y] = result.unwrap();
        wins[0] += x;
        wins[1] += y;
    }
    assert_eq!(wins[0] + wins[1], AGENTS as u64 * ROUNDS);

    // Every claim and release reached the feed; the history is clean.
    let changes = read_until(&mut feed, AGENTS as u64 * ROUNDS * 2).await;
    let held = holdings(&changes);
    assert_eq!(held.len(), AGENTS * ROUNDS as usize);
    assert!(held.iter().all(|holding| holding.to.is_some()));
    assert_eq!(find_violations(&held), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_by_the_other_node() {
    let redis = RedisServer::start();
    let store = ClaimStore::connect(config(&redis)).await.unwrap();
    let agent = AgentId::new("1003");
    let (node_a, node_b) = (node("node-a"), node("node-b"));

    let held = store
        .claim(&agent, &node_a, Epoch::ZERO, lease(200))
        .await
        .unwrap();
    assert_eq!(held.epoch, Epoch(1));
    // Renewing keeps the epoch and moves the end.
    let held = store.renew(&held, lease(200)).await.unwrap();
    assert_eq!(held.epoch, Epoch(1));
    match store.claim(&agent, &node_b, Epoch(1), lease(200)).await {
        Err(ClaimError::Taken { by, .. }) => assert_eq!(by, node_a),
        other => panic!("held, so taken: {other:?}"),
    }

    // Node a goes silent; node b polls until the lease has run out.
    let deadline = Instant::now() + DEADLINE;
    let taken = loop {
        match store.claim(&agent, &node_b, Epoch(1), lease(60_000)).await {
            Ok(claim) => break claim,
            Err(ClaimError::Taken { .. }) => {
                assert!(Instant::now() < deadline, "the lease never ran out");
                tokio::task::yield_now().await;
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(taken.epoch, Epoch(2));
    assert!(
        taken.at >= held.expires_at,
        "taken only once the lease ran out (Redis time)"
    );

    // The old holder's claim is fenced off: it can neither renew nor release.
    assert!(matches!(
        store.renew(&held, lease(200)).await,
        Err(ClaimError::Stale { epoch: Epoch(2) })
    ));
    assert!(matches!(
        store.release(&held).await,
        Err(ClaimError::Stale { epoch: Epoch(2) })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_claim_cannot_be_renewed_and_reap_records_its_expiry() {
    let redis = RedisServer::start();
    let (mut feed, _) = ChangeFeed::open(config(&redis)).await.unwrap();
    let store = ClaimStore::connect(config(&redis)).await.unwrap();
    let agent = AgentId::new("1004");
    let held = store
        .claim(&agent, &node("node-a"), Epoch::ZERO, lease(100))
        .await
        .unwrap();

    let deadline = Instant::now() + DEADLINE;
    while !store.reap(&agent, &node("node-r")).await.unwrap() {
        assert!(Instant::now() < deadline, "the lease never ran out");
        tokio::task::yield_now().await;
    }
    assert!(
        !store.reap(&agent, &node("node-r")).await.unwrap(),
        "an expiry is recorded once"
    );
    assert!(matches!(
        store.renew(&held, lease(100)).await,
        Err(ClaimError::Lapsed { epoch: Epoch(1) })
    ));
    assert!(matches!(
        store.release(&held).await,
        Err(ClaimError::Lapsed { epoch: Epoch(1) })
    ));

    let changes = read_until(&mut feed, 2).await;
    let kinds: Vec<_> = changes.iter().map(|c| (c.kind, c.epoch)).collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::Claimed, Epoch(1)),
            (ChangeKind::Expired, Epoch(1))
        ]
    );
    assert_eq!(
        changes[1].at, held.expires_at,
        "stamped when the lease ran out"
    );
    assert_eq!(
        (
            changes[1].node.as_str(),
            changes[1].by.as_ref().map(NodeId::as_str)
        ),
        ("node-a", Some("node-r")),
        "the holder's expiry, recorded by the reaper"
    );
    assert_eq!(changes[0].by, None, "only an expiry names who recorded it");
    // The agent is free at epoch 1.
    store
        .claim(&agent, &node("node-b"), Epoch(1), lease(100))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_frees_the_agent_at_once() {
    let redis = RedisServer::start();
    let a = ClaimStore::connect(config(&redis)).await.unwrap();
    let b = ClaimStore::connect(config(&redis)).await.unwrap();
    let agent = AgentId::new("1005");
    let held = a
        .claim(&agent, &node("node-a"), Epoch::ZERO, lease(3_600_000))
        .await
        .unwrap();
    a.release(&held).await.unwrap();
    let next = b
        .claim(&agent, &node("node-b"), held.epoch, lease(3_600_000))
        .await
        .unwrap();
    assert_eq!(next.epoch, Epoch(2));
    // Releasing twice is refused: the release ended the claim.
    assert!(matches!(
        a.release(&held).await,
        Err(ClaimError::Stale { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_is_refused() {
    let redis = RedisServer::start();
    let store = ClaimStore::connect(config(&redis)).await.unwrap();
    let agent = AgentId::new("1006");
    let (node_a, node_b) = (node("node-a"), node("node-b"));
    let first = store
        .claim(&agent, &node_a, Epoch::ZERO, lease(60_000))
        .await
        .unwrap();
    store.release(&first).await.unwrap();

    // Node b's replica has not seen epoch 1 yet: refused, told the epoch.
    match store
        .claim(&agent, &node_b, Epoch::ZERO, lease(60_000))
        .await
    {
        Err(ClaimError::Stale { epoch }) => assert_eq!(epoch, Epoch(1)),
        other => panic!("{other:?}"),
    }
    // An epoch from the future is as stale.
    assert!(matches!(
        store.claim(&agent, &node_b, Epoch(7), lease(60_000)).await,
        Err(ClaimError::Stale { epoch: Epoch(1) })
    ));
    // Caught up, it wins.
    let second = store
        .claim(&agent, &node_b, Epoch(1), lease(60_000))
        .await
        .unwrap();
    assert_eq!(second.epoch, Epoch(2));
    // A forged claim at the right epoch but another node is refused.
    let forged = Claim {
        node: node_a.clone(),
        ..second.clone()
    };
    assert!(matches!(
        store.release(&forged).await,
        Err(ClaimError::Taken { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_delivers_every_change_in_order_to_a_second_connection() {
    let redis = RedisServer::start();
    let store = ClaimStore::connect(config(&redis)).await.unwrap();
    // Some history before the feed opens: the snapshot carries it.
    let early = store
        .claim(
            &AgentId::new("1001"),
            &node("node-a"),
            Epoch::ZERO,
            lease(60_000),
        )
        .await
        .unwrap();
    let (mut feed, snapshot) = ChangeFeed::open(config(&redis)).await.unwrap();
    assert_eq!(snapshot.seq, 1);
    assert_eq!(snapshot.agents.len(), 1);
    assert_eq!(snapshot.agents[0].holder, Some(node("node-a")));
    assert_eq!(snapshot.agents[0].epoch, Epoch(1));

    // (seq, agent, node, epoch, kind) as the store's answers say.
    let mut expected = Vec::new();
    store.release(&early).await.unwrap();
    expected.push((2, "1001", "node-a", 1, ChangeKind::Released));
    let mut seq = 2;
    for round in 0..30u64 {
        for (index, agent) in ["1001", "1002", "1003"].into_iter().enumerate() {
            let agent_id = AgentId::new(agent);
            let name = if (round + index as u64).is_multiple_of(2) {
                "node-a"
            } else {
                "node-b"
            };
            let epoch = Epoch(round + if agent == "1001" { 1 } else { 0 });
            let claim = store
                .claim(&agent_id, &node(name), epoch, lease(60_000))
                .await
                .unwrap();
            seq += 1;
            assert_eq!(claim.seq, seq);
            expected.push((seq, agent, name, claim.epoch.0, ChangeKind::Claimed));
            let claim = store.renew(&claim, lease(60_000)).await.unwrap();
            seq += 1;
            expected.push((seq, agent, name, claim.epoch.0, ChangeKind::Renewed));
            store.release(&claim).await.unwrap();
            seq += 1;
            expected.push((seq, agent, name, claim.epoch.0, ChangeKind::Released));
        }
    }

    let changes = read_until(&mut feed, seq).await;
    let got: Vec<_> = changes
        .iter()
        .map(|c| (c.seq, c.agent.as_str(), c.node.as_str(), c.epoch.0, c.kind))
        .collect();
    assert_eq!(got, expected);
    assert!(
        changes
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].at <= w[1].at)
    );
    // Nothing more: the next read answers "nothing new" after its block.
    assert_eq!(feed.next().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_behind_the_cap_resyncs_from_a_snapshot() {
    // Small stream nodes so that `MAXLEN ~` trims a small stream.
    let redis = RedisServer::start_with(&["--stream-node-max-entries", "4"]);
    let mut config = config(&redis);
    config.stream_cap = 8;
    let (mut feed, _) = ChangeFeed::open(config.clone()).await.unwrap();
    let store = ClaimStore::connect(config).await.unwrap();
    let agents: Vec<_> = (0..5).map(|i| AgentId::new(format!("20{i}"))).collect();
    let mut last = None;
    for round in 0..20 {
        for agent in &agents {
            let claim = store
                .claim(agent, &node("node-a"), Epoch(round), lease(60_000))
                .await
                .unwrap();
            store.release(&claim).await.unwrap();
            last = Some(claim);
        }
    }
    // Agent 204 is left held.
    let held = store
        .claim(&agents[4], &node("node-b"), Epoch(20), lease(60_000))
        .await
        .unwrap();
    let _ = last;

    let snapshot = match feed.next().await.unwrap() {
        Some(FeedEvent::Resync(snapshot)) => snapshot,
        other => panic!("a feed 201 changes behind a cap of 8 must resync: {other:?}"),
    };
    assert_eq!(snapshot.seq, held.seq);
    assert_eq!(feed.seq(), held.seq);
    let mut seen: Vec<_> = snapshot
        .agents
        .iter()
        .map(|a| (a.agent.as_str().to_owned(), a.holder.clone(), a.epoch))
        .collect();
    seen.sort();
    let mut want: Vec<_> = agents
        .iter()
        .map(|a| (a.as_str().to_owned(), None, Epoch(20)))
        .collect();
    want[4] = (
        agents[4].as_str().to_owned(),
        Some(node("node-b")),
        Epoch(21),
    );
    assert_eq!(seen, want);

    // After the snapshot, the changes follow from there.
    store.release(&held).await.unwrap();
    let changes = read_until(&mut feed, held.seq + 1).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].kind, changes[0].epoch),
        (ChangeKind::Released, Epoch(21))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_the_next_claim_errors_within_the_timeout() {
    let mut redis = RedisServer::start();
    let config = config(&redis);
    let store = ClaimStore::connect(config.clone()).await.unwrap();
    let (mut feed, _) = ChangeFeed::open(config.clone()).await.unwrap();
    store.ping().await.unwrap();
    let agent = AgentId::new("1007");
    store
        .claim(&agent, &node("node-a"), Epoch::ZERO, lease(60_000))
        .await
        .unwrap();
    redis.kill();

    // An error, not a hang: the store's own timeout bounds every call (the
    // bound checked here is generous, the machine is shared).
    let bound = config.command_timeout + config.connect_timeout + Duration::from_secs(5);
    for _ in 0..3 {
        let result = tokio::time::timeout(
            bound,
            store.claim(&agent, &node("node-b"), Epoch(1), lease(1_000)),
        )
        .await;
        match result {
            Ok(Err(ClaimError::Store(_))) => {}
            other => panic!("expected a store error within {bound:?}: {other:?}"),
        }
    }
    assert!(matches!(
        tokio::time::timeout(bound, store.ping()).await,
        Ok(Err(ClaimError::Store(_)))
    ));
    let result = tokio::time::timeout(bound + config.feed_block, feed.next()).await;
    assert!(
        matches!(result, Ok(Err(ClaimError::Store(_)))),
        "{result:?}"
    );
    // Connecting to nothing fails as well.
    assert!(matches!(
        tokio::time::timeout(bound, ClaimStore::connect(config)).await,
        Ok(Err(ClaimError::Store(_)))
    ));
}
