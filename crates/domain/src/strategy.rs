//! How a queue picks an agent, and how good an agent is at a skill.

use std::fmt;

/// How a queue picks among the agents able to take its calls. The
/// dialplan names it (`strategy = "longest-idle"`); routing carries it
/// out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Ring every available agent at once; the first to answer wins.
    RingAll,
    /// Take turns: the next available agent after the one chosen last.
    RoundRobin,
    /// The agent idle the longest (since their last call or sign-in).
    LongestIdle,
    /// The agent with the fewest calls today; ties by longest idle.
    FewestCalls,
    /// The agent with the best level in the queue's skills; ties by
    /// longest idle.
    SkillLevel,
    /// Share calls in proportion to each agent's capacity: the agent with
    /// the fewest calls today per unit of capacity; ties by longest idle.
    Capacity,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 6] = [
        Strategy::RingAll,
        Strategy::RoundRobin,
        Strategy::LongestIdle,
        Strategy::FewestCalls,
        Strategy::SkillLevel,
        Strategy::Capacity,
    ];

    /// The dialplan's name: `ring-all`, `round-robin`, `longest-idle`,
    /// `fewest-calls`, `skill-level` or `capacity`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::RingAll => "ring-all",
            Strategy::RoundRobin => "round-robin",
            Strategy::LongestIdle => "longest-idle",
            Strategy::FewestCalls => "fewest-calls",
            Strategy::SkillLevel => "skill-level",
            Strategy::Capacity => "capacity",
        }
    }

    /// Parses a dialplan name (the inverse of [`Strategy::as_str`]).
    pub fn from_name(name: &str) -> Option<Strategy> {
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == name)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How good an agent is at a skill: 1 (lowest) to 10 (best). The dialplan
/// gives it (`skill_levels`), the `skill-level` strategy and a queue's
/// minimum level read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct SkillLevel(u8);

impl SkillLevel {
    /// The lowest level, and the default.
    pub const MIN: SkillLevel = SkillLevel(1);
    /// The best level.
    pub const MAX: SkillLevel = SkillLevel(10);

    /// A level, if within 1..=10.
    pub const fn new(level: u8) -> Option<SkillLevel> {
        if level >= Self::MIN.0 && level <= Self::MAX.0 {
            Some(SkillLevel(level))
        } else {
            None
        }
    }

    /// The level as a number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for SkillLevel {
    fn default() -> Self {
        Self::MIN
    }
}

impl fmt::Display for SkillLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_round_trip() {
        for strategy in Strategy::ALL {
            assert_eq!(Strategy::from_name(strategy.as_str()), Some(strategy));
            assert_eq!(strategy.to_string(), strategy.as_str());
        }
        assert_eq!(Strategy::from_name("random"), None);
    }

    #[test]
    fn skill_levels_are_bounded() {
        assert_eq!(SkillLevel::new(0), None);
        assert_eq!(SkillLevel::new(11), None);
        assert_eq!(SkillLevel::new(7).map(SkillLevel::get), Some(7));
        assert_eq!(SkillLevel::default(), SkillLevel::MIN);
    }
}
