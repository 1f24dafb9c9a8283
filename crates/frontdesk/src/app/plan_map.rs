//! The dialplan, seen by the other cores: routing's queue and agent
//! configuration, the registrar's users and trusted sources. The dialplan
//! is the one source; these are derived from it at start and on reload.

use std::time::Duration;

use ivr::Dialplan;
use routing::{
    AgentConfig, AgentSkill, Overflow, PromptId, QueueConfig, QueuePreferences, SkillRequirement,
};
use sip::registrar::{Secret, TrustedSources};

/// Where a caller goes after the max wait when the dialplan says nothing:
/// DESIGN.md's "please call back" message.
const DEFAULT_GIVE_UP: &str = "please-call-back";

/// How long a routine caller waits before being served as urgent.
const AGING: Duration = Duration::from_secs(120);

/// The routing configuration of every queue and agent in `plan`.
pub fn routing_config(plan: &Dialplan) -> (Vec<QueueConfig>, Vec<AgentConfig>) {
    let queues = plan
        .queues()
        .map(|queue| {
            let on_max_wait = match queue.on_max_wait() {
                Some(overflow) => overflow.clone(),
                None => Overflow::Message {
                    message: PromptId::new(DEFAULT_GIVE_UP),
                },
            };
            QueueConfig {
                id: queue.id().clone(),
                skills: queue
                    .skills()
                    .iter()
                    .map(|skill| SkillRequirement::new(skill.clone()))
                    .collect(),
                strategy: queue.strategy(),
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
            id: agent.id().clone(),
            name: agent.name().to_string(),
            skills: agent
                .skills()
                .iter()
                .map(|(skill, level)| AgentSkill {
                    skill: skill.clone(),
                    level: *level,
                })
                .collect(),
            branch: agent.branch().cloned(),
            languages: agent.languages().to_vec(),
            capacity: agent.capacity(),
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
