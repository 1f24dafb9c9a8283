//! SIP messages: framing, parsing, typed headers, printing and validation.
//!
//! Ours, because no crate passes RFC 4475 (DESIGN.md says why). The model:
//!
//! 1. [`parse_datagram`] or a [`StreamFramer`] turns bytes into a [`Frame`]:
//!    a keep-alive or a [`Message`] whose start line is parsed and whose
//!    headers are split into [`Header`]s (name recognised, value kept as the
//!    raw bytes it was, zero-copy over [`bytes::Bytes`]).
//! 2. Typed views of the headers we act on are parsed on demand from those
//!    bytes ([`Headers::vias`], [`Headers::from`], [`Headers::cseq`] ...).
//! 3. [`validate::request`] decides whether a request is fit to act on and,
//!    if not, which response it deserves (400 with a precise reason, 505,
//!    416, 501, 420); it hands back a [`validate::ValidRequest`] holding the
//!    decoded core headers, so nothing above has to parse them again.
//! 4. [`Message::encode`] prints a message; what it prints parses back to
//!    the same message.

mod method;
mod name;
mod parse;
mod print;
mod scan;
pub mod typed;
pub mod uri;
pub mod validate;

use bytes::Bytes;
use bytestring::ByteString;

pub use method::{Method, StatusCode};
pub use name::HeaderName;
pub use parse::{
    Frame, KeepAlive, Limits, ParseError, ParseErrorKind, StreamFramer, parse_datagram,
};
pub use scan::Syntax;
pub use typed::{
    AuthParams, CSeq, Contact, ContentType, DisplayName, HeaderError, NameAddr, Transport, Via,
};
pub use uri::{Host, OtherUri, Param, Params, SipUri, Uri};

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// A request: method, Request-URI, headers, body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// The headers, in order.
    pub headers: Headers,
    /// The body (exactly Content-Length bytes).
    pub body: Bytes,
}

/// A response: status, reason phrase, headers, body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase (may be empty, may be any UTF-8).
    pub reason: ByteString,
    /// The headers, in order.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

/// One header line: its name and its value as raw bytes (trimmed; folded
/// continuation lines kept inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value.
    pub value: Bytes,
}

/// The headers of a message, in the order they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    list: Vec<Header>,
}

impl Message {
    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(request) => &request.headers,
            Message::Response(response) => &response.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(request) => &request.body,
            Message::Response(response) => &response.body,
        }
    }
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            headers: Headers::default(),
            body: Bytes::new(),
        }
    }
}

impl Response {
    /// A response with no headers and no body, with the canonical reason.
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            reason: ByteString::from_static(status.canonical_reason()),
            headers: Headers::default(),
            body: Bytes::new(),
        }
    }

    /// A response to a request whose headers are `request`: the Via
    /// headers, From, To, Call-ID and CSeq are copied (RFC 3261 §8.2.6.2),
    /// and `to_tag` is added to To when To has none and the status is not 100.
    /// A 100 also copies Timestamp (§8.2.6.1).
    pub fn to_request(request: &Headers, status: StatusCode, to_tag: Option<&str>) -> Self {
        let mut response = Response::new(status);
        for header in request.iter() {
            match header.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    response
                        .headers
                        .push_raw(header.name.clone(), header.value.clone());
                }
                HeaderName::To => {
                    let has_tag = request.to().is_ok_and(|to| to.tag().is_some());
                    let value = match to_tag {
                        Some(tag) if !has_tag && status != StatusCode::TRYING => {
                            let mut value = header.value.to_vec();
                            value.extend_from_slice(b";tag=");
                            value.extend_from_slice(tag.as_bytes());
                            Bytes::from(value)
                        }
                        _ => header.value.clone(),
                    };
                    response.headers.push_raw(HeaderName::To, value);
                }
                HeaderName::Timestamp if status == StatusCode::TRYING => {
                    response
                        .headers
                        .push_raw(HeaderName::Timestamp, header.value.clone());
                }
                _ => {}
            }
        }
        response
    }

    /// Replaces the reason phrase.
    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = ByteString::from(reason);
        self
    }
}

