//! SDES, the `a=crypto` attribute of RFC 4568: SRTP master keys carried
//! in the SDP of a signalling channel that is itself protected (SIP over
//! TLS). Each side sends its own key; the answerer picks one offered line,
//! echoing its tag and suite with its own key (§5.1.2, §7.1.2).
//!
//! We accept `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` with
//! one `inline:` key, an optional lifetime and an optional MKI of up to 8
//! octets. A line with anything we would have to ignore to use it (a
//! non-zero key derivation rate, `UNENCRYPTED_SRTP`, FEC keys, an
//! unknown session parameter not marked optional with `-`) is declined as
//! §6.3 requires, and the next line is tried.

use std::fmt;

use crate::srtp::{CryptoSuite, MasterKey, Mki};

/// One parsed `a=crypto` value: `<tag> <suite> inline:<key||salt>[|lifetime][|mki:len] [params]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag (1 to 9 digits) that an answer echoes.
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// The sender's master key and salt (redacted in `Debug`).
    pub key: MasterKey,
    /// Packets the key may protect, if limited.
    pub lifetime: Option<u64>,
    /// The master key index the sender puts in each packet.
    pub mki: Option<Mki>,
}

/// Why an `a=crypto` line was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoDeclined {
    /// Not the RFC 4568 syntax.
    Malformed(&'static str),
    /// A suite we do not speak (e.g. AES_256_CM_HMAC_SHA1_80, AEAD_AES_128_GCM).
    UnknownSuite,
    /// A session parameter we cannot honour (§6.3).
    UnsupportedParameter,
    /// Several keys (MKI-based rekeying, §6.1): not supported.
    SeveralKeys,
}

/// What offer/answer agreed for SRTP on one leg: our key for what we send,
/// the peer's for what it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpParameters {
    /// The agreed suite.
    pub suite: CryptoSuite,
    /// The tag of the agreed line.
    pub tag: u32,
    /// Our master key: packets we send on this leg are protected with it.
    pub local_key: MasterKey,
    /// The peer's master key: packets from the peer are checked with it.
    pub remote_key: MasterKey,
    /// The lifetime of the peer's key, if it gave one.
    pub remote_lifetime: Option<u64>,
    /// The MKI in the peer's packets, if it uses one.
    pub remote_mki: Option<Mki>,
}

impl CryptoAttribute {
    /// Our line: no lifetime, no MKI.
    pub fn new(tag: u32, suite: CryptoSuite, key: MasterKey) -> CryptoAttribute {
        CryptoAttribute {
            tag,
            suite,
            key,
            lifetime: None,
            mki: None,
        }
    }

    /// Parses the value of an `a=crypto` attribute.
    pub fn parse(value: &str) -> Result<CryptoAttribute, CryptoDeclined> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields
            .next()
            .filter(|tag| (1..=9).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|tag| tag.parse().ok())
            .ok_or(CryptoDeclined::Malformed("bad tag"))?;
        let suite_name = fields.next().ok_or(CryptoDeclined::Malformed("no suite"))?;
        let key_params = fields
            .next()
            .ok_or(CryptoDeclined::Malformed("no key parameters"))?;
        let suite = CryptoSuite::from_name(suite_name).ok_or(CryptoDeclined::UnknownSuite)?;
        if key_params.contains(';') {
            return Err(CryptoDeclined::SeveralKeys);
        }
        let (method, info) = key_params
            .split_once(':')
            .ok_or(CryptoDeclined::Malformed("no key method"))?;
        if method != "inline" {
            return Err(CryptoDeclined::Malformed("key method is not inline"));
        }
        let mut parts = info.split('|');
        let encoded = parts.next().unwrap_or_default();
        let key = base64_decode_30(encoded)
            .and_then(|bytes| MasterKey::from_key_and_salt(&bytes))
            .ok_or(CryptoDeclined::Malformed(
                "key||salt is not 30 octets of base64",
            ))?;
        let mut lifetime = None;
        let mut mki = None;
        for part in parts {
            if let Some((value, length)) = part.split_once(':') {
                if mki.is_some() {
                    return Err(CryptoDeclined::Malformed("two MKIs"));
                }
                mki = Some(parse_mki(value, length)?);
            } else if lifetime.is_none() && mki.is_none() {
                lifetime = Some(parse_lifetime(part)?);
            } else {
                return Err(CryptoDeclined::Malformed("bad key parameter"));
            }
        }
        for parameter in fields {
            check_session_parameter(parameter)?;
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key,
            lifetime,
            mki,
        })
    }
}

