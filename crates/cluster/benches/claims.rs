//! The claim round trip over Redis on loopback (issue 24's figure):
//! claim, renew and release, each timed alone, with one client and with
//! several clients at once, as percentiles, beside a PING's round trip. A real redis-server is started
//! on a free port (as in the tests) and killed at the end.
//!
//! `cargo bench -p cluster --bench claims` (through /work/bin/heavy);
//! `CLAIMS_BENCH_ROUNDS` changes the number of rounds per client.

#[path = "../../frontdesk/tests/support/redis.rs"]
mod support;

use std::time::{Duration, Instant};

use cluster::claims::{ClaimStore, Epoch, Lease, NodeId, StoreConfig};
use domain::AgentId;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<28} n={:<7} p50={:>7.1} µs  p99={:>7.1} µs  p99.9={:>7.1} µs  max={:>8.1} µs",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        percentile(&samples, 0.999).as_secs_f64() * 1e6,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

/// One client's rounds on its own agents: claim, renew, release, each timed.
async fn client(store: ClaimStore, id: usize, rounds: usize) -> [Vec<Duration>; 3] {
    let node = NodeId::new(&format!("node-{id}")).expect("a valid name");
    let lease = Lease::new(Duration::from_secs(30)).expect("a valid lease");
    let agents: Vec<_> = (0..16).map(|a| AgentId::new(format!("{id}-{a}"))).collect();
    let mut epochs = vec![Epoch::ZERO; agents.len()];
    let mut times = [
        Vec::with_capacity(rounds),
        Vec::with_capacity(rounds),
        Vec::with_capacity(rounds),
    ];
    for round in 0..rounds {
        let slot = round % agents.len();
        let start = Instant::now();
        let claim = store
            .claim(&agents[slot], &node, epochs[slot], lease)
            .await
            .expect("claim");
        times[0].push(start.elapsed());
        let start = Instant::now();
        let claim = store.renew(&claim, lease).await.expect("renew");
        times[1].push(start.elapsed());
        let start = Instant::now();
        store.release(&claim).await.expect("release");
        times[2].push(start.elapsed());
        epochs[slot] = claim.epoch;
    }
    times
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let rounds: usize = std::env::var("CLAIMS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20_000);
    let redis = support::RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let config = StoreConfig::new(redis.url());
        println!(
            "redis-server on {}, {rounds} rounds per client, stream cap {}",
            redis.url(),
            config.stream_cap
        );
        for clients in [1usize, 4] {
            // Each client its own connection, as each node has its own.
            let mut stores = Vec::new();
            for _ in 0..clients {
                stores.push(ClaimStore::connect(config.clone()).await.expect("connect"));
            }
            // Warm-up: load the script, fill the connection's buffers.
            let _ = client(stores[0].clone(), 1000 + clients, 500).await;
            if clients == 1 {
                // The baseline: a PING's round trip on the same connection.
                let mut pings = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    let start = Instant::now();
                    stores[0].ping().await.expect("ping");
                    pings.push(start.elapsed());
                }
                report("PING (1 client)", pings);
            }
            let started = Instant::now();
            let tasks: Vec<_> = stores
                .into_iter()
                .enumerate()
                .map(|(id, store)| tokio::spawn(client(store, id + clients * 10, rounds)))
                .collect();
            let mut all: [Vec<Duration>; 3] = Default::default();
            for task in tasks {
                let times = task.await.expect("a client");
                for (sink, part) in all.iter_mut().zip(times) {
                    sink.extend(part);
                }
            }
            let elapsed = started.elapsed();
            let ops = (all[0].len() * 3) as f64;
            println!(
                "{clients} client(s): {:.0} script calls/s",
                ops / elapsed.as_secs_f64()
            );
            let [claim, renew, release] = all;
            report(&format!("claim ({clients} client(s))"), claim);
            report(&format!("renew ({clients} client(s))"), renew);
            report(&format!("release ({clients} client(s))"), release);
        }
    });
}
