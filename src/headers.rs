//! Header hygiene for the proxy, as small pure functions: hop-by-hop headers (RFC 9110 §7.6.1)
//! and those named in `Connection` are dropped, and any client-sent copy of the identity headers
//! storegate sets is removed before the gateway's own are added.

use http::header::{self, HeaderMap, HeaderName};

/// The verified client id, sent to the upstream.
pub const CLIENT_ID: HeaderName = HeaderName::from_static("x-storegate-client-id");
/// The token's granted scope (space-separated), sent to the upstream.
pub const SCOPE: HeaderName = HeaderName::from_static("x-storegate-scope");
/// The grant the token came from: `client_credentials` or `implicit` (read-only, live data).
pub const GRANT: HeaderName = HeaderName::from_static("x-storegate-grant");
/// Every header with this prefix is the gateway's to set; callers' copies are dropped.
pub const IDENTITY_PREFIX: &str = "x-storegate-";

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop headers (RFC 9110 §7.6.1), and "proxy-connection", which is not standard but
/// old clients still send.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// `is_hop_by_hop` for a name as it came on the wire (any case).
pub fn is_hop_by_hop_raw(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether a name as it came on the wire is one of the gateway's identity headers.
pub fn is_identity_raw(name: &str) -> bool {
    name.len() >= IDENTITY_PREFIX.len()
        && name.as_bytes()[..IDENTITY_PREFIX.len()].eq_ignore_ascii_case(IDENTITY_PREFIX.as_bytes())
}

/// Removes what must not cross the proxy: hop-by-hop headers, every header the `Connection`
/// header names, and, when `identity` is set, any `x-storegate-*` header (a caller's copy of
/// the identity headers the gateway sets).
///
/// One pass over the headers present, with no hashing and no allocation when there is
/// nothing to remove: this runs twice on every proxied request.
pub fn strip(headers: &mut HeaderMap, identity: bool) {
    let named = |name: &HeaderName| {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|n| n.trim().eq_ignore_ascii_case(name.as_str()))
    };
    let has_connection = headers.contains_key(header::CONNECTION);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            is_hop_by_hop(k)
                || (identity && k.as_str().starts_with(IDENTITY_PREFIX))
                || (has_connection && named(k))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// `strip` for a response: hop-by-hop only.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::ACCEPT));
    }

    #[test]
    fn spoofed_identity_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(CLIENT_ID, HeaderValue::from_static("admin"));
        h.append(SCOPE, HeaderValue::from_static("write"));
        h.insert("x-storegate-anything", HeaderValue::from_static("1"));
        h.insert("x-other", HeaderValue::from_static("1"));
        strip(&mut h, true);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-other"]
        );
    }
}
