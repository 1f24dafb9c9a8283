//! The little of the admin HTTP API the simulated agents use: their state
//! (`GET /api/agents`, `PUT /api/agents/{id}/state`), with the admin
//! token. One request per connection, HTTP/1.1, bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take.
const REQUEST_BOUND: Duration = Duration::from_secs(5);
/// The largest answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// The admin API of the daemon the demo drives.
#[derive(Debug, Clone)]
pub struct AdminApi {
    http: SocketAddr,
    token: String,
}

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Connecting, writing or reading failed.
    #[error("admin API: {0}")]
    Io(#[from] std::io::Error),
    /// No answer within the bound.
    #[error("admin API: no answer within {0:?}")]
    Timeout(Duration),
    /// Not an HTTP answer we can read.
    #[error("admin API: unreadable answer")]
    Malformed,
    /// An answer other than 200.
    #[error("admin API answered {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The body (`{"error": ...}`).
        body: String,
    },
}

impl AdminApi {
    /// The API at `http`, with `token`.
    pub fn new(http: SocketAddr, token: &str) -> AdminApi {
        AdminApi {
            http,
            token: token.to_string(),
        }
    }

    /// `PUT /api/agents/{id}/state` with `{"state": state}`.
    pub async fn set_state(&self, agent: &str, state: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "state": state }).to_string();
        let path = format!("/api/agents/{agent}/state");
        self.request("PUT", &path, Some(&body)).await.map(|_| ())
    }

    /// The agent's state as `GET /api/agents` shows it.
    pub async fn state_of(&self, agent: &str) -> Result<Option<String>, ApiError> {
        let body = self.request("GET", "/api/agents", None).await?;
        let list: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| ApiError::Malformed)?;
        Ok(list["agents"].as_array().and_then(|agents| {
            agents
                .iter()
                .find(|entry| entry["id"] == agent)
                .and_then(|entry| entry["state"].as_str().map(str::to_string))
        }))
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, ApiError> {
        tokio::time::timeout(REQUEST_BOUND, self.exchange(method, path, body))
            .await
            .map_err(|_| ApiError::Timeout(REQUEST_BOUND))?
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, ApiError> {
        let mut stream = TcpStream::connect(self.http).await?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n",
            self.http, self.token
        );
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.take(MAX_ANSWER).read_to_end(&mut raw).await?;
        let (status, body) = parse_answer(&raw).ok_or(ApiError::Malformed)?;
        if status != 200 {
            return Err(ApiError::Status { status, body });
        }
        Ok(body)
    }
}

/// Reads an HTTP/1.1 answer: status and body (chunked or not).
fn parse_answer(raw: &[u8]) -> Option<(u16, String)> {
    let end = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let mut body = &raw[end + 4..];
    if !chunked {
        return Some((status, String::from_utf8_lossy(body).into_owned()));
    }
    let mut decoded = Vec::new();
    loop {
        let line_end = body.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some((status, String::from_utf8_lossy(&decoded).into_owned()));
        }
        decoded.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_plain_or_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_answer(plain), Some((200, "{}".to_string())));
        let chunked =
            b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_answer(chunked), Some((409, "abcde".to_string())));
        assert_eq!(parse_answer(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
