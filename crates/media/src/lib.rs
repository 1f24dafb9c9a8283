//! RTP, G.711, prompts, DTMF for frontdesk
#![forbid(unsafe_code)]

pub mod codec;
pub mod error;
pub mod g711;
pub mod sdp;
pub mod dtmf;
pub mod rtp;
pub mod prompt;
pub mod playback;
pub mod inband;
pub mod relay;
pub mod session;
pub mod driver;
