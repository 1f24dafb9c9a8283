//! The replicas' feed: every claim change, in order, from the stream the
//! change script appends to.
//!
//! The feed has a connection of its own: `XREAD BLOCK` holds a connection
//! until something arrives, which would stall claims sharing it. Changes
//! carry consecutive sequence numbers; a gap means the consumer fell
//! behind the stream's `MAXLEN ~` cap (or Redis lost its data), and the
//! feed answers with a fresh [`Snapshot`] instead of the changes it can no
//! longer give.

use redis::Value;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};

use super::error::{ClaimError, StoreError};
use super::reply::{parse_snapshot, parse_xread};
use super::script;
use super::store::{StoreConfig, bounded};
use super::types::{AgentChange, Snapshot, StreamId};

/// What the feed has for the replica.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FeedEvent {
    /// The next changes, in order, with no gap since the last event.
    Changes(Vec<AgentChange>),
    /// Changes were missed: replace the replica with this snapshot; the
    /// changes after it follow.
    Resync(Snapshot),
}

/// Follows the change stream. One per node, owned by the task that keeps
/// the replica.
pub struct ChangeFeed {
    config: StoreConfig,
    connection: Option<MultiplexedConnection>,
    snapshot: Script,
    /// The last entry read (exclusive start of the next `XREAD`).
    position: StreamId,
    /// The last change's sequence number.
    seq: u64,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("position", &self.position)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl ChangeFeed {
    /// Connects and takes a snapshot: the replica starts from it, and the
    /// feed gives the changes after it.
    pub async fn open(config: StoreConfig) -> Result<(Self, Snapshot), ClaimError> {
        let mut feed = Self {
            config,
            connection: None,
            snapshot: Script::new(script::SNAPSHOT),
            position: StreamId::default(),
            seq: 0,
        };
        let snapshot = feed.take_snapshot().await?;
        Ok((feed, snapshot))
    }

    /// The last change's sequence number given (or the snapshot's).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Waits up to [`StoreConfig::feed_block`] for changes. `None`: nothing
    /// new in that time. An error leaves the feed where it was; the next
    /// call reconnects.
    pub async fn next(&mut self) -> Result<Option<FeedEvent>, ClaimError> {
        let position = self.position.to_string();
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(self.config.feed_batch.max(1))
            .arg("BLOCK")
            .arg(u64::try_from(self.config.feed_block.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(self.config.stream_key())
            .arg(position);
        let after = self.config.feed_block + self.config.command_timeout;
        let connection = self.connection().await?;
        let result: Result<Value, StoreError> =
            bounded("xread", after, command.query_async(connection)).await;
        let value = self.forget_on_error(result)?;
        let changes = parse_xread(&value).map_err(|source| StoreError::Reply {
            what: "xread",
            source,
        })?;
        let Some(last) = changes.last() else {
            return Ok(None);
        };
        let consecutive = changes
            .iter()
            .zip(self.seq + 1..)
            .all(|(change, expected)| change.seq == expected);
        if !consecutive {
            tracing::warn!(
                after = self.seq,
                got = changes.first().map(|c| c.seq),
                "claims feed: changes missed, resynchronising from a snapshot"
            );
            return Ok(Some(FeedEvent::Resync(self.take_snapshot().await?)));
        }
        self.position = last.id;
        self.seq = last.seq;
        Ok(Some(FeedEvent::Changes(changes)))
    }

    /// Takes a snapshot and moves the feed to its position.
    pub async fn take_snapshot(&mut self) -> Result<Snapshot, ClaimError> {
        // The script is cloned (its text and hash, no I/O) so that the
        // invocation does not borrow `self` across the connection's use.
        let script = self.snapshot.clone();
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.config.agents_key())
            .key(self.config.stream_key())
            .key(self.config.seq_key())
            .arg(self.config.agent_prefix());
        let after = self.config.command_timeout;
        let result: Result<Value, StoreError> = match self.connection().await {
            Ok(connection) => bounded("snapshot", after, invocation.invoke_async(connection)).await,
            Err(error) => Err(error),
        };
        let value = self.forget_on_error(result)?;
        let snapshot = parse_snapshot(&value).map_err(|source| StoreError::Reply {
            what: "snapshot",
            source,
        })?;
        self.position = snapshot.position;
        self.seq = snapshot.seq;
        Ok(snapshot)
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, StoreError> {
        if self.connection.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.config.connect_timeout))
                .set_response_timeout(Some(self.config.feed_block + self.config.command_timeout));
            let client = self.config.client()?;
            let connection = bounded(
                "connect",
                self.config.connect_timeout,
                client.get_multiplexed_async_connection_with_config(&config),
            )
            .await?;
            self.connection = Some(connection);
        }
        // Set just above when it was `None`.
        self.connection.as_mut().ok_or(StoreError::Redis {
            what: "connect",
            message: "no connection".into(),
        })
    }

    /// A failed command may have left the connection broken (or a late
    /// reply in flight): drop it, the next call connects afresh.
    fn forget_on_error<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.connection = None;
        }
        result
    }
}
