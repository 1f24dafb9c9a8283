//! Master keys, crypto suites and the session keys derived from them
//! (RFC 3711 §4.3 key derivation with AES-CM as the PRF, §4.1.1 AES in
//! counter mode, §4.2.1 HMAC-SHA1).

use std::fmt;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use rand::CryptoRng;
use sha1::Sha1;

/// Octets of an AES-128 master key.
pub const MASTER_KEY_LEN: usize = 16;
/// Octets of a master salt (112 bits, RFC 3711 §8.2).
pub const MASTER_SALT_LEN: usize = 14;
/// Octets of the `inline:` key material of SDES: key then salt (RFC 4568 §6.1).
pub const KEY_AND_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// Octets of the session authentication key of HMAC-SHA1 (RFC 3711 §8.2).
const AUTH_KEY_LEN: usize = 20;
/// Octets of a full HMAC-SHA1 output.
pub(crate) const HMAC_SHA1_LEN: usize = 20;
/// The SRTCP authentication tag of both suites: 80 bits (RFC 4568 §6.2.1–2).
pub(crate) const SRTCP_TAG_LEN: usize = 10;

/// The SDES crypto suites we speak (RFC 4568 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (the default transform of RFC 3711).
    AesCm128HmacSha1_80,
    /// The same with a 32-bit SRTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// Both suites, strongest first (the order of our offers).
    pub const ALL: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    /// The suite's name in `a=crypto`.
    pub const fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Parses a suite name (case-sensitive, as RFC 4568 §9.2 registers them).
    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL
            .into_iter()
            .find(|suite| suite.name() == name)
    }

    /// Octets of the SRTP authentication tag.
    pub const fn srtp_tag_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => 10,
            CryptoSuite::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Octets of the SRTCP authentication tag (80 bits for both).
    pub const fn srtcp_tag_len(self) -> usize {
        SRTCP_TAG_LEN
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key and master salt. `Debug` prints neither, and the bytes are
/// overwritten when the value is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; MASTER_KEY_LEN],
    salt: [u8; MASTER_SALT_LEN],
}

impl MasterKey {
    /// A master key from its parts.
    pub fn new(key: [u8; MASTER_KEY_LEN], salt: [u8; MASTER_SALT_LEN]) -> MasterKey {
        MasterKey { key, salt }
    }

    /// Key then salt, 30 octets, as in SDES `inline:` (RFC 4568 §6.1).
    pub fn from_key_and_salt(bytes: &[u8]) -> Option<MasterKey> {
        if bytes.len() != KEY_AND_SALT_LEN {
            return None;
        }
        let mut key = [0; MASTER_KEY_LEN];
        let mut salt = [0; MASTER_SALT_LEN];
        key.copy_from_slice(&bytes[..MASTER_KEY_LEN]);
        salt.copy_from_slice(&bytes[MASTER_KEY_LEN..]);
        Some(MasterKey { key, salt })
    }

    /// A fresh random key and salt from a cryptographic generator (RFC 4568
    /// §6.1: each endpoint picks its own).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> MasterKey {
        let mut key = [0; MASTER_KEY_LEN];
        let mut salt = [0; MASTER_SALT_LEN];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut salt);
        MasterKey { key, salt }
    }

    /// Key then salt, 30 octets.
    pub fn key_and_salt(&self) -> [u8; KEY_AND_SALT_LEN] {
        let mut bytes = [0; KEY_AND_SALT_LEN];
        bytes[..MASTER_KEY_LEN].copy_from_slice(&self.key);
        bytes[MASTER_KEY_LEN..].copy_from_slice(&self.salt);
        bytes
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.key.fill(0);
        self.salt.fill(0);
        // Keep the writes: the value is about to be freed.
        std::hint::black_box((&self.key, &self.salt));
    }
}

/// A master key index carried in each packet (RFC 3711 §3.1, RFC 4568
/// `|MKI:value:length`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mki {
    /// The index value.
    pub value: u64,
    /// Its length on the wire, 1 to 8 octets.
    pub len: u8,
}

impl Mki {
    /// The MKI as sent: `len` octets, big-endian.
    pub fn matches(&self, wire: &[u8]) -> bool {
        let len = usize::from(self.len);
        if wire.len() != len || len == 0 || len > 8 {
            return false;
        }
        let mut bytes = [0u8; 8];
        bytes[8 - len..].copy_from_slice(wire);
        u64::from_be_bytes(bytes) == self.value
    }
}

/// Labels of the key derivation (RFC 3711 §4.3.1–4.3.2).
#[derive(Clone, Copy)]
struct Labels {
    encryption: u8,
    authentication: u8,
    salt: u8,
}

