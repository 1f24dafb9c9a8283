//! Shared fixtures: the demo clinic of DESIGN.md and small helpers.

use std::time::Duration;

use crate::*;

pub(crate) fn ms(ms: u64) -> Millis {
    Millis::new(ms)
}

pub(crate) fn secs(s: u64) -> Millis {
    Millis::new(s * 1_000)
}

pub(crate) fn agent(id: &str) -> AgentId {
    AgentId::new(id)
}

pub(crate) fn queue(id: &str) -> QueueId {
    QueueId::new(id)
}

fn demo_queue(
    id: &str,
    strategy: Strategy,
    ring: u64,
    max_wait: u64,
    then: Overflow,
    sla: u64,
) -> QueueConfig {
    let mut config = QueueConfig::new(id, id, strategy);
    config.ring_timeout = Duration::from_secs(ring);
    config.wrap_up = Duration::from_secs(2);
    config.max_wait = Some(Duration::from_secs(max_wait));
    config.on_max_wait = Some(then);
    config.sla = Duration::from_secs(sla);
    config
}

fn to_front_desk(priority: PriorityChange) -> Overflow {
    Overflow::Queue {
        queue: queue("front-desk"),
        priority,
    }
}

fn call_back() -> Overflow {
    Overflow::Message {
        message: PromptId::new("please-call-back"),
    }
}

/// The queues of DESIGN.md's demo clinic.
pub(crate) fn demo_queues() -> Vec<QueueConfig> {
    use Strategy::*;
    let keep = PriorityChange::Keep;
    vec![
        demo_queue("front-desk", LongestIdle, 15, 180, call_back(), 60),
        demo_queue("cardiology", RoundRobin, 15, 90, to_front_desk(keep), 60),
        demo_queue("pediatrics", LongestIdle, 15, 90, to_front_desk(keep), 60),
        demo_queue("dermatology", FewestCalls, 15, 90, to_front_desk(keep), 60),
        demo_queue("orthopedics", FewestCalls, 15, 90, to_front_desk(keep), 60),
        demo_queue("urgent-care", RingAll, 20, 60, to_front_desk(keep), 30),
        demo_queue("nurse-line", RingAll, 20, 120, call_back(), 60),
    ]
}

/// The agents of DESIGN.md's demo clinic.
pub(crate) fn demo_agents() -> Vec<AgentConfig> {
    let rows: [(&str, &str, &[&str], &str); 7] = [
        ("1001", "Alice", &["front-desk"], "north"),
        ("1002", "Bob", &["cardiology"], "north"),
        ("1003", "Carol", &["pediatrics"], "south"),
        ("1004", "Dan", &["dermatology", "orthopedics"], "south"),
        ("1005", "Erin", &["urgent-care", "front-desk"], "north"),
        ("1006", "Frank", &["pediatrics", "front-desk"], "north"),
        ("1007", "Grace", &["nurse-line"], "north"),
    ];
    rows.iter()
        .map(|(id, name, skills, branch)| {
            AgentConfig::new(*id, *name, skills.iter().copied()).with_branch(*branch)
        })
        .collect()
}

pub(crate) fn demo_router() -> Router {
    match Router::new(RouterConfig::default(), demo_queues(), demo_agents()) {
        Ok(router) => router,
        Err(error) => panic!("the demo clinic is valid: {error}"),
    }
}

/// Drains and returns every pending event.
pub(crate) fn events(router: &mut Router) -> Vec<RouterEvent> {
    std::iter::from_fn(|| router.poll_event()).collect()
}

/// A small deterministic generator (xorshift64*), so simulations need no RNG crate.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}
