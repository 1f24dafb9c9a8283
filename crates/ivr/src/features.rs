//! Agent feature codes: what an agent dials from their softphone to change
//! their own state or hear how many callers wait (`[features]`).
//!
//! The codes are data; the daemon decides who counts as an agent and what
//! each code does (`dialplans/README.md`, "[features]").

use crate::plan::{Prompt, normalize_number};

/// The demo codes, used when the dialplan does not say.
pub const DEFAULT_AWAY: &str = "*41";
/// See [`DEFAULT_AWAY`].
pub const DEFAULT_AVAILABLE: &str = "*42";
/// See [`DEFAULT_AWAY`].
pub const DEFAULT_WAITING: &str = "*43";

/// One feature an agent can dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureCode {
    /// Take no calls until `available` (`*41`).
    Away,
    /// Take calls again (`*42`).
    Available,
    /// Hear how many callers wait in the agent's queues (`*43`).
    Waiting,
}

impl FeatureCode {
    /// Every feature, in the order of the schema.
    pub const ALL: [FeatureCode; 3] = [
        FeatureCode::Away,
        FeatureCode::Available,
        FeatureCode::Waiting,
    ];

    /// The key in `[features]` (`away`, `available`, `waiting`).
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureCode::Away => "away",
            FeatureCode::Available => "available",
            FeatureCode::Waiting => "waiting",
        }
    }
}

/// The feature codes of a dialplan, with their optional prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    pub(crate) codes: [String; 3],
    pub(crate) prompts: [Option<Prompt>; 3],
}

impl Default for Features {
    fn default() -> Self {
        Features {
            codes: [DEFAULT_AWAY, DEFAULT_AVAILABLE, DEFAULT_WAITING].map(str::to_string),
            prompts: [None, None, None],
        }
    }
}

impl Features {
    /// What to dial for `feature`.
    pub fn code(&self, feature: FeatureCode) -> &str {
        &self.codes[index(feature)]
    }

    /// The feature `dialed` (a Request-URI user part) names, compared as
    /// dialed numbers are (separators removed).
    pub fn lookup(&self, dialed: &str) -> Option<FeatureCode> {
        let dialed = normalize_number(dialed);
        FeatureCode::ALL
            .into_iter()
            .find(|feature| self.codes[index(*feature)] == dialed)
    }

    /// The prompt played when `feature` is done: the confirmation of
    /// `away` and `available`, or what precedes the count of `waiting`.
    pub fn prompt(&self, feature: FeatureCode) -> Option<&Prompt> {
        self.prompts[index(feature)].as_ref()
    }
}

fn index(feature: FeatureCode) -> usize {
    match feature {
        FeatureCode::Away => 0,
        FeatureCode::Available => 1,
        FeatureCode::Waiting => 2,
    }
}

/// Whether `code` can be a feature code: 1 to 16 of `0`–`9`, `*`, `#`.
pub(crate) fn is_feature_code(code: &str) -> bool {
    (1..=16).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_lookup() {
        let features = Features::default();
        assert_eq!(features.code(FeatureCode::Away), "*41");
        assert_eq!(features.lookup("*42"), Some(FeatureCode::Available));
        assert_eq!(features.lookup("*43"), Some(FeatureCode::Waiting));
        assert_eq!(features.lookup("*44"), None);
        assert_eq!(features.lookup("+15550100"), None);
        assert!(features.prompt(FeatureCode::Away).is_none());
    }

    #[test]
    fn codes_are_digits_star_and_hash() {
        assert!(is_feature_code("*41"));
        assert!(is_feature_code("#9"));
        assert!(!is_feature_code(""));
        assert!(!is_feature_code("*4a"));
        assert!(!is_feature_code("*41 "));
        assert!(!is_feature_code("12345678901234567"));
    }
}
