//! The HTTP/1.1 relay: a caller's HTTP/1.1 connection served the way nginx serves one. The
//! request head is parsed in place (httparse), guarded, edited on its way to the upstream
//! (`head`), and the response is relayed as the bytes it came in (`exchange`), with no
//! `Request`/`HeaderMap` built on either side and the upstream connection driven in the
//! caller's connection's own task.
//!
//! The relay takes only the plain case: an HTTP/1.1 request for a guarded route, with no body
//! or a `Content-Length` one. Anything else — the token endpoints and the gateway's own
//! documents, chunked or `Expect` bodies, upgrades, HTTP/1.0, a head hyper would refuse — is
//! handed to hyper with the bytes read so far (`Prefixed`), and hyper serves the connection
//! from then on, exactly as it serves one that never met the relay. So every refusal of a
//! malformed head, and every limit, is hyper's and the service's as before; the relay renders
//! only the guard's refusals and the upstream's failures, through the same `errors` table.

pub mod chunked;
mod exchange;
pub mod head;
mod prefixed;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use http::{Method, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::conn::ConnInfo;
use crate::errors::Refusal;
use crate::routes::{self, Target};
use crate::service::{self, AccessLine};
use crate::state::{Generation, Shared, State};
use crate::token::cache::Recent;
use crate::token::verified::Verified;
use exchange::{Failure, Link};
use head::{Edits, MAX_HEADERS, Parsed, RequestHead, ResponseEdits};
pub use prefixed::Prefixed;

/// How a relayed connection ended.
pub enum End<T> {
    Closed,
    /// Handed to hyper, with what was read of it.
    Hyper(Prefixed<T>),
}

/// What the relay makes of a request head it takes.
enum Plan {
    Refuse(Refusal),
    Forward(Arc<Verified>),
}

/// What is kept of a request head once its bytes are gone.
struct Seen {
    /// Index of its route in the generation's routes.
    route: usize,
    /// Bytes of the buffer it took: head, and the body bytes that came with it.
    consumed: usize,
    body_left: u64,
    head_request: bool,
    retry_safe: bool,
    close: bool,
    request_id: crate::request_id::Id,
    bytes_in: Option<u64>,
    /// Method and path, when access lines are written.
    access: Option<(String, String)>,
}

/// Serves HTTP/1.1 requests on `io` until the connection ends or a request is one for hyper.
pub async fn serve<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    state: &State,
    conn: &ConnInfo,
    mut stopping: watch::Receiver<bool>,
) -> End<T> {
    let shared = &state.shared;
    let fixed = &shared.fixed;
    let max_head = fixed.limits.max_header_bytes;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let (mut upstream_out, mut out) = (Vec::new(), Vec::new());
    let mut link = Link::default();
    let mut counted = None;
    let mut recent = Recent::default();
    let mut wait = fixed.header_read_timeout;
    loop {
        // Between requests the idle timeout; once a head has begun (pipelined behind the last
        // request, or its first bytes read), the rest of it within the header read timeout.
        if !buf.is_empty() {
            wait = fixed.header_read_timeout;
        }
        let mut deadline = tokio::time::Instant::now() + wait;
        let (decided, g, started) = loop {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match head::parse_request(&buf, &mut slots, fixed.limits.max_headers) {
                // However it arrived, a head over the limit is hyper's to refuse (431).
                Parsed::Head(h) if h.len > max_head => return End::Hyper(Prefixed::new(buf, io)),
                Parsed::Head(h) => {
                    let started = Instant::now();
                    // Each request loads the generation current when it starts.
                    let g = state.load();
                    upstream_out.clear();
                    let out = &mut upstream_out;
                    let decided = decide(&h, &buf, &g, shared, conn, &mut recent, out);
                    break (decided, g, started);
                }
                Parsed::Elsewhere => return End::Hyper(Prefixed::new(buf, io)),
                Parsed::Partial if buf.len() > max_head => {
                    return End::Hyper(Prefixed::new(buf, io));
                }
                Parsed::Partial => {}
            }
            let was_empty = buf.is_empty();
            buf.reserve(4096);
            tokio::select! {
                read = io.read_buf(&mut buf) => match read {
                    Ok(n) if n > 0 => {}
                    _ => return End::Closed,
                },
                _ = tokio::time::sleep_until(deadline) => return End::Closed,
                _ = stopping.wait_for(|s| *s) => return End::Closed,
            }
            if was_empty {
                // The rest of the head within the header read timeout.
                deadline = tokio::time::Instant::now() + fixed.header_read_timeout;
            }
        };
        let Some((plan, seen)) = decided else {
            return End::Hyper(Prefixed::new(buf, io));
        };
        let allowed = match plan {
            Plan::Refuse(refusal) => Err(refusal),
            Plan::Forward(who) => Ok(who),
        };
        buf.advance(seen.consumed);
        let route = &g.config.routes[seen.route];
        let date = http_date();
        let mut edits = ResponseEdits {
            request_id: seen.request_id.as_bytes(),
            close: seen.close || shared.health.is_draining() || *stopping.borrow(),
            date: &date,
        };
        let (status, bytes_out, client) = match allowed {
            Ok(who) => {
                let req = exchange::Request {
                    authority: &route.upstream_authority,
                    bytes: &upstream_out,
                    body_left: seen.body_left,
                    head_request: seen.head_request,
                    retry_safe: seen.retry_safe,
                    connect_timeout: fixed.upstream_connect_timeout,
                    timeout: route.timeout,
                    body_idle: route.body_idle_timeout,
                    max_head: fixed.limits.max_upstream_head_bytes,
                };
                match link.exchange(&req, &mut io, edits, &mut out).await {
                    Ok(r) => {
                        edits.close |= r.close;
                        (r.status, r.bytes_out, Some(who))
                    }
                    Err(Err(exchange::Broken)) | Err(Ok(Failure::CallerGone)) => {
                        return End::Closed;
                    }
                    Err(Ok(failure)) => {
                        // A body not read to its end leaves nothing to read the next head from.
                        edits.close |= seen.body_left > 0;
                        let refusal = refused(shared, route, failure);
                        let (status, len) =
                            refuse(&mut io, &mut out, refusal, &g, route, &seen, &edits).await;
                        (status, len, Some(who))
                    }
                }
            }
            Err(refusal) => {
                // Its body is not read: the connection cannot serve another request.
                edits.close |= seen.body_left > 0;
                let (status, len) =
                    refuse(&mut io, &mut out, refusal, &g, route, &seen, &edits).await;
                (status, len, None)
            }
        };
        let client = client.as_ref().map(|w| w.client.id.as_str());
        let elapsed = started.elapsed();
        let seconds = elapsed.as_secs_f64();
        (shared.metrics).request_on(&mut counted, &route.label, status, seconds);
        access(conn, route, status, elapsed, &seen, bytes_out, client);
        if edits.close {
            let _ = tokio::time::timeout(CLOSE_TIME, io.shutdown()).await;
            return End::Closed;
        }
        wait = fixed.idle_timeout;
    }
}

