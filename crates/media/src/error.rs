//! Errors of the media crate, one variant per cause a caller can act on.

use std::path::PathBuf;

/// Everything the media crate can fail with; each part has its own enum,
/// gathered here for callers that just propagate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An SDP problem; see [`SdpError::sip_status`].
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// A prompt could not be loaded.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// No RTP port could be had.
    #[error(transparent)]
    PortPool(#[from] PortPoolError),
    /// A media session command could not be carried out.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// SDP parse and offer/answer failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not a session description we can read (SIP 400).
    #[error("malformed SDP at line {line}: {reason}")]
    Malformed {
        /// 1-based line number, 0 when the problem is the whole body.
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// The offer has no usable `m=audio` stream (SIP 488).
    #[error("the offer has no audio stream")]
    NoAudio,
    /// The only audio streams use a profile we do not speak, or `RTP/SAVP`
    /// while SRTP is not enabled for the leg (SIP 488).
    #[error("unsupported media profile {0}")]
    UnsupportedProfile(String),
    /// No codec in common: we speak PCMU and PCMA only (SIP 488).
    #[error("no common codec (we accept PCMU and PCMA)")]
    NoCommonCodec,
    /// `RTP/SAVP` without an `a=crypto` line we can use: we speak SDES with
    /// AES_CM_128_HMAC_SHA1_80 and _32, key derivation rate 0 (SIP 488).
    #[error("no usable SRTP crypto suite (we accept AES_CM_128_HMAC_SHA1_80 and _32 by SDES)")]
    NoCryptoSuite,
}

impl SdpError {
    /// The SIP response status this error should be answered with
    /// (RFC 3261 §21.4.26 for 488 Not Acceptable Here).
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Malformed { .. } => 400,
            SdpError::NoAudio
            | SdpError::UnsupportedProfile(_)
            | SdpError::NoCommonCodec
            | SdpError::NoCryptoSuite => 488,
        }
    }
}

/// Prompt loading failures; the path or name says which prompt.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file could not be read.
    #[error("{name}: {source}")]
    Io {
        /// The prompt's file or name.
        name: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// hound could not read the WAV container.
    #[error("{name}: not a readable WAV file: {source}")]
    Wav {
        /// The prompt's file or name.
        name: String,
        /// hound's error.
        source: hound::Error,
    },
    /// The WAV is not 8 kHz mono 16-bit integer PCM.
    #[error("{name}: prompts must be 8000 Hz mono 16-bit PCM WAV, found {found}")]
    Format {
        /// The prompt's file or name.
        name: String,
        /// What the file is, e.g. `44100 Hz, 2 channels, 16-bit int`.
        found: String,
    },
    /// The WAV has no samples.
    #[error("{name}: the prompt is empty")]
    Empty {
        /// The prompt's file or name.
        name: String,
    },
    /// A prompt directory could not be listed.
    #[error("{path}: cannot list prompts: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// RTP port allocation failures.
#[derive(Debug, thiserror::Error)]
pub enum PortPoolError {
    /// `--rtp-ports` is not `LO-HI` with 1024 ≤ LO < HI and at least one even port.
    #[error("invalid RTP port range {0:?}: expected LO-HI, e.g. 20000-29999")]
    InvalidRange(String),
    /// Every even port of the range is leased or could not be bound.
    #[error("no free RTP port in {low}-{high} ({leased} leased)")]
    Exhausted {
        /// Lowest port of the range.
        low: u16,
        /// Highest port of the range.
        high: u16,
        /// Ports leased right now.
        leased: usize,
    },
    /// A socket could not be made at all (out of file descriptors, of
    /// buffers): no other port would do better, so none is tried.
    #[error("cannot open an RTP socket: {0}")]
    Socket(String),
}

/// Why an incoming datagram was not accepted as RTP from this peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Not a well-formed RTP version 2 packet (RFC 3550 §5.1).
    #[error("malformed RTP packet: {0}")]
    Malformed(&'static str),
    /// A payload type that the SDP did not negotiate.
    #[error("payload type {0} was not negotiated")]
    UnknownPayloadType(u8),
    /// A telephone-event payload shorter than 4 bytes (RFC 4733 §2.3).
    #[error("truncated telephone-event payload")]
    TruncatedTelephoneEvent,
    /// The output buffer cannot hold the packet.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Media session command failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The command needs a leg that has not been added.
    #[error("the {0:?} leg has no media")]
    MissingLeg(crate::session::Leg),
    /// Digits cannot be sent as RFC 4733 events: the leg did not negotiate
    /// telephone-event (send them by SIP INFO instead).
    #[error("the {0:?} leg did not negotiate telephone-event")]
    NoTelephoneEvent(crate::session::Leg),
}

/// Why an SRTP or SRTCP packet was not protected or not accepted
/// (RFC 3711 §3.3, §3.4). Every one of them drops the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Not an RTP/RTCP packet, or shorter than its header and trailer.
    #[error("malformed SRTP packet: {0}")]
    Malformed(&'static str),
    /// The output buffer cannot hold the packet.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The authentication tag does not match: forged, damaged, or the wrong key.
    #[error("SRTP authentication failed")]
    AuthenticationFailed,
    /// The master key index in the packet is not the signalled one.
    #[error("unknown SRTP master key index")]
    MkiMismatch,
    /// The packet index was already received (replay list, §3.3.2).
    #[error("replayed SRTP packet")]
    Replayed,
    /// The packet index is older than the replay window.
    #[error("SRTP packet older than the replay window")]
    TooOld,
    /// The master key's lifetime is used up (§9.2; RFC 4568 lifetime).
    #[error("SRTP master key expired")]
    KeyExpired,
}

/// Why a browser's WebRTC offer was not answered ([`crate::webrtc`]).
/// Each is the browser's fault (a signalling reply tells it so) except
/// [`WebRtcError::Candidate`], which is ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebRtcError {
    /// The offer is larger than [`crate::webrtc::MAX_OFFER_LEN`]; it was not parsed.
    #[error("WebRTC offer of {len} bytes is larger than {max}")]
    OfferTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The offer is not SDP we can read, or not a WebRTC offer (no ICE
    /// credentials, no DTLS fingerprint, no BUNDLE/rtcp-mux: RFC 8829).
    #[error("unusable WebRTC offer: {0}")]
    Offer(String),
    /// The offer has no audio m-line.
    #[error("the WebRTC offer has no audio")]
    NoAudio,
    /// The offer's audio has neither PCMU nor PCMA.
    #[error("no common codec in the WebRTC offer (we accept PCMU and PCMA)")]
    NoCommonCodec,
    /// Our own address could not be made an ICE candidate (e.g. the
    /// unspecified address): a configuration error.
    #[error("no ICE candidate for our address: {0}")]
    Candidate(String),
}