const SRTP_LABELS: Labels = Labels {
    encryption: 0x00,
    authentication: 0x01,
    salt: 0x02,
};
const SRTCP_LABELS: Labels = Labels {
    encryption: 0x03,
    authentication: 0x04,
    salt: 0x05,
};

/// The session keys of one direction of SRTP or SRTCP: the expanded AES
/// key, the session salt and a keyed HMAC-SHA1 state (cloned per packet,
/// so the key's pads are hashed once).
#[derive(Clone)]
pub struct SessionKeys {
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LEN],
    auth: Hmac<Sha1>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    /// The SRTP session keys of a master key (key derivation rate 0).
    pub fn srtp(master: &MasterKey) -> SessionKeys {
        SessionKeys::derive(master, SRTP_LABELS)
    }

    /// The SRTCP session keys of a master key.
    pub fn srtcp(master: &MasterKey) -> SessionKeys {
        SessionKeys::derive(master, SRTCP_LABELS)
    }

    fn derive(master: &MasterKey, labels: Labels) -> SessionKeys {
        let mut encryption = [0u8; MASTER_KEY_LEN];
        let mut authentication = [0u8; AUTH_KEY_LEN];
        let mut salt = [0u8; MASTER_SALT_LEN];
        derive_key(master, labels.encryption, &mut encryption);
        derive_key(master, labels.authentication, &mut authentication);
        derive_key(master, labels.salt, &mut salt);
        let keys = SessionKeys {
            cipher: Aes128::new(&encryption.into()),
            salt,
            // A 20-octet key is always accepted by HMAC (RFC 2104 takes any length).
            auth: <Hmac<Sha1> as Mac>::new_from_slice(&authentication)
                .expect("HMAC accepts keys of any length"),
        };
        encryption.fill(0);
        authentication.fill(0);
        std::hint::black_box((&encryption, &authentication));
        keys
    }

    /// The counter-mode IV of a packet (RFC 3711 §4.1.1):
    /// `(k_s · 2^16) ⊕ (SSRC · 2^64) ⊕ (i · 2^16)`.
    pub(crate) fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (byte, ssrc_byte) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *byte ^= ssrc_byte;
        }
        for (byte, index_byte) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *byte ^= index_byte;
        }
        iv
    }

    /// XORs the AES-CM keystream of a packet into `data`.
    pub(crate) fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        keystream_xor(&self.cipher, self.iv(ssrc, index), data);
    }

    /// HMAC-SHA1 over the concatenation of `parts`.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; HMAC_SHA1_LEN] {
        let mut mac = self.auth.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the leading part of the HMAC-SHA1 over `parts`,
    /// compared in constant time.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.auth.clone();
        for part in parts {
            mac.update(part);
        }
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// Blocks encrypted per call of the block cipher (lets AES-NI pipeline).
const PARALLEL_BLOCKS: usize = 8;

/// AES in counter mode from `iv`: XORs the keystream into `data`. The
/// IV's low 16 bits are zero in SRTP, so the block counter never carries
/// into the salt for packets under 1 MiB (RFC 3711 §4.1.1).
pub(crate) fn keystream_xor(cipher: &Aes128, iv: [u8; 16], data: &mut [u8]) {
    let mut counter = u128::from_be_bytes(iv);
    let mut blocks = [aes::Block::default(); PARALLEL_BLOCKS];
    for chunk in data.chunks_mut(16 * PARALLEL_BLOCKS) {
        let count = chunk.len().div_ceil(16);
        for block in &mut blocks[..count] {
            block.copy_from_slice(&counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        cipher.encrypt_blocks(&mut blocks[..count]);
        for (piece, key) in chunk.chunks_mut(16).zip(&blocks) {
            match <&mut [u8; 16]>::try_from(&mut *piece) {
                // A whole block: one 128-bit XOR.
                Ok(whole) => {
                    let key: &[u8; 16] = key.as_ref();
                    let key = u128::from_ne_bytes(*key);
                    *whole = (u128::from_ne_bytes(*whole) ^ key).to_ne_bytes();
                }
                // The packet's last, partial block.
                Err(_) => {
                    for (byte, key) in piece.iter_mut().zip(key.iter()) {
                        *byte ^= key;
                    }
                }
            }
        }
    }
}

/// The key derivation of RFC 3711 §4.3.1 with a key derivation rate of 0:
/// `x = key_id ⊕ master_salt` with `key_id = label || 0^48`, and the
/// output is the AES-CM keystream of the master key from `x · 2^16`.
fn derive_key(master: &MasterKey, label: u8, out: &mut [u8]) {
    let cipher = Aes128::new(&master.key.into());
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(&master.salt);
    iv[7] ^= label;
    out.fill(0);
    keystream_xor(&cipher, iv, out);
}

#[cfg(test)]
pub(crate) fn derive_for_test(master: &MasterKey, label: u8, out: &mut [u8]) {
    derive_key(master, label, out);
}
