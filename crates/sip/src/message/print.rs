//! Printing messages (RFC 3261 §7). Headers print with their full names and
//! their values as they are held; Content-Length always matches the body.

use bytes::{BufMut, Bytes, BytesMut};

use super::name::HeaderName;
use super::{Headers, Message, Request, Response};

impl Message {
    /// The message as it goes on the wire.
    pub fn encode(&self) -> Bytes {
        match self {
            Message::Request(request) => request.encode(),
            Message::Response(response) => response.encode(),
        }
    }
}

impl Request {
    /// The request as it goes on the wire.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(estimate(&self.headers, &self.body));
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        // The URI prints from its parts; `write!` into BytesMut cannot fail.
        let _ = std::fmt::Write::write_fmt(&mut Writer(&mut out), format_args!("{}", self.uri));
        out.put_slice(b" SIP/2.0\r\n");
        finish(out, &self.headers, &self.body)
    }
}

impl Response {
    /// The response as it goes on the wire.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(estimate(&self.headers, &self.body));
        out.put_slice(b"SIP/2.0 ");
        let code = self.status.as_u16();
        out.put_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
            b' ',
        ]);
        out.put_slice(self.reason.as_bytes());
        out.put_slice(b"\r\n");
        finish(out, &self.headers, &self.body)
    }
}

fn estimate(headers: &Headers, body: &Bytes) -> usize {
    64 + body.len()
        + headers
            .iter()
            .map(|h| h.name.as_str().len() + h.value.len() + 4)
            .sum::<usize>()
}

fn finish(mut out: BytesMut, headers: &Headers, body: &Bytes) -> Bytes {
    let mut length_written = false;
    for header in headers.iter() {
        if header.name == HeaderName::ContentLength {
            if length_written {
                continue;
            }
            length_written = true;
            put_content_length(&mut out, body.len());
            continue;
        }
        out.put_slice(header.name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(&header.value);
        out.put_slice(b"\r\n");
    }
    if !length_written {
        put_content_length(&mut out, body.len());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out.freeze()
}

fn put_content_length(out: &mut BytesMut, length: usize) {
    out.put_slice(b"Content-Length: ");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut value = length;
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
    out.put_slice(b"\r\n");
}

struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}
