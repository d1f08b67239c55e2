//! Which request a proxy asks about, read from the proxy's own headers:
//!
//! * nginx `auth_request` (and ingress-nginx's `auth-url`): `X-Original-URI` (or
//!   ingress-nginx's `X-Original-URL`, an absolute URL), with `X-Original-Method`;
//! * Traefik `forwardAuth`: `X-Forwarded-Uri` with `X-Forwarded-Method`;
//! * Envoy's HTTP `ext_authz`: neither; the original path below the decision path, and the
//!   request's own method and query.
//!
//! A URI header without its method header is refused rather than read as a GET: nginx's
//! subrequest is a GET whatever the original was, so a forgotten `X-Original-Method` would
//! judge every write as a read.
//!
//! Exactly one form must name the request. Each proxy sets its own headers over a caller's
//! copies, but passes on the others' as the caller sent them (Traefik forwards every header,
//! ingress-nginx too): were one form to win over another, a caller could name another request
//! than the one the proxy will forward, through a proxy using the form that loses.

use http::request::Parts;
use http::{HeaderMap, Method, Uri};

use super::Decision;

/// The request a proxy asks about.
#[derive(Debug, PartialEq, Eq)]
pub struct Described {
    pub method: Method,
    /// Origin form: the path, and the query if any.
    pub target: String,
}

impl Described {
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }
}

/// The request `head` (asked of `d`) describes, or why it describes none.
pub fn of(d: &Decision, head: &Parts) -> Result<Described, &'static str> {
    let h = &head.headers;
    let pairs = [
        ("x-original-uri", "x-original-method", false),
        ("x-original-url", "x-original-method", true),
        ("x-forwarded-uri", "x-forwarded-method", false),
    ];
    let below = head.uri.path().strip_prefix(d.path.as_str()).unwrap_or("");
    let named = pairs
        .iter()
        .filter(|(uri, ..)| h.contains_key(*uri))
        .count();
    if named + usize::from(!below.is_empty()) > 1 {
        return Err(
            "the decision request names the original request in more than one way \
                    (a caller's header passed on by the proxy?)",
        );
    }
    for (uri_name, method_name, absolute) in pairs {
        let Some(uri) = one(h, uri_name)? else {
            continue;
        };
        let method = one(h, method_name)?.ok_or(
            "the decision request names the original URI but not its method: \
             send X-Original-Method (nginx) or X-Forwarded-Method (Traefik) with it",
        )?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| "the original method is not a method")?;
        let target = if absolute {
            of_url(uri)?
        } else {
            uri.to_owned()
        };
        return origin_form(method, target);
    }
    // Envoy: the original path below the decision path.
    if !below.starts_with('/') {
        return Err(
            "the decision request does not name the original request: send \
                    X-Original-URI and X-Original-Method (nginx), X-Forwarded-Uri and \
                    X-Forwarded-Method (Traefik), or ask below the decision path (Envoy)",
        );
    }
    let target = match head.uri.query() {
        Some(q) => format!("{below}?{q}"),
        None => below.to_owned(),
    };
    origin_form(head.method.clone(), target)
}

/// The value of a header sent at most once, as visible ASCII.
fn one<'h>(h: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, &'static str> {
    let mut values = h.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("a header describing the original request is sent more than once");
    }
    let value = value
        .to_str()
        .map_err(|_| "a header describing the original request is not visible ASCII")?;
    Ok(Some(value.trim()))
}

/// ingress-nginx's `X-Original-URL`: `$scheme://$http_host$request_uri`.
fn of_url(url: &str) -> Result<String, &'static str> {
    let uri: Uri = url.parse().map_err(|_| "the original URL is not a URL")?;
    match (uri.scheme(), uri.path_and_query()) {
        (Some(_), Some(pq)) => Ok(pq.as_str().to_owned()),
        _ => Err("the original URL is not an absolute URL"),
    }
}

