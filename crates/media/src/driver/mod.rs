//! The tokio side of the crate: the RTP port pool and the per-call media
//! task. Only this module imports tokio; every decision is made by the
//! sans-IO [`crate::session::MediaSession`] it drives.

pub mod port_pool;
pub mod session_task;

pub use port_pool::{PortLease, PortPool, PortRange};
pub use session_task::{
    MediaCommand, MediaHandle, MediaTask, MediaTaskEnded, MediaTaskEvent, NewWebRtcLeg,
    spawn_media_task,
};
