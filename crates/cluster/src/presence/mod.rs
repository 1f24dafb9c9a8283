//! Agents' presence shared between nodes (issue 24): each node's SIP
//! bindings of each agent, agents' away/available state, reload notes and
//! the nodes' heartbeats, in Redis, with pub/sub notes so the others hear
//! of a change at once.
//!
//! # Keys (under [`StoreConfig::prefix`], `frontdesk:` by default)
//!
//! * `presence:<agent>`: a hash, one field per node, holding that node's
//!   bindings of the agent as the daemon serialised them (opaque here). A
//!   node with no binding left deletes its field; the hash goes with the
//!   last field (Redis removes empty hashes).
//! * `state:<agent>`: the agent's last requested state (`away`,
//!   `available`) and the node that set it.
//! * `nodes`: a hash, node → heartbeat (opaque JSON: address, start, last
//!   seen).
//!
//! Every write is one `MULTI`/`EXEC` with its `PUBLISH` (channels
//! `presence`, `state`, `reload`; see [`Note`]), so a note is never sent
//! for a write that did not happen. Pub/sub is at-most-once: a subscriber
//! that was disconnected misses notes, which is why a reader also reads
//! everything ([`PresenceStore::snapshot`], SCAN) at start, after every
//! reconnect and periodically.
//!
//! Values are opaque strings: what a binding is belongs to the SIP crate
//! and the daemon; this module only moves them. Keys and notes carry agent
//! and node names, which are checked ([`Note::parse`] refuses anything
//! else) since Redis is shared with every node and read as outside input.

mod note;

use std::collections::HashMap;

use domain::AgentId;
use redis::aio::ConnectionManager;

pub use note::{Note, NoteError, valid_agent};

use crate::claims::store::bounded;
use crate::claims::{NodeId, StoreConfig, StoreError};

/// The most keys a snapshot reads: a bound on memory and time whatever
/// Redis holds (a clinic group has hundreds of agents, not thousands).
pub const MAX_SNAPSHOT_KEYS: usize = 50_000;

/// Every node's bindings of one agent: node → serialised bindings.
pub type NodeBindings = Vec<(NodeId, String)>;

/// Everything shared, read at once: presence and states of every agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Each agent with any node's bindings.
    pub presence: Vec<(AgentId, NodeBindings)>,
    /// Each agent with a stored state.
    pub states: Vec<(AgentId, String)>,
}

/// The channel names, under the prefix.
fn channel(config: &StoreConfig, name: &str) -> String {
    format!("{}{name}", config.prefix)
}

/// Reads and writes presence, states, reload notes and heartbeats for one
/// node. Cheap to clone (one multiplexed, reconnecting connection).
#[derive(Clone)]
pub struct PresenceStore {
    connection: ConnectionManager,
    config: StoreConfig,
    node: NodeId,
}

