//! Header hygiene for the proxy, as small pure functions that both transports apply (the
//! hyper path to header maps, the relay to bytes): what a caller's request may never carry to
//! the upstream, and which response framing is relayed at all.
//!
//! An upstream's response loses its hop-by-hop headers, those named in `Connection` and its
//! `x-request-id` (the caller gets the gateway's).
//!
//! A caller's request loses, before the gateway's own headers are added:
//! * hop-by-hop headers (RFC 9110 §7.6.1) and those named in `Connection`;
//! * `Host` (the upstream's authority is sent), `x-request-id` (the gateway's id is sent), and
//!   `Authorization` and its `DPoP` proof (RFC 9449) unless the route forwards them;
//! * `Client-Cert` and `Client-Cert-Chain` (RFC 9440), and ingress-nginx's `ssl-client-cert`
//!   (Envoy's and Traefik's are `x-forwarded-*`): which certificate the caller presented is the
//!   gateway's to say (`mtls::forwarded`), never a caller's;
//! * every name the gateway speaks for: `x-storegate-*`, `x-forwarded-*` and `Forwarded`,
//!   in any case and with `_` for `-`;
//! * every other name with an underscore, as nginx drops them by default
//!   (`underscores_in_headers off`): servers that map header names to CGI-style variables
//!   (Rack, WSGI, Puma before 6.4.3, CVE-2024-45614) read `X_Foo` and `X-Foo` as one name, so
//!   a caller's `x_storegate_client_id` could stand in for the gateway's identity header.

use http::header::{self, HeaderMap, HeaderName};

/// The verified client id, sent to the upstream.
pub const CLIENT_ID: HeaderName = HeaderName::from_static("x-storegate-client-id");
/// The token's granted scope (space-separated), sent to the upstream.
pub const SCOPE: HeaderName = HeaderName::from_static("x-storegate-scope");
/// The grant the token came from: `client_credentials` or `implicit` (read-only, live data).
pub const GRANT: HeaderName = HeaderName::from_static("x-storegate-grant");
/// Every header with this prefix is the gateway's to set; callers' copies are dropped.
/// How the token was presented and checked: `Bearer`, or `DPoP` (bound to a key, with a proof
/// by that key checked on this request).
pub const TOKEN_TYPE: HeaderName = HeaderName::from_static("x-storegate-token-type");
pub const IDENTITY_PREFIX: &str = "x-storegate-";

/// Sets the verified identity headers (`x-storegate-*`): for the upstream on hyper's path
/// (the relay writes the same names as bytes), and in a decision's answer.
pub fn insert_identity(h: &mut HeaderMap, who: &crate::token::verified::Verified) {
    h.insert(CLIENT_ID, who.client.id_header.clone());
    h.insert(SCOPE, who.scope.clone());
    h.insert(GRANT, http::HeaderValue::from_static(who.grant().as_str()));
    h.insert(TOKEN_TYPE, http::HeaderValue::from_static(who.token_type()));
}

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

/// `is_hop_by_hop` for a name as it came on the wire (any case).
pub fn is_hop_by_hop_raw(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether a caller's request header named `name` (as it came: any case) never reaches the
/// upstream, `Connection`-named ones aside. The one list both transports apply.
pub fn never_upstream(name: &str, forward_authorization: bool) -> bool {
    let n = name.as_bytes();
    n.contains(&b'_')
        || is_hop_by_hop_raw(name)
        || speaks_for_gateway(n)
        || name.eq_ignore_ascii_case("host")
        || name.eq_ignore_ascii_case("x-request-id")
        || name.eq_ignore_ascii_case("client-cert")
        || name.eq_ignore_ascii_case("client-cert-chain")
        || name.eq_ignore_ascii_case("ssl-client-cert")
        || (!forward_authorization
            && (name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("dpop")))
}

/// A name the gateway alone sets for the upstream: `x-storegate-*`, `x-forwarded-*`,
/// `forwarded`, in any case and with `_` read as `-` (as CGI-style servers read it).
fn speaks_for_gateway(name: &[u8]) -> bool {
    let like = |prefix: &[u8], whole: bool| {
        name.len() >= prefix.len()
            && (!whole || name.len() == prefix.len())
            && name.iter().zip(prefix).all(|(&a, &b)| {
                let a = if a == b'_' { b'-' } else { a };
                a.eq_ignore_ascii_case(&b)
            })
    };
    like(IDENTITY_PREFIX.as_bytes(), false)
        || like(b"x-forwarded-", false)
        || like(b"forwarded", true)
}

/// Whether the `Transfer-Encoding` field values of an upstream's response are one that is
/// relayed: exactly one coding, `chunked`. nginx answers any other with 502 ("upstream sent
/// unknown Transfer-Encoding"); passed on, `chunked, identity` makes a caller that sees
/// `chunked` read what follows the last chunk as its next answer, and a coding before
/// `chunked` would reach the caller undeclared once the hyper path re-frames the body.
pub fn relayed_coding<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut codings = values.into_iter().flat_map(|v| {
        v.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
    });
    codings
        .next()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
        && codings.next().is_none()
}

