//! The request heads of a relayed exchange, as bytes: the caller's parsed (httparse) into what
//! the relay needs and judged plain enough to relay, and the upstream's written from it with
//! the proxy's edits (the response heads are `response_head`'s). The header rules are
//! `headers`', which the hyper path applies to header maps; here they are applied to the wire
//! form.

use crate::headers;

/// Header fields a head may have (hyper's default); a longer head goes to hyper.
pub const MAX_HEADERS: usize = 100;

/// A caller's request head the relay can forward as it is, but for the proxy's edits.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    pub method: &'b str,
    /// Origin form: `/path?query`.
    pub target: &'b str,
    pub headers: &'h [httparse::Header<'b>],
    /// The head's length in the buffer (the body starts there).
    pub len: usize,
    /// `Content-Length` (0 without one: a request without it has no body).
    pub content_length: u64,
    /// The caller said `Connection: close`.
    pub close: bool,
    pub host: Option<&'b [u8]>,
    pub authorization: Option<&'b [u8]>,
    pub request_id: Option<&'b [u8]>,
    /// `Origin` (CORS, `cors`).
    pub origin: Option<&'b [u8]>,
    /// `DPoP` (a second one sends the head to hyper, whose guard refuses it).
    pub dpop: Option<&'b [u8]>,
}

impl RequestHead<'_, '_> {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }
}

/// What a buffer holds.
#[derive(Debug)]
pub enum Parsed<'h, 'b> {
    /// Not a whole head yet.
    Partial,
    /// A head for hyper, not the relay: malformed, or using what the relay does not speak
    /// (HTTP/1.0, chunked or `Expect` bodies, upgrades, headers named in `Connection`, ...).
    Elsewhere,
    Head(RequestHead<'h, 'b>),
}

/// Parses the request head at the start of `buf`.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    slots: &'h mut [httparse::Header<'b>],
    max_headers: usize,
) -> Parsed<'h, 'b> {
    let mut req = httparse::Request::new(slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Elsewhere,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Elsewhere;
    };
    // CONNECT is never forwarded (RFC 9112 §3.2.3, §6.3): the service refuses it.
    if method == "CONNECT" {
        return Parsed::Elsewhere;
    }
    let headers: &'h [httparse::Header<'b>] = req.headers;
    // Origin form of visible ASCII only: anything else is for hyper, which answers a target
    // `http::Uri` cannot hold with a 400.
    let visible = target
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b'#');
    if !target.starts_with('/') || !visible || headers.len() > max_headers {
        return Parsed::Elsewhere;
    }
    // A target with a character `http::Uri` may refuse (`<`, `"`, ...) is checked by it, as
    // hyper's path checks it (and answers 400); the common target pays no allocation for it.
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
    if !target.bytes().all(plain) && http::uri::PathAndQuery::try_from(target).is_err() {
        return Parsed::Elsewhere;
    }
    let mut head = RequestHead {
        method,
        target,
        headers,
        len,
        content_length: 0,
        close: false,
        host: None,
        authorization: None,
        request_id: None,
        origin: None,
        dpop: None,
    };
    let mut length_seen = false;
    for h in headers {
        let name = h.name;
        let once = |slot: &mut Option<&'b [u8]>| slot.replace(h.value).is_none();
        let plain = if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value);
            head.content_length = n.unwrap_or(0);
            !std::mem::replace(&mut length_seen, true) && n.is_some()
        } else if name.eq_ignore_ascii_case("connection") {
            tokens(h.value).all(|t| match t {
                t if t.eq_ignore_ascii_case(b"close") => {
                    head.close = true;
                    true
                }
                t => t.eq_ignore_ascii_case(b"keep-alive"),
            })
        } else if name.eq_ignore_ascii_case("host") {
            once(&mut head.host)
        } else if name.eq_ignore_ascii_case("authorization") {
            once(&mut head.authorization)
        } else if name.eq_ignore_ascii_case("x-request-id") {
            once(&mut head.request_id)
        } else if name.eq_ignore_ascii_case("origin") {
            once(&mut head.origin)
        } else if name.eq_ignore_ascii_case("dpop") {
            once(&mut head.dpop)
        } else {
            !(name.eq_ignore_ascii_case("transfer-encoding")
                || name.eq_ignore_ascii_case("expect")
                || name.eq_ignore_ascii_case("upgrade"))
        };
        if !plain {
            return Parsed::Elsewhere;
        }
    }
    Parsed::Head(head)
}

/// A `Content-Length` value: digits only, at most 19 of them (it fits a u64).
pub(super) fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The comma-separated tokens of a header value, blanks trimmed, empty ones skipped.
pub(super) fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// What the gateway adds to a request it forwards.
pub struct Edits<'a> {
    /// The upstream's authority, as `Host`.
    pub upstream: &'a str,
    pub forward_authorization: bool,
    pub forwarded_for: &'a [u8],
    pub tls: bool,
    /// The verified caller (`None`: a CORS preflight forwarded unguarded).
    pub who: Option<Who<'a>>,
    pub request_id: &'a [u8],
}

/// The verified identity sent to the upstream.
pub struct Who<'a> {
    pub client_id: &'a [u8],
    pub scope: &'a [u8],
    pub grant: &'a str,
    /// `Verified::token_type`.
    pub token_type: &'a str,
}

impl<'a> Who<'a> {
    pub fn of(who: &'a crate::token::verified::Verified) -> Who<'a> {
        Who {
            client_id: who.client.id_header.as_bytes(),
            scope: who.scope.as_bytes(),
            grant: who.grant().as_str(),
            token_type: who.token_type(),
        }
    }
}

/// Writes the upstream's request head: the caller's request line and headers, less those that
/// never reach the upstream (`headers::never_upstream`); then the gateway's own.
pub fn write_upstream_head(out: &mut Vec<u8>, head: &RequestHead<'_, '_>, e: &Edits<'_>) {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(e.upstream.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in head.headers {
        // `Connection: close` names a field `Close` too (RFC 9110 §7.6.1), as hyper's path reads it.
        let named = head.close && h.name.eq_ignore_ascii_case("close");
        if !headers::never_upstream(h.name, e.forward_authorization) && !named {
            field(out, h.name.as_bytes(), h.value);
        }
    }
    field(out, b"x-forwarded-for", e.forwarded_for);
    let proto: &[u8] = if e.tls { b"https" } else { b"http" };
    field(out, b"x-forwarded-proto", proto);
    if let Some(host) = head.host {
        field(out, b"x-forwarded-host", host);
    }
    if let Some(who) = &e.who {
        field(out, headers::CLIENT_ID.as_str().as_bytes(), who.client_id);
        field(out, headers::SCOPE.as_str().as_bytes(), who.scope);
        field(
            out,
            headers::GRANT.as_str().as_bytes(),
            who.grant.as_bytes(),
        );
        let name = headers::TOKEN_TYPE;
        field(out, name.as_str().as_bytes(), who.token_type.as_bytes());
    }
    field(out, b"x-request-id", e.request_id);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
