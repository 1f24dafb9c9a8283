//! Routing's own configuration types.
//!
//! The daemon compiles its dialplan (crate `ivr`) into these; routing does
//! not depend on the dialplan's schema. [`validate`] checks a whole set
//! before anything is applied, so a bad reload changes nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The queue settings the dialplan names (the `domain` crate's).
pub use domain::{Overflow, PriorityChange, Strategy};

use crate::error::ConfigError;
use crate::id::{AgentId, Branch, Language, PromptId, QueueId, Skill, SkillLevel};

/// A skill a queue requires, at a minimum level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkillRequirement {
    /// The skill.
    pub skill: Skill,
    /// Agents below this level in the skill do not take the queue's calls.
    pub min_level: SkillLevel,
}

impl SkillRequirement {
    /// The skill at any level.
    pub fn new(skill: impl Into<Skill>) -> Self {
        Self {
            skill: skill.into(),
            min_level: SkillLevel::MIN,
        }
    }
}

/// Preferences applied on top of a queue's strategy. They narrow the choice
/// to the best-matching available agents and never make a caller wait
/// while any qualified agent is free, except for the coordinator window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct QueuePreferences {
    /// Prefer agents of the caller's branch.
    pub same_branch: bool,
    /// Prefer agents who speak the caller's language (weighs more than the
    /// branch).
    pub language: bool,
    /// For this long after a known patient enters the queue, offer the call
    /// only to their usual coordinator, when the coordinator is qualified
    /// and signed in (waiting for them while they are busy); afterwards,
    /// to anyone.
    pub coordinator_for: Option<Duration>,
}

/// A queue (department) as routing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The dialplan id (`pediatrics`).
    pub id: QueueId,
    /// Skills an agent needs, all of them, to take this queue's calls.
    pub skills: Vec<SkillRequirement>,
    /// How an agent is picked.
    pub strategy: Strategy,
    /// How long the bridge lets an offered agent's phone ring.
    pub ring_timeout: Duration,
    /// How long an agent stays in `wrap_up` after one of this queue's calls.
    pub wrap_up: Duration,
    /// How long a caller waits in this queue before `on_max_wait` (`None`:
    /// until answered or gone).
    pub max_wait: Option<Duration>,
    /// What follows the max wait, or a full queue. Needed when either is
    /// set ([`validate`]); `None` otherwise.
    pub on_max_wait: Option<Overflow>,
    /// The service level target: answered within this long.
    pub sla: Duration,
    /// At most this many callers wait here; more get `on_max_wait` at once.
    pub max_length: Option<usize>,
    /// A routine caller who has waited this long is served as urgent, behind
    /// the urgent callers who were already waiting (`None`: never).
    pub aging: Option<Duration>,
    /// Branch, language and coordinator preferences.
    pub preferences: QueuePreferences,
    /// Callbacks that keep the caller's place (virtual hold; `None`: the
    /// queue takes no callback entries). See [`crate::Router::add_callback`].
    pub callback: Option<CallbackPolicy>,
}

/// How a queue serves its callback entries (the dialplan's
/// `[queues.callback]`: `retries`, `retry_every`, `max_share`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackPolicy {
    /// Tries after the first when the patient does not answer; after the
    /// last one the entry is reported exhausted.
    pub retries: u32,
    /// The pause before a retry; the entry keeps its place meanwhile.
    pub retry_every: Duration,
    /// The largest share of the queue's free agents that callbacks may
    /// hold at once, in thousandths (1–1000; values outside are clamped),
    /// so callers holding live are not starved. At least one callback may
    /// dial whenever an agent is free.
    pub max_share_permille: u32,
}

impl CallbackPolicy {
    /// The policy of entries whose queue lost its callbacks in a reload:
    /// served once more (no retry), at most half the free agents.
    pub const FALLBACK: CallbackPolicy = CallbackPolicy {
        retries: 0,
        retry_every: Duration::ZERO,
        max_share_permille: 500,
    };

    /// How many callbacks may be dialing at once when `free` agents are
    /// available and `dialing` are held by callbacks already: the share of
    /// both together, rounded down, at least one.
    pub fn cap(&self, free: usize, dialing: usize) -> usize {
        let permille = self.max_share_permille.clamp(1, 1000) as usize;
        ((free + dialing).saturating_mul(permille) / 1000).max(1)
    }
}

impl QueueConfig {
    /// A queue with one required skill and DESIGN.md's usual values: ring
    /// 15 s, wrap-up 2 s, max wait 90 s then the `please-call-back`
    /// message, SLA 60 s, no max length, aging after 60 s, branch and
    /// language preferences on, no coordinator window, no callbacks.
    pub fn new(id: impl Into<QueueId>, skill: impl Into<Skill>, strategy: Strategy) -> Self {
        Self {
            id: id.into(),
            skills: vec![SkillRequirement::new(skill)],
            strategy,
            ring_timeout: Duration::from_secs(15),
            wrap_up: Duration::from_secs(2),
            max_wait: Some(Duration::from_secs(90)),
            on_max_wait: Some(Overflow::Message {
                message: PromptId::new("please-call-back"),
            }),
            sla: Duration::from_secs(60),
            max_length: None,
            aging: Some(Duration::from_secs(60)),
            preferences: QueuePreferences {
                same_branch: true,
                language: true,
                coordinator_for: None,
            },
            callback: None,
        }
    }
}

