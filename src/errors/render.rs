//! Rendering a refusal: its body in the route's documented shape, its `WWW-Authenticate`
//! challenge, and the response (the one place a refusal becomes HTTP).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};
use serde::Serialize;

use super::{ErrorShape, Refusal};
use crate::Body;

/// What a refusal's challenges name.
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    pub realm: &'a str,
    /// The guarded resource's RFC 9728 metadata URL.
    pub resource_metadata: Option<&'a str>,
    /// The DPoP proof algorithms, where DPoP tokens are accepted.
    pub dpop_algs: Option<&'a str>,
    /// Whether Bearer tokens are accepted (not where a route requires DPoP).
    pub bearer: bool,
}

impl<'a> Challenge<'a> {
    /// Bearer only, with no metadata: where no route is guarded.
    pub fn bearer(realm: &'a str) -> Challenge<'a> {
        Challenge {
            realm,
            resource_metadata: None,
            dpop_algs: None,
            bearer: true,
        }
    }
}

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
                    code: Option<&'a str>,
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
                    code: r.errors_code.then_some(r.code),
                    detail: r.description.filter(|_| r.errors_detail),
                };
                serde_json::to_vec(&Errors { errors: [item] })
            }
        }
        .expect("serializing a fixed error body cannot fail")
    }

    /// The `WWW-Authenticate` challenges this refusal carries, if any: RFC 6750 §3's Bearer
    /// and RFC 9449 §7.1's DPoP, each where its scheme is accepted (`at`), with the guarded
    /// resource's metadata URL when there is one (RFC 9728 §5.1). An error about the token is
    /// named in each scheme's challenge; one about the proof, in the DPoP one.
    pub fn challenge(&self, shape: ErrorShape, at: &Challenge<'_>) -> Option<String> {
        let token_error = match self {
            Refusal::InvalidClient { .. } | Refusal::ClientAuthentication(_)
                if self.status(shape) == StatusCode::UNAUTHORIZED =>
            {
                return Some(format!("Basic realm=\"{}\"", at.realm));
            }
            Refusal::MissingToken => None,
            Refusal::InvalidToken(d) => Some(format!(
                ", error=\"invalid_token\", error_description=\"{d}\""
            )),
            Refusal::InsufficientScope { detail, scope } => {
                let mut v =
                    format!(", error=\"insufficient_scope\", error_description=\"{detail}\"");
                if let Some(s) = scope {
                    v.push_str(&format!(", scope=\"{s}\""));
                }
                Some(v)
            }
            Refusal::DpopProofRefused(_) | Refusal::UseDpopNonce { guard: true, .. } => None,
            _ => return None,
        };
        let proof_error = match self {
            Refusal::DpopProofRefused(d) => Some(format!(
                ", error=\"invalid_dpop_proof\", error_description=\"{d}\""
            )),
            Refusal::UseDpopNonce { .. } => Some(format!(
                ", error=\"use_dpop_nonce\", error_description=\"{}\"",
                self.row().description.unwrap_or_default()
            )),
            _ => None,
        };
        let metadata = at
            .resource_metadata
            .map(|url| format!(", resource_metadata=\"{url}\""))
            .unwrap_or_default();
        let mut challenges = Vec::with_capacity(2);
        if at.bearer {
            let error = token_error.as_deref().unwrap_or_default();
            challenges.push(format!("Bearer realm=\"{}\"{error}{metadata}", at.realm));
        }
        if let Some(algs) = at.dpop_algs {
            let error = proof_error.or(token_error).unwrap_or_default();
            challenges.push(format!(
                "DPoP realm=\"{}\", algs=\"{algs}\"{error}{metadata}",
                at.realm
            ));
        }
        (!challenges.is_empty()).then(|| challenges.join(", "))
    }

    /// The refusal as a response.
    pub fn into_response(self, shape: ErrorShape, at: &Challenge<'_>) -> Response<Body> {
        self.rendered(shape, at)
            .map(|body| Either::Left(Full::new(body)))
    }

    /// The refusal as a response with its whole body: the one place refusals become HTTP,
    /// and are logged.
    pub fn rendered(self, shape: ErrorShape, at: &Challenge<'_>) -> Response<Bytes> {
        tracing::debug!(refusal = %self, "refused");
        let mut resp = Response::new(Bytes::from(self.body(shape)));
        *resp.status_mut() = self.status(shape);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(c) = self.challenge(shape, at) {
            // Every part of a challenge is a fixed string or a validated config value.
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        match self {
            Refusal::MethodNotAllowed => h.insert(header::ALLOW, HeaderValue::from_static("POST")),
            Refusal::Connect => h.insert(header::ALLOW, HeaderValue::from_static(ROUTE_METHODS)),
            Refusal::TooManyRequests | Refusal::ReplayUnchecked => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            // A nonce is base64url: always a valid header value.
            Refusal::UseDpopNonce { nonce, .. } => HeaderValue::from_str(&nonce)
                .ok()
                .and_then(|v| h.insert(crate::dpop::DPOP_NONCE, v)),
            Refusal::TooManyFailures { retry_after_secs } => h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            ),
            _ => None,
        };
        resp
    }
}
