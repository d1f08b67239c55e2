//! Forwarding a guarded request to its route's upstream over keep-alive HTTP/1.1: on the
//! caller's connection's own upstream connection (`affinity`), or through the shared pool
//! (HTTP/2 callers); bodies streamed both ways (never buffered whole), header hygiene,
//! `X-Forwarded-*`, and the verified identity in `x-storegate-*` headers.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, Uri, Version, header};
use http_body_util::Either;
use hyper::body::{Body as _, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

mod error;
mod streamed;

pub use error::UpstreamError;

use crate::Body;
use crate::affinity::Lease;
use crate::body::{Guarded, Track};
use crate::conn::ConnInfo;
use crate::errors::Refusal;
use crate::forwarding;
use crate::headers;
use crate::metrics::Metrics;
use crate::request_id::X_REQUEST_ID;
use crate::routes::Route;
use crate::token::verified::Verified;

/// The upstream side: the shared pool, and how a caller's own connections are opened.
pub struct Upstream {
    client: Client<crate::dial::Connector, Guarded>,
    /// The `https://` upstreams' client configs the connector opens connections with.
    tls: Arc<arc_swap::ArcSwap<crate::upstream_tls::Configs>>,
    metrics: Arc<Metrics>,
    /// For connections of a caller's own (`affinity`), as the pool's connector has them.
    connect_timeout: Duration,
    max_head: usize,
    /// Upstream connections of idle relayed callers, which HTTP/2 streams' relayed exchanges
    /// (`streamed`) take and park as the relay does.
    parking: Arc<crate::parking::Parking>,
}

impl Upstream {
    pub fn new(
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_head: usize,
        metrics: Arc<Metrics>,
        parking: Arc<crate::parking::Parking>,
    ) -> Upstream {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_keepalive(Some(UPSTREAM_TCP_KEEPALIVE));
        tcp.enforce_http(false);
        let connector = crate::dial::Connector {
            tcp,
            timeout: connect_timeout,
            tls: Arc::default(),
        };
        let tls = connector.tls.clone();
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(idle_timeout)
            .pool_max_idle_per_host(POOL_IDLE_MAX)
            .http1_max_buf_size(max_head.max(crate::limits::MIN_HEAD_BYTES))
            .build(connector);
        Upstream {
            client,
            tls,
            metrics,
            connect_timeout,
            max_head,
            parking,
        }
    }

    /// Opens `https://` upstream connections with `configs` from now on (a new generation's);
    /// connections open already keep theirs.
    pub fn use_tls(&self, configs: Arc<crate::upstream_tls::Configs>) {
        self.tls.store(configs);
    }

    /// Sends the request on and returns the upstream's response, its body streaming.
    pub async fn forward(
        &self,
        mut req: Request<Incoming>,
        route: &Route,
        who: Option<&Verified>,
        conn: &ConnInfo,
    ) -> Result<Response<Body>, Refusal> {
        // An HTTP/2 stream's (a caller with no upstream connection of its own) bodiless
        // request to a plain-HTTP upstream: on the relay's terms, from the stream's task.
        if conn.affinity.is_none()
            && route.upstream_scheme == http::uri::Scheme::HTTP
            && req.body().is_end_stream()
            && let Some(answer) = streamed::forward(self, &req, route, who, conn).await
        {
            return answer;
        }
        prepare_request(&mut req, route, who, conn)?;
        let limit = route.max_body_bytes.unwrap_or(u64::MAX);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            crate::body::drain_for_refusal(req).await;
            return Err(Refusal::PayloadTooLarge);
        }
        // A body without a length is cut off at the limit as it streams.
        let (parts, body) = req.into_parts();
        let body = Guarded::new(body, limit, route.body_idle_timeout);
        let sent = body.track();
        // Kept for the resend rule (`forwarding::resend`).
        let replay = forwarding::resendable(&parts.method, body.is_end_stream()).then(|| {
            let mut again = Request::new(Guarded::empty());
            *again.method_mut() = parts.method.clone();
            *again.uri_mut() = parts.uri.clone();
            *again.headers_mut() = parts.headers.clone();
            again
        });
        let req = Request::from_parts(parts, body);
        let lease = conn
            .affinity
            .as_ref()
            .filter(|_| route.upstream_scheme == http::uri::Scheme::HTTP)
            .and_then(|slot| slot.checkout(&route.upstream_dial));
        let (resp, lease) = match lease {
            // Boxed: its state (the lease, hyper's connection futures) would otherwise size
            // every request's future, the pooled ones' too, and with them the heap's layout
            // (bytes per cached token: 1,066-1,101 unboxed, 876-879 boxed).
            Some(lease) => Box::pin(self.exchange_pinned(lease, req, replay, route, &sent)).await,
            None => (self.exchange_pooled(req, replay, route, &sent).await, None),
        };
        let resp = match resp {
            Some(Ok(resp)) => resp,
            Some(Err(e)) => return Err(self.failure(route, &sent, Some(&e))),
            None => return Err(self.failure(route, &sent, None)),
        };
        let (mut parts, body) = resp.into_parts();
        let codings = parts.headers.get_all(header::TRANSFER_ENCODING);
        if codings.iter().next().is_some()
            && !headers::relayed_coding(codings.iter().map(HeaderValue::as_bytes))
        {
            // The lease, dropped unfinished, does not keep the connection.
            return Err(self.failure(route, &sent, Some(&UpstreamError::Coding)));
        }
        headers::strip_response(&mut parts.headers);
        let mut body = Guarded::from_upstream(body, route.body_idle_timeout);
        match lease {
            // Nothing to read: the connection is ready for the next request.
            Some(lease) if body.is_end_stream() => lease.done(),
            Some(lease) => body = body.driven_by(Box::new(lease)),
            None => {}
        }
        Ok(Response::from_parts(parts, Either::Right(body)))
    }

    /// The exchange through the shared pool (HTTP/2 callers).
    async fn exchange_pooled(
        &self,
        req: Request<Guarded>,
        replay: Option<Request<Guarded>>,
        route: &Route,
        sent: &Track,
    ) -> Option<Result<Response<Incoming>, UpstreamError>> {
        let answer = async { self.client.request(req).await.map_err(UpstreamError::Pool) };
        match head_within(route.timeout, sent, answer).await {
            // Whether the pool reused the connection is not told: a new one that closes
            // unanswered is sent again too, once.
            Some(Err(e))
                if forwarding::resend(replay.is_some(), true, e.closed_before_answering()) =>
            {
                tracing::debug!(route = %route.prefix, "upstream closed a pooled connection; sending again");
                let again = self.client.request(replay.expect("checked above"));
                let again = async { again.await.map_err(UpstreamError::Pool) };
                head_within(route.timeout, sent, again).await
            }
            other => other,
        }
    }

    /// The exchange on the caller's connection's own upstream connection (`affinity`).
    async fn exchange_pinned(
        &self,
        mut lease: Lease,
        req: Request<Guarded>,
        replay: Option<Request<Guarded>>,
        route: &Route,
        sent: &Track,
    ) -> (
        Option<Result<Response<Incoming>, UpstreamError>>,
        Option<Lease>,
    ) {
        let reused = lease.reuses();
        let first = self.try_pinned(&mut lease, req, route, false);
        let resp = match head_within(route.timeout, sent, first).await {
            Some(Err(e))
                if forwarding::resend(replay.is_some(), reused, e.closed_before_answering()) =>
            {
                tracing::debug!(route = %route.prefix, "upstream closed a kept connection; sending again on a new one");
                let again = replay.expect("checked above");
                let again = self.try_pinned(&mut lease, again, route, true);
                head_within(route.timeout, sent, again).await
            }
            other => other,
        };
        let kept = matches!(resp, Some(Ok(_))).then_some(lease);
        (resp, kept)
    }
}

