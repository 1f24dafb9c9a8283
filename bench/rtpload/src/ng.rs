//! The few commands of rtpengine's NG control protocol (bencode over UDP)
//! that a bridged call needs: offer, answer, delete. The same requests as
//! the lab's `../shared/peers/rtpengine/ng.py`.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

pub struct NgClient {
    socket: UdpSocket,
    server: SocketAddr,
    cookie: std::cell::Cell<u64>,
    tag: String,
}

fn string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(format!("{}:", text.len()).as_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A bencoded dictionary of strings and lists of strings, keys sorted.
fn dictionary(entries: &mut [(&str, Value<'_>)]) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = b"d".to_vec();
    for (key, value) in entries.iter() {
        string(&mut out, key);
        match value {
            Value::Text(text) => string(&mut out, text),
            Value::List(items) => {
                out.push(b'l');
                for item in items.iter() {
                    string(&mut out, item);
                }
                out.push(b'e');
            }
        }
    }
    out.push(b'e');
    out
}

enum Value<'a> {
    Text(&'a str),
    List(&'a [&'a str]),
}

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=rtpload\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The value of `key` in a flat bencoded dictionary of the answer, when it
/// is a string (enough for "result" and "sdp").
fn lookup(answer: &[u8], key: &str) -> Option<String> {
    let needle = format!("{}:{}", key.len(), key);
    let at = answer
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?
        + needle.len();
    let rest = &answer[at..];
    let colon = rest.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let value = rest.get(colon + 1..colon + 1 + len)?;
    Some(String::from_utf8_lossy(value).into_owned())
}

fn media_port(sdp: &str) -> Option<u16> {
    sdp.lines()
        .find_map(|line| line.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
}

impl NgClient {
    pub fn new(server: SocketAddr) -> std::io::Result<NgClient> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(NgClient {
            socket,
            server,
            cookie: std::cell::Cell::new(0),
            tag: format!("{}", std::process::id()),
        })
    }

    fn request(&self, body: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let cookie = self.cookie.get() + 1;
        self.cookie.set(cookie);
        let cookie = format!("{}_{cookie}", self.tag);
        let mut datagram = format!("{cookie} ").into_bytes();
        datagram.extend_from_slice(&body);
        let mut buffer = vec![0u8; 65_536];
        for _ in 0..3 {
            self.socket.send_to(&datagram, self.server)?;
            loop {
                match self.socket.recv_from(&mut buffer) {
                    Ok((len, _)) => {
                        let answer = &buffer[..len];
                        if answer.starts_with(cookie.as_bytes())
                            && answer.get(cookie.len()) == Some(&b' ')
                        {
                            return Ok(answer[cookie.len() + 1..].to_vec());
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        Err(std::io::Error::other("no answer from rtpengine"))
    }

    fn call_id(&self, call: usize) -> String {
        format!("rtpload-{}-{call}", self.tag)
    }

    /// Offer from the caller socket, answer from the agent socket; returns
    /// (the port the caller sends to, the port the agent sends to).
    pub fn bridge(&self, call: usize, caller: u16, agent: u16) -> std::io::Result<(u16, u16)> {
        let call_id = self.call_id(call);
        let from = format!("A{call}");
        let to = format!("B{call}");
        let offer_sdp = sdp(caller);
        let answer_sdp = sdp(agent);
        let offer = self.request(dictionary(&mut [
            ("command", Value::Text("offer")),
            ("call-id", Value::Text(&call_id)),
            ("from-tag", Value::Text(&from)),
            ("sdp", Value::Text(&offer_sdp)),
            ("replace", Value::List(&["origin"])),
            ("ICE", Value::Text("remove")),
        ]))?;
        let fail = |what: &str, answer: &[u8]| {
            std::io::Error::other(format!("{what}: {}", String::from_utf8_lossy(answer)))
        };
        if lookup(&offer, "result").as_deref() != Some("ok") {
            return Err(fail("offer refused", &offer));
        }
        let to_agent_side = lookup(&offer, "sdp")
            .and_then(|sdp| media_port(&sdp))
            .ok_or_else(|| fail("offer without a port", &offer))?;
        let answer = self.request(dictionary(&mut [
            ("command", Value::Text("answer")),
            ("call-id", Value::Text(&call_id)),
            ("from-tag", Value::Text(&from)),
            ("to-tag", Value::Text(&to)),
            ("sdp", Value::Text(&answer_sdp)),
            ("replace", Value::List(&["origin"])),
            ("ICE", Value::Text("remove")),
        ]))?;
        if lookup(&answer, "result").as_deref() != Some("ok") {
            return Err(fail("answer refused", &answer));
        }
        let to_caller_side = lookup(&answer, "sdp")
            .and_then(|sdp| media_port(&sdp))
            .ok_or_else(|| fail("answer without a port", &answer))?;
        Ok((to_caller_side, to_agent_side))
    }

    pub fn delete(&self, call: usize) -> std::io::Result<()> {
        let call_id = self.call_id(call);
        self.request(dictionary(&mut [
            ("command", Value::Text("delete")),
            ("call-id", Value::Text(&call_id)),
        ]))
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_sorted_and_reads_strings() {
        let body = dictionary(&mut [("sdp", Value::Text("x")), ("command", Value::Text("ping"))]);
        assert_eq!(body, b"d7:command4:ping3:sdp1:xe");
        assert_eq!(lookup(b"d6:result2:ok3:sdp3:abce", "sdp").as_deref(), Some("abc"));
        assert_eq!(media_port("v=0\r\nm=audio 30000 RTP/AVP 0\r\n"), Some(30000));
    }
}
