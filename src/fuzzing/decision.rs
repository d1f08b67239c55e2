//! The `decision` target: what a proxy (and a caller behind it) puts in a decision request,
//! for `decision::described::of` under the decision path `/authz`. The input's first line is
//! the request's method and path (`GET /authz` when it does not parse), each following line
//! a header `name: value` (lines that `http` would not hold are left out).
//!
//! Besides "does not panic": what it reads is a request in origin form, named in exactly one
//! way; its method is the proxy's method header for that form (the nginx forms'
//! `X-Original-Method`, Traefik's `X-Forwarded-Method`), or the request's own when the path
//! below `/authz` names it (Envoy); its target is that header's (the path and query of
//! ingress-nginx's URL) or the path below `/authz` with the request's query.

use http::{HeaderName, HeaderValue, Method, Request};

use crate::decision::described;
use crate::routes::Decision;

pub fn decision(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    let (method, target) = first.split_once(' ').unwrap_or(("GET", "/authz"));
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET))
        .uri(target)
        .body(())
        .unwrap_or_else(|_| Request::get("/authz").body(()).expect("a request"));
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            req.headers_mut().append(name, value);
        }
    }
    let (head, ()) = req.into_parts();
    let d = Decision {
        path: "/authz".into(),
        trusted_peers: Vec::new(),
    };
    let Ok(read) = described::of(&d, &head) else {
        return;
    };
    let h = &head.headers;
    let below = head.uri.path().strip_prefix("/authz").unwrap_or("");
    let forms = ["x-original-uri", "x-original-url", "x-forwarded-uri"];
    let named: Vec<&str> = forms.into_iter().filter(|f| h.contains_key(*f)).collect();
    assert!(
        named.len() + usize::from(!below.is_empty()) == 1,
        "{read:?} read from {named:?} and the path below {below:?}"
    );
    assert!(read.target.starts_with('/'), "{read:?}");
    assert!(
        read.target.parse::<http::uri::PathAndQuery>().is_ok(),
        "{read:?}"
    );
    assert!(read.target.starts_with(read.path()), "{read:?}");
    let value = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    match named.first().copied() {
        Some(form) => {
            let method = if form == "x-forwarded-uri" {
                "x-forwarded-method"
            } else {
                "x-original-method"
            };
            assert_eq!(Some(read.method.as_str()), value(method), "{read:?}");
            let uri = value(form).expect("the form's header is read");
            if form == "x-original-url" {
                // An absolute URL: its path and query ("/" when it has no path).
                let url: http::Uri = uri.parse().expect("a URL that was read parses");
                assert!(url.scheme().is_some(), "{read:?} from {uri:?}");
                let pq = url.path_and_query().map(|pq| pq.as_str());
                assert_eq!(pq, Some(read.target.as_str()), "{read:?} from {uri:?}");
            } else {
                assert_eq!(uri, read.target, "{read:?} from {uri:?}");
            }
        }
        None => {
            assert_eq!(read.method, head.method, "{read:?}");
            assert!(read.target.starts_with(below), "{read:?} below {below:?}");
        }
    }
}
