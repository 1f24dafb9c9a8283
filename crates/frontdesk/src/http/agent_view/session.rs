//! Agents' sign-in: their SIP credentials checked in constant time, and
//! the signed, expiring session token the agent's page keeps afterwards.
//!
//! A token is `HEX(agent id) "." EXPIRES "." HEX(mac)`, where `EXPIRES` is
//! Unix seconds and `mac` is HMAC-SHA-256 (RFC 2104) under a key drawn at
//! random when the process starts, over the agent id, the expiry and a
//! digest of the agent's current SIP password. So a token:
//! - cannot be made or altered without the key (and dies with the
//!   process: a restart signs every agent out);
//! - ends at its expiry;
//! - ends when the dialplan no longer has the agent, or gives them another
//!   password (checked again at every use, against the plan in force).
//!
//! Nothing is stored per session; "sign out" is the page forgetting it.

use std::fmt;

use ivr::jiff::Timestamp;
use sha2::{Digest, Sha256};
use sip::digest::{constant_time_eq, hex, hmac_sha256, unhex};

/// How long a session lasts: a working day.
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// What the MAC covers first (a version, so a future format cannot be
/// confused with this one).
const CONTEXT: &[u8] = b"frontdesk agent session v1";

/// A session token that does not open the agent's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not the token's shape, or a forged or altered one.
    #[error("invalid session")]
    Invalid,
    /// Past its expiry.
    #[error("session expired")]
    Expired,
    /// The dialplan no longer has the agent, or changed their password.
    #[error("the agent's credentials changed")]
    Revoked,
}

/// The per-process signing key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; 32],
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

impl SessionKey {
    /// A fresh key from the OS-seeded CSPRNG.
    pub fn random() -> Self {
        SessionKey {
            key: rand::random(),
        }
    }

    #[cfg(test)]
    fn fixed(key: [u8; 32]) -> Self {
        SessionKey { key }
    }

    fn mac(&self, agent: &str, expires: i64, password: &str) -> [u8; 32] {
        let password_digest = Sha256::digest(password.as_bytes());
        let mut message = Vec::with_capacity(CONTEXT.len() + agent.len() + 64);
        message.extend_from_slice(CONTEXT);
        message.push(0);
        message.extend_from_slice(agent.as_bytes());
        message.push(0);
        message.extend_from_slice(expires.to_string().as_bytes());
        message.push(0);
        message.extend_from_slice(&password_digest);
        hmac_sha256(&self.key, &[&message])
    }

    /// A token for `agent`, whose password is now `password`, valid until
    /// `expires`.
    pub fn issue(&self, agent: &str, password: &str, expires: Timestamp) -> String {
        let expires = expires.as_second();
        let mac = self.mac(agent, expires, password);
        format!("{}.{expires}.{}", hex(agent.as_bytes()), hex(&mac))
    }

    /// The agent `token` was issued to, if it is genuine, not expired at
    /// `now`, and `password_of` (the plan in force) still gives that agent
    /// the password it was issued under.
    pub fn verify(
        &self,
        token: &str,
        now: Timestamp,
        password_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<String, SessionError> {
        let mut parts = token.split('.');
        let (Some(agent), Some(expires), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Invalid);
        };
        let agent = unhex(agent)
            .filter(|bytes| !bytes.is_empty())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(SessionError::Invalid)?;
        let expires: i64 = expires
            .parse()
            .ok()
            .filter(|_| expires.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(SessionError::Invalid)?;
        let mac = unhex(mac)
            .filter(|mac| mac.len() == 32)
            .ok_or(SessionError::Invalid)?;
        // Until the password is known, check the MAC against the one an
        // unknown agent would have: the same work either way.
        let password = password_of(&agent);
        let expected = self.mac(&agent, expires, password.as_deref().unwrap_or(""));
        if !constant_time_eq(&expected, &mac) {
            return Err(if password.is_none() {
                SessionError::Revoked
            } else {
                // A genuine token under an old password also lands here:
                // it cannot be told apart from a forgery, by design.
                SessionError::Invalid
            });
        }
        if password.is_none() {
            return Err(SessionError::Revoked);
        }
        if now.as_second() >= expires {
            return Err(SessionError::Expired);
        }
        Ok(agent)
    }
}

/// Whether `presented` is `actual`, in time independent of where they
/// differ and of their lengths (both are hashed first).
pub fn password_matches(presented: &str, actual: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let actual = Sha256::digest(actual.as_bytes());
    constant_time_eq(&presented, &actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn a_token_opens_until_it_expires() {
        let key = SessionKey::fixed([7; 32]);
        let token = key.issue("1003", "demo-1003", at(2_000));
        let password = |id: &str| (id == "1003").then(|| "demo-1003".to_string());
        assert_eq!(key.verify(&token, at(1_000), password).unwrap(), "1003");
        assert_eq!(
            key.verify(&token, at(2_000), password),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn altered_forged_or_foreign_tokens_are_refused() {
        let key = SessionKey::fixed([7; 32]);
        let password = |id: &str| Some(format!("demo-{id}"));
        let token = key.issue("1003", "demo-1003", at(2_000));
        let (agent, rest) = token.split_once('.').unwrap();
        let (expires, mac) = rest.split_once('.').unwrap();
        // Another agent, a later expiry, a changed MAC.
        let other = format!("{}.{expires}.{mac}", hex(b"1001"));
        let later = format!("{agent}.9999999999.{mac}");
        let mut flipped = mac.to_string();
        flipped.replace_range(0..1, if mac.starts_with('0') { "1" } else { "0" });
        let flipped = format!("{agent}.{expires}.{flipped}");
        for bad in [
            other.as_str(),
            later.as_str(),
            flipped.as_str(),
            "",
            "1003",
            "x.y.z",
            &format!("{token}.extra"),
            &format!("{agent}.+2000.{mac}"),
        ] {
            assert_eq!(
                key.verify(bad, at(1_000), password),
                Err(SessionError::Invalid),
                "{bad:?}"
            );
        }
        let another_process = SessionKey::fixed([8; 32]);
        assert_eq!(
            another_process.verify(&token, at(1_000), password),
            Err(SessionError::Invalid)
        );
    }

    #[test]
    fn a_new_password_or_a_removed_agent_ends_the_session() {
        let key = SessionKey::fixed([7; 32]);
        let token = key.issue("1003", "demo-1003", at(2_000));
        assert_eq!(
            key.verify(&token, at(1_000), |_| Some("changed".to_string())),
            Err(SessionError::Invalid)
        );
        assert_eq!(
            key.verify(&token, at(1_000), |_| None),
            Err(SessionError::Revoked)
        );
    }

    #[test]
    fn any_agent_id_round_trips() {
        let key = SessionKey::fixed([1; 32]);
        for id in ["1003", "front.desk", "ünï", "a b"] {
            let token = key.issue(id, "pw", at(10));
            assert!(token.bytes().all(|b| b.is_ascii_graphic()));
            assert_eq!(
                key.verify(&token, at(5), |_| Some("pw".to_string()))
                    .unwrap(),
                id
            );
        }
    }

    #[test]
    fn passwords_compare_exactly() {
        assert!(password_matches("demo-1003", "demo-1003"));
        for wrong in ["", "demo-100", "demo-10033", "Demo-1003", "demo-1003 "] {
            assert!(!password_matches(wrong, "demo-1003"), "{wrong:?}");
        }
    }
}
