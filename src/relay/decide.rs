//! What the relay makes of a request head: the same `dispatch` and `guard` hyper's path calls,
//! and the relay's own transport conditions (what it hands to hyper). For a request to
//! forward it writes the upstream's head; for one of the gateway's own targets it takes the
//! head and body out of its buffer as an `endpoint::Asked`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

use super::head::{self, Edits, RequestHead, Who};
use crate::access;
use crate::conn::ConnInfo;
use crate::cors;
use crate::dispatch::{Asking, Dispatch, Own, dispatch};
use crate::endpoint::Asked;
use crate::errors::{ErrorShape, Refusal};
use crate::forwarding;
use crate::request_id::Id;
use crate::routes::Route;
use crate::state::{Generation, Shared};
use crate::token::verified::Verified;

/// What the relay does with a request it takes.
pub(super) enum Plan<'g> {
    /// Forward it (its upstream head is written) on the route's upstream, for the verified
    /// caller (`None`: a CORS preflight the route's upstream answers).
    Forward(&'g Route, Option<Arc<Verified>>),
    /// Answer it with a refusal, in `shape`; `route` when it was for one.
    Refuse {
        refusal: Refusal,
        shape: ErrorShape,
        route: Option<&'g Route>,
    },
    /// The gateway's own answer (boxed: a request head is large, and rare on this path).
    Own(Own<'g>, Box<Asked>),
}

/// What becomes of a request head.
// Returned once per request and moved once: an allocation per request to box `Take` would
// cost more than the bytes it saves.
#[allow(clippy::large_enum_variant)]
pub(super) enum Decided<'g> {
    /// It is hyper's (the connection goes to hyper with the bytes read so far).
    Hyper,
    /// One of the gateway's own targets whose body is not all in yet: read on.
    MoreBody,
    Take(Plan<'g>, Seen<'g>),
}

/// What is kept of a request head once its bytes are gone.
pub(super) struct Seen<'g> {
    /// Bytes of the buffer it took: head, and the body bytes that came with it.
    pub consumed: usize,
    pub body_left: u64,
    pub head_request: bool,
    pub resendable: bool,
    pub close: bool,
    pub request_id: Id,
    pub bytes_in: Option<u64>,
    /// Method and path, when access lines are written.
    pub access: Option<(String, String)>,
    /// The CORS headers of its answer.
    pub cors: Option<cors::Answer<'g>>,
}

