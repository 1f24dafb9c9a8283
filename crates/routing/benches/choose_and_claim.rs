//! choose-and-claim on the agent availability table: 10,000 agents across
//! 50 skills, two threads deciding at once.
//!
//! Two parts:
//! 1. criterion, on the measuring thread while a second thread runs the
//!    same decision cycle without pause: `choose_and_claim/<strategy>/<skills>`
//!    times the claim alone; `.../claim-and-return` the whole cycle (the
//!    claim, then the miss that puts the agent back in the idle lines).
//! 2. a per-decision pass: both threads time every `choose_and_claim`
//!    alone (the `Instant` pair's own cost, about 20–40 ns, is included),
//!    report p50/p90/p99/p99.9/max, and count heap allocations across both
//!    threads with a counting global allocator (`stats_alloc`; no unsafe
//!    code here).
//!
//! Each agent has two distinct skills (agent `i`: skill `i % 50` and skill
//! `(i % 50 + 1 + (i / 50) % 49) % 50`), 20,000 memberships in all, so a
//! skill's index holds about 400 agents (the run prints the range). All
//! agents are available, the worst case for a scan; longest-idle,
//! fewest-calls, capacity and skill-level decide from the skill's ranked
//! idle line, round-robin scans from where it stopped.
//!
//! A third part times the router's decision with 10,000 callback entries
//! (virtual hold) waiting in one queue: `router/10000-callbacks/dial-head`
//! (the head entry gets the one free agent) and
//! `router/10000-callbacks/live-past-capped` (the callbacks hold their
//! `max_share` already: a live caller behind all of them gets the other
//! agent). Only `poll_offer` is timed; putting the state back is not.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by definition

use std::alloc::System;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::Criterion;
use routing::{
    AgentConfig, AgentId, AgentSkill, AgentTable, CallId, CallbackEntry, CallbackEvent, CallbackId,
    CallbackPolicy, CallerContext, Millis, Preferences, Priority, QueueConfig, QueueId, Router,
    RouterConfig, Selection, SkillRequirement, Strategy,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const AGENTS: usize = 10_000;
const SKILLS: usize = 50;

fn roster() -> Vec<AgentConfig> {
    (0..AGENTS)
        .map(|i| {
            let first = i % SKILLS;
            let second = (first + 1 + (i / SKILLS) % (SKILLS - 1)) % SKILLS;
            let mut config = AgentConfig::new(
                format!("{i:05}"),
                format!("agent {i}"),
                [format!("skill-{first}")],
            );
            config
                .skills
                .push(AgentSkill::new(format!("skill-{second}")));
            config
        })
        .collect()
}

struct Fixture {
    table: AgentTable,
    selections: Vec<Selection>,
    clock: AtomicU64,
}

fn fixture(strategy: Strategy) -> Arc<Fixture> {
    let table = AgentTable::new();
    if let Err(error) = table.replace_all(roster()) {
        panic!("the bench roster is valid: {error}");
    }
    for snapshot in table.snapshots() {
        let _ = table.register(snapshot.id(), Millis::new(snapshot.calls_today.into()));
    }
    let selections = (0..SKILLS)
        .map(|s| table.selection(&[SkillRequirement::new(format!("skill-{s}"))], strategy))
        .collect();
    Arc::new(Fixture {
        table,
        selections,
        clock: AtomicU64::new(1),
    })
}

/// One decision cycle on skill `skill`: claim, then put the agent back at
/// the end of the idle line. Returns the time spent in the claim.
fn cycle(fixture: &Fixture, skill: usize, timed: bool) -> Duration {
    let selection = &fixture.selections[skill % SKILLS];
    let start = timed.then(Instant::now);
    let claim = fixture
        .table
        .choose_and_claim(selection, &Preferences::default());
    let spent = start.map_or(Duration::ZERO, |s| s.elapsed());
    let Some(claim) = black_box(claim) else {
        panic!("every skill has available agents");
    };
    let now = Millis::new(fixture.clock.fetch_add(1, Ordering::Relaxed));
    if fixture.table.miss(&claim.agent, now, 0).is_err() {
        panic!("the claimed agent is ringing");
    }
    spent
}

/// A tiny generator for skill numbers, the same on every run.
struct Skills(u64);

impl Skills {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % SKILLS as u64) as usize
    }
}