/// A skill an agent has, at a level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentSkill {
    /// The skill.
    pub skill: Skill,
    /// How good the agent is at it.
    pub level: SkillLevel,
}

impl AgentSkill {
    /// The skill at the lowest level.
    pub fn new(skill: impl Into<Skill>) -> Self {
        Self {
            skill: skill.into(),
            level: SkillLevel::MIN,
        }
    }
}

/// An agent as routing needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// SIP user name (`1003`).
    pub id: AgentId,
    /// Display name (`Carol`).
    pub name: String,
    /// What they can take, with levels.
    pub skills: Vec<AgentSkill>,
    /// Their branch, if the clinic has several.
    pub branch: Option<Branch>,
    /// Languages they speak.
    pub languages: Vec<Language>,
    /// Relative share of calls under the `capacity` strategy (at least 1;
    /// an agent with 2 gets twice the calls of an agent with 1).
    pub capacity: u32,
}

impl AgentConfig {
    /// An agent with skills at the lowest level, no branch, no languages,
    /// capacity 1.
    pub fn new<S: Into<Skill>>(
        id: impl Into<AgentId>,
        name: impl Into<String>,
        skills: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            skills: skills.into_iter().map(AgentSkill::new).collect(),
            branch: None,
            languages: Vec::new(),
            capacity: 1,
        }
    }

    /// Sets the branch.
    pub fn with_branch(mut self, branch: impl Into<Branch>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// The agent's level in `skill`, if they have it.
    pub fn level(&self, skill: &Skill) -> Option<SkillLevel> {
        self.skills
            .iter()
            .find(|s| &s.skill == skill)
            .map(|s| s.level)
    }

    /// True when the agent meets every requirement.
    pub fn qualifies(&self, requirements: &[SkillRequirement]) -> bool {
        requirements.iter().all(|r| {
            self.level(&r.skill)
                .is_some_and(|level| level >= r.min_level)
        })
    }

    /// Checks one agent: capacity at least 1, no skill listed twice.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 {
            return Err(ConfigError::ZeroCapacity(self.id.clone()));
        }
        let mut seen = HashSet::new();
        for skill in &self.skills {
            if !seen.insert(&skill.skill) {
                return Err(ConfigError::DuplicateAgentSkill {
                    agent: self.id.clone(),
                    skill: skill.skill.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Settings of the router itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// This many unanswered offers in a row put an agent `away` (0: never).
    pub away_after_misses: u32,
    /// How many recent waits are kept per queue and priority.
    pub wait_samples: usize,
    /// No wait estimate is given from fewer samples than this.
    pub wait_estimate_min_samples: usize,
    /// The percentile of recent waits given as the estimate (1–100).
    pub wait_estimate_percentile: u8,
    /// Played to a caller whose queue was removed by a reload and whose
    /// overflow target no longer exists.
    pub fallback_message: PromptId,
}

impl Default for RouterConfig {
    /// Three misses, 200 samples, at least 10, the 80th percentile,
    /// `please-call-back`.
    fn default() -> Self {
        Self {
            away_after_misses: 3,
            wait_samples: 200,
            wait_estimate_min_samples: 10,
            wait_estimate_percentile: 80,
            fallback_message: PromptId::new("please-call-back"),
        }
    }
}

/// Checks a whole configuration: unique ids, every queue with skills and a
/// ring timeout, overflow targets that exist and never loop, agents with
/// capacity and no repeated skill.
pub fn validate(queues: &[QueueConfig], agents: &[AgentConfig]) -> Result<(), ConfigError> {
    let mut by_id = HashMap::new();
    for queue in queues {
        if by_id.insert(&queue.id, queue).is_some() {
            return Err(ConfigError::DuplicateQueue(queue.id.clone()));
        }
        if queue.skills.is_empty() {
            return Err(ConfigError::NoSkills(queue.id.clone()));
        }
        let mut seen = HashSet::new();
        for requirement in &queue.skills {
            if !seen.insert(&requirement.skill) {
                return Err(ConfigError::DuplicateQueueSkill {
                    queue: queue.id.clone(),
                    skill: requirement.skill.clone(),
                });
            }
        }
        if queue.ring_timeout.is_zero() {
            return Err(ConfigError::ZeroRingTimeout(queue.id.clone()));
        }
        if queue.on_max_wait.is_none() && (queue.max_wait.is_some() || queue.max_length.is_some()) {
            return Err(ConfigError::NoOverflow(queue.id.clone()));
        }
    }
    for queue in queues {
        let mut path = vec![queue.id.clone()];
        let mut current = queue;
        while let Some(Overflow::Queue { queue: target, .. }) = &current.on_max_wait {
            let Some(next) = by_id.get(target) else {
                return Err(ConfigError::UnknownOverflowTarget {
                    queue: current.id.clone(),
                    target: target.clone(),
                });
            };
            let looped = path.contains(target);
            path.push(target.clone());
            if looped {
                return Err(ConfigError::OverflowCycle(path));
            }
            current = next;
        }
    }
    let mut agent_ids = HashSet::new();
    for agent in agents {
        if !agent_ids.insert(&agent.id) {
            return Err(ConfigError::DuplicateAgent(agent.id.clone()));
        }
        agent.validate()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overflow_to(id: &str, target: &str) -> QueueConfig {
        let mut queue = QueueConfig::new(id, id, Strategy::LongestIdle);
        queue.on_max_wait = Some(Overflow::Queue {
            queue: target.into(),
            priority: PriorityChange::Keep,
        });
        queue
    }

    #[test]
    fn accepts_a_chain_ending_in_a_message() {
        let queues = vec![
            overflow_to("cardiology", "front-desk"),
            QueueConfig::new("front-desk", "front-desk", Strategy::LongestIdle),
        ];
        assert_eq!(validate(&queues, &[]), Ok(()));
    }

    #[test]
    fn rejects_unknown_targets_and_cycles() {
        let queues = vec![overflow_to("a", "nowhere")];
        assert_eq!(
            validate(&queues, &[]),
            Err(ConfigError::UnknownOverflowTarget {
                queue: "a".into(),
                target: "nowhere".into()
            })
        );
        let queues = vec![overflow_to("a", "b"), overflow_to("b", "a")];
        assert_eq!(
            validate(&queues, &[]),
            Err(ConfigError::OverflowCycle(vec![
                "a".into(),
                "b".into(),
                "a".into()
            ]))
        );
        let queues = vec![overflow_to("a", "a")];
        assert!(matches!(
            validate(&queues, &[]),
            Err(ConfigError::OverflowCycle(_))
        ));
    }

    #[test]
    fn a_max_wait_or_a_max_length_needs_an_overflow() {
        let mut queue = QueueConfig::new("a", "a", Strategy::RingAll);
        queue.on_max_wait = None;
        assert_eq!(
            validate(std::slice::from_ref(&queue), &[]),
            Err(ConfigError::NoOverflow("a".into()))
        );
        queue.max_wait = None;
        assert_eq!(validate(std::slice::from_ref(&queue), &[]), Ok(()));
        queue.max_length = Some(5);
        assert_eq!(
            validate(&[queue], &[]),
            Err(ConfigError::NoOverflow("a".into()))
        );
    }

    #[test]
    fn rejects_bad_queues_and_agents() {
        let queue = QueueConfig::new("a", "a", Strategy::RingAll);
        assert_eq!(
            validate(&[queue.clone(), queue.clone()], &[]),
            Err(ConfigError::DuplicateQueue("a".into()))
        );
        let mut no_skills = queue.clone();
        no_skills.skills.clear();
        assert_eq!(
            validate(&[no_skills], &[]),
            Err(ConfigError::NoSkills("a".into()))
        );
        let mut no_ring = queue.clone();
        no_ring.ring_timeout = Duration::ZERO;
        assert_eq!(
            validate(&[no_ring], &[]),
            Err(ConfigError::ZeroRingTimeout("a".into()))
        );
        let mut twice = queue;
        twice.skills.push(SkillRequirement::new("a"));
        assert!(matches!(
            validate(&[twice], &[]),
            Err(ConfigError::DuplicateQueueSkill { .. })
        ));

        let agent = AgentConfig::new("1001", "Alice", ["front-desk"]);
        assert_eq!(
            validate(&[], &[agent.clone(), agent.clone()]),
            Err(ConfigError::DuplicateAgent("1001".into()))
        );
        let mut idle = agent.clone();
        idle.capacity = 0;
        assert_eq!(
            validate(&[], &[idle]),
            Err(ConfigError::ZeroCapacity("1001".into()))
        );
        let doubled = AgentConfig::new("1001", "Alice", ["x", "x"]);
        assert!(matches!(
            validate(&[], &[doubled]),
            Err(ConfigError::DuplicateAgentSkill { .. })
        ));
    }

    #[test]
    fn qualification_checks_every_skill_and_level() {
        let mut agent = AgentConfig::new("1004", "Dan", ["dermatology", "orthopedics"]);
        agent.skills[0].level = SkillLevel::new(5).unwrap_or_default();
        let derm = SkillRequirement::new("dermatology");
        let ortho = SkillRequirement::new("orthopedics");
        assert!(agent.qualifies(std::slice::from_ref(&derm)));
        assert!(agent.qualifies(&[derm.clone(), ortho.clone()]));
        assert!(!agent.qualifies(&[SkillRequirement::new("cardiology")]));
        let expert = SkillRequirement {
            min_level: SkillLevel::MAX,
            ..derm
        };
        assert!(!agent.qualifies(&[expert]));
    }
}
