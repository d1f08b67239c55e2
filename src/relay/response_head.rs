//! The upstream's response head of a relayed exchange, as bytes: parsed (httparse), judged
//! (its framing, RFC 9112 §6.3; a transfer coding the gateway does not relay; an unasked
//! upgrade), and written again for the caller, or handed to an HTTP/2 stream field by field
//! (`ResponseHead::forwards`).

use super::head::{field, parse_length, tokens};
use crate::headers;

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (a HEAD request's answer, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes: the caller's connection is closed after it too.
    UntilClose,
}

impl Framing {
    /// Whether a `Content-Length` beside this framing is void (RFC 9112 §6.3): the body is
    /// delimited otherwise, so the field is not passed on. (A HEAD request's answer, a 204 or
    /// a 304 keeps its own: it tells the length the body would have had.)
    pub fn voids_length(self) -> bool {
        matches!(self, Framing::Chunked | Framing::UntilClose)
    }
}

/// An upstream's response head, parsed.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    pub status: u16,
    pub reason: &'b str,
    pub headers: &'h [httparse::Header<'b>],
    pub len: usize,
    pub framing: Framing,
    /// The upstream lets the connection serve another request.
    pub reusable: bool,
}

/// Why an upstream's response head is not one to relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadResponse {
    Malformed,
    /// `101 Switching Protocols` to a request that asked for no upgrade.
    Upgrade,
    /// A `Transfer-Encoding` other than a lone `chunked` (`headers::relayed_coding`).
    Coding,
}

impl std::fmt::Display for BadResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadResponse::Malformed => "malformed response head",
            BadResponse::Upgrade => "101 response to a request that asked for no upgrade",
            BadResponse::Coding => headers::CODING_REFUSED,
        })
    }
}

/// Parses the response head at the start of `buf` (`None`: not whole yet). `head_request`:
/// the request was a HEAD, so the response has no body whatever it says.
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    slots: &'h mut [httparse::Header<'b>],
    head_request: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, BadResponse> {
    let mut resp = httparse::Response::new(slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(BadResponse::Malformed),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(BadResponse::Malformed);
    };
    match status {
        101 => return Err(BadResponse::Upgrade),
        // httparse takes any three digits; a status below 100 is none (`http::StatusCode`).
        100..=999 => {}
        _ => return Err(BadResponse::Malformed),
    }
    let headers: &'h [httparse::Header<'b>] = resp.headers;
    let mut length = None;
    let mut reusable = version == 1;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value).ok_or(BadResponse::Malformed)?;
            if length.replace(n).is_some_and(|m| m != n) {
                return Err(BadResponse::Malformed);
            }
        } else if h.name.eq_ignore_ascii_case("connection")
            && tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close"))
        {
            reusable = false;
        }
    }
    let mut codings = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .map(|h| h.value)
        .peekable();
    let chunked = codings.peek().is_some();
    if chunked && !headers::relayed_coding(codings) {
        return Err(BadResponse::Coding);
    }
    let framing = if head_request || matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(ResponseHead {
        status,
        reason: resp.reason.unwrap_or(""),
        headers,
        len,
        reusable: reusable && framing != Framing::UntilClose,
        framing,
    }))
}

impl ResponseHead<'_, '_> {
    /// Whether the field `name` of this head reaches the caller: not a hop-by-hop one, nor
    /// one its `Connection` names (`headers::never_downstream`, as `headers::strip_response`
    /// has it for header maps), nor a `Content-Length` its framing voids. `as_framed`: the
    /// body goes on as it came (the relay), so its `Transfer-Encoding` stays as it came and
    /// the framing fields stay whatever `Connection` names; else (an HTTP/2 stream's decoded
    /// body) `Transfer-Encoding` is dropped.
    pub fn forwards(&self, name: &str, as_framed: bool) -> bool {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return as_framed;
        }
        let length = name.eq_ignore_ascii_case("content-length");
        let named = || {
            (self.headers.iter())
                .filter(|h| h.name.eq_ignore_ascii_case("connection"))
                .any(|h| tokens(h.value).any(|t| t.eq_ignore_ascii_case(name.as_bytes())))
        };
        !(headers::never_downstream(name)
            || (length && self.framing.voids_length())
            || (!length && named()))
    }
}

/// What the gateway changes in a response it relays.
#[derive(Clone, Copy)]
pub struct ResponseEdits<'a> {
    pub request_id: &'a [u8],
    /// The caller's connection closes after this response.
    pub close: bool,
    /// `Date` to add when the upstream sent none.
    pub date: &'a [u8],
    /// The CORS headers of the answer, replacing an upstream's own (`cors`).
    pub cors: Option<&'a crate::cors::Answer<'a>>,
}

/// Writes the caller's response head: the upstream's status and headers, less the hop-by-hop
/// ones (and those its `Connection` names) and its `x-request-id`; then the gateway's.
pub fn write_response_head(out: &mut Vec<u8>, r: &ResponseHead<'_, '_>, e: &ResponseEdits<'_>) {
    let reason = match r.reason {
        "" => http::StatusCode::from_u16(r.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
        reason => reason,
    };
    status_line(out, r.status, reason);
    let mut dated = false;
    for h in r.headers {
        let name = h.name;
        let dropped =
            !r.forwards(name, true) || (e.cors.is_some() && crate::cors::is_cors_header(name));
        if !dropped {
            dated |= name.eq_ignore_ascii_case("date");
            field(out, name.as_bytes(), h.value);
        }
    }
    if !dated {
        field(out, b"date", e.date);
    }
    field(out, b"x-request-id", e.request_id);
    cors_fields(out, e);
    if e.close || r.framing == Framing::UntilClose {
        field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

/// `HTTP/1.1 <status> <reason>`, the status being three digits (100-999).
/// The CORS fields of an answer (`ResponseEdits::cors`).
pub(super) fn cors_fields(out: &mut Vec<u8>, e: &ResponseEdits<'_>) {
    for (name, value) in e.cors.iter().flat_map(|c| c.fields()) {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

pub(super) fn status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    let digit = |n: u16| b'0' + (n % 10) as u8;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[digit(status / 100), digit(status / 10), digit(status), b' ']);
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The response's `Content-Length`, for the access log.
pub fn length_of(r: &ResponseHead<'_, '_>) -> Option<u64> {
    match r.framing {
        Framing::Length(n) => Some(n),
        Framing::Empty => Some(0),
        _ => None,
    }
}
