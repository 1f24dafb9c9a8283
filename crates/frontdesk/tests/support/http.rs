//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream`: one request
//! per connection (`Connection: close`), enough for the admin API; over
//! TLS too ([`https_request`]), trusting a given certificate.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one request may take.
const REQUEST_BOUND: Duration = Duration::from_secs(10);

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from chunked transfer coding if it was.
    pub body: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }
}

/// `GET path`, with `Authorization: Bearer token` if given; panics on an
/// I/O error.
pub fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    try_get(addr, path, token).unwrap_or_else(|error| panic!("GET {path} on {addr}: {error}"))
}

/// `GET path`, with `Authorization: Bearer token` if given.
pub fn try_get(addr: SocketAddr, path: &str, token: Option<&str>) -> io::Result<Response> {
    request(addr, "GET", path, token, None)
}

/// Any request, with a JSON body if given.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> io::Result<Response> {
    let mut stream = connect(addr)?;
    stream.write_all(request_text(addr, method, path, token, body).as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

/// Any request over HTTPS, trusting only the PEM certificate(s) in `ca`
/// (a development certificate is its own authority), with the server
/// named by its IP address.
pub fn https_request(
    addr: SocketAddr,
    ca: &std::path::Path,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> io::Result<Response> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| invalid(&e.to_string()))? {
        let cert = cert.map_err(|e| invalid(&e.to_string()))?;
        roots.add(cert).map_err(|e| invalid(&e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(&e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::IpAddress(addr.ip().into());
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| invalid(&e.to_string()))?;
    let mut stream = rustls::StreamOwned::new(connection, connect(addr)?);
    stream.write_all(request_text(addr, method, path, token, body).as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A server that closes without close_notify: what came is whole
        // if it parses.
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(error) => return Err(error),
    }
    parse(&raw)
}

fn request_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    request
}

/// Any request from the local address `from` (another loopback address,
/// e.g. an untrusted 127.0.0.2), with a JSON body if given.
pub fn request_from(
    from: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> io::Result<Response> {
    let mut stream = connect_from(from, addr)?;
    stream.write_all(request_text(addr, method, path, token, body).as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

/// A TCP connection to `addr` from the local address `from`, with the
/// harness's read and write bounds.
pub fn connect_from(from: std::net::IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect_timeout(&addr.into(), REQUEST_BOUND)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(REQUEST_BOUND))?;
    stream.set_write_timeout(Some(REQUEST_BOUND))?;
    Ok(stream)
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, REQUEST_BOUND)?;
    stream.set_read_timeout(Some(REQUEST_BOUND))?;
    stream.set_write_timeout(Some(REQUEST_BOUND))?;
    Ok(stream)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads a whole response (headers and body) from its bytes.
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    parse(raw)
}

fn parse(raw: &[u8]) -> io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| invalid("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    } else if let Some((_, length)) = headers.iter().find(|(n, _)| n == "content-length") {
        let length: usize = length.parse().map_err(|_| invalid("bad content-length"))?;
        if body.len() < length {
            return Err(invalid("body shorter than content-length"));
        }
        body.truncate(length);
    }
    let body = String::from_utf8(body).map_err(|_| invalid("body not UTF-8"))?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Decodes chunked transfer coding (RFC 9112 §7.1); trailers are ignored.
fn dechunk(mut input: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = input
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("chunk size line"))?;
        let size_text =
            std::str::from_utf8(&input[..line_end]).map_err(|_| invalid("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("chunk size"))?;
        input = &input[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if input.len() < size + 2 {
            return Err(invalid("truncated chunk"));
        }
        body.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
}
