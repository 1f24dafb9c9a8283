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
//! Three candidates were measured (BENCHMARKS.md, "Media: SRTP"):
//! webrtc-rs's `webrtc-srtp` (pure Rust), the `srtp` crate (bindings to
//! libsrtp 2, built from C), and this module on RustCrypto's `aes`,
//! `hmac` and `sha1` (the same primitives `webrtc-srtp` uses). All three
//! pass libsrtp's known-answer vectors. We keep ours because:
//! `webrtc-srtp` returns a freshly allocated `Bytes` for every packet,
//! has replay protection off unless configured, and brings tokio, nix,
//! `webrtc-util` and two `rtp`/`rtcp` crates of its own (68 crates) into a
//! sans-IO core; the libsrtp bindings need a C build, `unsafe` FFI and a
//! `Vec`-like buffer, and the crate has had no release since 2022; ours
//! is about 600 lines, allocation-free, tested against RFC 3711
//! Appendix B and libsrtp's vectors; its per-packet cost is in BENCHMARKS.md.

mod context;
mod keys;
mod replay;

pub use context::{SrtcpReceiver, SrtcpSender, SrtpReceiver, SrtpSender, SrtpStats};
pub use keys::{CryptoSuite, MasterKey, Mki, SessionKeys};
pub use replay::ReplayWindow;

#[cfg(test)]
mod tests;