impl Upstream {
    /// One try on the lease's connection (on a new one when `fresh`).
    async fn try_pinned(
        &self,
        lease: &mut Lease,
        req: Request<Guarded>,
        route: &Route,
        fresh: bool,
    ) -> Result<Response<Incoming>, UpstreamError> {
        if fresh {
            lease.forget();
        }
        (lease
            .ready(
                (&route.upstream_dial, &route.upstream_authority),
                self.connect_timeout,
                self.max_head,
            )
            .await)
            .map_err(UpstreamError::Connect)?;
        (lease.send(origin_form(req)).await).map_err(UpstreamError::Exchange)
    }
}

/// The request target in origin form (`/path?query`), as sent on a connection of its own.
fn origin_form<B>(mut req: Request<B>) -> Request<B> {
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = Uri::from(path);
    req
}

/// Idle connections the shared pool keeps per upstream (HTTP/2 callers' requests; nginx's
/// `keepalive` plays this part). HTTP/1.1 callers' own connections are bounded by the callers.
const POOL_IDLE_MAX: usize = 64;

/// TCP keep-alive probes on upstream connections, so a vanished upstream host is noticed.
const UPSTREAM_TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The upstream's response head, if it comes within `timeout` of the end of the request body:
/// a long upload is not the upstream's delay (the body's own idle timeout ends a stalled one).
async fn head_within<F: std::future::Future>(
    timeout: Duration,
    sent: &Track,
    answer: F,
) -> Option<F::Output> {
    tokio::pin!(answer);
    let mut deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, &mut answer).await {
            Ok(out) => return Some(out),
            Err(_) => match sent.finished() {
                Some(at) if at + timeout > deadline => deadline = at + timeout,
                Some(_) => return None,
                None if sent.fault().is_some() => return None,
                None => deadline += timeout,
            },
        }
    }
}

