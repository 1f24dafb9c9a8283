//! SIP for frontdesk: the message layer, transports, transactions, dialogs
//! and the registrar.
//!
//! The protocol cores here are sans-IO: they take inputs and a `now`, and
//! hand back what to send and when they next need to be woken. Only the
//! drivers touch sockets and clocks (tokio, behind the default `runtime`
//! feature): [`transport`], which makes no protocol decisions, and the
//! endpoint's task, which carries out what [`endpoint::core`] decides. The
//! transport's front door ([`transport::door`]) applies the `guard` crate's
//! per-source limits to untrusted sources before anything is parsed.
#![forbid(unsafe_code)]
// `clippy.toml` bans reading the clock and the thread RNG; the modules that
// must never do so turn the lint on (`#![warn(clippy::disallowed_methods)]`:
// the endpoint's core, the transaction layer, admission control). The
// drivers read the clock for the cores, so the crate as a whole allows it.
#![allow(clippy::disallowed_methods)]

pub mod dialog;
pub mod digest;
pub mod endpoint;
pub mod message;
pub mod overload;
pub mod peer;
pub mod registrar;
pub mod transaction;
#[cfg(feature = "runtime")]
pub mod transport;

pub use peer::{ConnectionId, Peer, TransportKind};

/// The tests' clock starts anywhere: one read of the real clock, then
/// only offsets from it.
#[cfg(test)]
pub(crate) fn epoch() -> std::time::Instant {
    std::time::Instant::now()
}
