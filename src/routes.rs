//! Routing: which of the gateway's own endpoints or which guarded route a request is for.
//! The route and endpoint types are built by `config` and held by each generation.

use std::time::Duration;

use http::Method;

use crate::cors::Cors;
use crate::errors::ErrorShape;

pub const HEALTH_PATH: &str = "/healthz";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// RFC 8414 §3: the authorization server's metadata (the issuer's path, if any, follows it).
pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
/// RFC 9728 §3: a protected resource's metadata (the resource's path follows it).
pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";
pub const DEFAULT_REVOCATION_PATH: &str = "/connect/revocation";
pub const DEFAULT_INTROSPECTION_PATH: &str = "/connect/introspect";

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
    /// The path as the `endpoint` label of metrics.
    pub label: std::sync::Arc<str>,
    pub shape: EndpointShape,
    pub cors: Cors,
}

/// The token lifecycle's endpoints besides the token endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthKind {
    /// RFC 7009.
    Revocation,
    /// RFC 7662.
    Introspection,
}

/// A revocation or introspection endpoint mounted at a path.
#[derive(Debug, Clone)]
pub struct OAuthEndpoint {
    pub path: String,
    pub kind: OAuthKind,
    pub error_shape: ErrorShape,
}

/// The decision endpoint (`[decision]`, answered by `decision`).
#[derive(Debug, Clone)]
pub struct Decision {
    /// No trailing `/`; requests at it or below it are decisions.
    pub path: String,
    /// The proxies allowed to ask.
    pub trusted_peers: Vec<ipnet::IpNet>,
}

impl Decision {
    /// Whether a request for `path` asks this endpoint.
    pub fn covers(&self, path: &str) -> bool {
        path.strip_prefix(self.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// A guarded path prefix and the upstream it goes to.
#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    /// The prefix as the `route` label of metrics and logs.
    pub label: std::sync::Arc<str>,
    /// "http://host:port", parsed.
    pub upstream_scheme: http::uri::Scheme,
    pub upstream_authority: http::uri::Authority,
    /// Where its connections are opened and kept by (`dial`): the authority, or a name
    /// standing for a unix socket (`upstream = "unix:/run/app.sock"`).
    pub upstream_dial: http::uri::Authority,
    /// An `https://` upstream's TLS settings (`upstream_tls`).
    pub upstream_tls: Option<crate::upstream_tls::Files>,
    /// The API (token audience) a token must be for.
    pub api: String,
    pub error_shape: ErrorShape,
    /// Deadline for the upstream's response head, from the end of the request body.
    pub timeout: Duration,
    /// Longest pause in a body streamed either way before it is ended.
    pub body_idle_timeout: Duration,
    pub forward_authorization: bool,
    /// A scope every non-read request must carry.
    pub write_scope: Option<String>,
    pub max_body_bytes: Option<u64>,
    /// The URL of this route's RFC 9728 metadata, named in its Bearer challenges; `None` when
    /// the issuer is no URL to build it from.
    pub resource_metadata: Option<std::sync::Arc<str>>,
    pub cors: Cors,
    /// Only DPoP-bound tokens (`dpop_bound_access_tokens_required`).
    pub dpop_required: bool,
}

impl Route {
    /// What a refusal on this route challenges the caller with (`guard::challenge`).
    pub fn challenge<'a>(
        &'a self,
        g: &'a crate::state::Generation,
    ) -> crate::errors::Challenge<'a> {
        let metadata = self.resource_metadata.as_deref();
        crate::guard::challenge(g, (metadata, self.dpop_required))
    }
}

/// The gateway's URL for a path: the issuer's origin (scheme and authority) and the path.
/// `None` when the issuer is not an http(s) URL.
pub fn url_for(issuer: &str, path: &str) -> Option<String> {
    let uri: http::Uri = issuer.parse().ok()?;
    let scheme = uri
        .scheme_str()
        .filter(|s| matches!(*s, "https" | "http"))?;
    Some(format!("{scheme}://{}{path}", uri.authority()?))
}

/// Where the RFC 9728 metadata of a route prefix is served (§3.1: inserted before the path).
pub fn resource_metadata_path(prefix: &str) -> String {
    match prefix {
        "/" => PROTECTED_RESOURCE_METADATA.to_owned(),
        p => format!("{PROTECTED_RESOURCE_METADATA}{p}"),
    }
}

