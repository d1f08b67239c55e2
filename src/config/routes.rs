//! `[[token_endpoints]]` and `[[routes]]` -> the routing table.

use std::collections::HashSet;
use std::time::Duration;

use super::cors::CorsBase;
use super::raw::{RawOAuthEndpoint, RawRoute, RawTokenEndpoint};
use super::{
    ConfigError, DEFAULT_BODY_IDLE_TIMEOUT_MS, DEFAULT_UPSTREAM_TIMEOUT_MS, bad, positive,
};
use crate::clients::Clients;
use crate::errors::ErrorShape;
use crate::routes::{
    self as routing, EndpointShape, OAuthEndpoint, OAuthKind, Route, TokenEndpoint,
};

fn endpoint_shape(key: &str, s: &str) -> Result<EndpointShape, ConfigError> {
    match s {
        "connect-token" => Ok(EndpointShape::ConnectToken),
        "oauth2-token" => Ok(EndpointShape::Oauth2Token),
        "oauth-access-token" => Ok(EndpointShape::OauthAccessToken),
        other => Err(bad(
            key,
            format!(
                "unknown shape {other:?} (expected \"connect-token\", \"oauth2-token\" or \"oauth-access-token\")"
            ),
        )),
    }
}

pub(super) fn error_shape(key: &str, s: Option<&str>) -> Result<ErrorShape, ConfigError> {
    match s {
        None | Some("oauth") => Ok(ErrorShape::OAuth),
        Some("errors") => Ok(ErrorShape::Errors),
        Some(other) => Err(bad(
            key,
            format!("unknown error shape {other:?} (expected \"oauth\" or \"errors\")"),
        )),
    }
}

pub(super) fn endpoints(
    raw: &[RawTokenEndpoint],
    cors: &CorsBase,
) -> Result<Vec<TokenEndpoint>, ConfigError> {
    let mut seen = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, e)| {
            let key = format!("token_endpoints[{i}].path");
            endpoint_path(&key, &e.path)?;
            if !seen.insert(e.path.clone()) {
                return Err(bad(&key, format!("{:?} is mounted twice", e.path)));
            }
            let shape = endpoint_shape(&format!("token_endpoints[{i}].shape"), &e.shape)?;
            let key = format!("token_endpoints[{i}].");
            Ok(TokenEndpoint {
                path: e.path.clone(),
                label: e.path.as_str().into(),
                shape,
                cors: cors.target(&key, e.cors_allowed_origins.as_deref(), false)?,
            })
        })
        .collect()
}

/// A path the gateway answers at itself: plain, and none of its read-only documents.
fn endpoint_path(key: &str, path: &str) -> Result<(), ConfigError> {
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return Err(bad(
            key,
            format!("{path:?} must be a plain path starting with '/'"),
        ));
    }
    if path == routing::HEALTH_PATH || path.starts_with("/.well-known/") {
        return Err(bad(
            key,
            format!("{path:?} is one of the gateway's own documents"),
        ));
    }
    Ok(())
}

/// `[revocation]` and `[introspection]`: their paths (defaults, or as configured), which may
/// not be a token endpoint's or each other's.
pub(super) fn oauth_endpoints(
    revocation: &RawOAuthEndpoint,
    introspection: &RawOAuthEndpoint,
    token_endpoints: &[TokenEndpoint],
) -> Result<Vec<OAuthEndpoint>, ConfigError> {
    let sections = [
        (
            "revocation",
            revocation,
            OAuthKind::Revocation,
            routing::DEFAULT_REVOCATION_PATH,
        ),
        (
            "introspection",
            introspection,
            OAuthKind::Introspection,
            routing::DEFAULT_INTROSPECTION_PATH,
        ),
    ];
    let mut out: Vec<OAuthEndpoint> = Vec::with_capacity(2);
    for (section, raw, kind, default) in sections {
        let key = format!("{section}.path");
        let path = raw.path.as_deref().unwrap_or(default).to_owned();
        endpoint_path(&key, &path)?;
        if token_endpoints.iter().any(|e| e.path == path) || out.iter().any(|e| e.path == path) {
            return Err(bad(&key, format!("{path:?} is mounted twice")));
        }
        out.push(OAuthEndpoint {
            path,
            kind,
            error_shape: error_shape(
                &format!("{section}.error_shape"),
                raw.error_shape.as_deref(),
            )?,
        });
    }
    Ok(out)
}

