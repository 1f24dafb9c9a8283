//! `[sources.<id>]`: who may post leads, with which secret, and how fast
//! the clinic promises to answer them.

use std::fmt;
use std::time::Duration;

use crate::ids::SourceTag;
use crate::plan::Priority;

/// The shortest secret `check` accepts, in bytes: an HMAC key guessed
/// offline from one captured signature must not be within reach.
pub const MIN_SECRET: usize = 16;

/// A source's HMAC-SHA256 key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSecret(String);

impl SourceSecret {
    /// Wraps a secret (the checker makes them).
    pub fn new(secret: impl Into<String>) -> Self {
        SourceSecret(secret.into())
    }

    /// The key's bytes, for the HMAC.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SourceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceSecret(…)")
    }
}

/// One source of leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub(crate) id: SourceTag,
    pub(crate) secret: SourceSecret,
    pub(crate) respond_within: Duration,
    pub(crate) accept_within: Duration,
    pub(crate) priority: Priority,
}

impl Source {
    /// Default `respond_within`: DESIGN.md's speed-to-lead window.
    pub const RESPOND_WITHIN: Duration = Duration::from_secs(5 * 60);
    /// Default `accept_within`.
    pub const ACCEPT_WITHIN: Duration = Duration::from_secs(2 * 60);

    /// A source (the checker makes them; tests too).
    pub fn new(
        id: SourceTag,
        secret: SourceSecret,
        respond_within: Duration,
        accept_within: Duration,
        priority: Priority,
    ) -> Self {
        Source {
            id,
            secret,
            respond_within,
            accept_within,
            priority,
        }
    }

    /// Its id, the `X-Frontdesk-Source` header's value and the source tag
    /// of its leads in reports (`website`).
    pub fn id(&self) -> &SourceTag {
        &self.id
    }

    /// The key its posts are signed with.
    pub fn secret(&self) -> &SourceSecret {
        &self.secret
    }

    /// First contact is due this long after a lead arrives.
    pub fn respond_within(&self) -> Duration {
        self.respond_within
    }

    /// An offered lead not accepted within this goes to the next agent.
    pub fn accept_within(&self) -> Duration {
        self.accept_within
    }

    /// Its leads' priority unless an emergency rule makes one urgent.
    pub fn priority(&self) -> Priority {
        self.priority
    }
}

/// Whether `id` may name a source: 1 to 64 of `a-z 0-9 - _ .`, the
/// characters an HTTP header value carries without quoting.
pub fn is_source_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets() {
        assert!(is_source_id("website"));
        assert!(is_source_id("form-builder_2.eu"));
        assert!(!is_source_id(""));
        assert!(!is_source_id("Web Site"));
        assert!(!is_source_id(&"a".repeat(65)));
        let secret = SourceSecret::new("demo-website-secret");
        assert_eq!(format!("{secret:?}"), "SourceSecret(…)");
        assert_eq!(secret.as_bytes(), b"demo-website-secret");
    }
}
