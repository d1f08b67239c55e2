//! HTTP/2 callers' bodiless requests to plain-HTTP upstreams, exchanged on the relay's terms
//! from the stream's own task (`relay::stream`), not through hyper's client: what the relay
//! forwards itself goes this way, with the relay's head rules, resend rule and failure rule.

use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;

use super::Upstream;
use crate::Body;
use crate::body::Guarded;
use crate::conn::ConnInfo;
use crate::errors::Refusal;
use crate::forwarding;
use crate::relay::head::{Edits, Who};
use crate::relay::stream;
use crate::request_id::X_REQUEST_ID;
use crate::routes::Route;
use crate::token::verified::Verified;

/// Forwards `req` this way if the relay would forward its head itself; `None` leaves it to
/// hyper's client.
pub(super) async fn forward(
    up: &Upstream,
    req: &Request<Incoming>,
    route: &Route,
    who: Option<&Verified>,
    conn: &ConnInfo,
) -> Option<Result<Response<Body>, Refusal>> {
    let mut caller = Vec::with_capacity(1024);
    stream::caller_head(req, &mut caller);
    let edits = Edits {
        upstream: route.upstream_authority.as_str(),
        forward_authorization: route.forward_authorization,
        forwarded_for: conn.forwarded_for.as_bytes(),
        tls: conn.tls,
        who: who.map(Who::of),
        // `service::handle` set it (the caller's, kept, or the gateway's).
        request_id: req.headers().get(X_REQUEST_ID)?.as_bytes(),
    };
    let mut bytes = Vec::with_capacity(caller.len() + 256);
    stream::upstream_head(&caller, &edits, &mut bytes)?;
    let exchange = stream::Request {
        authority: &route.upstream_dial,
        bytes: &bytes,
        body_left: 0,
        head_request: req.method() == http::Method::HEAD,
        resendable: forwarding::resendable(req.method(), true),
        connect_timeout: up.connect_timeout,
        timeout: route.timeout,
        body_idle: route.body_idle_timeout,
        max_head: up.max_head,
        parking: &up.parking,
    };
    let answered = match stream::exchange(&exchange, up.parking.clone()).await {
        Ok(answered) => answered,
        Err(failure) => {
            return Some(Err(forwarding::refusal(
                &up.metrics,
                route,
                failure.failed(),
            )));
        }
    };
    let body = Guarded::relayed(Box::pin(answered.body), route.body_idle_timeout);
    let mut resp = Response::new(Either::Right(body));
    *resp.status_mut() = answered.status;
    *resp.headers_mut() = answered.headers;
    Some(Ok(resp))
}
