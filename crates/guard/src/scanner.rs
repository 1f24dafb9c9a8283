//! Known SIP scanners by their User-Agent (RFC 3261 §20.41), dropped and
//! banned on sight, as Kamailio configurations commonly do. Scanners can
//! change their User-Agent, so this is a cheap first filter, not a
//! defence: the rate limit and the failure limits are.
//!
//! A pattern matches anywhere in the header value, ignoring ASCII case.

/// The User-Agents of the usual scanners (SIPVicious, sipcli, VaxSIP, …).
pub const DEFAULT_SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "VaxSIPUserAgent",
    "iWar",
    "sundayddr",
    "SIVuS",
    "smap",
    "pplsip",
];

/// User-Agent patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanners {
    /// Lower-cased, non-empty.
    patterns: Vec<Box<[u8]>>,
}

impl Default for Scanners {
    fn default() -> Self {
        Scanners::new(DEFAULT_SCANNERS.iter().copied())
    }
}

impl Scanners {
    /// These patterns (empty ones are ignored).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        Scanners {
            patterns: patterns
                .into_iter()
                .filter(|pattern| !pattern.is_empty())
                .map(|pattern| pattern.to_ascii_lowercase().into_bytes().into_boxed_slice())
                .collect(),
        }
    }

    /// None at all.
    pub fn none() -> Self {
        Scanners {
            patterns: Vec::new(),
        }
    }

    /// True when `user_agent` contains a pattern.
    pub fn matches(&self, user_agent: &[u8]) -> bool {
        self.patterns.iter().any(|pattern| {
            user_agent
                .windows(pattern.len())
                .any(|window| window.eq_ignore_ascii_case(pattern))
        })
    }

    /// The patterns, lower-cased.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns
            .iter()
            .map(|pattern| std::str::from_utf8(pattern).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanners_are_recognised_in_any_case_anywhere_in_the_value() {
        let scanners = Scanners::default();
        assert!(scanners.matches(b"friendly-scanner"));
        assert!(scanners.matches(b"Friendly-Scanner 1.8"));
        assert!(scanners.matches(b"vaxsipuseragent/3.1"));
        assert!(scanners.matches(b"sipcli/v1.8"));
        assert!(!scanners.matches(b"baresip v1.0.0 (x86_64/linux)"));
        assert!(!scanners.matches(b"SIPp/Linux"));
        assert!(!scanners.matches(b""));
        assert!(!Scanners::none().matches(b"friendly-scanner"));
        assert!(!Scanners::new([""]).matches(b"anything"));
    }
}