/// Longest wait for a closing connection's last bytes (and TLS close_notify) to leave.
const CLOSE_TIME: Duration = Duration::from_secs(1);

/// Decides what to do with a request head (`None`: it is for hyper); for a request to
/// forward, writes the upstream's head and the body bytes that came with it into `out`.
fn decide(
    h: &RequestHead<'_, '_>,
    buf: &[u8],
    g: &Generation,
    shared: &Shared,
    conn: &ConnInfo,
    recent: &mut Recent,
    out: &mut Vec<u8>,
) -> Option<(Plan, Seen)> {
    let cfg = &g.config;
    let path = h.path();
    // What the service answers itself, refuses for its path or length, or routes elsewhere,
    // goes to hyper and the service, which answer it as they always have.
    let method = Method::from_bytes(h.method.as_bytes()).ok()?;
    let (endpoints, oauth) = (&cfg.token_endpoints, &cfg.oauth_endpoints);
    let Target::Route(route) = routes::resolve(endpoints, oauth, &cfg.routes, &method, path) else {
        return None;
    };
    if h.target.len() > cfg.limits.max_uri_bytes
        || path.starts_with("/.well-known/")
        || routes::path_refusal(path).is_some()
        || route.upstream_scheme != http::uri::Scheme::HTTP
        || route
            .max_body_bytes
            .is_some_and(|max| h.content_length > max)
    {
        return None;
    }
    let in_buf = (buf.len() - h.len).min(usize::try_from(h.content_length).unwrap_or(usize::MAX));
    let seen = Seen {
        route: cfg.routes.iter().position(|r| std::ptr::eq(r, route))?,
        consumed: h.len + in_buf,
        body_left: h.content_length - in_buf as u64,
        head_request: method == Method::HEAD,
        retry_safe: method.is_idempotent() && h.content_length == 0,
        close: h.close,
        request_id: shared.request_ids.keep_or_make(h.request_id),
        bytes_in: (h.content_length > 0).then_some(h.content_length),
        access: service::access_log_on().then(|| (h.method.to_owned(), path.to_owned())),
    };
    let plan = match crate::guard::check(&method, h.authorization, route, g, shared, Some(recent)) {
        Err(refusal) => Plan::Refuse(refusal),
        Ok(who) => {
            let edits = Edits {
                upstream: route.upstream_authority.as_str(),
                forward_authorization: route.forward_authorization,
                forwarded_for: conn.forwarded_for.as_bytes(),
                tls: conn.tls,
                client_id: who.client.id_header.as_bytes(),
                scope: who.scope.as_bytes(),
                grant: who.grant().as_str(),
                request_id: seen.request_id.as_bytes(),
            };
            head::write_upstream_head(out, h, &edits);
            out.extend_from_slice(&buf[h.len..seen.consumed]);
            Plan::Forward(who)
        }
    };
    Some((plan, seen))
}

