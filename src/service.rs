//! Per-request dispatch: health, JWKS, token endpoints, or guard + proxy. `handle` wraps
//! `handle_inner` to write the one access-log line per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::Body;
use crate::clients::Client;
use crate::config::{Config, Route};
use crate::errors::Refusal;
use crate::proxy::{self, Upstream};
use crate::token::issue::TokenIssuer;
use crate::token::keys::KeySet;
use crate::token::verify::Verifier;

pub const HEALTH_PATH: &str = "/healthz";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Everything a request needs, built once at start-up.
pub struct State {
    pub config: Config,
    pub keys: Arc<KeySet>,
    pub issuer: TokenIssuer,
    pub verifier: Verifier,
    pub upstream: Upstream,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl State {
    /// Loads keys and certificates (generating development files where the config allows).
    pub fn new(config: Config) -> anyhow::Result<State> {
        let tls = match &config.tls {
            Some(files) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::load(files)?)),
            None => None,
        };
        let keys = Arc::new(KeySet::load(&config.signing).context("loading the signing keys")?);
        let issuer = TokenIssuer::new(
            keys.clone(),
            config.issuer.clone(),
            config.token_lifetime.as_secs(),
        );
        let verifier = Verifier::new(
            keys.clone(),
            config.clients.clone(),
            &config.issuer,
            config.leeway.as_secs(),
            config.cache_capacity,
            config.cache_ttl,
        );
        let upstream = Upstream::new(
            config.upstream_connect_timeout,
            config.upstream_idle_timeout,
        );
        Ok(State {
            config,
            keys,
            issuer,
            verifier,
            upstream,
            tls,
        })
    }
}

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer's address as the `X-Forwarded-For` value, made once per connection.
    pub forwarded_for: HeaderValue,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        let forwarded_for = HeaderValue::from_str(&peer.ip().to_string())
            .expect("an IP address is a valid header value");
        ConnInfo {
            peer,
            tls,
            forwarded_for,
        }
    }
}

/// Answers one request and logs it (path without query: queries can carry secrets).
pub async fn handle(req: Request<Incoming>, state: &State, conn: &ConnInfo) -> Response<Body> {
    if !tracing::enabled!(target: "storegate::access", tracing::Level::INFO) {
        return handle_inner(req, state, conn).await.0;
    }
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let (resp, client) = handle_inner(req, state, conn).await;
    tracing::info!(
        target: "storegate::access",
        method = %method,
        path = uri.path(),
        status = resp.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        client_id = client.as_ref().map_or("-", |c| c.id.as_str()),
        peer = %conn.peer.ip(),
    );
    resp
}

async fn handle_inner(
    req: Request<Incoming>,
    state: &State,
    conn: &ConnInfo,
) -> (Response<Body>, Option<Arc<Client>>) {
    let path = req.uri().path();
    let cfg = &state.config;
    if let Some(ep) = cfg.token_endpoints.iter().find(|e| e.path == path) {
        return crate::endpoint::handle(req, ep, state).await;
    }
    match path {
        HEALTH_PATH if is_read(req.method()) => {
            return (
                json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}")),
                None,
            );
        }
        JWKS_PATH if is_read(req.method()) => {
            let mut resp = json(StatusCode::OK, state.keys.jwks.clone());
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            return (resp, None);
        }
        _ => {}
    }
    let Some(route) = find_route(&cfg.routes, path) else {
        return (
            Refusal::NotFound.into_response(cfg.default_error_shape, &cfg.realm),
            None,
        );
    };
    if has_dot_segment(path) {
        // "/admin/../shop/x" matches the /admin/ route here but may be /shop/x to an upstream
        // that normalizes paths: refuse rather than guess which API it is for.
        let refusal = Refusal::InvalidRequest("the path may not contain . or .. segments");
        return (refusal.into_response(route.error_shape, &cfg.realm), None);
    }
    let who = match guard(&req, route, state) {
        Ok(who) => who,
        Err(refusal) => return (refusal.into_response(route.error_shape, &cfg.realm), None),
    };
    let client = Some(who.client.clone());
    match state.upstream.forward(req, route, &who, conn).await {
        Ok(resp) => (resp, client),
        Err(refusal) => (refusal.into_response(route.error_shape, &cfg.realm), client),
    }
}

fn is_read(m: &Method) -> bool {
    *m == Method::GET || *m == Method::HEAD
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
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

/// Routes are sorted longest prefix first, so the first match is the most specific.
pub fn find_route<'r>(routes: &'r [Route], path: &str) -> Option<&'r Route> {
    routes.iter().find(|r| path.starts_with(r.prefix.as_str()))
}

/// The Bearer token of a request (RFC 6750 §2.1).
pub fn bearer_token(headers: &http::HeaderMap) -> Result<&str, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Refusal::MissingToken);
    };
    let value = value
        .to_str()
        .map_err(|_| Refusal::InvalidToken("the token is malformed"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(Refusal::InvalidToken("the token is malformed"))
            } else {
                Ok(token)
            }
        }
        // Another scheme is no Bearer token at all: answer with the challenge (RFC 6750 §3).
        _ => Err(Refusal::MissingToken),
    }
}

fn guard(
    req: &Request<Incoming>,
    route: &Route,
    state: &State,
) -> Result<Arc<crate::token::verify::Verified>, Refusal> {
    let token = bearer_token(req.headers())?;
    // The verifier also refuses tokens of clients removed from the config.
    let who = state.verifier.verify(token)?;
    proxy::authorize(req.method(), route, &who)?;
    if let Some(limit) = &who.client.rate_limit
        && !limit.try_take(Instant::now())
    {
        return Err(Refusal::TooManyRequests);
    }
    Ok(who)
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
