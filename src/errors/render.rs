//! Rendering a refusal: its body in the route's documented shape, its `WWW-Authenticate`
//! challenge, and the response (the one place a refusal becomes HTTP).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};
use serde::Serialize;

use super::{ErrorShape, Refusal};
use crate::Body;

/// The methods a route forwards, as a CONNECT refusal's `Allow`.
const ROUTE_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

impl Refusal {
    /// The JSON body in the given shape.
    pub fn body(&self, shape: ErrorShape) -> Vec<u8> {
        let r = self.row();
        match shape {
            ErrorShape::OAuth => {
                #[derive(Serialize)]
                struct OAuth<'a> {
                    error: &'a str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    error_description: Option<&'a str>,
                }
                serde_json::to_vec(&OAuth {
                    error: r.code,
                    error_description: r.description,
                })
            }
            ErrorShape::Errors => {
                #[derive(Serialize)]
                struct Item<'a> {
                    title: &'a str,
                    status: &'a str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    detail: Option<&'a str>,
                }
                #[derive(Serialize)]
                struct Errors<'a> {
                    errors: [Item<'a>; 1],
                }
                let status = r.errors_status;
                let item = Item {
                    title: status.canonical_reason().unwrap_or("Error"),
                    status: status.as_str(),
                    detail: r.description.filter(|_| r.errors_detail),
                };
                serde_json::to_vec(&Errors { errors: [item] })
            }
        }
        .expect("serializing a fixed error body cannot fail")
    }

    /// The `WWW-Authenticate` challenge this refusal carries, if any (RFC 6750 §3, RFC 7235),
    /// with the guarded resource's metadata URL when there is one (RFC 9728 §5.1).
    pub fn challenge(
        &self,
        shape: ErrorShape,
        realm: &str,
        resource_metadata: Option<&str>,
    ) -> Option<String> {
        let mut v = match self {
            Refusal::InvalidClient { .. } if self.status(shape) == StatusCode::UNAUTHORIZED => {
                return Some(format!("Basic realm=\"{realm}\""));
            }
            Refusal::MissingToken => format!("Bearer realm=\"{realm}\""),
            Refusal::DpopProofRefused(d) => format!(
                "DPoP realm=\"{realm}\", algs=\"{}\", error=\"invalid_dpop_proof\", error_description=\"{d}\"",
                crate::dpop::DEFAULT_ALGS_NAMES
            ),
            Refusal::InvalidToken(d) => format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{d}\""
            ),
            Refusal::InsufficientScope { detail, scope } => {
                let mut v = format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{detail}\""
                );
                if let Some(s) = scope {
                    v.push_str(&format!(", scope=\"{s}\""));
                }
                v
            }
            _ => return None,
        };
        if let Some(url) = resource_metadata {
            v.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        Some(v)
    }

    /// The refusal as a response.
    pub fn into_response(
        self,
        shape: ErrorShape,
        realm: &str,
        resource_metadata: Option<&str>,
    ) -> Response<Body> {
        self.rendered(shape, realm, resource_metadata)
            .map(|body| Either::Left(Full::new(body)))
    }

    /// The refusal as a response with its whole body: the one place refusals become HTTP,
    /// and are logged.
    pub fn rendered(
        self,
        shape: ErrorShape,
        realm: &str,
        resource_metadata: Option<&str>,
    ) -> Response<Bytes> {
        tracing::debug!(refusal = %self, "refused");
        let mut resp = Response::new(Bytes::from(self.body(shape)));
        *resp.status_mut() = self.status(shape);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(c) = self.challenge(shape, realm, resource_metadata) {
            // Every part of a challenge is a fixed string or a validated config value.
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        match self {
            Refusal::MethodNotAllowed => h.insert(header::ALLOW, HeaderValue::from_static("POST")),
            Refusal::Connect => h.insert(header::ALLOW, HeaderValue::from_static(ROUTE_METHODS)),
            Refusal::TooManyRequests => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            Refusal::TooManyFailures { retry_after_secs } => h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            ),
            _ => None,
        };
        resp
    }
}
