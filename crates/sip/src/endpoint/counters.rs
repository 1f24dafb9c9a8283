//! SIP messages in and out, by method and status code: counted in plain
//! arrays by the endpoint's core (no registry lookup, no hashing per
//! message), published by the driver once a second.

use crate::message::{Message, ParseError};

/// Method labels; extension methods are `other`, so that a peer cannot
/// grow the label set.
const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
    "other",
];

/// Status codes are three digits; 0 stands for a response whose status
/// line could not be read back.
const CODES: usize = 1000;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received.
    In,
    /// Sent.
    Out,
}

impl Direction {
    /// The label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }
}

/// Messages counted so far.
#[derive(Debug, Clone)]
pub struct Counters {
    requests: [[u64; METHODS.len()]; 2],
    responses: Box<[[u64; CODES]; 2]>,
    unparseable: u64,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            requests: [[0; METHODS.len()]; 2],
            responses: Box::new([[0; CODES]; 2]),
            unparseable: 0,
        }
    }
}

impl Counters {
    /// Counts what the transport handed in.
    pub(crate) fn inbound(&mut self, message: &Result<Message, ParseError>) {
        match message {
            Ok(Message::Request(request)) => {
                self.requests[0][method_index(request.method.as_str().as_bytes())] += 1;
            }
            Ok(Message::Response(response)) => {
                self.response(Direction::In, response.status.as_u16())
            }
            Err(_) => self.unparseable += 1,
        }
    }

    /// Counts encoded bytes about to be sent (a request or a response).
    pub(crate) fn outbound(&mut self, bytes: &[u8]) {
        if let Some(rest) = bytes.strip_prefix(b"SIP/2.0 ") {
            let code = rest
                .get(..3)
                .filter(|digits| digits.iter().all(u8::is_ascii_digit))
                .map_or(0, |d| {
                    d.iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
                });
            self.response(Direction::Out, code);
        } else {
            let method = bytes.split(|b| *b == b' ').next().unwrap_or_default();
            self.requests[1][method_index(method)] += 1;
        }
    }

    fn response(&mut self, direction: Direction, code: u16) {
        let code = usize::from(code);
        if code < CODES {
            self.responses[direction.index()][code] += 1;
        }
    }

    /// Requests counted, by direction and method label (those seen).
    pub fn requests(&self) -> impl Iterator<Item = (Direction, &'static str, u64)> + '_ {
        [Direction::In, Direction::Out]
            .into_iter()
            .flat_map(move |direction| {
                METHODS
                    .iter()
                    .zip(self.requests[direction.index()])
                    .filter(|(_, count)| *count > 0)
                    .map(move |(method, count)| (direction, *method, count))
            })
    }

    /// Responses counted, by direction and status code (those seen).
    pub fn responses(&self) -> impl Iterator<Item = (Direction, u16, u64)> + '_ {
        [Direction::In, Direction::Out]
            .into_iter()
            .flat_map(move |direction| {
                self.responses[direction.index()]
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(move |(code, count)| {
                        // `code` < CODES = 1000: it fits.
                        (direction, u16::try_from(code).unwrap_or(0), *count)
                    })
            })
    }

    /// How many requests with `method` went `direction`.
    pub fn request_count(&self, direction: Direction, method: &str) -> u64 {
        self.requests[direction.index()][method_index(method.as_bytes())]
    }

    /// How many responses with `code` went `direction`.
    pub fn response_count(&self, direction: Direction, code: u16) -> u64 {
        self.responses[direction.index()]
            .get(usize::from(code))
            .copied()
            .unwrap_or(0)
    }

    /// Messages that could not be parsed.
    pub fn unparseable(&self) -> u64 {
        self.unparseable
    }
}

fn method_index(method: &[u8]) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|known| known.as_bytes() == method)
        .unwrap_or(METHODS.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_bytes_are_counted_by_method_or_code_and_extensions_are_other() {
        let mut counters = Counters::default();
        counters.outbound(b"SIP/2.0 200 OK\r\n\r\n");
        counters.outbound(b"SIP/2.0 2x0 Odd\r\n\r\n");
        counters.outbound(b"INVITE sip:a@b SIP/2.0\r\n\r\n");
        counters.outbound(b"FROBNICATE sip:a@b SIP/2.0\r\n\r\n");
        assert_eq!(counters.response_count(Direction::Out, 200), 1);
        assert_eq!(counters.response_count(Direction::Out, 0), 1);
        assert_eq!(counters.request_count(Direction::Out, "INVITE"), 1);
        assert_eq!(counters.request_count(Direction::Out, "other"), 1);
        assert_eq!(counters.request_count(Direction::In, "INVITE"), 0);
        let requests: Vec<_> = counters.requests().collect();
        assert_eq!(
            requests,
            [(Direction::Out, "INVITE", 1), (Direction::Out, "other", 1)]
        );
        let responses: Vec<_> = counters.responses().collect();
        assert_eq!(
            responses,
            [(Direction::Out, 0, 1), (Direction::Out, 200, 1)]
        );
    }
}
