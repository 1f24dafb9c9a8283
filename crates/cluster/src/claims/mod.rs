//! Agent claims shared over Redis: a compare-and-set with a lease in one
//! Lua script, a change stream for the nodes' replicas, and the claim
//! history for the journal. The crate docs say why it is built this way.
//!
//! # Keys (under [`StoreConfig::prefix`], `frontdesk:` by default)
//!
//! | key | type | holds |
//! |---|---|---|
//! | `frontdesk:agent:<id>` | hash | `node` (empty when free), `epoch`, `until` (Redis ms) |
//! | `frontdesk:agents` | set | every agent ever claimed (what a snapshot reads) |
//! | `frontdesk:agents:changes` | stream | one entry per change, `MAXLEN ~` [`StoreConfig::stream_cap`] |
//! | `frontdesk:agents:seq` | string | the last change's sequence number |
//!
//! A stream entry's fields: `seq`, `agent`, `node`, `epoch`, `kind`
//! (`claimed`, `renewed`, `released`, `expired`), `at` and `until`
//! (Redis time in ms); an `expired` one also `by`, the node whose script
//! found the lease run out (who ended a dead node's holding, for the
//! journal's claim history). A replica that misses a sequence number resyncs
//! from a snapshot: the set and one hash per agent, read by one script
//! together with the stream position they match ([`ChangeFeed`]).
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), cluster::claims::ClaimError> {
//! use std::time::Duration;
//! use cluster::claims::*;
//! use domain::AgentId;
//!
//! let config = StoreConfig::new("redis://127.0.0.1:6379/");
//! let store = ClaimStore::connect(config.clone()).await?;
//! let node = NodeId::new("node-a").expect("a valid node name");
//! let lease = Lease::new(Duration::from_secs(30)).expect("within bounds");
//! let carol = AgentId::new("1003");
//!
//! // The epoch this node's replica last saw for Carol (0: never claimed).
//! let claim = store.claim(&carol, &node, Epoch::ZERO, lease).await?;
//! let claim = store.renew(&claim, lease).await?; // before `expires_at`
//! store.release(&claim).await?;
//!
//! // Another connection follows every change.
//! let (mut feed, snapshot) = ChangeFeed::open(config).await?;
//! # let _ = snapshot;
//! while let Some(event) = feed.next().await? {
//!     match event {
//!         // Apply them to the replica's table.
//!         FeedEvent::Changes(changes) => println!("{} changes", changes.len()),
//!         // Replace the replica with it.
//!         FeedEvent::Resync(snapshot) => println!("resync at {}", snapshot.seq),
//!     }
//! }
//! # Ok(()) }
//! ```

mod error;
mod feed;
mod history;
mod reply;
pub(crate) mod script;
pub(crate) mod store;
pub(crate) mod types;

pub use error::{ClaimError, ReplyError, StoreError};
pub use feed::{ChangeFeed, FeedEvent};
pub use history::{Holding, Violation, find_violations, holdings};

pub use store::{ClaimStore, StoreConfig};
pub use types::{
    AgentChange, AgentHold, ChangeKind, Claim, Epoch, Lease, NodeId, RedisMillis, ScriptReply,
    Snapshot, StreamId,
};