/// What the log says of a response `relayed_coding` refuses.
pub const CODING_REFUSED: &str = "a transfer coding other than a lone chunked";

/// Removes from a caller's request what must not reach the upstream (`never_upstream`, and
/// every header the `Connection` header names).
pub fn strip_request(headers: &mut HeaderMap, forward_authorization: bool) {
    strip(headers, |name| never_upstream(name, forward_authorization))
}

/// Whether an upstream's response header named `name` (any case) never reaches the caller,
/// `Connection`-named ones aside: hop-by-hop headers (the relay keeps `Transfer-Encoding` as
/// the framing it relays), and `x-request-id`, for the caller gets the gateway's.
pub fn never_downstream(name: &str) -> bool {
    is_hop_by_hop_raw(name) || name.eq_ignore_ascii_case("x-request-id")
}

/// Removes from an upstream's response what the caller never sees (`never_downstream`, and
/// every header the `Connection` header names).
pub fn strip_response(headers: &mut HeaderMap) {
    strip(headers, never_downstream)
}

/// Removes the headers `doomed` names and every header the `Connection` header names.
///
/// One pass over the headers present, with no hashing and no allocation when there is
/// nothing to remove: this runs twice on every proxied request.
fn strip(headers: &mut HeaderMap, doomed_name: impl Fn(&str) -> bool) {
    let named = |name: &HeaderName| {
        headers
            .get_all(header::CONNECTION)
            .iter()
            // As bytes: a value with a byte that is not visible ASCII still names the others.
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .any(|n| {
                n.trim_ascii()
                    .eq_ignore_ascii_case(name.as_str().as_bytes())
            })
    };
    let has_connection = headers.contains_key(header::CONNECTION);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| doomed_name(k.as_str()) || (has_connection && named(k)))
        .cloned()
        .collect();
    for name in doomed {
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
        h.insert("X-Request-Id", HeaderValue::from_static("the-upstream's"));
        strip_response(&mut h);
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
        strip_request(&mut h, false);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-other"]
        );
    }

    #[test]
    fn the_gateways_names_go_in_any_spelling() {
        for name in [
            "X-Storegate-Client-Id",
            "x_storegate_client_id",
            "x-storegate_grant",
            "X_FORWARDED_FOR",
            "x-forwarded-port",
            "x-Forwarded_Client-Cert",
            "Forwarded",
            "X-Request-Id",
            "api_key",
            "Proxy-Connection",
            "Authorization",
            "DPoP",
            "Client-Cert",
            "client-cert-chain",
            "client_cert",
            "SSL-Client-Cert",
            "x-forwarded-client-cert",
            "X-Forwarded-Tls-Client-Cert",
        ] {
            assert!(never_upstream(name, false), "{name}");
        }
        for name in [
            "x-kept",
            "forwarded-x",
            "x-storegate",
            "accept",
            "authorization",
            "dpop",
            "client-certificate",
        ] {
            assert!(!never_upstream(name, true), "{name}");
        }
    }

    #[test]
    fn only_a_lone_chunked_coding_is_relayed() {
        let ok = |v: &[&str]| relayed_coding(v.iter().map(|s| s.as_bytes()));
        assert!(ok(&["chunked"]) && ok(&["Chunked "]) && ok(&[" , chunked"]));
        for bad in [
            &["chunked, identity"][..],
            &["identity, chunked"],
            &["gzip"],
            &["chunked", "chunked"],
            &[""],
            &[],
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
    }
}