/// Validates the routes and sorts them longest prefix first, so the first match is the most
/// specific one.
pub(super) fn routes(
    raw: &[RawRoute],
    clients: &Clients,
    (issuer, base): (&str, &std::path::Path),
    cors: &CorsBase,
) -> Result<Vec<Route>, ConfigError> {
    let mut seen = HashSet::new();
    let mut routes = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let k = |field: &str| format!("routes[{i}].{field}");
        if !r.prefix.starts_with('/') {
            return Err(bad(
                &k("prefix"),
                format!("{:?} must start with '/'", r.prefix),
            ));
        }
        if !seen.insert(r.prefix.clone()) {
            return Err(bad(&k("prefix"), format!("{:?} is routed twice", r.prefix)));
        }
        let (scheme, authority, dial) = upstream_origin(&k("upstream"), &r.upstream)?;
        let upstream_tls = upstream_tls(&k, r, &scheme, base)?;
        if let Some(other) = (routes.iter())
            .find(|o: &&Route| o.upstream_dial == dial && o.upstream_tls != upstream_tls)
        {
            return Err(bad(
                &k("upstream"),
                format!(
                    "reaches the upstream of route {:?} with other TLS settings; routes to one \
                     upstream share its connections, so give them the same",
                    other.prefix
                ),
            ));
        }
        if r.api.is_empty() || r.api.contains(char::is_control) {
            return Err(bad(
                &k("api"),
                format!("{:?} must be a name without control characters", r.api),
            ));
        }
        if !clients.any_for_api(&r.api) {
            tracing::warn!(route = %r.prefix, api = %r.api, "no client is registered for this route's API");
        }
        routes.push(Route {
            prefix: r.prefix.clone(),
            label: r.prefix.as_str().into(),
            upstream_scheme: scheme,
            upstream_authority: authority,
            upstream_dial: dial,
            upstream_tls,
            api: r.api.clone(),
            error_shape: error_shape(&k("error_shape"), r.error_shape.as_deref())?,
            timeout: Duration::from_millis(positive(
                &k("timeout_ms"),
                r.timeout_ms,
                DEFAULT_UPSTREAM_TIMEOUT_MS,
            )?),
            body_idle_timeout: Duration::from_millis(positive(
                &k("body_idle_timeout_ms"),
                r.body_idle_timeout_ms,
                DEFAULT_BODY_IDLE_TIMEOUT_MS,
            )?),
            forward_authorization: r.forward_authorization,
            write_scope: r.write_scope.clone(),
            max_body_bytes: r.max_body_bytes,
            resource_metadata: routing::url_for(
                issuer,
                &routing::resource_metadata_path(&r.prefix),
            )
            .map(Into::into),
            cors: cors.target(
                &k(""),
                r.cors_allowed_origins.as_deref(),
                r.cors_by_upstream,
            )?,
            dpop_required: r.dpop_bound_access_tokens_required,
        });
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Ok(routes)
}

/// An `https://` route's TLS files (relative to the config's folder); refused on any other.
fn upstream_tls(
    k: &dyn Fn(&str) -> String,
    r: &RawRoute,
    scheme: &http::uri::Scheme,
    base: &std::path::Path,
) -> Result<Option<crate::upstream_tls::Files>, ConfigError> {
    let named = [
        ("upstream_ca", r.upstream_ca.is_some()),
        ("upstream_client_cert", r.upstream_client_cert.is_some()),
        ("upstream_client_key", r.upstream_client_key.is_some()),
    ];
    if *scheme != http::uri::Scheme::HTTPS {
        return match named.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(bad(&k(key), "is for https:// upstreams only")),
            None => Ok(None),
        };
    }
    let client = match (&r.upstream_client_cert, &r.upstream_client_key) {
        (Some(cert), Some(key)) => Some((base.join(cert), base.join(key))),
        (None, None) => None,
        (Some(_), None) => return Err(bad(&k("upstream_client_key"), "is missing: give both")),
        (None, Some(_)) => return Err(bad(&k("upstream_client_cert"), "is missing: give both")),
    };
    Ok(Some(crate::upstream_tls::Files {
        ca: r.upstream_ca.as_ref().map(|ca| base.join(ca)),
        client,
    }))
}

/// Longest unix socket path (`sun_path` holds 108 bytes with its NUL on Linux).
const MAX_SOCKET_PATH: usize = 107;

/// An upstream given as "http://host:port" (only the origin: the path is kept as is), or as
/// "unix:/absolute/path.sock": its scheme, the authority its requests are sent (`Host`), and
/// the one its connections are dialled by (`dial`).
fn upstream_origin(
    key: &str,
    upstream: &str,
) -> Result<
    (
        http::uri::Scheme,
        http::uri::Authority,
        http::uri::Authority,
    ),
    ConfigError,
> {
    if let Some(socket) = upstream.strip_prefix("unix:") {
        let path = std::path::Path::new(socket);
        if !path.is_absolute() || socket.len() > MAX_SOCKET_PATH || socket.contains('\0') {
            return Err(bad(
                key,
                format!(
                    "{upstream:?}: a unix socket upstream is \"unix:\" and an absolute path of at \
                     most {MAX_SOCKET_PATH} bytes, e.g. \"unix:/run/app/app.sock\""
                ),
            ));
        }
        let dial = crate::dial::unix_authority(path).ok_or_else(|| {
            bad(
                key,
                format!("{upstream:?}: this socket path cannot be used"),
            )
        })?;
        let host = http::uri::Authority::from_static(crate::dial::UNIX_HOST);
        return Ok((http::uri::Scheme::HTTP, host, dial));
    }
    // A URL with a password in it is secret material: name the key, never echo the value.
    if upstream.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|a| a.contains('@'))
    }) {
        return Err(bad(
            key,
            "carries credentials (user:password@); storegate's upstreams take none",
        ));
    }
    let uri: http::Uri = upstream
        .parse()
        .map_err(|_| bad(key, format!("{upstream:?} is not a URL")))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(bad(
            key,
            format!("{upstream:?} needs a scheme and host, e.g. \"http://127.0.0.1:9000\""),
        ));
    };
    if scheme != &http::uri::Scheme::HTTP && scheme != &http::uri::Scheme::HTTPS {
        return Err(bad(
            key,
            format!("{upstream:?}: only http://, https:// and unix: upstreams are supported"),
        ));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(
            key,
            format!(
                "{upstream:?} must be an origin without a path; the request path is kept as it is"
            ),
        ));
    }
    Ok((scheme.clone(), authority.clone(), authority.clone()))
}
