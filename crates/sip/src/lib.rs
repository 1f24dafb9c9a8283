//! SIP for frontdesk: the message layer, transports, transactions, dialogs
//! and the registrar.
//!
//! The protocol cores here are sans-IO: they take inputs and a `now`, and
//! hand back what to send and when they next need to be woken. Only
//! [`transport`] touches sockets (tokio), and it makes no protocol decisions;
//! its front door ([`transport::door`]) applies the `guard` crate's
//! per-source limits to untrusted sources before anything is parsed.
#![forbid(unsafe_code)]

pub mod dialog;
pub mod digest;
#[cfg(feature = "runtime")]
pub mod endpoint;
pub mod message;
pub mod overload;
pub mod peer;
pub mod registrar;
pub mod transaction;
#[cfg(feature = "runtime")]
pub mod transport;

pub use peer::{ConnectionId, Peer, TransportKind};