/// Decides what to do with a request head; for a request to forward, writes the upstream's
/// head and the body bytes that came with it into `out`. `late`: the body of a request for
/// one of the gateway's own targets did not come within `body_read_timeout_ms` (it is
/// refused as hyper's path refuses it, `endpoint::BODY_TOO_SLOW`).
pub(super) async fn decide<'g>(
    h: &RequestHead<'_, '_>,
    buf: &[u8],
    (g, shared, conn): (&'g Generation, &Shared, &ConnInfo),
    late: bool,
    out: &mut Vec<u8>,
) -> Decided<'g> {
    let Ok(method) = Method::from_bytes(h.method.as_bytes()) else {
        return Decided::Hyper;
    };
    let path = h.path();
    let cors_method = || (h.headers.iter()).any(|f| f.name.eq_ignore_ascii_case(CORS_METHOD));
    let asking = Asking {
        method: &method,
        target_len: h.target.len(),
        path,
        preflight: cors::is_preflight(
            &method,
            h.origin.is_some(),
            method == Method::OPTIONS && cors_method(),
        ),
    };
    let dispatched = dispatch(g, &shared.metrics, &asking);
    let in_buf = (buf.len() - h.len).min(usize::try_from(h.content_length).unwrap_or(usize::MAX));
    match &dispatched {
        // A body to read whole first; one over the endpoints' limit is hyper's to refuse.
        Dispatch::Own(_) if h.content_length > g.config.max_token_body_bytes as u64 => {
            return Decided::Hyper;
        }
        Dispatch::Own(_) if (in_buf as u64) < h.content_length && !late => {
            return Decided::MoreBody;
        }
        Dispatch::Route(route)
            if route.upstream_scheme != http::uri::Scheme::HTTP
                || route
                    .max_body_bytes
                    .is_some_and(|max| h.content_length > max) =>
        {
            return Decided::Hyper;
        }
        _ => {}
    }
    let seen = Seen {
        consumed: h.len + in_buf,
        body_left: h.content_length - in_buf as u64,
        head_request: method == Method::HEAD,
        resendable: forwarding::resendable(&method, h.content_length == 0),
        close: h.close,
        request_id: shared.request_ids.keep_or_make(h.request_id),
        bytes_in: (h.content_length > 0).then_some(h.content_length),
        access: access::access_log_on().then(|| (h.method.to_owned(), path.to_owned())),
        cors: dispatched.cors(g).map(|policy| policy.answer(h.origin)),
    };
    let plan = match dispatched {
        Dispatch::Own(own) => match asked(h, method, &buf[h.len..seen.consumed]) {
            Some(mut asked) => {
                if seen.body_left > 0 {
                    asked.body = Err(crate::endpoint::BODY_TOO_SLOW);
                }
                Plan::Own(own, Box::new(asked))
            }
            None => return Decided::Hyper,
        },
        Dispatch::Refused {
            refusal,
            shape,
            route,
        } => Plan::Refuse {
            refusal,
            shape,
            route,
        },
        Dispatch::Route(route) => {
            let dpop = crate::dpop::Asked {
                proof: h.dpop,
                proofs: usize::from(h.dpop.is_some()),
                path,
            };
            let forwarded = g.config.forwarded_client_cert.as_ref();
            let cert = crate::mtls::of_request(
                (conn.peer.ip(), conn.client_cert.as_ref()),
                forwarded.map(|f| &f.forwarded),
                // Asked only of a peer trusted for it.
                |name| {
                    (h.headers.iter())
                        .filter(|x| x.name.eq_ignore_ascii_case(name))
                        .map(|x| x.value)
                        .collect::<Vec<_>>()
                        .into_iter()
                },
            );
            match crate::guard::check(
                (&method, h.authorization, &dpop, cert.as_deref()),
                route,
                g,
                shared,
                Some(&conn.recent),
            )
            .await
            {
                Err(refusal) => Plan::Refuse {
                    refusal,
                    shape: route.error_shape,
                    route: Some(route),
                },
                Ok(who) => forward(
                    h,
                    &buf[h.len..seen.consumed],
                    route,
                    Some(who),
                    conn,
                    &seen,
                    out,
                ),
            }
        }
        Dispatch::Preflight(route) => {
            forward(h, &buf[h.len..seen.consumed], route, None, conn, &seen, out)
        }
    };
    Decided::Take(plan, seen)
}

/// Writes the upstream's head (and the body bytes that came with it) for `route`.
fn forward<'g>(
    h: &RequestHead<'_, '_>,
    body: &[u8],
    route: &'g Route,
    who: Option<Arc<Verified>>,
    conn: &ConnInfo,
    seen: &Seen<'_>,
    out: &mut Vec<u8>,
) -> Plan<'g> {
    let edits = Edits {
        upstream: route.upstream_authority.as_str(),
        forward_authorization: route.forward_authorization,
        forwarded_for: conn.forwarded_for.as_bytes(),
        tls: conn.tls,
        who: who.as_deref().map(Who::of),
        request_id: seen.request_id.as_bytes(),
    };
    head::write_upstream_head(out, h, &edits);
    out.extend_from_slice(body);
    Plan::Forward(route, who)
}

const CORS_METHOD: &str = "access-control-request-method";

/// The request as the endpoints take it (`None`: a name or value `http` will not hold, for
/// hyper to refuse).
fn asked(h: &RequestHead<'_, '_>, method: Method, body: &[u8]) -> Option<Asked> {
    let mut headers = HeaderMap::with_capacity(h.headers.len());
    for f in h.headers {
        let name = HeaderName::from_bytes(f.name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(f.value).ok()?);
    }
    let (mut head, ()) = http::Request::new(()).into_parts();
    head.method = method;
    head.uri = Uri::try_from(h.target).ok()?;
    head.version = Version::HTTP_11;
    head.headers = headers;
    Some(Asked {
        head,
        body: Ok(Bytes::copy_from_slice(body)),
    })
}
