//! RTP, G.711, prompts and DTMF for frontdesk: everything a call's audio
//! needs between the SIP signalling and the network.
//!
//! # Model
//!
//! The crate is a set of sans-IO cores (no sockets, no clock: every method
//! takes `now`) and one thin tokio driver:
//!
//! | module | what |
//! |---|---|
//! | [`sdp`] | our SDP subset (RFC 8866) and RFC 3264 offer/answer → [`sdp::NegotiatedMedia`] |
//! | [`codec`], [`g711`] | PCMU/PCMA, encode/decode, direct µ↔A conversion (ITU-T G.711) |
//! | [`prompt`] | WAV prompts pre-encoded into 20 ms frames, shared by `Arc` |
//! | [`playback`] | a cursor over prompts (once, or looped for hold music) and a drift-free 20 ms pacer |
//! | [`rtp`] | the stream we originate ([`rtp::OutboundStream`]: SSRC, sequence, timestamp, marker), validation of what we receive, RFC 4733 telephone-events in and out |
//! | [`inband`] | a Goertzel DTMF detector for tones in the audio |
//! | [`relay`] | the bridge's per-packet rewrite ([`relay::RelayPath`]) |
//! | [`strict`] | strict RTP ([`strict::PeerGuard`]): which source is a leg's peer (its signalled address, or a run of packets for phones behind NAT), foreign packets dropped, and at most a small budget sent before the peer is confirmed (no reflection) |
//! | [`srtp`] | SRTP/SRTCP (RFC 3711) for the SDES suites `AES_CM_128_HMAC_SHA1_80`/`_32`: protect, unprotect, ROC, replay window; why it is ours and not a crate is in its docs |
//! | [`webrtc`] | a browser's audio leg: ICE-lite, DTLS-SRTP and RTCP terminated (on str0m, chosen by measurement: its docs), G.711 handed to the session as plain RTP |
//! | [`session`] | [`session::MediaSession`]: one call's legs, prompts, digits, bridge, inactivity |
//! | [`driver`] | tokio: [`driver::PortPool`] and the per-call task [`driver::spawn_media_task`] |
//!
//! # One call
//!
//! 1. The controller answers an INVITE: [`driver::PortPool::allocate`] a port,
//!    [`sdp::SessionDescription::parse`] the offer, [`sdp::create_answer`]
//!    with [`sdp::LocalMedia`] (an [`error::SdpError`] maps to SIP 400/488 via
//!    [`error::SdpError::sip_status`]). For an `RTP/SAVP` offer with
//!    `a=crypto` (SDES, RFC 4568), give the [`sdp::LocalMedia`] a fresh key
//!    with [`sdp::LocalMedia::with_srtp`]: the answer carries ours, and
//!    [`sdp::NegotiatedMedia::srtp`] both keys.
//! 2. [`driver::spawn_media_task`] with the caller's lease and
//!    [`sdp::NegotiatedMedia`]; prompts are played with
//!    [`driver::MediaHandle::play`]; digits, latching, playback ends and
//!    inactivity come back as [`driver::MediaTaskEvent`]s.
//! 3. For the agent: a second lease, [`sdp::create_offer`], then
//!    [`sdp::accept_answer`] on the 200, [`driver::MediaHandle::add_leg`] and
//!    [`driver::MediaHandle::bridge`]. Digits the caller sends by SIP INFO
//!    can be passed to the agent as RFC 4733 with
//!    [`driver::MediaHandle::send_dtmf`]; a re-INVITE (hold) goes to
//!    [`driver::MediaHandle::update_leg`].
//! 4. Dropping the handle ends the task and returns the ports.
//!
//! Legs are SRTP or plain independently: the session decrypts what an SRTP
//! leg sends and encrypts what it sends to one, relay and prompts alike.
//!
//! # The run loop of the core
//!
//! [`session::MediaSession`] follows the quinn/str0m pattern: feed inputs
//! (`handle_datagram`, `handle_timeout`, commands), drain `poll_transmit`
//! and `poll_event` until `None`, then sleep until `poll_timeout`. The
//! driver does exactly that with `tokio::select!` over the leg sockets, a
//! command channel and `sleep_until`; only [`driver`] imports tokio.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
#[cfg(feature = "runtime")]
pub mod driver;
pub mod dtmf;
pub mod error;
pub mod g711;
pub mod inband;
pub mod listen;
pub mod playback;
pub mod prompt;
pub mod recording;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod strict;
pub mod webrtc;

pub use codec::Codec;
pub use dtmf::{DtmfDigit, DtmfSource};
pub use error::{
    Error, PortPoolError, PromptError, RtpError, SdpError, SessionError, SrtpError, WebRtcError,
};