/// What an upstream failure is answered with; counted and logged as the pooled path does.
fn refused(shared: &Shared, route: &routes::Route, failure: Failure) -> Refusal {
    let kind = match &failure {
        Failure::Upstream(kind, _) => kind,
        Failure::Timeout => "timeout",
        Failure::CallerIdle | Failure::CallerGone => return Refusal::RequestTimeout,
    };
    let labels = crate::metrics::RouteKind {
        route: route.label.clone(),
        kind,
    };
    shared.metrics.upstream_errors.get_or_create(&labels).inc();
    match failure {
        Failure::Upstream(_, error) => {
            tracing::warn!(route = %route.prefix, %error, "upstream request failed");
            Refusal::BadGateway
        }
        _ => {
            tracing::warn!(route = %route.prefix, "upstream did not answer within {:?}", route.timeout);
            Refusal::GatewayTimeout
        }
    }
}

/// Writes a refusal; returns its status and length.
async fn refuse<T: AsyncWrite + Unpin>(
    io: &mut T,
    out: &mut Vec<u8>,
    refusal: Refusal,
    g: &Generation,
    route: &routes::Route,
    seen: &Seen,
    edits: &ResponseEdits<'_>,
) -> (u16, Option<u64>) {
    let resp = refusal.rendered(
        route.error_shape,
        &g.config.realm,
        route.resource_metadata.as_deref(),
    );
    out.clear();
    head::write_own_response(out, &resp, seen.head_request, edits);
    let written = async {
        io.write_all(out).await?;
        io.flush().await
    };
    let _ = tokio::time::timeout(route.body_idle_timeout, written).await;
    (resp.status().as_u16(), Some(resp.body().len() as u64))
}

/// Writes the request's access line, when they are written.
fn access(
    conn: &ConnInfo,
    route: &routes::Route,
    status: u16,
    elapsed: Duration,
    seen: &Seen,
    bytes_out: Option<u64>,
    client_id: Option<&str>,
) {
    if let Some((method, path)) = &seen.access {
        service::access_log(&AccessLine {
            method,
            route: Some(&route.label),
            path,
            status,
            elapsed,
            client_id,
            bytes_in: seen.bytes_in,
            bytes_out,
            protocol: Version::HTTP_11,
            request_id: seen.request_id.as_bytes(),
            peer: conn.peer.ip(),
        });
    }
}

/// The `Date` header's value, made once a second per thread.
fn http_date() -> [u8; 29] {
    thread_local! {
        static DATE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((0, [0; 29])) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let (at, date) = d.get();
        if at == secs {
            return date;
        }
        let mut fresh = [b' '; 29];
        let text = httpdate::fmt_http_date(now);
        let n = text.len().min(29);
        fresh[..n].copy_from_slice(&text.as_bytes()[..n]);
        d.set((secs, fresh));
        fresh
    })
}