/// What a request is for.
pub enum Target<'g> {
    Own(Own<'g>),
    Route(&'g Route),
    NotFound,
}

/// A request the gateway answers itself.
pub enum Own<'g> {
    Token(&'g TokenEndpoint),
    OAuth(&'g OAuthEndpoint),
    Health,
    Jwks,
    /// An RFC 8414 / RFC 9728 metadata document (`dispatch` looks these up).
    Document(&'g bytes::Bytes),
    /// A CORS preflight under this policy, refused in this shape (`dispatch` decides).
    Preflight(&'g crate::cors::Policy, ErrorShape),
    /// A decision a proxy asks for (`decision`).
    Decision(&'g Decision),
}

impl Own<'_> {
    /// Whether the answer reads the request's body (a form or JSON, `endpoint`).
    pub fn reads_body(&self) -> bool {
        matches!(self, Own::Token(_) | Own::OAuth(_))
    }
}

/// Token, revocation and introspection endpoints first (any method: a GET is answered 405
/// there), then the gateway's own read-only documents, then the longest matching route prefix.
pub fn resolve<'g>(
    endpoints: &'g [TokenEndpoint],
    oauth: &'g [OAuthEndpoint],
    routes: &'g [Route],
    method: &Method,
    path: &str,
) -> Target<'g> {
    if let Some(ep) = endpoints.iter().find(|e| e.path == path) {
        return Target::Own(Own::Token(ep));
    }
    if let Some(ep) = oauth.iter().find(|e| e.path == path) {
        return Target::Own(Own::OAuth(ep));
    }
    match path {
        HEALTH_PATH if is_read(method) => return Target::Own(Own::Health),
        JWKS_PATH if is_read(method) => return Target::Own(Own::Jwks),
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

/// Why a guarded path is refused, if it is. Upstreams disagree on how they read a path, so a
/// path that one of them could take for another route's is refused rather than forwarded:
///
/// * a `.` or `..` segment (RFC 3986 §5.2.4), also percent-encoded (`%2e`) or with a `;`
///   parameter after it (`..;/`, which Tomcat and Spring treat as `..`);
/// * an encoded `/` or `\` (`%2f`, `%5c`), which an upstream that decodes before splitting
///   takes for a separator, and a raw `\`, which some take for one too;
/// * a double-encoded `.`, `/` or `\` (`%252e`, `%252f`, `%255c`), for upstreams that decode
///   twice; and an encoded NUL (`%00`).
///
/// Everything else (`;` parameters on other segments, `..b`, `v1.2`) is forwarded as it is.
pub fn path_refusal(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    // Most paths have no '%', no '\\' and no "/.": decide those in one pass.
    if !bytes.iter().any(|&b| b == b'%' || b == b'\\') && !path.contains("/.") {
        return None;
    }
    if bytes.contains(&b'\\') {
        return Some("the path may not contain a backslash");
    }
    for (i, _) in path.match_indices('%') {
        match hex_pair(bytes, i + 1) {
            Some(b'/' | b'\\') => return Some("the path may not contain an encoded / or \\"),
            Some(0) => return Some("the path may not contain an encoded NUL"),
            // "%25" is an encoded '%': what follows it is double-encoded.
            Some(b'%') if matches!(hex_pair(bytes, i + 3), Some(b'.' | b'/' | b'\\')) => {
                return Some("the path may not contain double-encoded characters");
            }
            _ => {}
        }
    }
    let dot_segment = path.split('/').any(|seg| {
        let name = seg.split(';').next().unwrap_or("");
        let name = name.replace("%2e", ".").replace("%2E", ".");
        name == "." || name == ".."
    });
    dot_segment.then_some("the path may not contain . or .. segments")
}

/// The byte two hex digits at `at` stand for.
fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let hex = |b: &u8| (*b as char).to_digit(16);
    match bytes.get(at..at + 2)? {
        [h, l] => Some((hex(h)? * 16 + hex(l)?) as u8),
        _ => None,
    }
}

/// Route "/api/" for API "store", write scope "write", to 127.0.0.1:9000.
#[cfg(test)]
pub(crate) fn for_tests() -> Route {
    Route {
        prefix: "/api/".into(),
        label: "/api/".into(),
        upstream_scheme: http::uri::Scheme::HTTP,
        upstream_authority: "127.0.0.1:9000".parse().unwrap(),
        upstream_dial: "127.0.0.1:9000".parse().unwrap(),
        upstream_tls: None,
        api: "store".into(),
        error_shape: ErrorShape::OAuth,
        timeout: Duration::from_secs(1),
        body_idle_timeout: Duration::from_secs(1),
        forward_authorization: false,
        write_scope: Some("write".into()),
        max_body_bytes: None,
        resource_metadata: None,
        cors: Cors::Off,
        dpop_required: false,
    }
}

#[cfg(test)]
mod tests {
    use super::path_refusal;

    #[test]
    fn paths_an_upstream_could_read_as_another_route_are_refused() {
        for p in [
            "/admin/../shop",
            "/a/./b",
            "/a/..",
            "/a/%2e%2E/b",
            "/a/.%2e/b",
            "/a/%2E",
            "/admin/..;/shop",
            "/admin/..;jsessionid=x/shop",
            "/admin/%2e%2e;/shop",
            "/admin/..%2fshop",
            "/admin/%2e%2e%2fshop",
            "/admin/..%5cshop",
            "/admin/..%5Cshop",
            "/admin/..\\shop",
            "/admin\\..\\shop",
            "/admin/%252e%252e/shop",
            "/admin/%252fshop",
            "/admin/%255c",
            "/admin/x%00.json",
        ] {
            assert!(path_refusal(p).is_some(), "{p}");
        }
        for p in [
            "/api/products",
            "/a/.well-known",
            "/a/..b",
            "/a/b.json",
            "/a/%2ex",
            "/a/v1.2/b",
            "/a;v=1/b",
            "/a/b;c=d",
            "/a/%20space",
            "/a/%25",
            "/a/%2525",
            "/a/100%",
            "/",
        ] {
            assert_eq!(path_refusal(p), None, "{p}");
        }
    }
}