/// Prints the attribute value; the key is in it, so this is for the wire only.
impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite,
            Base64(&self.key.key_and_salt())
        )?;
        if let Some(lifetime) = self.lifetime {
            write!(f, "|{lifetime}")?;
        }
        if let Some(mki) = self.mki {
            write!(f, "|{}:{}", mki.value, mki.len)?;
        }
        Ok(())
    }
}

/// `2^n` or a decimal count (RFC 4568 §9.1 `lifetime`).
fn parse_lifetime(text: &str) -> Result<u64, CryptoDeclined> {
    let malformed = CryptoDeclined::Malformed("bad lifetime");
    match text.strip_prefix("2^") {
        Some(exponent) => {
            let exponent: u32 = exponent.parse().map_err(|_| malformed)?;
            1u64.checked_shl(exponent)
                .filter(|_| exponent < 64)
                .ok_or(malformed)
        }
        None => text.parse().ok().filter(|n| *n > 0).ok_or(malformed),
    }
}

/// `value:length` with a length of 1 to 8 octets (RFC 4568 allows up to
/// 128; longer ones are declined).
fn parse_mki(value: &str, length: &str) -> Result<Mki, CryptoDeclined> {
    let len: u8 = length
        .parse()
        .map_err(|_| CryptoDeclined::Malformed("bad MKI length"))?;
    if len == 0 || len > 128 {
        return Err(CryptoDeclined::Malformed("bad MKI length"));
    }
    if len > 8 {
        return Err(CryptoDeclined::UnsupportedParameter);
    }
    let value: u64 = value
        .parse()
        .map_err(|_| CryptoDeclined::Malformed("bad MKI value"))?;
    if len < 8 && value >> (8 * u32::from(len)) != 0 {
        return Err(CryptoDeclined::Malformed(
            "MKI value longer than its length",
        ));
    }
    Ok(Mki { value, len })
}

/// RFC 4568 §6.3: a session parameter that is not understood makes the
/// line unusable, unless it starts with `-` (optional).
fn check_session_parameter(parameter: &str) -> Result<(), CryptoDeclined> {
    if parameter.starts_with('-') {
        return Ok(());
    }
    let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
    match name {
        // Key derivation rate 0 is what we do; any other rate is not (§6.3.2).
        "KDR" if value == "0" => Ok(()),
        // The window-size hint is advisory; our window (128) is at least the default 64.
        "WSH" if value.parse::<u32>().is_ok_and(|size| size >= 64) => Ok(()),
        // The order of FEC and SRTP does not matter without FEC.
        "FEC_ORDER" if matches!(value, "FEC_SRTP" | "SRTP_FEC") => Ok(()),
        // UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP, FEC_KEY and the rest.
        _ => Err(CryptoDeclined::UnsupportedParameter),
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Decodes the base64 (RFC 4648 §4) of exactly 30 octets: 40 characters,
/// no padding needed.
fn base64_decode_30(text: &str) -> Option<[u8; 30]> {
    let text = text.as_bytes();
    if text.len() != 40 {
        return None;
    }
    let mut out = [0u8; 30];
    for (chunk, bytes) in text.chunks(4).zip(out.chunks_mut(3)) {
        let mut word = 0u32;
        for &symbol in chunk {
            let value = ALPHABET.iter().position(|&a| a == symbol)?;
            word = (word << 6) | value as u32;
        }
        bytes.copy_from_slice(&word.to_be_bytes()[1..]);
    }
    Some(out)
}

/// Base64 of whole 3-octet groups (our keys are 30 octets).
struct Base64<'a>(&'a [u8; 30]);

impl fmt::Display for Base64<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for group in self.0.chunks(3) {
            let word = u32::from_be_bytes([0, group[0], group[1], group[2]]);
            for shift in [18, 12, 6, 0] {
                let symbol = ALPHABET[((word >> shift) & 0x3F) as usize];
                write!(f, "{}", char::from(symbol))?;
            }
        }
        Ok(())
    }
}

