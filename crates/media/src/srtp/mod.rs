//! SRTP and SRTCP (RFC 3711) for the two crypto suites that SDES
//! (RFC 4568 §6.2) defines for AES in counter mode:
//! `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32`.
//!
//! * [`MasterKey`]: the 16-byte master key and 14-byte master salt carried
//!   in an `a=crypto` line (its `Debug` never shows them);
//! * [`SrtpSender`] / [`SrtpReceiver`]: protect and unprotect RTP, with the
//!   rollover counter (ROC) kept across sequence-number wrap (§3.3.1,
//!   Appendix A) and a 128-packet replay window (§3.3.2);
//! * [`SrtcpSender`] / [`SrtcpReceiver`]: the same for RTCP (§3.4), with
//!   the explicit 31-bit SRTCP index and E flag.
//!
//! Every operation works on caller-provided buffers and does not allocate;
//! the session keys are derived once per context (key derivation rate 0,
//! the only rate SDES peers use in practice: §4.3, RFC 4568 §6.3.2).
//!
//! # Why our own, on RustCrypto
//!
//! Measured against webrtc-rs's `webrtc-srtp` 0.17.2 and the `srtp` crate
//! 0.7.0 (libsrtp 2.3.0 over OpenSSL) with `bench/srtp-compare`:
//! BENCHMARKS.md, "SRTP: CPU per bridged call (issue 12)", "Choosing the
//! SRTP implementation". The three produced byte-identical SRTP packets;
//! ours was the fastest there (protect ~680 ns against ~800 and ~840 ns),
//! the only one with no allocation per packet, and costs 13 crates (`aes`,
//! `hmac`, `sha1` and theirs) against 65 for `webrtc-srtp` (tokio and nix
//! among them), whose replay protection is off by default, and a C build
//! (bindgen, libclang, OpenSSL) for `srtp`.

mod context;
mod keys;
mod replay;

pub use context::{SrtcpReceiver, SrtcpSender, SrtpReceiver, SrtpSender, SrtpStats};
pub use keys::{CryptoSuite, MasterKey, Mki, SessionKeys};
pub use replay::ReplayWindow;

#[cfg(test)]
mod tests;
