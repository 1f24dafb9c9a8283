//! `X-Frontdesk-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<raw body>")>` (DESIGN.md, "Leads"): the scheme webhook senders
//! already know (Stripe's and others' `t=…,v1=…`), so that a form builder
//! can be pointed at the clinic with a secret and no code.
//!
//! The timestamp is inside the MAC, so an old post cannot be made new; the
//! tolerance bounds how long a captured post stays valid, and the replay
//! cache ([`super::replay`]) makes it valid once. Several `v1` values may
//! be given (a sender rotating its secret signs with both); any one that
//! verifies is enough. The comparison takes the same time whatever the
//! first differing byte. The HMAC is `sip::digest`'s, the one the
//! registrar's nonces use.

use sip::digest::{hmac_sha256, unhex};

/// The longest header read.
pub const MAX_HEADER: usize = 512;
/// The most `v1` values read.
const MAX_MACS: usize = 4;

/// A parsed signature header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `t`, Unix seconds.
    pub timestamp: i64,
    /// Each `v1`, decoded.
    pub macs: Vec<[u8; 32]>,
}

/// Why a signature header was refused (each is a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `t=<digits>,v1=<64 hex digits>[,v1=…]`.
    #[error(
        "the X-Frontdesk-Signature header is malformed (t=<unix seconds>,v1=<hex HMAC-SHA256>)"
    )]
    Malformed,
    /// `t` is too far from now.
    #[error("the signature's timestamp is outside the tolerance (stale or from the future)")]
    Expired,
    /// No `v1` is the HMAC of this body with the source's secret.
    #[error("the signature does not match the body")]
    Mismatch,
}

impl SignatureHeader {
    /// Reads the header's value. Unknown keys (a future `v2`, say) are
    /// ignored, as senders expect; `t` must appear once, `v1` at least
    /// once.
    pub fn parse(value: &str) -> Result<SignatureHeader, SignatureError> {
        if value.len() > MAX_HEADER {
            return Err(SignatureError::Malformed);
        }
        let mut timestamp = None;
        let mut macs = Vec::new();
        for part in value.split(',') {
            let (key, item) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureError::Malformed)?;
            match key {
                "t" => {
                    if timestamp.is_some()
                        || item.is_empty()
                        || item.len() > 12
                        || !item.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(SignatureError::Malformed);
                    }
                    timestamp = Some(item.parse().map_err(|_| SignatureError::Malformed)?);
                }
                "v1" => {
                    if item.len() != 64 || macs.len() == MAX_MACS {
                        return Err(SignatureError::Malformed);
                    }
                    let bytes = unhex(item).ok_or(SignatureError::Malformed)?;
                    let mac: [u8; 32] = bytes.try_into().map_err(|_| SignatureError::Malformed)?;
                    macs.push(mac);
                }
                _ => {}
            }
        }
        match (timestamp, macs.is_empty()) {
            (Some(timestamp), false) => Ok(SignatureHeader { timestamp, macs }),
            _ => Err(SignatureError::Malformed),
        }
    }

    /// Checks the timestamp against `now` (Unix seconds) within
    /// `tolerance_s` either way, then each MAC against `secret` and `body`;
    /// returns the MAC that verified.
    pub fn verify(
        &self,
        secret: &[u8],
        body: &[u8],
        now: i64,
        tolerance_s: i64,
    ) -> Result<[u8; 32], SignatureError> {
        if now.abs_diff(self.timestamp) > tolerance_s.unsigned_abs() {
            return Err(SignatureError::Expired);
        }
        let expected = sign(secret, self.timestamp, body);
        self.macs
            .iter()
            .find(|mac| same(mac, &expected))
            .copied()
            .ok_or(SignatureError::Mismatch)
    }
}

/// The `v1` of `body` at `timestamp` with `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[timestamp.to_string().as_bytes(), b".", body])
}

/// Equal in constant time.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sip::digest::hex;

    const SECRET: &[u8] = b"demo-website-secret";
    const NOW: i64 = 1_790_000_000;

    fn header(t: i64, body: &[u8]) -> String {
        format!("t={t},v1={}", hex(&sign(SECRET, t, body)))
    }

    #[test]
    fn a_good_signature_verifies_within_the_tolerance() {
        let body = br#"{"phone":"+13125550199"}"#;
        let parsed = SignatureHeader::parse(&header(NOW - 299, body)).unwrap();
        assert_eq!(
            parsed.verify(SECRET, body, NOW, 300),
            Ok(sign(SECRET, NOW - 299, body))
        );
        // From the future within the tolerance too (clocks differ).
        let parsed = SignatureHeader::parse(&header(NOW + 60, body)).unwrap();
        assert!(parsed.verify(SECRET, body, NOW, 300).is_ok());
    }

    #[test]
    fn stale_forged_and_malformed_signatures_are_refused() {
        let body = b"{}";
        let old = SignatureHeader::parse(&header(NOW - 3600, body)).unwrap();
        assert_eq!(
            old.verify(SECRET, body, NOW, 300),
            Err(SignatureError::Expired)
        );
        let other = SignatureHeader::parse(&header(NOW, b"{\"x\":1}")).unwrap();
        assert_eq!(
            other.verify(SECRET, body, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        let good = SignatureHeader::parse(&header(NOW, body)).unwrap();
        assert_eq!(
            good.verify(b"another-secret!!", body, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        let mac = hex(&sign(SECRET, NOW, body));
        for bad in [
            String::new(),
            format!("v1={mac}"),
            format!("t={NOW}"),
            format!("t={NOW},t={NOW},v1={mac}"),
            format!("t=-5,v1={mac}"),
            format!("t={NOW},v1={}", &mac[..62]),
            format!("t={NOW},v1={}zz", &mac[..62]),
            format!("t={NOW};v1={mac}"),
            format!("t=9999999999999,v1={mac}"),
            format!("t={NOW},{}", vec![format!("v1={mac}"); 5].join(",")),
        ] {
            assert_eq!(
                SignatureHeader::parse(&bad),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_rotating_sender_may_sign_twice_and_unknown_keys_are_ignored() {
        let body = b"{}";
        let old_key = hex(&sign(b"the-old-secret-0", NOW, body));
        let value = format!(
            " t={NOW} , v0=whatever, v1={old_key}, v1={} ",
            hex(&sign(SECRET, NOW, body))
        );
        let parsed = SignatureHeader::parse(&value).unwrap();
        assert_eq!(parsed.macs.len(), 2);
        assert!(parsed.verify(SECRET, body, NOW, 300).is_ok());
    }

    proptest! {
        #[test]
        fn any_header_text_is_safe(value in "\\PC{0,600}") {
            if let Ok(parsed) = SignatureHeader::parse(&value) {
                prop_assert!(!parsed.macs.is_empty() && parsed.macs.len() <= MAX_MACS);
                let _ = parsed.verify(SECRET, b"{}", NOW, 300);
            }
        }

        #[test]
        fn headers_round_trip(t in 0i64..100_000_000_000, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let parsed = SignatureHeader::parse(&header(t, &body)).unwrap();
            prop_assert_eq!(parsed.timestamp, t);
            prop_assert!(parsed.verify(SECRET, &body, t, 0).is_ok());
        }
    }
}