/// An `a=crypto` value with its key material replaced, for `Debug`.
pub(crate) fn redacted(value: &str) -> String {
    value
        .split_ascii_whitespace()
        .map(|field| match field.split_once("inline:") {
            Some((before, _)) => format!("{before}inline:<redacted>"),
            None => field.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4568 §8.1's example key.
    const EXAMPLE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    #[test]
    fn parses_the_rfc_example_and_prints_it_back() {
        let attribute = CryptoAttribute::parse(EXAMPLE).unwrap();
        assert_eq!(attribute.tag, 1);
        assert_eq!(attribute.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(attribute.lifetime, Some(1 << 20));
        assert_eq!(attribute.mki, Some(Mki { value: 1, len: 4 }));
        assert_eq!(
            &attribute.key.key_and_salt()[..4],
            &[0x3D, 0x2D, 0x6E, 0x40],
            "PS1u decodes to 3D 2D 6E"
        );
        assert_eq!(
            attribute.to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1048576|1:4"
        );
        let again = CryptoAttribute::parse(&attribute.to_string()).unwrap();
        assert_eq!(again, attribute);
    }

    #[test]
    fn key_parameters_in_every_arrangement() {
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let parse = |params: &str| {
            CryptoAttribute::parse(&format!("7 AES_CM_128_HMAC_SHA1_32 {key}{params}"))
        };
        let plain = parse("").unwrap();
        assert_eq!((plain.tag, plain.lifetime, plain.mki), (7, None, None));
        assert_eq!(plain.suite, CryptoSuite::AesCm128HmacSha1_32);
        assert_eq!(parse("|1000").unwrap().lifetime, Some(1000));
        assert_eq!(parse("|5:1").unwrap().mki, Some(Mki { value: 5, len: 1 }));
        assert_eq!(parse("|2^31|255:1").unwrap().lifetime, Some(1 << 31));
        assert!(parse("|256:1").is_err(), "value wider than its length");
        assert_eq!(
            parse("|1:16").unwrap_err(),
            CryptoDeclined::UnsupportedParameter
        );
        assert!(parse("|0").is_err());
        assert!(parse("|2^x").is_err());
        assert!(parse("|1:4|2^20").is_err(), "lifetime comes before the MKI");
    }

    #[test]
    fn session_parameters_per_rfc4568_6_3() {
        let base = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let with = |params: &str| CryptoAttribute::parse(&format!("{base} {params}"));
        assert!(with("KDR=0").is_ok());
        assert!(with("WSH=128 FEC_ORDER=FEC_SRTP").is_ok());
        assert!(
            with("-EXPERIMENTAL=1").is_ok(),
            "optional parameters may be ignored"
        );
        for refused in [
            "KDR=1",
            "KDR=24",
            "UNENCRYPTED_SRTP",
            "UNENCRYPTED_SRTCP",
            "UNAUTHENTICATED_SRTP",
            "FEC_KEY=inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "WSH=32",
            "SOMETHING_NEW",
        ] {
            assert_eq!(
                with(refused).unwrap_err(),
                CryptoDeclined::UnsupportedParameter,
                "{refused}"
            );
        }
    }

    #[test]
    fn unusable_lines() {
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert_eq!(
            CryptoAttribute::parse(&format!("1 AES_256_CM_HMAC_SHA1_80 {key}")).unwrap_err(),
            CryptoDeclined::UnknownSuite
        );
        assert_eq!(
            CryptoAttribute::parse(&format!("1 AEAD_AES_128_GCM {key}")).unwrap_err(),
            CryptoDeclined::UnknownSuite
        );
        assert_eq!(
            CryptoAttribute::parse(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 {key}|2^20|1:4;{key}|2^20|2:4"
            ))
            .unwrap_err(),
            CryptoDeclined::SeveralKeys
        );
        for malformed in [
            "",
            "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1234567890 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1 AES_CM_128_HMAC_SHA1_80",
            "1 AES_CM_128_HMAC_SHA1_80 uri:https://example.com/key",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV!R",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBRAAAA",
        ] {
            assert!(
                matches!(
                    CryptoAttribute::parse(malformed),
                    Err(CryptoDeclined::Malformed(_))
                ),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn base64_round_trip_of_every_byte_value() {
        for start in [0u8, 30, 60, 90, 120, 150, 180, 210, 240] {
            let bytes: [u8; 30] = std::array::from_fn(|n| start.wrapping_add(n as u8 * 7));
            let text = Base64(&bytes).to_string();
            assert_eq!(text.len(), 40);
            assert_eq!(base64_decode_30(&text), Some(bytes));
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let attribute = CryptoAttribute::parse(EXAMPLE).unwrap();
        let debug = format!("{attribute:?}");
        assert!(!debug.contains("PS1u"), "{debug}");
        assert!(!debug.contains("61"), "{debug}"); // 0x3D as a decimal byte
        assert_eq!(
            redacted(EXAMPLE),
            "1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>"
        );
    }
}