fn origin_form(method: Method, target: String) -> Result<Described, &'static str> {
    if !target.starts_with('/') || target.contains('#') {
        return Err("the original URI is not a path (origin form, RFC 9112 §3.2.1)");
    }
    // What a request line could carry: the bytes `http::Uri` takes for a path and query.
    if target.parse::<http::uri::PathAndQuery>().is_err() {
        return Err("the original URI is not a path (origin form, RFC 9112 §3.2.1)");
    }
    Ok(Described { method, target })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision() -> Decision {
        Decision {
            path: "/authz".into(),
            trusted_peers: Vec::new(),
        }
    }

    fn asked(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn described(method: &str, target: &str) -> Result<Described, &'static str> {
        Ok(Described {
            method: method.parse().unwrap(),
            target: target.into(),
        })
    }

    #[test]
    fn each_proxy_is_read() {
        let d = decision();
        let nginx = [
            ("x-original-uri", "/admin/x?a=1"),
            ("x-original-method", "POST"),
        ];
        assert_eq!(
            of(&d, &asked("GET", "/authz", &nginx)),
            described("POST", "/admin/x?a=1")
        );
        let ingress = [
            ("x-original-url", "https://shop.example/admin/x?a=1"),
            ("x-original-method", "DELETE"),
        ];
        assert_eq!(
            of(&d, &asked("GET", "/authz", &ingress)),
            described("DELETE", "/admin/x?a=1")
        );
        let traefik = [
            ("x-forwarded-uri", "/admin/y"),
            ("x-forwarded-method", "PUT"),
        ];
        assert_eq!(
            of(&d, &asked("GET", "/authz", &traefik)),
            described("PUT", "/admin/y")
        );
        assert_eq!(
            of(&d, &asked("PATCH", "/authz/admin/z?q", &[])),
            described("PATCH", "/admin/z?q")
        );
        assert_eq!(described("GET", "/a?b").unwrap().path(), "/a");
    }

    #[test]
    fn what_describes_nothing_is_refused() {
        let d = decision();
        // A URI without its method: never read as the subrequest's GET.
        assert!(
            of(
                &d,
                &asked("GET", "/authz", &[("x-original-uri", "/admin/x")])
            )
            .is_err()
        );
        assert!(
            of(
                &d,
                &asked("GET", "/authz", &[("x-forwarded-uri", "/admin/x")])
            )
            .is_err()
        );
        assert!(of(&d, &asked("GET", "/authz", &[])).is_err());
        let twice = [
            ("x-original-uri", "/admin/x"),
            ("x-original-uri", "/shop/x"),
            ("x-original-method", "GET"),
        ];
        assert!(of(&d, &asked("GET", "/authz", &twice)).is_err());
        // A caller's header of another form, passed on by the proxy: never chosen over the
        // proxy's own, whichever form the proxy uses.
        let nginx = [
            ("x-original-uri", "/admin/x"),
            ("x-original-method", "DELETE"),
        ];
        let traefik = [
            ("x-forwarded-uri", "/shop/x"),
            ("x-forwarded-method", "GET"),
        ];
        let ingress = [
            ("x-original-url", "https://s/shop/x"),
            ("x-original-method", "GET"),
        ];
        for (a, b) in [(&nginx, &traefik), (&traefik, &nginx), (&ingress, &nginx)] {
            let both: Vec<_> = a.iter().chain(b.iter()).copied().collect();
            assert!(of(&d, &asked("GET", "/authz", &both)).is_err(), "{both:?}");
        }
        assert!(of(&d, &asked("DELETE", "/authz/admin/x", &traefik)).is_err());
        for bad in ["admin/x", "http://other/x", "/a#b", "*", "/a b"] {
            let h = [("x-original-uri", bad), ("x-original-method", "GET")];
            assert!(of(&d, &asked("GET", "/authz", &h)).is_err(), "{bad}");
        }
        let h = [("x-original-url", "/admin/x"), ("x-original-method", "GET")];
        assert!(of(&d, &asked("GET", "/authz", &h)).is_err());
        let h = [
            ("x-original-uri", "/admin/x"),
            ("x-original-method", "G E T"),
        ];
        assert!(of(&d, &asked("GET", "/authz", &h)).is_err());
    }
}