impl std::fmt::Debug for PresenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceStore")
            .field("url", &self.config.url)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl PresenceStore {
    /// Connects within `connect_timeout`.
    pub async fn connect(config: StoreConfig, node: NodeId) -> Result<Self, StoreError> {
        let connection = config.connect_manager().await?;
        Ok(Self {
            connection,
            config,
            node,
        })
    }

    /// This node.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn presence_key(&self, agent: &AgentId) -> String {
        format!("{}presence:{}", self.config.prefix, agent.as_str())
    }

    fn state_key(&self, agent: &AgentId) -> String {
        format!("{}state:{}", self.config.prefix, agent.as_str())
    }

    fn nodes_key(&self) -> String {
        format!("{}nodes", self.config.prefix)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        command: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        bounded(
            what,
            self.config.command_timeout,
            command.query_async(&mut connection),
        )
        .await
    }

    /// Sets this node's bindings of `agent` (`None`: it has none left) and
    /// publishes a [`Note::Presence`].
    pub async fn put_bindings(
        &self,
        agent: &AgentId,
        bindings: Option<&str>,
    ) -> Result<(), StoreError> {
        check_agent(agent)?;
        let key = self.presence_key(agent);
        let mut pipe = redis::pipe();
        pipe.atomic();
        match bindings {
            Some(value) => pipe.hset(&key, self.node.as_str(), value).ignore(),
            None => pipe.hdel(&key, self.node.as_str()).ignore(),
        };
        let note = Note::Presence {
            node: self.node.clone(),
            agent: agent.clone(),
        };
        pipe.publish(channel(&self.config, Note::PRESENCE), note.to_string())
            .ignore();
        self.run::<()>("presence", &pipe).await
    }

    /// Every node's bindings of `agent`.
    pub async fn bindings(&self, agent: &AgentId) -> Result<NodeBindings, StoreError> {
        check_agent(agent)?;
        let mut pipe = redis::pipe();
        pipe.hgetall(self.presence_key(agent));
        let (all,): (HashMap<String, String>,) = self.run("hgetall", &pipe).await?;
        Ok(by_node(all))
    }

    /// Stores `agent`'s requested state and publishes a [`Note::State`].
    pub async fn put_state(&self, agent: &AgentId, state: &str) -> Result<(), StoreError> {
        check_agent(agent)?;
        let note = Note::State {
            node: self.node.clone(),
            agent: agent.clone(),
            state: note::check_state(state)
                .map_err(|error| reply_error("state", error))?
                .to_string(),
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(self.state_key(agent), state)
            .ignore()
            .publish(channel(&self.config, Note::STATE), note.to_string())
            .ignore();
        self.run::<()>("state", &pipe).await
    }

    /// `agent`'s stored state, if any.
    pub async fn state(&self, agent: &AgentId) -> Result<Option<String>, StoreError> {
        check_agent(agent)?;
        let mut pipe = redis::pipe();
        pipe.get(self.state_key(agent));
        let (state,): (Option<String>,) = self.run("get", &pipe).await?;
        Ok(state)
    }

    /// Announces a reload of this node's dialplan, whose content hash is
    /// `hash` (hex).
    pub async fn announce_reload(&self, hash: &str) -> Result<(), StoreError> {
        let note = Note::Reload {
            node: self.node.clone(),
            hash: note::check_hash(hash)
                .map_err(|error| reply_error("reload", error))?
                .to_string(),
        };
        let mut pipe = redis::pipe();
        pipe.publish(channel(&self.config, Note::RELOAD), note.to_string())
            .ignore();
        self.run::<()>("publish", &pipe).await
    }

    /// Writes this node's heartbeat.
    pub async fn heartbeat(&self, value: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.hset(self.nodes_key(), self.node.as_str(), value)
            .ignore();
        self.run::<()>("heartbeat", &pipe).await
    }

    /// Every node's last heartbeat (this node's too).
    pub async fn nodes(&self) -> Result<NodeBindings, StoreError> {
        let mut pipe = redis::pipe();
        pipe.hgetall(self.nodes_key());
        let (all,): (HashMap<String, String>,) = self.run("hgetall", &pipe).await?;
        Ok(by_node(all))
    }

    /// Reads every agent's presence and state (SCAN, at most
    /// [`MAX_SNAPSHOT_KEYS`] keys). Keys that are not an agent's are
    /// skipped. Not atomic: a change made meanwhile also sends its note.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let presence_prefix = format!("{}presence:", self.config.prefix);
        let state_prefix = format!("{}state:", self.config.prefix);
        let mut snapshot = Snapshot::default();
        for key in self.scan(&presence_prefix).await? {
            let Some(agent) = key.strip_prefix(&presence_prefix).and_then(agent_name) else {
                continue;
            };
            let bindings = self.bindings(&agent).await?;
            if !bindings.is_empty() {
                snapshot.presence.push((agent, bindings));
            }
        }
        for key in self.scan(&state_prefix).await? {
            let Some(agent) = key.strip_prefix(&state_prefix).and_then(agent_name) else {
                continue;
            };
            if let Some(state) = self.state(&agent).await? {
                snapshot.states.push((agent, state));
            }
        }
        snapshot.presence.sort_by(|a, b| a.0.cmp(&b.0));
        snapshot.states.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(snapshot)
    }

    /// Every key starting with `prefix`, bounded.
    async fn scan(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}*", escape_glob(prefix));
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500);
            let ((next, batch),): ((u64, Vec<String>),) = self.run("scan", &pipe).await?;
            keys.extend(batch);
            if keys.len() >= MAX_SNAPSHOT_KEYS {
                keys.truncate(MAX_SNAPSHOT_KEYS);
                tracing::warn!(
                    max = MAX_SNAPSHOT_KEYS,
                    "presence snapshot stopped at its key bound"
                );
                break;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup(); // SCAN may return a key twice
        Ok(keys)
    }
}

