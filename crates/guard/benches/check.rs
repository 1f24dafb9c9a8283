//! What the per-message check costs: the trust test every message pays
//! (a trusted source stops there), and the rate limiter's bucket update an
//! untrusted source pays on top.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by definition

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::Criterion;
use guard::{IpNetwork, RateLimits, SourceLimiter, TrustedSources};

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let nets =
        |list: &[&str]| -> Vec<IpNetwork> { list.iter().map(|t| t.parse().unwrap()).collect() };
    let trust = TrustedSources::default()
        .with_trunks(nets(&["203.0.113.0/24", "198.51.100.10"]))
        .with_agents(nets(&["192.0.2.0/28", "2001:db8:5::/48"]))
        .with_untrusted(nets(&["127.0.0.2"]));
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let agent: IpAddr = "192.0.2.7".parse().unwrap();
    let stranger: IpAddr = "8.8.8.8".parse().unwrap();
    criterion.bench_function("trust/loopback", |b| {
        b.iter(|| trust.is_trusted(black_box(loopback)))
    });
    criterion.bench_function("trust/agent-network", |b| {
        b.iter(|| trust.is_trusted(black_box(agent)))
    });
    criterion.bench_function("trust/untrusted", |b| {
        b.iter(|| trust.is_trusted(black_box(stranger)))
    });
    let mut limiter = SourceLimiter::new(RateLimits {
        per_second: u32::MAX,
        burst: u32::MAX,
        ban: Duration::from_secs(60),
        max_sources: 65_536,
    });
    let start = Instant::now();
    let mut tick = 0u64;
    criterion.bench_function("rate/untrusted-pass", |b| {
        b.iter(|| {
            tick += 1;
            limiter.check(start + Duration::from_nanos(tick), black_box(stranger))
        })
    });
    criterion.final_summary();
}