fn criterion_part(criterion: &mut Criterion, strategy: Strategy, same_skill: bool) {
    let fixture = fixture(strategy);
    let stop = AtomicBool::new(false);
    let name = format!(
        "choose_and_claim/{}/{}",
        strategy.as_str(),
        if same_skill {
            "same-skill"
        } else {
            "random-skill"
        }
    );
    std::thread::scope(|scope| {
        let contender = &fixture;
        let stop_flag = &stop;
        scope.spawn(move || {
            let mut skills = Skills(0xDEAD_BEEF);
            while !stop_flag.load(Ordering::Relaxed) {
                let skill = if same_skill { 7 } else { skills.next() };
                cycle(contender, skill, false);
            }
        });
        let mut skills = Skills(0x1234_5678);
        // The decision alone: only the claim is timed (with the cost of
        // reading the clock around it), the return to the idle line is not.
        criterion.bench_function(&name, |bencher| {
            bencher.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    let skill = if same_skill { 7 } else { skills.next() };
                    spent += cycle(&fixture, skill, true);
                }
                spent
            })
        });
        // The whole cycle: claim, then the miss that makes the agent
        // available again (and joins the skills' idle lines).
        criterion.bench_function(&format!("{name}/claim-and-return"), |bencher| {
            bencher.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    let skill = if same_skill { 7 } else { skills.next() };
                    cycle(&fixture, skill, false);
                }
                start.elapsed()
            })
        });
        stop.store(true, Ordering::Relaxed);
    });
}

struct Figures {
    samples: usize,
    p50: u128,
    p90: u128,
    p99: u128,
    p999: u128,
    max: u128,
    allocations: usize,
    reallocations: usize,
}

/// Times every decision of `per_thread` decisions on each of two threads.
fn per_decision(strategy: Strategy, same_skill: bool, per_thread: usize) -> Figures {
    let fixture = fixture(strategy);
    let barrier = Arc::new(Barrier::new(3));
    let done = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (fixture, barrier, done) = (
                Arc::clone(&fixture),
                Arc::clone(&barrier),
                Arc::clone(&done),
            );
            std::thread::spawn(move || {
                let mut latencies = vec![Duration::ZERO; per_thread];
                let mut skills = Skills(0x9E37_79B9 + t);
                // Warm up: thread-local state of arc-swap is made here, once.
                for _ in 0..1_000 {
                    cycle(&fixture, skills.next(), false);
                }
                barrier.wait();
                for slot in latencies.iter_mut() {
                    let skill = if same_skill { 7 } else { skills.next() };
                    *slot = cycle(&fixture, skill, true);
                }
                done.wait();
                latencies
            })
        })
        .collect();
    barrier.wait();
    let region = Region::new(GLOBAL);
    done.wait();
    let change = region.change();
    let mut all: Vec<u128> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .map(|d| d.as_nanos())
        .collect();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Figures {
        samples: all.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: all.last().copied().unwrap_or_default(),
        allocations: change.allocations,
        reallocations: change.reallocations,
    }
}

const CALLBACKS: u64 = 10_000;

/// One queue with callbacks (half the free agents at most), `agents`
/// agents signed in, and `callbacks` callback entries enqueued 1 ms apart.
fn callback_router(agents: usize, callbacks: u64) -> Router {
    let mut queue = QueueConfig::new("q", "q", Strategy::LongestIdle);
    queue.max_wait = None;
    queue.on_max_wait = None;
    queue.callback = Some(CallbackPolicy {
        retries: 2,
        retry_every: Duration::from_secs(600),
        max_share_permille: 500,
    });
    let roster = (0..agents)
        .map(|n| AgentConfig::new(format!("a{n}"), "agent", ["q"]))
        .collect();
    let mut router = match Router::new(RouterConfig::default(), vec![queue], roster) {
        Ok(router) => router,
        Err(error) => panic!("the bench queue is valid: {error}"),
    };
    for n in 0..agents {
        if router
            .registered(Millis::ZERO, &AgentId::new(format!("a{n}")))
            .is_err()
        {
            panic!("a{n} is in the roster");
        }
    }
    for n in 0..callbacks {
        add_callback(&mut router, n);
    }
    while router.poll_event().is_some() {}
    router
}

fn add_callback(router: &mut Router, n: u64) {
    let entry = CallbackEntry {
        id: CallbackId(n),
        queue: QueueId::new("q"),
        priority: Priority::Routine,
        context: CallerContext::default(),
        enqueued_at: Millis::new(n),
        attempts: 0,
        not_before: None,
    };
    if let Err(error) = router.add_callback(Millis::new(CALLBACKS), entry) {
        panic!("callback {n}: {error}");
    }
}

