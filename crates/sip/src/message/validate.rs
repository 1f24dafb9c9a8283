//! Deciding whether a parsed message is fit to act on (RFC 3261 §8.2 and
//! §16.3, RFC 4475), and which response a refused request deserves.
//!
//! Parse, don't validate: [`request`] consumes a [`Request`] and returns a
//! [`ValidRequest`] that carries the decoded core headers, or the request
//! back with a [`Rejection`]. Responses are never answered: a malformed one
//! is discarded ([`response`]).

use bytestring::ByteString;

use super::method::{Method, StatusCode};
use super::typed::{CSeq, HeaderError, NameAddr, Via};
use super::uri::Uri;
use super::{Request, Response};

/// What this element serves, for the 416 and 420 decisions.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// Request-URI schemes we serve (lower case), e.g. `["sip", "sips", "tel"]`.
    pub schemes: &'a [&'a str],
    /// Option tags we support (RFC 3261 §8.2.2.3).
    pub supported: &'a [&'a str],
}

impl Default for Policy<'static> {
    fn default() -> Self {
        Policy {
            schemes: &["sip", "sips", "tel"],
            supported: &[],
        }
    }
}

/// A request whose core headers decoded, with those headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest {
    /// The request itself.
    pub request: Request,
    /// The topmost Via.
    pub via: Via,
    /// From.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// Call-ID.
    pub call_id: ByteString,
    /// CSeq.
    pub cseq: CSeq,
    /// Max-Forwards, when present.
    pub max_forwards: Option<u8>,
}

/// A response whose core headers decoded, with those headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidResponse {
    /// The response itself.
    pub response: Response,
    /// The topmost Via.
    pub via: Via,
    /// From.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// Call-ID.
    pub call_id: ByteString,
    /// CSeq.
    pub cseq: CSeq,
}

/// Why a request is refused and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status to answer with.
    pub status: StatusCode,
    /// A precise reason phrase.
    pub reason: String,
    /// For 420: the option tags we do not support (the Unsupported header).
    pub unsupported: Vec<ByteString>,
    /// `false` for an ACK, which is never answered (RFC 3261 §17.2.1).
    pub answer: bool,
}

impl Rejection {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Rejection {
            status,
            reason: reason.into(),
            unsupported: Vec::new(),
            answer: true,
        }
    }

    fn bad(error: HeaderError) -> Self {
        Rejection::new(StatusCode::BAD_REQUEST, error.to_string())
    }
}

/// Checks a request in RFC 3261 §8.2 order: syntax of the core headers
/// (400), method (501), CSeq agreement (400), Request-URI scheme (416),
/// Request-URI headers (400), Require (420).
#[allow(clippy::result_large_err)] // the request travels back to be answered
pub fn request(
    request: Request,
    policy: &Policy<'_>,
) -> Result<ValidRequest, (Request, Rejection)> {
    match check(&request, policy) {
        Ok((via, from, to, call_id, cseq, max_forwards)) => Ok(ValidRequest {
            request,
            via,
            from,
            to,
            call_id,
            cseq,
            max_forwards,
        }),
        Err(mut rejection) => {
            rejection.answer = request.method != Method::Ack;
            Err((request, rejection))
        }
    }
}

type Core = (Via, NameAddr, NameAddr, ByteString, CSeq, Option<u8>);

fn check(request: &Request, policy: &Policy<'_>) -> Result<Core, Rejection> {
    let headers = &request.headers;
    let mut vias = headers.vias().map_err(Rejection::bad)?;
    if vias.is_empty() {
        return Err(Rejection::new(StatusCode::BAD_REQUEST, "Missing Via"));
    }
    let via = vias.swap_remove(0);
    let from = headers.from().map_err(Rejection::bad)?;
    let to = headers.to().map_err(Rejection::bad)?;
    let call_id = headers.call_id().map_err(Rejection::bad)?;
    let cseq = headers.cseq().map_err(Rejection::bad)?;
    let max_forwards = headers.max_forwards().map_err(Rejection::bad)?;
    headers.contacts().map_err(Rejection::bad)?;
    headers.content_type().map_err(Rejection::bad)?;
    if request.method.is_extension() {
        return Err(Rejection::new(
            StatusCode::NOT_IMPLEMENTED,
            "Not Implemented",
        ));
    }
    if cseq.method != request.method {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "CSeq method does not match the request method",
        ));
    }
    let scheme = request.uri.scheme();
    if !policy
        .schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_URI_SCHEME,
            "Unsupported URI Scheme",
        ));
    }
    if let Uri::Sip(uri) = &request.uri
        && uri.headers.is_some()
    {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "Request-URI must not carry headers",
        ));
    }
    // Require is ignored in CANCEL and ACK (RFC 3261 §8.2.2.3).
    if !matches!(request.method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<ByteString> = headers
            .require()
            .map_err(Rejection::bad)?
            .into_iter()
            .filter(|tag| !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
            .collect();
        if !unsupported.is_empty() {
            let mut rejection = Rejection::new(StatusCode::BAD_EXTENSION, "Bad Extension");
            rejection.unsupported = unsupported;
            return Err(rejection);
        }
    }
    Ok((via, from, to, call_id, cseq, max_forwards))
}

/// A response that is discarded, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("discarded response: {0}")]
pub struct Discard(pub HeaderError);

/// Checks a response's core headers; a malformed response is discarded,
/// never answered (RFC 4475 §3.1.2.5).
pub fn response(response: Response) -> Result<ValidResponse, Discard> {
    let headers = &response.headers;
    let via = headers.top_via().map_err(Discard)?;
    let from = headers.from().map_err(Discard)?;
    let to = headers.to().map_err(Discard)?;
    let call_id = headers.call_id().map_err(Discard)?;
    let cseq = headers.cseq().map_err(Discard)?;
    Ok(ValidResponse {
        response,
        via,
        from,
        to,
        call_id,
        cseq,
    })
}
