//! The dialplan, seen by the other cores: routing's queue and agent
//! configuration, the registrar's users and trusted sources. The dialplan
//! is the one source; these are derived from it at start and on reload.

use ivr::Dialplan;
use routing::{
    AgentConfig, AgentSkill, CallbackPolicy, QueueConfig, QueuePreferences, SkillRequirement,
};
use sip::registrar::{Secret, TrustedSources};

/// The routing configuration of every queue and agent in `plan`.
pub fn routing_config(plan: &Dialplan) -> (Vec<QueueConfig>, Vec<AgentConfig>) {
    let queues = plan
        .queues()
        .map(|queue| {
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
                // The compiled plan holds every policy value, defaults
                // included (`frontdesk check` prints them): no default here.
                max_wait: queue.max_wait(),
                on_max_wait: queue.on_max_wait().cloned(),
                sla: queue.sla(),
                max_length: queue.max_length(),
                aging: Some(queue.aging()),
                preferences: QueuePreferences::default(),
                callback: queue.callback().map(|callback| CallbackPolicy {
                    retries: callback.retries(),
                    retry_every: callback.retry_every(),
                    // The plan checked max_share in (0, 1]: no clamp here.
                    max_share_permille: (callback.max_share() * 1000.0).round() as u32,
                }),
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_queue_s_callback_policy_reaches_routing() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialplans");
        let text = std::fs::read_to_string(folder.join("clinic.toml")).expect("the demo");
        let plan = Dialplan::from_toml(&text, folder.join("clinic.toml"), &folder)
            .expect("the demo clinic");
        let (queues, _) = routing_config(&plan);
        let front = queues
            .iter()
            .find(|q| q.id.as_str() == "front-desk")
            .expect("the demo's front desk");
        // clinic.toml: retries = 2, retry_every = "5m", max_share = 0.5.
        assert_eq!(
            front.callback,
            Some(CallbackPolicy {
                retries: 2,
                retry_every: Duration::from_secs(300),
                max_share_permille: 500,
            })
        );
    }
}
