//! The audio codecs frontdesk speaks: G.711 µ-law and A-law at 8 kHz, in
//! 20 ms frames (RFC 3551 §4.5.14 and §4.2 default packetization).

use std::time::Duration;

use crate::g711;

/// Sampling rate of G.711 and of the RTP clock for it (RFC 3551 §4.5.14).
pub const CLOCK_RATE: u32 = 8_000;
/// Samples (and G.711 bytes) in one 20 ms frame.
pub const SAMPLES_PER_FRAME: usize = 160;
/// The packetization interval we send with (`a=ptime:20`).
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// A G.711 variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// Both codecs, in the order we offer them.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// The static RTP payload type (RFC 3551 Table 4).
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap` (RFC 3551 §6).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Looks a codec up by its `a=rtpmap` encoding name (case-insensitive,
    /// RFC 4855 §3).
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.encoding_name().eq_ignore_ascii_case(name))
    }

    /// The codec a static payload type stands for, if it is one of ours.
    pub const fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// Encodes one linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => g711::ulaw_encode(sample),
            Codec::Pcma => g711::alaw_encode(sample),
        }
    }

    /// Decodes one byte to a linear sample.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => g711::ulaw_decode(code),
            Codec::Pcma => g711::alaw_decode(code),
        }
    }

    /// The byte that encodes digital silence.
    pub const fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// Converts `input` encoded with `self` into `target`'s encoding, byte
    /// for byte, into `out` (which must be at least as long as `input`).
    pub fn transcode_into(self, target: Codec, input: &[u8], out: &mut [u8]) {
        match (self, target) {
            (Codec::Pcmu, Codec::Pcma) => g711::ulaw_to_alaw_slice(input, out),
            (Codec::Pcma, Codec::Pcmu) => g711::alaw_to_ulaw_slice(input, out),
            _ => out[..input.len()].copy_from_slice(input),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_payload_types() {
        assert_eq!(Codec::from_encoding_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_encoding_name("PCMA"), Some(Codec::Pcma));
        assert_eq!(Codec::from_encoding_name("G729"), None);
        assert_eq!(Codec::from_static_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_static_payload_type(18), None);
        assert_eq!(Codec::Pcmu.static_payload_type(), 0);
    }

    #[test]
    fn silence_decodes_near_zero() {
        for codec in Codec::ALL {
            assert!(codec.decode(codec.silence()).abs() <= 8);
            assert_eq!(codec.encode(0), codec.silence());
        }
    }

    #[test]
    fn transcode_between_laws() {
        let ulaw = [0xFF, 0x00, 0x80, 0x7F];
        let mut alaw = [0u8; 4];
        Codec::Pcmu.transcode_into(Codec::Pcma, &ulaw, &mut alaw);
        assert_eq!(alaw, ulaw.map(g711::ulaw_to_alaw));
        let mut same = [0u8; 4];
        Codec::Pcmu.transcode_into(Codec::Pcmu, &ulaw, &mut same);
        assert_eq!(same, ulaw);
    }
}
