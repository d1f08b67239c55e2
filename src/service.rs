//! Per-request dispatch: health, JWKS and metadata documents, the token, revocation and
//! introspection endpoints, or guard + proxy. `handle` loads the
//! current generation once, turns the request's `Outcome` into a response (the one place a
//! refusal is rendered) and writes the one access-log line per request.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::Body;
use crate::conn::ConnInfo;
use crate::errors::{ErrorShape, Refusal};
use crate::outcome::Outcome;
use crate::request_id::X_REQUEST_ID;
use crate::routes::{self, Target};
use crate::state::{Generation, Shared, State};

/// `Cache-Control` of the JWKS: how long upstreams may keep it. A key published as
/// `signing.next_key` should stay published at least this long before it signs.
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// Answers one request: gives it a request id (kept from the caller when well-formed, sent
/// upstream and back), counts it in the route's metrics, says `Connection: close` to HTTP/1.1
/// callers while the gateway drains, and writes the access log line (path without query:
/// queries can carry secrets).
pub async fn handle(mut req: Request<Incoming>, state: &State, conn: &ConnInfo) -> Response<Body> {
    let g = state.load();
    let shared = &state.shared;
    let start = Instant::now();
    let request_id = shared.request_ids.of(req.headers_mut());
    let version = req.version();
    // A refused CONNECT ends an HTTP/1 connection: nothing after it is read as a request.
    let closes = req.method() == Method::CONNECT && version < Version::HTTP_2;
    let logged = access_log_on().then(|| {
        (
            req.method().clone(),
            req.uri().clone(),
            length(req.headers()),
        )
    });
    let outcome = handle_inner(req, &g, shared, conn).await;
    let (client, route) = (outcome.client.clone(), outcome.route.clone());
    let mut resp = outcome.into_response(&g.config.realm);
    let elapsed = start.elapsed();
    if let Some(route) = &route {
        shared
            .metrics
            .request(route, resp.status().as_u16(), elapsed.as_secs_f64());
    }
    if closes || (version == Version::HTTP_11 && shared.health.is_draining()) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some((method, uri, bytes_in)) = logged {
        access_log(&AccessLine {
            method: method.as_str(),
            route: route.as_deref(),
            path: uri.path(),
            status: resp.status().as_u16(),
            elapsed,
            client_id: client.as_ref().map(|c| c.id.as_str()),
            bytes_in,
            bytes_out: length(resp.headers()),
            protocol: version,
            request_id: request_id.as_bytes(),
            peer: conn.peer.ip(),
        });
    }
    resp.headers_mut().insert(X_REQUEST_ID, request_id);
    resp
}

/// Whether access log lines are written (the `storegate::access` target at info).
pub fn access_log_on() -> bool {
    tracing::enabled!(target: "storegate::access", tracing::Level::INFO)
}

/// One request's access log line.
pub struct AccessLine<'a> {
    pub method: &'a str,
    pub route: Option<&'a str>,
    /// Without the query: queries can carry secrets.
    pub path: &'a str,
    pub status: u16,
    pub elapsed: std::time::Duration,
    pub client_id: Option<&'a str>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub protocol: Version,
    pub request_id: &'a [u8],
    pub peer: std::net::IpAddr,
}

/// Writes the access log line of a request (call it only when `access_log_on`).
pub fn access_log(line: &AccessLine<'_>) {
    tracing::info!(
        target: "storegate::access",
        method = %line.method,
        route = line.route.unwrap_or("-"),
        path = line.path,
        status = line.status,
        latency_us = line.elapsed.as_micros() as u64,
        client_id = line.client_id.unwrap_or("-"),
        bytes_in = line.bytes_in,
        bytes_out = line.bytes_out,
        protocol = ?line.protocol,
        request_id = std::str::from_utf8(line.request_id).unwrap_or("-"),
        peer = %line.peer,
    );
}

/// A message's body size as its `Content-Length` says (`None` when streamed without one).
pub fn length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

async fn handle_inner(
    req: Request<Incoming>,
    g: &Generation,
    shared: &Shared,
    conn: &ConnInfo,
) -> Outcome {
    let cfg = &g.config;
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > cfg.limits.max_uri_bytes {
        return refuse(req, Refusal::UriTooLong, cfg.default_error_shape).await;
    }
    if req.method() == Method::CONNECT {
        return refuse(req, Refusal::Connect, cfg.default_error_shape).await;
    }
    let path = req.uri().path();
    // Only the well-known paths are looked up, so the guarded path pays no hash for it.
    if path.starts_with("/.well-known/")
        && let Some(doc) = g.documents.get(path)
        && (req.method() == Method::GET || req.method() == Method::HEAD)
    {
        return Outcome::new(Ok(document(doc.clone())), cfg.default_error_shape);
    }
    let (endpoints, oauth) = (&cfg.token_endpoints, &cfg.oauth_endpoints);
    let route = match routes::resolve(endpoints, oauth, &cfg.routes, req.method(), path) {
        Target::Token(ep) => return crate::endpoint::handle(req, ep, g, shared, conn).await,
        Target::OAuth(ep) => return crate::endpoint::handle_oauth(req, ep, g, shared, conn).await,
        Target::Health => {
            let body = Bytes::from_static(b"{\"status\":\"ok\"}");
            return Outcome::new(Ok(json(StatusCode::OK, body)), cfg.default_error_shape);
        }
        Target::Jwks => return Outcome::new(Ok(jwks(g)), cfg.default_error_shape),
        Target::NotFound => return refuse(req, Refusal::NotFound, cfg.default_error_shape).await,
        Target::Route(route) => route,
    };
    if let Some(why) = routes::path_refusal(path) {
        // "/admin/../shop/x" matches the /admin/ route here but may be /shop/x to an upstream
        // that normalizes paths: refuse rather than guess which API it is for.
        return Outcome {
            route: Some(route.label.clone()),
            ..refuse(req, Refusal::InvalidRequest(why), route.error_shape).await
        };
    }
    let who = match crate::guard::check(req.method(), authorization(&req), route, g, shared, None) {
        Ok(who) => who,
        Err(refusal) => {
            return Outcome {
                resource_metadata: route.resource_metadata.clone(),
                route: Some(route.label.clone()),
                ..refuse(req, refusal, route.error_shape).await
            };
        }
    };
    let result = shared.upstream.forward(req, route, &who, conn).await;
    Outcome {
        client: Some(who.client.clone()),
        route: Some(route.label.clone()),
        ..Outcome::new(result, route.error_shape)
    }
}

fn authorization<B>(req: &Request<B>) -> Option<&[u8]> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
}

/// A refusal of a request whose body is still unread.
async fn refuse(req: Request<Incoming>, refusal: Refusal, shape: ErrorShape) -> Outcome {
    crate::body::drain_for_refusal(req).await;
    Outcome::refused(refusal, shape)
}

fn jwks(g: &Generation) -> Response<Body> {
    document(g.keys.jwks.clone())
}

/// A public JSON document (JWKS, metadata), cacheable as long as the JWKS.
fn document(body: Bytes) -> Response<Body> {
    let mut resp = json(StatusCode::OK, body);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(JWKS_CACHE_CONTROL),
    );
    resp
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
