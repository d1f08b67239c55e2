//! The decision endpoint (`[decision]`): a proxy that stays in the data path (nginx
//! `auth_request`, Traefik `forwardAuth`, Envoy's HTTP `ext_authz`) asks whether a request may
//! pass, and storegate judges the request it describes with the data path's own `dispatch` and
//! `guard`: routes, APIs, scopes, grants, rate limits, revocation, DPoP and certificate
//! binding. The answer is `200` with the identity headers the data path sends upstream, or the
//! refusal the data path would give, with its status, challenge and body.
//!
//! Only peers in `trusted_peers` may ask: from anyone else the headers naming a request would
//! let a caller choose which route judges it.

pub mod described;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};

use crate::conn::ConnInfo;
use crate::cors;
use crate::dispatch::{Asking, Dispatch, dispatch};
use crate::endpoint::Asked;
use crate::errors::Refusal;
use crate::metrics::OutcomeLabel;
use crate::outcome::Outcome;
pub use crate::routes::Decision;
use crate::state::{Generation, Shared};

/// Answers a decision request.
pub async fn answer(
    d: &Decision,
    asked: Asked,
    g: &Generation,
    shared: &Shared,
    conn: &ConnInfo,
) -> Outcome {
    let shape = g.config.default_error_shape;
    let count = |outcome| {
        let label = OutcomeLabel { outcome };
        shared.metrics.decisions.get_or_create(&label).inc();
    };
    let peer = conn.peer.ip();
    if !d.trusted_peers.iter().any(|net| net.contains(&peer)) {
        count("untrusted_peer");
        return Outcome::refused(Refusal::UntrustedDecisionPeer, shape);
    }
    let head = &asked.head;
    let described = match described::of(d, head) {
        Ok(described) => described,
        Err(why) => {
            count("undescribed");
            return Outcome::refused(Refusal::InvalidRequest(why), shape);
        }
    };
    let (method, path) = (&described.method, described.path());
    let asking = Asking {
        method,
        target_len: described.target.len(),
        path,
        preflight: false,
    };
    let h = &head.headers;
    let mut outcome = match dispatch(g, &shared.metrics, &asking) {
        Dispatch::Route(route) if preflight(method, h) => Outcome {
            route: Some(route.label.clone()),
            ..allowed(HeaderMap::new(), shape)
        },
        Dispatch::Route(route) => {
            let asked = (method, path, h);
            match crate::guard::check_request(asked, route, g, shared, conn).await {
                Ok(who) => {
                    let mut identity = HeaderMap::with_capacity(4);
                    crate::headers::insert_identity(&mut identity, &who);
                    Outcome {
                        client: Some(who.client.clone()),
                        auth: Some(who.auth()),
                        route: Some(route.label.clone()),
                        ..allowed(identity, route.error_shape)
                    }
                }
                Err(refusal) => Outcome::refused_on(route, refusal),
            }
        }
        Dispatch::Refused {
            refusal,
            shape,
            route,
        } => Outcome {
            route: route.map(|r| r.label.clone()),
            ..Outcome::refused(refusal, shape)
        },
        // The gateway's own targets are no guarded route: a proxy has nothing to ask.
        Dispatch::Own(_) | Dispatch::Preflight(_) => Outcome::refused(Refusal::NotFound, shape),
    };
    count(if outcome.result.is_ok() {
        "allowed"
    } else {
        "refused"
    });
    outcome.judged = Some((described.method.clone(), path.to_owned()));
    outcome
}

/// A CORS preflight (Fetch: never with a token) is let through without an identity, for the
/// proxy or the upstream to answer.
fn preflight(method: &http::Method, h: &HeaderMap) -> bool {
    let origin = h.contains_key(header::ORIGIN);
    cors::is_preflight(
        method,
        origin,
        h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD),
    )
}

/// `200` with no body, carrying `identity`.
fn allowed(identity: HeaderMap, shape: crate::errors::ErrorShape) -> Outcome {
    let mut resp = Response::new(Either::Left(Full::default()));
    *resp.status_mut() = StatusCode::OK;
    *resp.headers_mut() = identity;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Outcome::new(Ok(resp), shape)
}