/// The fields of a hash whose names are node names (others skipped), in
/// node order.
fn by_node(all: HashMap<String, String>) -> NodeBindings {
    let mut list: NodeBindings = all
        .into_iter()
        .filter_map(|(node, value)| Some((NodeId::new(&node)?, value)))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

fn agent_name(text: &str) -> Option<AgentId> {
    valid_agent(text).then(|| AgentId::new(text))
}

fn check_agent(agent: &AgentId) -> Result<(), StoreError> {
    if valid_agent(agent.as_str()) {
        Ok(())
    } else {
        Err(reply_error("agent", NoteError::Agent))
    }
}

fn reply_error(what: &'static str, error: NoteError) -> StoreError {
    StoreError::Reply {
        what,
        source: crate::claims::ReplyError(error.to_string()),
    }
}

/// `prefix` with SCAN's glob characters escaped.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Subscribed to the presence, state and reload channels: the notes other
/// nodes (and this one) publish, in order, while connected.
pub struct NoteFeed {
    stream: redis::aio::PubSubStream,
    config: StoreConfig,
}

impl std::fmt::Debug for NoteFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteFeed")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

/// What [`NoteFeed::next`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedItem {
    /// A well-formed note.
    Note(Note),
    /// A message that is not a note (dropped; counted by the caller).
    Malformed(NoteError),
}

impl NoteFeed {
    /// Connects and subscribes, within `connect_timeout` for each step.
    pub async fn subscribe(config: StoreConfig) -> Result<Self, StoreError> {
        let client = config.client()?;
        let mut pubsub = bounded(
            "subscribe",
            config.connect_timeout,
            client.get_async_pubsub(),
        )
        .await?;
        let channels = [Note::PRESENCE, Note::STATE, Note::RELOAD].map(|c| channel(&config, c));
        bounded(
            "subscribe",
            config.connect_timeout,
            pubsub.subscribe(&channels[..]),
        )
        .await?;
        Ok(Self {
            stream: pubsub.into_on_message(),
            config,
        })
    }

    /// The next message; `None` when the connection is gone (subscribe
    /// again, then read a snapshot: notes sent meanwhile are lost).
    pub async fn next(&mut self) -> Option<FeedItem> {
        use futures_util::StreamExt;
        let message = self.stream.next().await?;
        let channel = message
            .get_channel_name()
            .strip_prefix(self.config.prefix.as_str())
            .unwrap_or_default()
            .to_string();
        let payload = String::from_utf8_lossy(message.get_payload_bytes());
        Some(match Note::parse(&channel, &payload) {
            Ok(note) => FeedItem::Note(note),
            Err(error) => FeedItem::Malformed(error),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_a_prefix_are_escaped() {
        assert_eq!(escape_glob("frontdesk:presence:"), "frontdesk:presence:");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn hash_fields_that_are_not_node_names_are_skipped() {
        let all = HashMap::from([
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
            (String::new(), "x".to_string()),
            ("no spaces".to_string(), "y".to_string()),
        ]);
        let nodes: Vec<_> = by_node(all)
            .into_iter()
            .map(|(n, v)| (n.as_str().to_string(), v))
            .collect();
        assert_eq!(nodes, [("a".into(), "1".into()), ("b".into(), "2".into())]);
    }
}
