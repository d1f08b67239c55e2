//! The relay and the hyper path against each other: for the same bytes both must send the
//! upstream the same request, and the caller the same response.
//!
//! The input is read as a caller's request head. The relay's upstream head
//! (`relay::head::write_upstream_head`) and the hyper path's request (`service::handle`'s
//! request id, `proxy::prepare_request`, and the `Host` hyper's client adds) must have the same
//! method, target and header multiset (names in any case, values byte for byte, order aside),
//! given the same route, token, connection and request id, with `forward_authorization` off
//! and on. Only heads the relay forwards itself are compared; those it hands to hyper go
//! through the hyper side alone, which must not panic.
//!
//! The input is also read as an upstream's response head: the relay (`parse_response`,
//! `write_response_head`) and the hyper path (`headers::relayed_coding`, then
//! `headers::strip_response` and the request id) must agree on refusing a transfer coding
//! and otherwise on the status and the headers but those each transport writes its own way
//! (`date`, which must be there, `content-length`, `transfer-encoding`, `connection`,
//! `keep-alive`).
//!
//! hyper's parsers are modelled, not run: httparse with hyper's default settings (which the
//! gateway keeps), then `http`'s types; what those refuse, hyper answers with 400 (a request)
//! or 502 (a response), so nothing is forwarded there to compare.
//!
//! Its first run found four disagreements, since fixed, each kept as a seed in the corpus:
//! the relay forwarded targets `http::Uri` refuses (hyper answers 400), forwarded a field
//! named `Close` beside `Connection: close`, dropped an upstream's `Date` its `Connection`
//! named without adding its own, and `headers::strip` passed over a `Connection` value that
//! was not visible ASCII.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};

use super::{CLIENT_ID, SEED_TOKEN_IAT, routing_table, verify_fixture};
use crate::clients::Grant;
use crate::conn::ConnInfo;
use crate::headers;
use crate::proxy::prepare_request;
use crate::relay::head::{self, Edits, MAX_HEADERS, Parsed, RequestHead, Who, parse_request};
use crate::relay::response_head::{self, BadResponse, ResponseEdits, parse_response};
use crate::request_id::{RequestIds, X_REQUEST_ID};
use crate::routes::Route;
use crate::token::verified::{Signed, Verified};

/// What both paths know of one request besides its bytes: its route, its token's identity and
/// its connection.
pub(super) struct Setting {
    pub(super) route: Route,
    pub(super) who: Verified,
    pub(super) conn: ConnInfo,
}

/// Two settings, so that each input meets `forward_authorization` off and on, both grants,
/// plain and TLS, an IPv4 and an IPv6 peer.
pub(super) fn settings() -> &'static [Setting; 2] {
    static SETTINGS: OnceLock<[Setting; 2]> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let api = routing_table().1.iter().find(|r| r.prefix == "/api/");
        let route = api.expect("the /api/ route").clone();
        let setting = |forward_authorization, grant, scope, peer: &str, tls| {
            let exp = (grant, SEED_TOKEN_IAT + 3600, Some(SEED_TOKEN_IAT));
            let signed = Signed::new("fuzz-key".into(), CLIENT_ID, scope, None, ["store"], exp)
                .expect("no line breaks");
            let route = Route {
                forward_authorization,
                ..route.clone()
            };
            Setting {
                route,
                who: Verified::bind(signed, &verify_fixture().clients, 1).expect("registered"),
                conn: ConnInfo::new(peer.parse().expect("a peer address"), tls),
            }
        };
        [
            setting(
                false,
                Grant::ClientCredentials,
                "read write",
                "192.0.2.7:1",
                true,
            ),
            setting(true, Grant::Implicit, "read", "[2001:db8::7]:1", false),
        ]
    })
}

/// The gateway's request ids (one maker, as one gateway process has).
pub(super) fn ids() -> &'static RequestIds {
    static IDS: OnceLock<RequestIds> = OnceLock::new();
    IDS.get_or_init(RequestIds::default)
}

/// A header multiset: lower-cased names and values, sorted.
pub(super) type Fields = Vec<(String, Vec<u8>)>;

pub(super) fn fields<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> Fields {
    let mut f: Fields = pairs
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_vec()))
        .collect();
    f.sort();
    f
}

pub(super) fn map_fields(m: &HeaderMap) -> Fields {
    fields(m.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))
}

pub fn two_paths(data: &[u8]) {
    request(data);
    for head_request in [false, true] {
        response(data, head_request);
    }
}

