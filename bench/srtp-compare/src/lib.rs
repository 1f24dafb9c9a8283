//! The three candidates set up the same way: one packet shape, one
//! master key and salt, AES_CM_128_HMAC_SHA1_80.
//!
//! The packet and the key are those of `crates/media/benches/srtp.rs`, so
//! the figures for ours line up with the ones recorded there.

use media::srtp::{CryptoSuite, MasterKey, SrtpReceiver, SrtpSender};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// 16-byte master key followed by the 14-byte master salt.
pub const KEY_AND_SALT: [u8; 30] = [7; 30];
pub const SSRC: u32 = 1;
/// 12-byte RTP header + 160 bytes of PCMU (20 ms of G.711).
pub const PACKET_LEN: usize = 172;

/// The same packet as `crates/media/benches/srtp.rs`.
pub fn packet(sequence: u16, ssrc: u32) -> [u8; PACKET_LEN] {
    let mut packet = [0x55u8; PACKET_LEN];
    packet[..12].fill(0);
    packet[0] = 0x80;
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&(160 * u32::from(sequence)).to_be_bytes());
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    packet
}

// --- ours: frontdesk's media::srtp ---------------------------------------

pub fn ours_sender() -> SrtpSender {
    let key = MasterKey::from_key_and_salt(&KEY_AND_SALT).unwrap();
    SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &key)
}

pub fn ours_receiver() -> SrtpReceiver {
    let key = MasterKey::from_key_and_salt(&KEY_AND_SALT).unwrap();
    SrtpReceiver::new(CryptoSuite::AesCm128HmacSha1_80, &key)
}

// --- webrtc-srtp ----------------------------------------------------------

/// `Context::new` with no options: the crate's defaults (which leave
/// replay protection off).
pub fn webrtc_context() -> Context {
    Context::new(
        &KEY_AND_SALT[..16],
        &KEY_AND_SALT[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
    )
    .unwrap()
}

/// A receiving context with replay protection switched on, with a window
/// of 128 packets like ours and libsrtp's default.
pub fn webrtc_context_with_replay() -> Context {
    Context::new(
        &KEY_AND_SALT[..16],
        &KEY_AND_SALT[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        Some(webrtc_srtp::option::srtp_replay_protection(128)),
        None,
    )
    .unwrap()
}

// --- libsrtp 2 through the `srtp` crate ------------------------------------

fn libsrtp_policy() -> srtp::StreamPolicy<'static> {
    srtp::StreamPolicy {
        rtp: srtp::CryptoPolicy::aes_cm_128_hmac_sha1_80(),
        rtcp: srtp::CryptoPolicy::aes_cm_128_hmac_sha1_80(),
        key: &KEY_AND_SALT,
        // 0: libsrtp's default window (128); replay protection is always on.
        window_size: 0,
        allow_repeat_tx: false,
        encrypt_extension_headers: &[],
    }
}

pub fn libsrtp_sender() -> srtp::Session {
    srtp::Session::with_outbound_template(libsrtp_policy()).unwrap()
}

pub fn libsrtp_receiver() -> srtp::Session {
    srtp::Session::with_inbound_template(libsrtp_policy()).unwrap()
}

/// The libsrtp version the `srtp2-sys` crate built.
pub fn libsrtp_version() -> &'static str {
    srtp::get_version_string()
}
