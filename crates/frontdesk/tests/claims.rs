//! Issue 24, the claim before the ring, end to end: two nodes (on free
//! ports of 127.0.0.1, `--node-id a` and `b`) share one real redis-server;
//! agent 1003 is registered to both directly (a SIPp phone per node). A
//! patient on node a gets her; meanwhile node b shows her `on_call` (held
//! elsewhere) and keeps its own caller waiting until a releases her. The
//! claim stream read back from Redis has no overlap and claims by both
//! nodes. Redis killed: the alert `cluster_store_down` stands; Redis back:
//! it clears.

mod support;

use std::time::{Duration, Instant};

use cluster::claims::{ChangeFeed, FeedEvent, StoreConfig, find_violations, holdings};
use support::call::open_clinic;
use support::cluster::alert_kinds;
use support::people::{self, patient, press_when_heard, wait_agent_state};
use support::phone::RtpPeer;
use support::redis::RedisServer;
use support::{Daemon, Launch};

const BOUND: Duration = Duration::from_secs(20);

fn node(dir: &std::path::Path, ip: &str, name: &str, redis: &RedisServer) -> Daemon {
    let plan = open_clinic(dir, |text| text);
    Launch::new()
        .dialplan(plan)
        .sip(format!("{ip}:0"))
        .args([
            "--node-id",
            name,
            "--redis",
            &redis.url(),
            "--claim-lease",
            "2",
        ])
        .start()
}

fn carol(daemon: &Daemon, audio: &RtpPeer) -> std::thread::JoinHandle<support::sipp::SippRun> {
    people::agent_phone(
        daemon,
        "1003",
        "agent.xml",
        &[
            "-d".to_string(),
            "200".to_string(),
            "-set".to_string(),
            "rtp_port".to_string(),
            audio.port().to_string(),
        ],
    )
}

fn wait_alert(daemon: &Daemon, present: bool) {
    let deadline = Instant::now() + BOUND;
    loop {
        let now = alert_kinds(daemon);
        if now.iter().any(|kind| kind == "cluster_store_down") == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster_store_down present: {present} expected, alerts {now:?}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50)); // a poll interval, bounded
    }
}

#[test]
fn one_agent_on_two_nodes_is_rung_by_one_at_a_time_and_redis_down_is_an_alert() {
    let mut redis = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut feed = runtime
        .block_on(ChangeFeed::open(StoreConfig::new(redis.url())))
        .expect("the claims feed")
        .0;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(dir_a.path(), "127.0.0.1", "a", &redis);
    let b = node(dir_b.path(), "127.0.0.1", "b", &redis);
    let (audio_a, audio_b) = (RtpPeer::start(0, false), RtpPeer::start(0, false));
    let carol_a = carol(&a, &audio_a);
    let carol_b = carol(&b, &audio_b);
    wait_agent_state(&a, "1003", "available");
    wait_agent_state(&b, "1003", "available");

    // A patient on a gets Carol; b sees her busy and keeps its caller.
    let first_audio = RtpPeer::start(0, false);
    let first = patient(&a, "caller.xml", "+15550100", &first_audio, 3000);
    press_when_heard(&first_audio, '3');
    wait_agent_state(&a, "1003", "on_call");
    wait_agent_state(&b, "1003", "on_call");
    let second_audio = RtpPeer::start(0, false);
    // SIPp's own SIP port: the first patient's (5060 by default) is busy.
    let port = support::call::free_udp_port().to_string();
    let target = b.sip();
    let args: Vec<String> = [
        "-p",
        &port,
        "-s",
        "+15550100",
        "-set",
        "rtp_port",
        &second_audio.port().to_string(),
        "-set",
        "dtmf",
        "0",
        "-d",
        "12000",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let second = std::thread::spawn(move || {
        support::sipp::Sipp::new("caller.xml", target)
            .calls(1)
            .args(args)
            .run()
    });
    press_when_heard(&second_audio, '3');
    // The first call ends; a releases Carol after her wrap-up; b rings her.
    first.join().expect("caller thread").assert_all_succeeded(1);
    carol_a.join().expect("agent phone").assert_all_succeeded(1);
    second
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    carol_b.join().expect("agent phone").assert_all_succeeded(1);
    wait_agent_state(&b, "1003", "available");

    // The history from Redis: claims by both nodes, never overlapping.
    let mut changes = Vec::new();
    let deadline = Instant::now() + BOUND;
    let done = |changes: &Vec<cluster::claims::AgentChange>| {
        let held = holdings(changes);
        ["a", "b"].iter().all(|node| {
            held.iter()
                .any(|h| h.node.as_str() == *node && h.to.is_some())
        })
    };
    while !done(&changes) {
        assert!(Instant::now() < deadline, "claims seen: {changes:?}");
        match runtime.block_on(feed.next()).expect("the feed") {
            Some(FeedEvent::Changes(more)) => changes.extend(more),
            Some(FeedEvent::Resync(_)) => panic!("the test's feed fell behind"),
            None => {}
        }
    }
    let held = holdings(&changes);
    assert_eq!(find_violations(&held), [], "{held:?}");

    // Redis down: an alert on each node; back: cleared.
    redis.kill();
    wait_alert(&a, true);
    wait_alert(&b, true);
    redis.restart();
    wait_alert(&a, false);
    wait_alert(&b, false);
}