fn request(data: &[u8]) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match parse_request(data, &mut slots, MAX_HEADERS) {
        Parsed::Partial => {}
        // `relay::decide` hands a method `http` will not hold to hyper.
        Parsed::Head(h) if Method::from_bytes(h.method.as_bytes()).is_ok() => {
            for s in settings() {
                compare(&h, s);
            }
        }
        _ => {
            // hyper's alone: whatever its parser takes must go through without a panic.
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut slots);
            if let Ok(httparse::Status::Complete(_)) = req.parse(data)
                && let (Some(method), Some(target)) = (req.method, req.path)
            {
                for s in settings() {
                    if let Some(mut r) = hyper_request(method, target, req.headers) {
                        let _ = ids().of(r.headers_mut());
                        let _ = prepare_request(&mut r, &s.route, Some(&s.who), &s.conn);
                    }
                }
            }
        }
    }
}

/// The request as hyper's server hands it over; `None` where `http` refuses a part of it, for
/// which hyper answers 400 itself.
pub(super) fn hyper_request(
    method: &str,
    target: &str,
    h: &[httparse::Header<'_>],
) -> Option<Request<()>> {
    let mut req = Request::new(());
    *req.method_mut() = Method::from_bytes(method.as_bytes()).ok()?;
    *req.uri_mut() = target.parse().ok()?;
    *req.version_mut() = Version::HTTP_11;
    for f in h {
        let name = HeaderName::from_bytes(f.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(f.value).ok()?;
        req.headers_mut().append(name, value);
    }
    Some(req)
}

/// The relay's edits of a request in setting `s` with request id `id`.
pub(super) fn edits<'a>(s: &'a Setting, id: &'a [u8]) -> Edits<'a> {
    Edits {
        upstream: s.route.upstream_authority.as_str(),
        forward_authorization: s.route.forward_authorization,
        forwarded_for: s.conn.forwarded_for.as_bytes(),
        tls: s.conn.tls,
        who: Some(Who::of(&s.who)),
        request_id: id,
    }
}

/// An upstream request head's method, target and fields, which must parse whole.
pub(super) fn upstream_request(out: &[u8]) -> (String, String, Fields) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS + 16];
    let mut up = httparse::Request::new(&mut slots);
    let parsed = up.parse(out);
    assert!(
        matches!(parsed, Ok(httparse::Status::Complete(n)) if n == out.len()),
        "the upstream head does not parse: {:?}",
        String::from_utf8_lossy(out)
    );
    (
        up.method.unwrap_or_default().to_owned(),
        up.path.unwrap_or_default().to_owned(),
        fields(up.headers.iter().map(|f| (f.name, f.value))),
    )
}

/// One request head the relay forwards, down both paths.
fn compare(h: &RequestHead<'_, '_>, s: &Setting) {
    let id = ids().keep_or_make(h.request_id);
    let mut out = Vec::new();
    head::write_upstream_head(&mut out, h, &edits(s, id.as_bytes()));
    let relay = upstream_request(&out);

    // hyper's server builds its request from the same httparse head; what `http` refuses in
    // it hyper answers with 400, so the relay must not have taken it.
    let Some(mut req) = hyper_request(h.method, h.target, h.headers) else {
        panic!(
            "the relay forwards a head hyper refuses: {} {}",
            h.method, h.target
        );
    };
    // `service::handle` keeps a well-formed id of the caller's, else makes one, as the relay
    // does; two made ids differ only in their counter, so the relay's stands for both.
    let kept = ids().of(req.headers_mut());
    if kept.as_bytes() != id.as_bytes() {
        assert!(
            h.request_id != Some(kept.as_bytes()) && h.request_id != Some(id.as_bytes()),
            "one path kept the caller's x-request-id {:?}, the other did not",
            h.request_id.map(String::from_utf8_lossy)
        );
        let made = HeaderValue::from_bytes(id.as_bytes()).expect("a made id is a header value");
        req.headers_mut().insert(X_REQUEST_ID, made);
    }
    if let Err(e) = prepare_request(&mut req, &s.route, Some(&s.who), &s.conn) {
        panic!("the hyper path refused what the relay forwards: {e:?}");
    }
    // hyper's client: `Host` from the URI's authority unless the request has one.
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    if let Some(a) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
        req.headers_mut().entry(header::HOST).or_insert(a);
    }
    let hyper = (
        req.method().as_str(),
        req.uri().path_and_query().map_or("/", |p| p.as_str()),
        map_fields(req.headers()),
    );
    let lines = "request lines differ (left: relay, right: hyper)";
    assert_eq!(
        (relay.0.as_str(), relay.1.as_str()),
        (hyper.0, hyper.1),
        "{lines}"
    );
    assert_eq!(
        shown(&relay.2),
        shown(&hyper.2),
        "upstream headers differ (left: relay, right: hyper; forward_authorization {})",
        s.route.forward_authorization
    );
}

