//! What one request came to, before it becomes HTTP: a response, or a refusal still to be
//! rendered in the shape of the API it was for. `service::handle` turns every outcome into a
//! response in this one place, and logs it.

use std::sync::Arc;

use http::{HeaderValue, Response, header};

use crate::Body;
use crate::clients::Client;
use crate::errors::{ErrorShape, Refusal};
use crate::routes::Route;
use crate::state::Generation;

pub struct Outcome {
    pub result: Result<Response<Body>, Refusal>,
    /// The error shape a refusal is rendered in.
    pub shape: ErrorShape,
    /// The client the request was made for, once known (for the access log).
    pub client: Option<Arc<Client>>,
    /// How a guarded request authenticated (`Verified::auth`), for the access log.
    pub auth: Option<&'static str>,
    /// A token endpoint's answer: never to be cached (RFC 6749 §5.1), refusals included.
    pub no_store: bool,
    /// The guarded route's RFC 9728 metadata URL, for its challenges.
    pub resource_metadata: Option<Arc<str>>,
    /// Whether the guarded route takes DPoP-bound tokens only (its challenges are DPoP's).
    pub dpop_required: bool,
    /// The guarded route's label (metrics, access log), when the request was for one.
    pub route: Option<Arc<str>>,
    /// For a decision: the method and path of the request it judged (the access log's).
    pub judged: Option<(http::Method, String)>,
}

impl Outcome {
    pub fn new(result: Result<Response<Body>, Refusal>, shape: ErrorShape) -> Outcome {
        Outcome {
            result,
            shape,
            client: None,
            auth: None,
            no_store: false,
            resource_metadata: None,
            dpop_required: false,
            route: None,
            judged: None,
        }
    }

    /// The guard's refusal of a request for `route`, challenging as the route does.
    pub fn refused_on(route: &Route, refusal: Refusal) -> Outcome {
        Outcome {
            resource_metadata: route.resource_metadata.clone(),
            dpop_required: route.dpop_required,
            route: Some(route.label.clone()),
            ..Outcome::refused(refusal, route.error_shape)
        }
    }

    pub fn refused(refusal: Refusal, shape: ErrorShape) -> Outcome {
        Outcome::new(Err(refusal), shape)
    }

    /// The response: the refusal rendered in its shape, challenging as `g` and the route do.
    pub fn into_response(self, g: &Generation) -> Response<Body> {
        let mut resp = match self.result {
            Ok(resp) => resp,
            Err(refusal) => {
                let route = (self.resource_metadata.as_deref(), self.dpop_required);
                refusal.into_response(self.shape, &crate::guard::challenge(g, route))
            }
        };
        if self.no_store {
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        resp
    }
}

/// The answer to a HEAD request: a body the gateway wrote itself is left out, its length kept
/// in `Content-Length`. hyper leaves the body out on HTTP/1.1 itself, but sends it on HTTP/2,
/// where a client then resets the stream (a HEAD answer has no DATA, RFC 9113 §8.1).
pub fn for_head(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let body = match body {
        http_body_util::Either::Left(full) => {
            let len = hyper::body::Body::size_hint(&full).exact().unwrap_or(0);
            (parts.headers)
                .entry(header::CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(len));
            http_body_util::Either::Left(http_body_util::Full::default())
        }
        // The upstream's answer to a HEAD has no body.
        upstream => upstream,
    };
    Response::from_parts(parts, body)
}
