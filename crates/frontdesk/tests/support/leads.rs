//! Posting leads the way a clinic's website or a form builder does:
//! `X-Frontdesk-Source` and `X-Frontdesk-Signature: t=…,v1=HMAC-SHA256`
//! (DESIGN.md, "Leads"), or the admin token; optional `Idempotency-Key`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sip::digest::{hex, hmac_sha256};

use super::Daemon;
use super::http::Response;

/// The demo clinic's website secret (`[sources.website]`).
pub const WEBSITE_SECRET: &str = "demo-website-secret";

/// Unix seconds now.
pub fn now_s() -> i64 {
    ivr::jiff::Timestamp::now().as_second()
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mac = hmac_sha256(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]);
    format!("t={t},v1={}", hex(&mac))
}

/// How a post proves who sent it.
#[derive(Debug, Clone)]
pub enum Auth<'a> {
    /// Nothing.
    None,
    /// `X-Frontdesk-Source: source` and a signature with `secret` at `t`.
    Signed {
        source: &'a str,
        secret: &'a str,
        t: i64,
    },
    /// `Authorization: Bearer token`.
    Token(&'a str),
}

impl Auth<'_> {
    /// The website, signing now.
    pub fn website() -> Auth<'static> {
        Auth::Signed {
            source: "website",
            secret: WEBSITE_SECRET,
            t: now_s(),
        }
    }
}

/// The headers of a post of `body` with `auth` and `idempotency_key`.
pub fn headers(
    auth: &Auth<'_>,
    body: &[u8],
    idempotency_key: Option<&str>,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    match auth {
        Auth::None => {}
        Auth::Signed { source, secret, t } => {
            headers.push(("X-Frontdesk-Source".into(), source.to_string()));
            headers.push(("X-Frontdesk-Signature".into(), signature(secret, *t, body)));
        }
        Auth::Token(token) => headers.push(("Authorization".into(), format!("Bearer {token}"))),
    }
    if let Some(key) = idempotency_key {
        headers.push(("Idempotency-Key".into(), key.to_string()));
    }
    headers
}

/// `POST /api/leads` with exactly `headers` and `body`.
pub fn post_raw(
    addr: SocketAddr,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "POST /api/leads HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The daemon may refuse a body over its cap before reading it: what it
    // answered is read even if writing the rest fails.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset && !raw.is_empty() => {
                break;
            }
            Err(error) => return Err(error),
        }
    }
    super::http::parse_response(&raw)
}

/// `POST /api/leads` of `body` with `auth` (and an `Idempotency-Key`).
pub fn post(
    daemon: &Daemon,
    body: &str,
    auth: &Auth<'_>,
    idempotency_key: Option<&str>,
) -> Response {
    let headers = headers(auth, body.as_bytes(), idempotency_key);
    post_raw(daemon.http(), &headers, body.as_bytes())
        .unwrap_or_else(|error| panic!("POST /api/leads: {error}"))
}

/// A lead body: DESIGN.md's fields with `message` and `postal_code`.
pub fn body(phone: &str, message: &str, postal_code: &str) -> String {
    serde_json::json!({
        "name": "Ana Diaz",
        "phone": phone,
        "email": null,
        "message": message,
        "postal_code": postal_code,
        "campaign": "fall-ortho",
        "consent": {"call": true},
    })
    .to_string()
}
