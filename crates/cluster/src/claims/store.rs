//! The claim store: one connection to Redis (reconnected after a restart)
//! and the change script. Every call is bounded by the configured timeout.

use std::future::Future;
use std::time::Duration;

use domain::AgentId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script, Value};

use super::error::{ClaimError, StoreError};
use super::reply::parse_script_reply;
use super::script;
use super::types::{Claim, Epoch, Lease, NodeId, RedisMillis, ScriptReply};
use crate::line::member::LineCheck;

/// Where Redis is, the keys' prefix, and every timeout and bound. Tests
/// shorten them; the daemon will take them from `frontdesk run` flags.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prepended to every key (`frontdesk:` by default), so that several
    /// clusters, or tests, can share one Redis.
    pub prefix: String,
    /// The longest wait for a connection.
    pub connect_timeout: Duration,
    /// The longest wait for one command's answer (reconnecting included):
    /// with Redis down a call fails within this time.
    pub command_timeout: Duration,
    /// The change stream's bound, `XADD ... MAXLEN ~ stream_cap`: Redis
    /// trims whole nodes of the stream, so it may keep a little more.
    pub stream_cap: u64,
    /// How long [`super::ChangeFeed::next`] blocks on `XREAD` for new
    /// changes before answering "nothing".
    pub feed_block: Duration,
    /// The most changes one `XREAD` returns.
    pub feed_batch: usize,
}

impl StoreConfig {
    /// Defaults for `url`: prefix `frontdesk:`, connect 1 s, command
    /// 500 ms, a stream of ~100,000 changes, the feed blocking 1 s for at
    /// most 512 changes.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "frontdesk:".into(),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(500),
            stream_cap: 100_000,
            feed_block: Duration::from_secs(1),
            feed_batch: 512,
        }
    }

    pub(crate) fn agent_prefix(&self) -> String {
        format!("{}agent:", self.prefix)
    }

    pub(crate) fn agent_key(&self, agent: &AgentId) -> String {
        format!("{}agent:{}", self.prefix, agent.as_str())
    }

    pub(crate) fn agents_key(&self) -> String {
        format!("{}agents", self.prefix)
    }

    pub(crate) fn stream_key(&self) -> String {
        format!("{}agents:changes", self.prefix)
    }

    pub(crate) fn seq_key(&self) -> String {
        format!("{}agents:seq", self.prefix)
    }

    pub(crate) fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// A queue's shared line ([`crate::line`]).
    pub(crate) fn line_key(&self, queue: &str) -> String {
        format!("{}line:{}", self.prefix, queue)
    }

    pub(crate) fn client(&self) -> Result<Client, StoreError> {
        Client::open(self.url.as_str()).map_err(|error| StoreError::Redis {
            what: "open",
            message: error.to_string(),
        })
    }

    /// A managed connection, opened within `connect_timeout`, each command
    /// bounded by `command_timeout` (the claims' and the presence's stores
    /// both connect this way).
    pub(crate) async fn connect_manager(&self) -> Result<ConnectionManager, StoreError> {
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            // Reconnecting is retried by the next command, not in a loop
            // that would outlast the command timeout.
            .set_number_of_retries(1)
            .set_max_delay(self.connect_timeout);
        bounded(
            "connect",
            self.connect_timeout,
            ConnectionManager::new_with_config(self.client()?, manager),
        )
        .await
    }
}

/// Runs `future` under `after`: a Redis error or silence both become a
/// [`StoreError`].
pub(crate) async fn bounded<T>(
    what: &'static str,
    after: Duration,
    future: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(after, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(StoreError::Redis {
            what,
            message: error.to_string(),
        }),
        Err(_) => Err(StoreError::Timeout { what, after }),
    }
}

/// Claims, renewals and releases of agents, shared by every node through
/// one Redis. Cheap to clone (one multiplexed connection underneath);
/// every method takes `&self`.
#[derive(Clone)]
pub struct ClaimStore {
    connection: ConnectionManager,
    config: StoreConfig,
    change: Script,
}

