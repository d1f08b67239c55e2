//! Routing: which of the gateway's own endpoints or which guarded route a request is for.
//! The route and endpoint types are built by `config` and held by each generation.

use std::time::Duration;

use http::Method;

use crate::errors::ErrorShape;

pub const HEALTH_PATH: &str = "/healthz";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Which documented token API an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointShape {
    /// Seeds 000–002: `POST /connect/token`, flat RFC 6749 body, `{"error":...}` errors.
    ConnectToken,
    /// Seed 003: `POST /oauth2-token`, JSON body, flat response in that page's field order.
    Oauth2Token,
    /// Seed 004: `POST /oauth/access_token`, `{"data":{...}}` envelope, implicit grant,
    /// `{"errors":[...]}` errors.
    OauthAccessToken,
}

impl EndpointShape {
    /// The error body shape this endpoint's documentation uses.
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Self::ConnectToken | Self::Oauth2Token => ErrorShape::OAuth,
            Self::OauthAccessToken => ErrorShape::Errors,
        }
    }
}

/// A token endpoint mounted at a path.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    pub path: String,
    pub shape: EndpointShape,
}

/// A guarded path prefix and the upstream it goes to.
#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    /// "http://host:port", parsed.
    pub upstream_scheme: http::uri::Scheme,
    pub upstream_authority: http::uri::Authority,
    /// The API (token audience) a token must be for.
    pub api: String,
    pub error_shape: ErrorShape,
    /// Deadline for the upstream's response head.
    pub timeout: Duration,
    pub forward_authorization: bool,
    /// A scope every non-read request must carry.
    pub write_scope: Option<String>,
    pub max_body_bytes: Option<u64>,
}

/// What a request is for.
pub enum Target<'g> {
    Token(&'g TokenEndpoint),
    Health,
    Jwks,
    Route(&'g Route),
    NotFound,
}

/// Token endpoints first (any method: a GET is answered 405 there), then the gateway's own
/// read-only documents, then the longest matching route prefix.
pub fn resolve<'g>(
    endpoints: &'g [TokenEndpoint],
    routes: &'g [Route],
    method: &Method,
    path: &str,
) -> Target<'g> {
    if let Some(ep) = endpoints.iter().find(|e| e.path == path) {
        return Target::Token(ep);
    }
    match path {
        HEALTH_PATH if is_read(method) => return Target::Health,
        JWKS_PATH if is_read(method) => return Target::Jwks,
        _ => {}
    }
    find_route(routes, path).map_or(Target::NotFound, Target::Route)
}

fn is_read(m: &Method) -> bool {
    *m == Method::GET || *m == Method::HEAD
}

/// Routes are sorted longest prefix first, so the first match is the most specific.
pub fn find_route<'r>(routes: &'r [Route], path: &str) -> Option<&'r Route> {
    routes.iter().find(|r| path.starts_with(r.prefix.as_str()))
}

/// Whether a path has a `.` or `..` segment, also percent-encoded (RFC 3986 §5.2.4).
pub fn has_dot_segment(path: &str) -> bool {
    // Most paths have neither "/." nor "%2e": decide those without splitting.
    let lower_has_encoded_dot = path
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'2' && (w[2] | 0x20) == b'e');
    if !path.contains("/.") && !lower_has_encoded_dot {
        return false;
    }
    path.split('/').any(|seg| {
        let decoded = seg.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    })
}

/// Route "/api/" for API "store", write scope "write", to 127.0.0.1:9000.
#[cfg(test)]
pub(crate) fn for_tests() -> Route {
    Route {
        prefix: "/api/".into(),
        upstream_scheme: http::uri::Scheme::HTTP,
        upstream_authority: "127.0.0.1:9000".parse().unwrap(),
        api: "store".into(),
        error_shape: ErrorShape::OAuth,
        timeout: Duration::from_secs(1),
        forward_authorization: false,
        write_scope: Some("write".into()),
        max_body_bytes: None,
    }
}

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

    #[test]
    fn dot_segments_are_found_however_written() {
        for p in [
            "/admin/../shop",
            "/a/./b",
            "/a/..",
            "/a/%2e%2E/b",
            "/a/.%2e/b",
            "/a/%2E",
        ] {
            assert!(has_dot_segment(p), "{p}");
        }
        for p in [
            "/api/products",
            "/a/.well-known",
            "/a/..b",
            "/a/b.json",
            "/a/%2ex",
            "/",
        ] {
            assert!(!has_dot_segment(p), "{p}");
        }
    }
}
