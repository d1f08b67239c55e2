//! The gateway's own answers — health, JWKS, metadata documents, CORS preflights, and the
//! token, revocation and introspection endpoints — for either transport. A request reaches here with its body
//! already read (`endpoint::Asked`): hyper's path reads it from the stream, the relay from its
//! buffer, and both get the same answer from the same code.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};

use crate::Body;
use crate::conn::ConnInfo;
use crate::cors::Policy;
use crate::dispatch::Own;
use crate::endpoint::{self, Asked};
use crate::errors::ErrorShape;
use crate::metrics::OutcomeLabel;
use crate::outcome::Outcome;
use crate::state::{Generation, Shared};

/// `Cache-Control` of the JWKS: how long upstreams may keep it. A key published as
/// `signing.next_key` should stay published at least this long before it signs.
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// Answers a request for one of the gateway's own targets.
pub async fn answer(
    own: Own<'_>,
    asked: Asked,
    g: &Generation,
    shared: &Shared,
    conn: &ConnInfo,
) -> Outcome {
    let shape = g.config.default_error_shape;
    match own {
        Own::Token(ep) => endpoint::handle(asked, ep, g, shared, conn).await,
        Own::OAuth(ep) => endpoint::handle_oauth(asked, ep, g, shared, conn).await,
        Own::Health => {
            let body = Bytes::from_static(b"{\"status\":\"ok\"}");
            Outcome::new(Ok(json(StatusCode::OK, body)), shape)
        }
        Own::Jwks => Outcome::new(Ok(document(g.keys.jwks.clone())), shape),
        Own::Document(doc) => Outcome::new(Ok(document(doc.clone())), shape),
        Own::Preflight(policy, shape) => preflight(policy, shape, &asked, shared),
        Own::Decision(d) => crate::decision::answer(d, asked, g, shared, conn).await,
    }
}

/// A CORS preflight's answer: 204 with the policy's `Access-Control-Allow-*` headers, or a
/// refusal in the target's shape with none of them; counted by outcome.
fn preflight(policy: &Policy, shape: ErrorShape, asked: &Asked, shared: &Shared) -> Outcome {
    let (outcome, label) = match policy.preflight(&asked.head.headers) {
        Ok(answer) => {
            let mut resp = Response::new(Either::Left(Full::default()));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            for (name, value) in answer.preflight_fields() {
                resp.headers_mut().append(name, value.clone());
            }
            (Outcome::new(Ok(resp), shape), "allowed")
        }
        Err((refusal, label)) => (Outcome::refused(refusal, shape), label),
    };
    let labels = OutcomeLabel { outcome: label };
    shared.metrics.cors_preflights.get_or_create(&labels).inc();
    outcome
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
