//! The relay's answer to a request it took: the upstream's, relayed (`exchange`), a refusal,
//! or the gateway's own answer (`own::answer`, the code hyper's path calls), written as bytes;
//! then the request is recorded with `access::finish`, as hyper's path records its requests.

use std::io::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Version;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::Kept;
use super::decide::{Plan, Seen};
use super::exchange::{self, Failure};
use super::head;
use super::response_head::{self, ResponseEdits};
use crate::access::{self, Finished};
use crate::conn::ConnInfo;
use crate::errors::{Challenge, Refusal};
use crate::forwarding;
use crate::routes::Route;
use crate::state::{Generation, Shared, State};

/// Answers a request; returns whether the caller's connection closes after it (`None`: it is
/// gone already).
pub(super) async fn answer<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    kept: &mut Kept,
    plan: Plan<'_>,
    seen: &Seen<'_>,
    mut edits: ResponseEdits<'_>,
    started: Instant,
    (g, state, conn): (&Generation, &State, &ConnInfo),
) -> Option<bool> {
    let shared = &state.shared;
    let fixed = &shared.fixed;
    // A body not read to its end leaves nothing to read the next head from.
    let unread = seen.body_left > 0;
    let mut auth = None;
    // One of the gateway's own answers: its route label and the request it judged (decisions).
    let (mut own_route, mut judged) = (None, None);
    let (status, bytes_out, client, route) = match plan {
        Plan::Forward(route, who) => {
            let req = exchange::Request {
                authority: &route.upstream_dial,
                bytes: &kept.upstream_out,
                body_left: seen.body_left,
                head_request: seen.head_request,
                resendable: seen.resendable,
                connect_timeout: fixed.upstream_connect_timeout,
                timeout: route.timeout,
                body_idle: route.body_idle_timeout,
                max_head: fixed.limits.max_upstream_head_bytes,
                parking: &state.shared.parking,
            };
            let (status, len) = match kept.link.exchange(&req, io, edits, &mut kept.out).await {
                Ok(r) => {
                    edits.close |= r.close;
                    (r.status, r.bytes_out)
                }
                Err(Err(exchange::Broken)) | Err(Ok(Failure::CallerGone)) => return None,
                Err(Ok(failure)) => {
                    edits.close |= unread;
                    let refusal = upstream_failure(shared, route, failure);
                    let resp = refusal.rendered(route.error_shape, &route.challenge(g));
                    let idle = route.body_idle_timeout;
                    let write = Writing {
                        seen,
                        edits: &edits,
                        idle,
                    };
                    write.own(io, &mut kept.out, resp).await
                }
            };
            auth = who.as_ref().map(|w| w.auth());
            (status, len, who.map(|w| w.client.clone()), Some(route))
        }
        Plan::Refuse {
            refusal,
            shape,
            route,
        } => {
            edits.close |= unread;
            let idle = route.map_or(g.config.body_read_timeout, |r| r.body_idle_timeout);
            let write = Writing {
                seen,
                edits: &edits,
                idle,
            };
            let at = route.map_or_else(|| Challenge::bearer(&g.config.realm), |r| r.challenge(g));
            let resp = refusal.rendered(shape, &at);
            let (status, len) = write.own(io, &mut kept.out, resp).await;
            (status, len, None, route)
        }
        Plan::Own(own, asked) => {
            edits.close |= unread;
            // Boxed: the gateway's own answers (token endpoint, documents) are the largest
            // future here and rare on this path; inline, every relayed connection would carry
            // their size while idle.
            let mut outcome = Box::pin(crate::own::answer(own, *asked, g, shared, conn)).await;
            let client = outcome.client.clone();
            (auth, own_route, judged) = (outcome.auth, outcome.route.take(), outcome.judged.take());
            let (parts, body) = outcome.into_response(g).into_parts();
            // The gateway's own answers are whole in memory.
            let body = body.collect().await.map_or(Bytes::new(), |b| b.to_bytes());
            let write = Writing {
                seen,
                edits: &edits,
                idle: g.config.body_read_timeout,
            };
            let resp = http::Response::from_parts(parts, body);
            let (status, len) = write.own(io, &mut kept.out, resp).await;
            (status, len, client, None)
        }
    };
    let finished = Finished {
        route: route.map(|r| &r.label).or(own_route.as_ref()),
        status,
        elapsed: started.elapsed(),
        line: access::line(
            judged.as_ref(),
            (seen.access.as_ref()).map(|(m, p)| (m.as_str(), p.as_str())),
        ),
        client_id: client.as_ref().map(|c| c.id.as_str()),
        auth,
        bytes_in: seen.bytes_in,
        bytes_out,
        protocol: Version::HTTP_11,
        request_id: seen.request_id.as_bytes(),
        peer: conn.peer.ip(),
        decision: judged.is_some(),
    };
    access::finish(&shared.metrics, &conn.counted, &finished);
    Some(edits.close)
}

/// What an upstream failure is answered with: the one rule, `forwarding::refusal`.
fn upstream_failure(shared: &Shared, route: &Route, failure: Failure) -> Refusal {
    forwarding::refusal(&shared.metrics, route, failure.failed())
}

/// How a response the gateway made itself is written.
struct Writing<'a> {
    seen: &'a Seen<'a>,
    edits: &'a ResponseEdits<'a>,
    /// Longest the caller may take to read it.
    idle: Duration,
}

impl Writing<'_> {
    /// Writes `resp` whole; returns its status and length.
    async fn own<T: AsyncWrite + Unpin>(
        &self,
        io: &mut T,
        out: &mut Vec<u8>,
        resp: http::Response<Bytes>,
    ) -> (u16, Option<u64>) {
        out.clear();
        write_own_response(out, &resp, self.seen.head_request, self.edits);
        let written = async {
            io.write_all(out).await?;
            io.flush().await
        };
        let _ = tokio::time::timeout(self.idle, written).await;
        (resp.status().as_u16(), Some(resp.body().len() as u64))
    }
}

/// Writes a response the gateway made itself (a refusal), whole: its head with
/// `Content-Length`, `Date`, `x-request-id` (and `Connection: close`), then its body unless
/// the request was a HEAD.
fn write_own_response(
    out: &mut Vec<u8>,
    resp: &http::Response<bytes::Bytes>,
    head_request: bool,
    e: &ResponseEdits<'_>,
) {
    let status = resp.status();
    response_head::status_line(
        out,
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
    );
    for (name, value) in resp.headers() {
        head::field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let _ = write!(out, "content-length: {}\r\n", resp.body().len());
    head::field(out, b"date", e.date);
    head::field(out, b"x-request-id", e.request_id);
    response_head::cors_fields(out, e);
    if e.close {
        head::field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if !head_request {
        out.extend_from_slice(resp.body());
    }
}