/// Rewrites a client's request into the upstream's: URI, headers, identity (`None`: a CORS
/// preflight forwarded unguarded, `dispatch::Dispatch::Preflight`, carries none).
pub fn prepare_request<B>(
    req: &mut Request<B>,
    route: &Route,
    who: Option<&Verified>,
    conn: &ConnInfo,
) -> Result<(), Refusal> {
    let original_host = req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    // Keep the parsed path and query as they are; only the origin changes.
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(route.upstream_scheme.clone());
    // The pool's connector dials by the URI's authority (`dial`).
    parts.authority = Some(route.upstream_dial.clone());
    parts
        .path_and_query
        .get_or_insert_with(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = Uri::from_parts(parts)
        .map_err(|_| Refusal::InvalidRequest("the request target is malformed"))?;
    *req.version_mut() = Version::HTTP_11;

    let h = req.headers_mut();
    // The request id is the gateway's by now (`service::handle` kept or replaced the caller's).
    let request_id = h.get(X_REQUEST_ID).cloned();
    // Host among them: the client sets it from the upstream URI, unless the URI names a
    // unix socket (`dial`).
    headers::strip_request(h, route.forward_authorization);
    if route.upstream_dial != route.upstream_authority {
        let host = HeaderValue::from_str(route.upstream_authority.as_str());
        h.insert(
            header::HOST,
            host.expect("an authority is a valid header value"),
        );
    }
    if let Some(id) = request_id {
        h.insert(X_REQUEST_ID, id);
    }
    // storegate is where the caller's connection ends, so it states the peer rather than
    // extending a chain the caller could have written.
    h.insert(headers::X_FORWARDED_FOR, conn.forwarded_for.clone());
    h.insert(
        headers::X_FORWARDED_PROTO,
        HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
    );
    match original_host {
        Some(host) => h.insert(headers::X_FORWARDED_HOST, host),
        None => h.remove(headers::X_FORWARDED_HOST),
    };
    if let Some(who) = who {
        headers::insert_identity(h, who);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::Grant;
    use crate::routes::for_tests as route;

    #[test]
    fn request_is_rewritten_for_the_upstream() {
        let mut req = Request::builder()
            .uri("https://gw.example/api/products?page=2")
            .header(header::HOST, "gw.example")
            .header(header::AUTHORIZATION, "Bearer abc")
            .header(headers::CLIENT_ID, "admin")
            .header(headers::X_FORWARDED_FOR, "1.2.3.4")
            .header(header::CONNECTION, "close")
            .body(())
            .unwrap();
        let conn = ConnInfo::new("127.0.0.9:5555".parse().unwrap(), true);
        prepare_request(
            &mut req,
            &route(),
            Some(&crate::token::verified::for_tests(
                "store",
                Grant::ClientCredentials,
                "read write",
            )),
            &conn,
        )
        .unwrap();
        assert_eq!(req.uri(), "http://127.0.0.1:9000/api/products?page=2");
        let h = req.headers();
        assert_eq!(h[headers::CLIENT_ID], "c1");
        assert_eq!(h[headers::SCOPE], "read write");
        assert_eq!(h[headers::GRANT], "client_credentials");
        assert_eq!(h[headers::X_FORWARDED_FOR], "127.0.0.9");
        assert_eq!(h[headers::X_FORWARDED_PROTO], "https");
        assert_eq!(h[headers::X_FORWARDED_HOST], "gw.example");
        assert!(!h.contains_key(header::AUTHORIZATION));
        assert!(!h.contains_key(header::CONNECTION));
        assert!(!h.contains_key(header::HOST));
    }
}
