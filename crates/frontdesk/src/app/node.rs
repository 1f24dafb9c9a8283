//! This node's name in a cluster (`--node-id`, issue 24).
//!
//! Several nodes write one journal (PostgreSQL) and share agents (Redis),
//! so what a node names must not collide with what another names: a
//! call's journal id carries the node's name, and shared state says which
//! node holds what. The name goes into ids, Redis keys and metric labels,
//! so it is short and plain: 1 to 32 ASCII letters, digits, `-` or `_`.
//! Without `--node-id` the daemon is a single node and its ids are as
//! they always were.

use std::fmt;
use std::str::FromStr;

/// The longest node name.
pub const MAX_LEN: usize = 32;

/// A node's name: 1 to [`MAX_LEN`] of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

/// Why a node name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// Empty.
    #[error("a node id cannot be empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("a node id has at most {MAX_LEN} characters, not {0}")]
    TooLong(usize),
    /// A character outside `[A-Za-z0-9_-]`.
    #[error("a node id has only letters, digits, `-` and `_`, not {0:?}")]
    Character(char),
}

impl NodeId {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(NodeIdError::Empty);
        }
        let length = text.chars().count();
        if length > MAX_LEN {
            return Err(NodeIdError::TooLong(length));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(NodeIdError::Character(bad));
        }
        Ok(NodeId(text.to_string()))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A call's journal id: `c-<start second>-<n>` on a single node,
/// `c-<node>-<start second>-<n>` in a cluster (so two nodes' calls started
/// in the same second with the same sequence number stay apart).
pub fn call_record_id(node: Option<&NodeId>, start_second: i64, sequence: u64) -> String {
    match node {
        Some(node) => format!("c-{node}-{start_second}-{sequence}"),
        None => format!("c-{start_second}-{sequence}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_names_are_taken_and_others_refused_with_the_reason() {
        assert_eq!("node-1".parse::<NodeId>().unwrap().as_str(), "node-1");
        assert_eq!("A_9".parse::<NodeId>().unwrap().to_string(), "A_9");
        assert_eq!("".parse::<NodeId>(), Err(NodeIdError::Empty));
        assert_eq!(
            "x".repeat(33).parse::<NodeId>(),
            Err(NodeIdError::TooLong(33))
        );
        assert_eq!("a b".parse::<NodeId>(), Err(NodeIdError::Character(' ')));
        assert_eq!("n:1".parse::<NodeId>(), Err(NodeIdError::Character(':')));
        assert_eq!("nœud".parse::<NodeId>(), Err(NodeIdError::Character('œ')));
    }

    #[test]
    fn a_cluster_call_id_names_its_node() {
        let node: NodeId = "node2".parse().unwrap();
        assert_eq!(
            call_record_id(Some(&node), 1_700_000_000, 7),
            "c-node2-1700000000-7"
        );
        assert_eq!(call_record_id(None, 1_700_000_000, 7), "c-1700000000-7");
    }

    proptest! {
        /// Any text either parses to itself or is refused; a name never
        /// carries a character that would break a key, a label or an id.
        #[test]
        fn parsing_any_text_is_total_and_safe(text in "\\PC{0,40}") {
            if let Ok(node) = text.parse::<NodeId>() {
                prop_assert_eq!(node.as_str(), text.as_str());
                prop_assert!(node.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                prop_assert!((1..=MAX_LEN).contains(&node.as_str().len()));
            }
        }
    }
}