impl std::fmt::Debug for ClaimStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimStore")
            .field("url", &self.config.url)
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl ClaimStore {
    /// Connects (within `connect_timeout`) and loads nothing else: the
    /// script is sent on first use (`EVALSHA`, falling back to `EVAL`, so a
    /// restarted Redis that forgot it gets it again).
    pub async fn connect(config: StoreConfig) -> Result<Self, ClaimError> {
        let connection = config.connect_manager().await?;
        Ok(Self {
            connection,
            config,
            change: Script::new(script::CHANGE),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Claims `agent` for `node` if they are free (no holder, or a lease
    /// that ran out) and at `expected` epoch, the one the caller's replica
    /// last saw (0 for an agent never claimed). The new claim has the next
    /// epoch and holds for `lease` by Redis's clock.
    pub async fn claim(
        &self,
        agent: &AgentId,
        node: &NodeId,
        expected: Epoch,
        lease: Lease,
    ) -> Result<Claim, ClaimError> {
        let reply = self
            .run("claim", agent, node.as_str(), expected, lease)
            .await?;
        self.held(agent, node, reply)
    }

    /// [`ClaimStore::claim`] for a caller waiting in a shared line
    /// ([`crate::line`]): refused with [`ClaimError::Behind`] while a caller
    /// of another live node is ahead in a line the agent serves (unless
    /// `line.force`); on success the caller leaves its line. Still one
    /// round trip.
    pub async fn claim_in_line(
        &self,
        agent: &AgentId,
        node: &NodeId,
        expected: Epoch,
        lease: Lease,
        line: &LineCheck,
    ) -> Result<Claim, ClaimError> {
        let reply = self
            .invoke("claim", agent, node.as_str(), expected, lease, Some(line))
            .await?;
        self.held(agent, node, reply)
    }

    /// Extends a held claim's lease to `lease` from now (Redis time).
    pub async fn renew(&self, claim: &Claim, lease: Lease) -> Result<Claim, ClaimError> {
        let reply = self
            .run(
                "renew",
                &claim.agent,
                claim.node.as_str(),
                claim.epoch,
                lease,
            )
            .await?;
        self.held(&claim.agent, &claim.node, reply)
    }

    /// Frees a held claim's agent at once. The agent keeps the epoch, so
    /// the next claim names it and gets the one after. Returns when it was
    /// released, on Redis's clock (the holding's end, for the journal).
    pub async fn release(&self, claim: &Claim) -> Result<RedisMillis, ClaimError> {
        // A release does not read the lease.
        let reply = self
            .run(
                "release",
                &claim.agent,
                claim.node.as_str(),
                claim.epoch,
                Lease::MIN,
            )
            .await?;
        self.held(&claim.agent, &claim.node, reply)
            .map(|released| released.at)
    }

    /// Records the expiry of `agent`'s claim if its lease ran out, so that
    /// replicas hear of it without waiting for the next claim; the
    /// `expired` change names `reaper` as its `by`. Returns whether it did.
    pub async fn reap(&self, agent: &AgentId, reaper: &NodeId) -> Result<bool, ClaimError> {
        // A reap reads neither epoch nor lease.
        match self
            .run("reap", agent, reaper.as_str(), Epoch::ZERO, Lease::MIN)
            .await?
        {
            ScriptReply::Reaped(done) => Ok(done),
            other => Err(unexpected("reap", &other).into()),
        }
    }

    /// One `PING` round trip, under the command timeout: whether Redis
    /// answers (for a health check, and as the bench's baseline).
    pub async fn ping(&self) -> Result<(), ClaimError> {
        let mut connection = self.connection.clone();
        let answer: String = bounded(
            "ping",
            self.config.command_timeout,
            redis::cmd("PING").query_async(&mut connection),
        )
        .await?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Reply {
                what: "ping",
                source: super::error::ReplyError::new("not PONG"),
            }
            .into())
        }
    }

    async fn run(
        &self,
        op: &'static str,
        agent: &AgentId,
        node: &str,
        epoch: Epoch,
        lease: Lease,
    ) -> Result<ScriptReply, StoreError> {
        self.invoke(op, agent, node, epoch, lease, None).await
    }

    async fn invoke(
        &self,
        op: &'static str,
        agent: &AgentId,
        node: &str,
        epoch: Epoch,
        lease: Lease,
        line: Option<&LineCheck>,
    ) -> Result<ScriptReply, StoreError> {
        let mut invocation = self.change.prepare_invoke();
        invocation
            .key(self.config.agent_key(agent))
            .key(self.config.stream_key())
            .key(self.config.seq_key())
            .key(self.config.agents_key())
            .arg(op)
            .arg(agent.as_str())
            .arg(node)
            .arg(epoch.0)
            .arg(lease.millis())
            .arg(self.config.stream_cap);
        if let Some(line) = line {
            invocation.key(self.config.nodes_key());
            invocation.key(self.config.line_key(&line.queue));
            for queue in line.lines.iter().filter(|queue| **queue != line.queue) {
                invocation.key(self.config.line_key(queue));
            }
            invocation
                .arg(crate::line::member::member(node, line.call))
                .arg(line.score)
                .arg(u64::try_from(line.alive_within.as_millis()).unwrap_or(u64::MAX))
                .arg(if line.force { "1" } else { "0" });
        }
        let mut connection = self.connection.clone();
        let value: Value = bounded(
            op,
            self.config.command_timeout,
            invocation.invoke_async(&mut connection),
        )
        .await?;
        parse_script_reply(&value).map_err(|source| StoreError::Reply { what: op, source })
    }

    fn held(
        &self,
        agent: &AgentId,
        node: &NodeId,
        reply: ScriptReply,
    ) -> Result<Claim, ClaimError> {
        match reply {
            ScriptReply::Ok {
                epoch,
                until,
                at,
                seq,
            } => Ok(Claim {
                agent: agent.clone(),
                node: node.clone(),
                epoch,
                expires_at: until,
                at,
                seq,
            }),
            ScriptReply::Taken { by, epoch, until } => Err(ClaimError::Taken { by, epoch, until }),
            ScriptReply::Stale { epoch } => Err(ClaimError::Stale { epoch }),
            ScriptReply::Lapsed { epoch } => Err(ClaimError::Lapsed { epoch }),
            ScriptReply::Behind { ahead, epoch } => Err(ClaimError::Behind { ahead, epoch }),
            other @ ScriptReply::Reaped(_) => Err(unexpected("claim", &other).into()),
        }
    }
}

fn unexpected(what: &'static str, reply: &ScriptReply) -> StoreError {
    StoreError::Reply {
        what,
        source: super::error::ReplyError::new(format!("unexpected {reply:?}")),
    }
}
