//! The admin token: everything under `/api` but `/api/health` needs
//! `Authorization: Bearer <token>` (DESIGN.md, "Admin HTTP API"): call
//! records carry patients' phone numbers.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{AppState, error_response};

/// Random bytes in a generated token (hex-encoded: 64 characters).
const GENERATED_BYTES: usize = 32;

/// The admin token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken {
    token: String,
    /// What presented tokens are compared against, in constant time.
    digest: [u8; 32],
}

/// An empty `--admin-token` or `FRONTDESK_ADMIN_TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the admin token must not be empty or contain whitespace")]
pub struct InvalidToken;

impl AdminToken {
    /// A token given by the operator.
    pub fn new(token: impl Into<String>) -> Result<Self, InvalidToken> {
        let token = token.into();
        if token.is_empty() || token.chars().any(char::is_whitespace) {
            return Err(InvalidToken);
        }
        let digest = Sha256::digest(token.as_bytes()).into();
        Ok(Self { token, digest })
    }

    /// A fresh random token (256 bits from the OS-seeded CSPRNG).
    pub fn generate() -> Self {
        let bytes: [u8; GENERATED_BYTES] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // Invariant: hex digits are never empty nor whitespace.
        Self::new(token).expect("a hex token is valid")
    }

    /// The token itself, for the one log line that shows a generated token.
    pub fn reveal(&self) -> &str {
        &self.token
    }

    /// Whether `presented` is the token. Both sides are hashed first, so the
    /// comparison takes the same time whatever the length or the first
    /// differing byte of `presented`.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        let difference = self
            .digest
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(…)")
    }
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1;
/// the scheme is case-insensitive).
pub(super) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Middleware: passes the request on only with the right bearer token.
pub async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match bearer(request.headers()) {
        Some(token) if state.admin_token.verify(token) => next.run(request).await,
        _ => (
            [(WWW_AUTHENTICATE, "Bearer")],
            error_response(StatusCode::UNAUTHORIZED, "missing or invalid admin token"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_exact_token_verifies() {
        let token = AdminToken::new("s3cret").unwrap();
        assert!(token.verify(b"s3cret"));
        for wrong in [&b""[..], b"s3cre", b"s3cret2", b"S3cret", b"s3cret "] {
            assert!(!token.verify(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn empty_or_spaced_tokens_are_refused() {
        assert_eq!(AdminToken::new("").unwrap_err(), InvalidToken);
        assert_eq!(AdminToken::new("a b").unwrap_err(), InvalidToken);
    }

    #[test]
    fn generated_tokens_are_long_random_hex_and_never_debug_printed() {
        let a = AdminToken::generate();
        let b = AdminToken::generate();
        assert_eq!(a.reveal().len(), 2 * GENERATED_BYTES);
        assert!(a.reveal().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.reveal(), b.reveal());
        assert!(a.verify(a.reveal().as_bytes()));
        assert!(!format!("{a:?}").contains(a.reveal()));
    }

    #[test]
    fn bearer_reads_the_token_of_the_bearer_scheme_only() {
        let header = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            headers
        };
        assert_eq!(bearer(&header("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&header("bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer(&header("Bearer")), None);
        assert_eq!(bearer(&header("Bearer ")), None);
        assert_eq!(bearer(&header("Bearerabc")), None);
        assert_eq!(bearer(&header("Basic YWJj")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
