//! hyper's front-end: one request as hyper hands it over. `handle` loads the current
//! generation once, dispatches (`dispatch`, the same function the relay calls), answers the
//! gateway's own targets (`own`) or guards and forwards (`guard`, `proxy`), turns the
//! `Outcome` into a response (the one place a refusal is rendered for hyper) and records the
//! request (`access::finish`, as the relay does).

use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, Version, header};
use hyper::body::Incoming;

use crate::Body;
use crate::access::{self, Finished};
use crate::conn::ConnInfo;
use crate::cors;
use crate::dispatch::{Asking, Dispatch, dispatch};
use crate::errors::{ErrorShape, Refusal};
use crate::outcome::Outcome;
use crate::request_id::X_REQUEST_ID;
use crate::state::{Generation, Shared, State};

/// Answers one request: gives it a request id (kept from the caller when well-formed, sent
/// upstream and back), says `Connection: close` to HTTP/1.1 callers while the gateway drains
/// (and after a refused CONNECT), and records it (`access::finish`).
pub async fn handle(mut req: Request<Incoming>, state: &State, conn: &ConnInfo) -> Response<Body> {
    let g = state.load();
    let shared = &state.shared;
    let start = Instant::now();
    let mut request_id = shared.request_ids.of(req.headers_mut());
    let version = req.version();
    // A refused CONNECT ends an HTTP/1 connection: nothing after it is read as a request.
    let closes = req.method() == Method::CONNECT && version < Version::HTTP_2;
    let logged = access::access_log_on().then(|| {
        (
            req.method().clone(),
            req.uri().clone(),
            access::length(req.headers()),
        )
    });
    let head_request = req.method() == Method::HEAD;
    let (outcome, cors) = handle_inner(req, &g, shared, conn).await;
    let (client, route, auth) = (outcome.client.clone(), outcome.route.clone(), outcome.auth);
    let judged = outcome.judged.clone();
    let mut resp = outcome.into_response(&g);
    if let Some(cors) = &cors {
        cors.apply(resp.headers_mut());
    }
    if head_request {
        resp = crate::outcome::for_head(resp);
    }
    if closes || (version == Version::HTTP_11 && shared.health.is_draining()) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let finished = Finished {
        route: route.as_ref(),
        status: resp.status().as_u16(),
        elapsed: start.elapsed(),
        line: access::line(
            judged.as_ref(),
            (logged.as_ref()).map(|(m, uri, _)| (m.as_str(), uri.path())),
        ),
        client_id: client.as_ref().map(|c| c.id.as_str()),
        auth,
        bytes_in: logged.as_ref().and_then(|l| l.2),
        bytes_out: access::length(resp.headers()),
        protocol: version,
        request_id: request_id.as_bytes(),
        peer: conn.peer.ip(),
        decision: judged.is_some(),
    };
    access::finish(&shared.metrics, &conn.counted, &finished);
    // Never indexed (HPACK): a value unique to each response would only churn the HTTP/2
    // connection's header table (h2 indexes it, evicts another entry to make room, and walks
    // the same name's earlier values each time) and the caller's, as nginx never indexes one.
    request_id.set_sensitive(true);
    resp.headers_mut().insert(X_REQUEST_ID, request_id);
    resp
}

/// The request's outcome, and the CORS headers its answer carries.
async fn handle_inner<'g>(
    req: Request<Incoming>,
    g: &'g Generation,
    shared: &Shared,
    conn: &ConnInfo,
) -> (Outcome, Option<cors::Answer<'g>>) {
    let h = req.headers();
    let origin = h.get(header::ORIGIN).map(HeaderValue::as_bytes);
    let asking = Asking {
        method: req.method(),
        target_len: req.uri().path_and_query().map_or(0, |p| p.as_str().len()),
        path: req.uri().path(),
        preflight: cors::is_preflight(
            req.method(),
            origin.is_some(),
            h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD),
        ),
    };
    let dispatched = dispatch(g, &shared.metrics, &asking);
    let cors = dispatched.cors(g).map(|policy| policy.answer(origin));
    (answer(req, dispatched, g, shared, conn).await, cors)
}

async fn answer(
    req: Request<Incoming>,
    dispatched: Dispatch<'_>,
    g: &Generation,
    shared: &Shared,
    conn: &ConnInfo,
) -> Outcome {
    let route = match dispatched {
        Dispatch::Own(own) => {
            let asked = if own.reads_body() {
                crate::endpoint::read(req, &g.config).await
            } else {
                let (head, _) = req.into_parts();
                crate::endpoint::Asked {
                    head,
                    body: Ok(bytes::Bytes::new()),
                }
            };
            return crate::own::answer(own, asked, g, shared, conn).await;
        }
        Dispatch::Refused {
            refusal,
            shape,
            route,
        } => {
            return Outcome {
                route: route.map(|r| r.label.clone()),
                ..refuse(req, refusal, shape).await
            };
        }
        Dispatch::Preflight(route) => {
            let result = shared.upstream.forward(req, route, None, conn).await;
            return Outcome {
                route: Some(route.label.clone()),
                ..Outcome::new(result, route.error_shape)
            };
        }
        Dispatch::Route(route) => route,
    };
    let asked = (req.method(), req.uri().path(), req.headers());
    let who = match crate::guard::check_request(asked, route, g, shared, conn).await {
        Ok(who) => who,
        Err(refusal) => {
            crate::body::drain_for_refusal(req).await;
            return Outcome::refused_on(route, refusal);
        }
    };
    let result = shared.upstream.forward(req, route, Some(&who), conn).await;
    Outcome {
        client: Some(who.client.clone()),
        auth: Some(who.auth()),
        route: Some(route.label.clone()),
        ..Outcome::new(result, route.error_shape)
    }
}

/// A refusal of a request whose body is still unread.
async fn refuse(req: Request<Incoming>, refusal: Refusal, shape: ErrorShape) -> Outcome {
    crate::body::drain_for_refusal(req).await;
    Outcome::refused(refusal, shape)
}