/// A header multiset, readable in a failure message.
pub(super) fn shown(f: &Fields) -> Vec<(&str, std::borrow::Cow<'_, str>)> {
    f.iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v)))
        .collect()
}

/// The gateway's id of the request the response answers.
const RESPONSE_ID: &str = "fuzz-id";

const RESPONSE_EDITS: ResponseEdits<'static> = ResponseEdits {
    request_id: RESPONSE_ID.as_bytes(),
    close: false,
    date: b"Thu, 01 Jan 2026 00:00:00 GMT",
    cors: None,
};

/// Response headers each transport writes its own way: not compared.
pub(super) const OWN_WAY: [&str; 5] = [
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// One upstream response head, down both paths.
fn response(data: &[u8], head_request: bool) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let relayed = parse_response(data, &mut slots, head_request);
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Some((status, mut map)) = hyper_response(data, &mut slots) else {
        let relays = matches!(relayed, Ok(Some(_)));
        assert!(!relays, "the relay relays a head hyper's client refuses");
        return;
    };
    let codings = map.get_all(header::TRANSFER_ENCODING);
    let refused = codings.iter().next().is_some()
        && !headers::relayed_coding(codings.iter().map(HeaderValue::as_bytes));
    let r = match relayed {
        Ok(Some(r)) => r,
        Err(BadResponse::Coding) => {
            return assert!(refused, "only the relay refuses the transfer coding");
        }
        // Incomplete, or malformed to the relay: the `relay` target's business.
        _ => return,
    };
    assert!(!refused, "only the hyper path refuses the transfer coding");
    // Interim answers are relayed by neither (hyper's client reads past them, as the relay).
    if r.status < 200 {
        return;
    }
    let mut out = Vec::new();
    response_head::write_response_head(&mut out, &r, &RESPONSE_EDITS);
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS + 8];
    let mut down = httparse::Response::new(&mut slots);
    let shown_out = String::from_utf8_lossy(&out);
    let whole = down.parse(&out).is_ok_and(|s| s.is_complete());
    assert!(
        whole,
        "the relay's response head does not parse: {shown_out:?}"
    );
    assert_eq!(down.code, Some(status.as_u16()), "statuses differ");
    let dated = (down.headers.iter()).any(|f| f.name.eq_ignore_ascii_case("date"));
    assert!(dated, "the relay sent no date: {shown_out:?}");
    headers::strip_response(&mut map);
    // `service::handle` sets the gateway's id.
    map.insert(X_REQUEST_ID, HeaderValue::from_static(RESPONSE_ID));
    let compared = |(k, _): &(String, Vec<u8>)| !OWN_WAY.contains(&k.as_str());
    let relay = fields(down.headers.iter().map(|f| (f.name, f.value)));
    let hyper = map_fields(&map);
    let (relay, hyper): (Fields, Fields) = (
        relay.into_iter().filter(compared).collect(),
        hyper.into_iter().filter(compared).collect(),
    );
    let differ = "response headers differ (left: relay, right: hyper)";
    assert_eq!(shown(&relay), shown(&hyper), "{differ}: {shown_out:?}");
}

/// The response as hyper's client hands it over: httparse, then `http`'s types; `None` where
/// either refuses it (a bad response: the caller gets a 502).
pub(super) fn hyper_response<'b>(
    data: &'b [u8],
    slots: &mut [httparse::Header<'b>],
) -> Option<(StatusCode, HeaderMap)> {
    let mut resp = httparse::Response::new(slots);
    let Ok(httparse::Status::Complete(_)) = resp.parse(data) else {
        return None;
    };
    let status = StatusCode::from_u16(resp.code?).ok()?;
    let mut map = HeaderMap::new();
    for f in resp.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).ok()?;
        map.append(name, HeaderValue::from_bytes(f.value).ok()?);
    }
    Some((status, map))
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_pass() {
        for seed in [
            &b"POST /api/x?a HTTP/1.1\r\nhost: s\r\nAuthorization: Bearer t\r\nx_storegate_client_id: a\r\nX-Forwarded_For: 1\r\nFORWARDED: x\r\nX-Request-Id: abc\r\nContent-Length: 3\r\n\r\nabc"[..],
            b"GET /api/ HTTP/1.1\r\nX-Request-Id: a b\r\nConnection: x-a\r\nx-a: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: x-hop\r\nx-hop: 1\r\nX-Request-Id: up\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ] {
            super::two_paths(seed);
        }
    }
}
