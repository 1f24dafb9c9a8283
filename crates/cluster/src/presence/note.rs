//! The pub/sub notes: short, space-separated, every field checked. A note
//! only says *what* changed; the reader reads the value from its key, so a
//! lost or reordered note costs nothing a snapshot does not mend.
//!
//! * channel `presence`: `<node> <agent>`: the node changed its bindings
//!   of the agent.
//! * channel `state`: `<node> <agent> <state>`: the node set the agent
//!   `away` or `available`.
//! * channel `reload`: `<node> <sha256 hex>`: the node reloaded its
//!   dialplan, whose file has that hash.

use std::fmt;

use domain::AgentId;

use crate::claims::NodeId;

/// The longest agent name in a key or note, in bytes.
pub const MAX_AGENT_LEN: usize = 128;

/// A note from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// `node` changed its bindings of `agent`.
    Presence {
        /// The writer.
        node: NodeId,
        /// The agent.
        agent: AgentId,
    },
    /// `node` set `agent` to `state` (`away`, `available`).
    State {
        /// The writer.
        node: NodeId,
        /// The agent.
        agent: AgentId,
        /// The requested state.
        state: String,
    },
    /// `node` reloaded its dialplan, whose content hash is `hash`.
    Reload {
        /// The writer.
        node: NodeId,
        /// SHA-256 of the file, lower-case hex.
        hash: String,
    },
}

/// Why a message is not a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A channel we did not subscribe to.
    #[error("unknown channel")]
    Channel,
    /// Too few or too many fields.
    #[error("wrong number of fields")]
    Fields,
    /// Not a node name.
    #[error("bad node name")]
    Node,
    /// Not an agent name.
    #[error("bad agent name")]
    Agent,
    /// Neither `away` nor `available`.
    #[error("bad state")]
    State,
    /// Not 64 lower-case hex digits.
    #[error("bad hash")]
    Hash,
}

impl Note {
    /// The presence channel (under the prefix).
    pub const PRESENCE: &'static str = "presence";
    /// The state channel.
    pub const STATE: &'static str = "state";
    /// The reload channel.
    pub const RELOAD: &'static str = "reload";

    /// The channel this note goes on (without the prefix).
    pub fn channel(&self) -> &'static str {
        match self {
            Note::Presence { .. } => Self::PRESENCE,
            Note::State { .. } => Self::STATE,
            Note::Reload { .. } => Self::RELOAD,
        }
    }

    /// The node that sent it.
    pub fn node(&self) -> &NodeId {
        match self {
            Note::Presence { node, .. } | Note::State { node, .. } | Note::Reload { node, .. } => {
                node
            }
        }
    }

    /// Reads a message of `channel` (without the prefix).
    pub fn parse(channel: &str, payload: &str) -> Result<Self, NoteError> {
        let fields: Vec<&str> = payload.split(' ').take(4).collect();
        let node = |text: &str| NodeId::new(text).ok_or(NoteError::Node);
        let agent = |text: &str| {
            valid_agent(text)
                .then(|| AgentId::new(text))
                .ok_or(NoteError::Agent)
        };
        match (channel, fields.as_slice()) {
            (Self::PRESENCE, [n, a]) => Ok(Note::Presence {
                node: node(n)?,
                agent: agent(a)?,
            }),
            (Self::STATE, [n, a, s]) => Ok(Note::State {
                node: node(n)?,
                agent: agent(a)?,
                state: check_state(s)?.to_string(),
            }),
            (Self::RELOAD, [n, h]) => Ok(Note::Reload {
                node: node(n)?,
                hash: check_hash(h)?.to_string(),
            }),
            (Self::PRESENCE | Self::STATE | Self::RELOAD, _) => Err(NoteError::Fields),
            _ => Err(NoteError::Channel),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Presence { node, agent } => write!(f, "{node} {agent}"),
            Note::State { node, agent, state } => write!(f, "{node} {agent} {state}"),
            Note::Reload { node, hash } => write!(f, "{node} {hash}"),
        }
    }
}

/// An agent name as the dialplan allows it (a SIP user name: no spaces,
/// `@`, `:` or `;`), printable and at most [`MAX_AGENT_LEN`] bytes.
pub fn valid_agent(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_AGENT_LEN
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | ':' | ';'))
}

pub(crate) fn check_state(text: &str) -> Result<&str, NoteError> {
    match text {
        "away" | "available" => Ok(text),
        _ => Err(NoteError::State),
    }
}

pub(crate) fn check_hash(text: &str) -> Result<&str, NoteError> {
    let hex = text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex { Ok(text) } else { Err(NoteError::Hash) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    #[test]
    fn notes_read_back_what_was_written() {
        let hash = "ab".repeat(32);
        for note in [
            Note::Presence {
                node: node("a"),
                agent: AgentId::new("1003"),
            },
            Note::State {
                node: node("node-2"),
                agent: AgentId::new("dr.who"),
                state: "away".into(),
            },
            Note::Reload {
                node: node("b"),
                hash: hash.clone(),
            },
        ] {
            assert_eq!(Note::parse(note.channel(), &note.to_string()), Ok(note));
        }
    }

    #[test]
    fn malformed_notes_are_refused_with_their_reason() {
        for (channel, payload, error) in [
            ("other", "a 1003", NoteError::Channel),
            ("presence", "a", NoteError::Fields),
            ("presence", "a 1003 x", NoteError::Fields),
            ("presence", "a  1003", NoteError::Fields),
            ("presence", " 1003", NoteError::Node),
            ("presence", "a b@c", NoteError::Agent),
            ("state", "a 1003 on_call", NoteError::State),
            ("reload", "a ABCD", NoteError::Hash),
            ("reload", &format!("a {}", "AB".repeat(32)), NoteError::Hash),
        ] {
            assert_eq!(Note::parse(channel, payload), Err(error), "{payload:?}");
        }
    }

    proptest! {
        #[test]
        fn any_message_is_a_note_or_an_error_and_notes_round_trip(
            channel in prop_oneof![Just("presence".to_string()), Just("state".to_string()), Just("reload".to_string()), ".{0,10}"],
            payload in ".{0,300}",
        ) {
            if let Ok(note) = Note::parse(&channel, &payload) {
                prop_assert_eq!(note.channel(), channel.as_str());
                prop_assert_eq!(note.to_string(), payload);
            }
        }
    }
}
