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

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    // "proxy-connection" is not standard but old clients still send it.
    headers.remove("proxy-connection");
}

/// Removes every `x-storegate-*` header a caller sent.
pub fn strip_identity(headers: &mut HeaderMap) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(IDENTITY_PREFIX))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
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
        strip_identity(&mut h);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-other"]
        );
    }
}