fn callbacks_part(criterion: &mut Criterion) {
    let now = Millis::new(CALLBACKS + 1);
    // Today's decision, for comparison: one live caller, one free agent,
    // no callback waiting.
    let mut router = callback_router(1, 0);
    criterion.bench_function("router/0-callbacks/live", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for n in 0..iterations {
                let call = CallId(n);
                if router
                    .enqueue(
                        now,
                        call,
                        &QueueId::new("q"),
                        Priority::Routine,
                        CallerContext::default(),
                    )
                    .is_err()
                {
                    panic!("the queue takes callers");
                }
                let start = Instant::now();
                let offer = router.poll_offer(now);
                spent += start.elapsed();
                assert_eq!(black_box(offer).map(|o| o.call), Some(call));
                if router.cancel(now, call).is_err() {
                    panic!("the call is offered");
                }
                while router.poll_event().is_some() {}
            }
            spent
        })
    });
    // One agent: the head entry is dialed with them; then the dial is
    // withdrawn and the entry restored to its place.
    let mut router = callback_router(1, CALLBACKS);
    criterion.bench_function("router/10000-callbacks/dial-head", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let start = Instant::now();
                let offer = router.poll_offer(now);
                spent += start.elapsed();
                assert!(black_box(offer).is_none(), "no live caller waits");
                let Some(CallbackEvent::Dial(dial)) = router.poll_callback() else {
                    panic!("the head callback is dialed");
                };
                if router.callback_ended(now, dial.callback).is_err() {
                    panic!("the dial is known");
                }
                add_callback(&mut router, dial.callback.0);
                while router.poll_event().is_some() {}
            }
            spent
        })
    });
    // Two agents: the head entry dials with one (the cap, half of two);
    // a live caller who came after all the entries gets the other.
    let mut router = callback_router(2, CALLBACKS);
    if router.poll_offer(now).is_some() || router.poll_callback().is_none() {
        panic!("the head callback takes one agent");
    }
    criterion.bench_function("router/10000-callbacks/live-past-capped", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for n in 0..iterations {
                let call = CallId(n);
                let entered = router.enqueue(
                    now,
                    call,
                    &QueueId::new("q"),
                    Priority::Routine,
                    CallerContext::default(),
                );
                if entered.is_err() {
                    panic!("the queue takes callers");
                }
                let start = Instant::now();
                let offer = router.poll_offer(now);
                spent += start.elapsed();
                assert_eq!(black_box(offer).map(|o| o.call), Some(call));
                assert!(router.poll_callback().is_none(), "the callbacks are capped");
                if router.cancel(now, call).is_err() {
                    panic!("the call is offered");
                }
                while router.poll_event().is_some() {}
            }
            spent
        })
    });
}

fn main() {
    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let scenarios = [
        (Strategy::LongestIdle, false),
        (Strategy::LongestIdle, true),
        (Strategy::RoundRobin, false),
        (Strategy::FewestCalls, false),
        (Strategy::Capacity, false),
        (Strategy::SkillLevel, false),
    ];
    for (strategy, same_skill) in scenarios {
        criterion_part(&mut criterion, strategy, same_skill);
    }
    callbacks_part(&mut criterion);
    criterion.final_summary();
    // The per-decision pass only when benchmarking (not under `cargo test --benches`).
    if std::env::args().any(|a| a == "--bench") {
        let sizes = fixture(Strategy::LongestIdle);
        let members: Vec<u32> = sizes
            .selections
            .iter()
            .map(|s| sizes.table.counts(s).signed_in())
            .collect();
        let (least, most) = (
            members.iter().min().copied().unwrap_or(0),
            members.iter().max().copied().unwrap_or(0),
        );
        println!(
            "\nper-decision latency of choose_and_claim, two threads, {AGENTS} agents, {SKILLS} skills ({least}-{most} agents per skill index):"
        );
        println!("| strategy | skills | decisions | p50 | p90 | p99 | p99.9 | max | allocations |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for (strategy, same_skill) in scenarios {
            let f = per_decision(strategy, same_skill, 200_000);
            println!(
                "| {} | {} | {} | {} ns | {} ns | {} ns | {} ns | {} ns | {} (+{} realloc) |",
                strategy.as_str(),
                if same_skill {
                    "both threads on one skill"
                } else {
                    "random of 50"
                },
                f.samples,
                f.p50,
                f.p90,
                f.p99,
                f.p999,
                f.max,
                f.allocations,
                f.reallocations,
            );
        }
    }
}
