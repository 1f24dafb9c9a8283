//! The dialplan, seen by the other cores: routing's queue and agent
//! configuration, the registrar's users and trusted sources. The dialplan
//! is the one source; these are derived from it at start and on reload.

use std::time::Duration;

use ivr::Dialplan;
use routing::{
    AgentConfig, AgentSkill, MessageId, Overflow, PriorityChange, QueueConfig, QueuePreferences,
    SkillLevel, SkillRequirement, Strategy,
};
use sip::registrar::{Secret, TrustedSources};

/// Where a caller goes after the max wait when the dialplan says nothing:
/// DESIGN.md's "please call back" message.
const DEFAULT_GIVE_UP: &str = "please-call-back";

/// How long a routine caller waits before being served as urgent.
const AGING: Duration = Duration::from_secs(120);

/// Maps a dialplan priority to routing's.
pub fn priority(priority: ivr::Priority) -> routing::Priority {
    match priority {
        ivr::Priority::Urgent => routing::Priority::Urgent,
        ivr::Priority::Routine => routing::Priority::Routine,
    }
}

fn strategy(strategy: ivr::Strategy) -> Strategy {
    match strategy {
        ivr::Strategy::RingAll => Strategy::RingAll,
        ivr::Strategy::RoundRobin => Strategy::RoundRobin,
        ivr::Strategy::LongestIdle => Strategy::LongestIdle,
        ivr::Strategy::FewestCalls => Strategy::FewestCalls,
        ivr::Strategy::SkillLevel => Strategy::SkillLevel,
        ivr::Strategy::Capacity => Strategy::Capacity,
    }
}

/// The routing configuration of every queue and agent in `plan`.
pub fn routing_config(plan: &Dialplan) -> (Vec<QueueConfig>, Vec<AgentConfig>) {
    let queues = plan
        .queues()
        .map(|queue| {
            let on_max_wait = match queue.on_max_wait() {
                Some(ivr::Overflow::Queue { queue, priority: p }) => Overflow::Queue {
                    queue: routing::QueueId::new(queue.as_str()),
                    priority: match p {
                        None => PriorityChange::Keep,
                        Some(p) => PriorityChange::Set(priority(*p)),
                    },
                },
                Some(ivr::Overflow::Message(prompt)) => Overflow::Message {
                    message: MessageId::new(prompt.id().as_str()),
                },
                None => Overflow::Message {
                    message: MessageId::new(DEFAULT_GIVE_UP),
                },
            };
            QueueConfig {
                id: routing::QueueId::new(queue.id().as_str()),
                skills: queue
                    .skills()
                    .iter()
                    .map(|skill| SkillRequirement::new(skill.as_str()))
                    .collect(),
                strategy: strategy(queue.strategy()),
                ring_timeout: queue.ring_timeout(),
                wrap_up: queue.wrap_up(),
                max_wait: queue.max_wait().unwrap_or(Duration::from_secs(24 * 3600)),
                on_max_wait,
                sla: queue.sla().unwrap_or(Duration::from_secs(60)),
                max_length: queue.max_length(),
                aging: Some(AGING),
                preferences: QueuePreferences::default(),
            }
        })
        .collect();
    let agents = plan
        .agents()
        .iter()
        .map(|agent| AgentConfig {
            id: routing::AgentId::new(agent.id().as_str()),
            name: agent.name().to_string(),
            skills: agent
                .skills()
                .iter()
                .map(|(skill, level)| AgentSkill {
                    skill: routing::Skill::new(skill.as_str()),
                    level: SkillLevel::new(*level).unwrap_or(SkillLevel::MIN),
                })
                .collect(),
            branch: agent.branch().map(|b| routing::Branch::new(b.as_str())),
            languages: agent
                .languages()
                .iter()
                .map(|l| routing::Language::new(l.as_str()))
                .collect(),
            capacity: agent.capacity().max(1),
        })
        .collect();
    (queues, agents)
}

/// The registrar's users: every agent with their password.
pub fn registrar_users(plan: &Dialplan) -> Vec<(String, Secret)> {
    plan.agents()
        .iter()
        .map(|agent| {
            (
                agent.id().as_str().to_string(),
                Secret::Password(agent.password().to_string()),
            )
        })
        .collect()
}

/// The trusted sources of the dialplan's `[trust]` section: the one
/// `guard::TrustedSources` every part asks (real CIDR ranges).
pub fn trusted_sources(plan: &Dialplan) -> TrustedSources {
    plan.trust().clone()
}
