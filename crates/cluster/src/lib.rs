//! State shared between frontdesk nodes (issue 24): agent claims over
//! Redis ([`claims`]), and agents' presence, states, reload notes and node
//! heartbeats ([`presence`], wired into the daemon by
//! `frontdesk::app::cluster`), and the queues' lines shared across nodes
//! ([`line`]: a claim serves the caller first in line cluster-wide).
//!
//! # Why claims cross the network, and only claims
//!
//! One node routes from its in-memory agent table (`routing::AgentTable`):
//! choosing an agent is a look at a skill's idle line and one atomic
//! compare-and-swap. Several nodes behind Kamailio must not offer one
//! agent to two patients, so the claim itself has to be decided in one
//! place that every node sees: Redis. Choosing stays local (each node keeps
//! its table as a replica); only the claim makes a round trip.
//!
//! # The model ([`claims`])
//!
//! * **One Lua script per change.** A claim is a compare-and-set executed
//!   by Redis as one script ([`claims::ClaimStore::claim`]): it reads the
//!   agent's hash, decides, writes the new holder and appends the change
//!   to a stream, all atomically (Redis runs a script to completion before
//!   any other command), in one round trip. A check-then-set from the
//!   client (`WATCH`/`MULTI`) would cost two round trips and retries under
//!   contention, which is exactly when claims matter.
//! * **A lease, decided by Redis's clock.** A node that dies holding an
//!   agent must not leave them "on call" for ever: every claim carries a
//!   lease that its holder renews ([`claims::ClaimStore::renew`]); once it
//!   runs out the agent is free for anyone. The script reads the time with
//!   `redis.call('TIME')`, so expiry is judged by one clock, never by the
//!   nodes' clocks against each other.
//! * **An epoch per agent, a fencing token.** Each claim raises the
//!   agent's epoch by one; renew and release name the epoch they hold, and
//!   a claim names the epoch its replica last saw, so a decision made on a
//!   stale replica, or by a node whose lease ran out while it was paused, is
//!   refused ([`claims::ClaimError::Stale`], [`claims::ClaimError::Lapsed`])
//!   instead of overwriting a newer holder (Kleppmann's fencing tokens; the
//!   epoch is what a later journal row or a SIP offer can carry).
//! * **A stream of changes, the replicas' feed.** The same script appends
//!   every change (claimed, renewed, released, expired) to a Redis Stream
//!   capped with `MAXLEN ~`, each with a sequence number of its own.
//!   [`claims::ChangeFeed`] reads it (`XREAD BLOCK`) in order; a consumer
//!   that sees a gap in the sequence (it fell behind the cap, or Redis lost
//!   its data) resynchronises from a snapshot taken by a read-only script
//!   (every agent's hash, with the stream position it matches) and goes on
//!   from there.
//! * **History for the journal.** Each change carries agent, node, epoch
//!   and Redis time, so [`claims::holdings`] rebuilds who held which agent
//!   from when to when, and [`claims::find_violations`] checks that no two
//!   holdings of one agent overlap and that epochs only grow (the cluster
//!   test's "no agent is ever claimed twice"). The stream is capped, so
//!   the daemon also journals each holding (`records::claims`) and runs
//!   the same check over the journal (`GET /api/reports/claims`).
//!
//! # Failure
//!
//! Every Redis command runs under [`claims::StoreConfig::command_timeout`]
//! (and connecting under `connect_timeout`): with Redis down a call fails
//! with [`claims::ClaimError::Store`] within that time, never hangs. What a
//! node does then (route on its local view, raise an alert, reconcile) is
//! the daemon's wiring, the next step of issue 24.
#![forbid(unsafe_code)]

pub mod claims;
pub mod line;
pub mod presence;