impl Headers {
    /// An empty list with room for `capacity` headers.
    pub fn with_capacity(capacity: usize) -> Self {
        Headers {
            list: Vec::with_capacity(capacity),
        }
    }

    /// The headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.list.iter()
    }

    /// How many header lines.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every header called `name`.
    pub fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Header> + 'a {
        self.list.iter().filter(move |h| &h.name == name)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&Bytes> {
        self.list.iter().find(|h| &h.name == name).map(|h| &h.value)
    }

    /// `true` when `name` is present.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.list.iter().any(|h| &h.name == name)
    }

    /// Appends a header with a raw value.
    pub fn push_raw(&mut self, name: HeaderName, value: Bytes) {
        self.list.push(Header { name, value });
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl std::fmt::Display) {
        self.push_raw(name, Bytes::from(value.to_string()));
    }

    /// Puts a header first (a Via we add to a request we send).
    pub fn push_front(&mut self, name: HeaderName, value: impl std::fmt::Display) {
        self.list.insert(
            0,
            Header {
                name,
                value: Bytes::from(value.to_string()),
            },
        );
    }

    /// Replaces every `name` header by one with `value` (at the place of the
    /// first, or at the end).
    pub fn set(&mut self, name: HeaderName, value: impl std::fmt::Display) {
        let value = Bytes::from(value.to_string());
        match self.list.iter().position(|h| h.name == name) {
            Some(first) => {
                self.list[first].value = value;
                let mut index = 0;
                self.list.retain(|h| {
                    let keep = index <= first || h.name != name;
                    index += 1;
                    keep
                });
            }
            None => self.list.push(Header { name, value }),
        }
    }

    /// Removes every `name` header.
    pub fn remove(&mut self, name: &HeaderName) {
        self.list.retain(|h| &h.name != name);
    }

    /// Removes the first `name` header and returns it.
    pub fn remove_first(&mut self, name: &HeaderName) -> Option<Header> {
        let index = self.list.iter().position(|h| &h.name == name)?;
        Some(self.list.remove(index))
    }

    fn text(header: &Header, label: &'static str) -> Result<ByteString, HeaderError> {
        ByteString::try_from(header.value.clone()).map_err(|_| HeaderError {
            header: label,
            reason: "value is not UTF-8",
        })
    }

    /// The value of a header that must appear at most once.
    fn single(
        &self,
        name: &HeaderName,
        label: &'static str,
    ) -> Result<Option<ByteString>, HeaderError> {
        let mut found = self.all(name);
        let Some(first) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(HeaderError {
                header: label,
                reason: "header appears more than once",
            });
        }
        Headers::text(first, label).map(Some)
    }

    fn required(&self, name: &HeaderName, label: &'static str) -> Result<ByteString, HeaderError> {
        self.single(name, label)?.ok_or(HeaderError {
            header: label,
            reason: HeaderError::MISSING,
        })
    }

    /// Every Via, top first.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut vias = Vec::with_capacity(2);
        for header in self.all(&HeaderName::Via) {
            let text = Headers::text(header, "Via")?;
            vias.extend(Via::parse_list(&text).map_err(|e| HeaderError::new("Via", e))?);
        }
        Ok(vias)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let header = self.all(&HeaderName::Via).next().ok_or(HeaderError {
            header: "Via",
            reason: HeaderError::MISSING,
        })?;
        let text = Headers::text(header, "Via")?;
        let mut vias = Via::parse_list(&text).map_err(|e| HeaderError::new("Via", e))?;
        Ok(vias.swap_remove(0))
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        let text = self.required(&HeaderName::From, "From")?;
        NameAddr::parse(&text).map_err(|e| HeaderError::new("From", e))
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        let text = self.required(&HeaderName::To, "To")?;
        NameAddr::parse(&text).map_err(|e| HeaderError::new("To", e))
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<ByteString, HeaderError> {
        let text = self.required(&HeaderName::CallId, "Call-ID")?;
        typed::parse_call_id(&text).map_err(|e| HeaderError::new("Call-ID", e))
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        let text = self.required(&HeaderName::CSeq, "CSeq")?;
        CSeq::parse(&text).map_err(|e| HeaderError::new("CSeq", e))
    }

    /// Max-Forwards, when present.
    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        self.single(&HeaderName::MaxForwards, "Max-Forwards")?
            .map(|text| typed::parse_max_forwards(&text))
            .transpose()
            .map_err(|e| HeaderError::new("Max-Forwards", e))
    }

    /// Expires, when present (overlarge values saturate).
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.single(&HeaderName::Expires, "Expires")?
            .map(|text| typed::parse_delta_seconds(&text))
            .transpose()
            .map_err(|e| HeaderError::new("Expires", e))
    }

    /// Every Contact value.
    pub fn contacts(&self) -> Result<Vec<Contact>, HeaderError> {
        let mut contacts = Vec::with_capacity(1);
        for header in self.all(&HeaderName::Contact) {
            let text = Headers::text(header, "Contact")?;
            contacts
                .extend(Contact::parse_list(&text).map_err(|e| HeaderError::new("Contact", e))?);
        }
        Ok(contacts)
    }

    fn addresses(
        &self,
        name: &HeaderName,
        label: &'static str,
    ) -> Result<Vec<NameAddr>, HeaderError> {
        let mut list = Vec::new();
        for header in self.all(name) {
            let text = Headers::text(header, label)?;
            list.extend(NameAddr::parse_list(&text).map_err(|e| HeaderError::new(label, e))?);
        }
        Ok(list)
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.addresses(&HeaderName::Route, "Route")
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.addresses(&HeaderName::RecordRoute, "Record-Route")
    }

    /// Every Path value (RFC 3327 §4), in order.
    pub fn paths(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.addresses(&HeaderName::Path, "Path")
    }

    fn tokens(
        &self,
        name: &HeaderName,
        label: &'static str,
    ) -> Result<Vec<ByteString>, HeaderError> {
        let mut list = Vec::new();
        for header in self.all(name) {
            let text = Headers::text(header, label)?;
            list.extend(typed::parse_token_list(&text).map_err(|e| HeaderError::new(label, e))?);
        }
        Ok(list)
    }

    /// Option tags in Require.
    pub fn require(&self) -> Result<Vec<ByteString>, HeaderError> {
        self.tokens(&HeaderName::Require, "Require")
    }

    /// Option tags in Supported.
    pub fn supported(&self) -> Result<Vec<ByteString>, HeaderError> {
        self.tokens(&HeaderName::Supported, "Supported")
    }

    /// Content-Type, when present.
    pub fn content_type(&self) -> Result<Option<ContentType>, HeaderError> {
        self.single(&HeaderName::ContentType, "Content-Type")?
            .map(|text| ContentType::parse(&text))
            .transpose()
            .map_err(|e| HeaderError::new("Content-Type", e))
    }

    /// Every Authorization header.
    pub fn authorizations(&self) -> Result<Vec<AuthParams>, HeaderError> {
        self.auth(&HeaderName::Authorization, "Authorization")
    }

    /// Every WWW-Authenticate header.
    pub fn www_authenticates(&self) -> Result<Vec<AuthParams>, HeaderError> {
        self.auth(&HeaderName::WwwAuthenticate, "WWW-Authenticate")
    }

    fn auth(&self, name: &HeaderName, label: &'static str) -> Result<Vec<AuthParams>, HeaderError> {
        self.all(name)
            .map(|header| {
                let text = Headers::text(header, label)?;
                AuthParams::parse(&text).map_err(|e| HeaderError::new(label, e))
            })
            .collect()
    }
}
