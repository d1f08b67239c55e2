//! Every refusal storegate makes, as a value, and the one table that maps each to its HTTP
//! status and its body in both documented shapes:
//!
//! * `ErrorShape::OAuth` — RFC 6749 §5.2 / RFC 6750 §3: `{"error":"...","error_description":"..."}`
//!   (seeds 000–003; the seed's `invalid_client` sample carries no description, so none is sent).
//! * `ErrorShape::Errors` — seed 004: `{"errors":[{"title":"...","status":"401"}]}`, status as a
//!   string; `detail` is added where the seed's own samples have one or where no sample exists.
//!
//! Descriptions are fixed strings: details of a failure go to the log, never to the client.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};
use serde::Serialize;

use crate::Body;

/// The error body shape a token endpoint or route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    OAuth,
    Errors,
}

/// A refusal: why a request gets no token or does not reach the upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Unknown client or wrong secret. `basic` when the credentials came in an Authorization header.
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    #[error("client may not use this grant")]
    UnauthorizedClient,
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("scope not allowed for this client")]
    InvalidScope,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    /// The caller stopped sending its request body (`body_idle_timeout_ms`).
    #[error("request body timed out")]
    RequestTimeout,
    #[error("no bearer token")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// A valid token that does not allow this request (another API, a read-only grant, a scope).
    #[error("insufficient scope: {detail}")]
    InsufficientScope {
        detail: &'static str,
        scope: Option<String>,
    },
    #[error("no route")]
    NotFound,
    /// The client's `rate_limit_per_sec` is used up.
    #[error("rate limit reached")]
    TooManyRequests,
    /// Too many failed authentications for this client id from this source (`throttle`).
    #[error("throttled after failed authentications")]
    TooManyFailures { retry_after_secs: u64 },
    #[error("upstream unavailable")]
    BadGateway,
    #[error("upstream timed out")]
    GatewayTimeout,
    #[error("internal error")]
    Internal,
}

/// One row of the status table.
struct Row {
    /// Status in the OAuth shape.
    oauth_status: StatusCode,
    /// Status in the errors shape (seed 004 answers bad credentials with 401, not 400).
    errors_status: StatusCode,
    code: &'static str,
    description: Option<&'static str>,
    /// Whether the errors shape carries `detail` (seed 004's 400/401 samples have none).
    errors_detail: bool,
}

const fn row(status: StatusCode, code: &'static str, description: &'static str) -> Row {
    Row {
        oauth_status: status,
        errors_status: status,
        code,
        description: Some(description),
        errors_detail: true,
    }
}

impl Refusal {
    /// The status table. Its unit test below pins every row.
    fn row(&self) -> Row {
        use StatusCode as S;
        match self {
            Refusal::InvalidRequest(d) => Row {
                errors_detail: false,
                ..row(S::BAD_REQUEST, "invalid_request", d)
            },
            Refusal::InvalidClient { basic } => Row {
                oauth_status: if *basic {
                    S::UNAUTHORIZED
                } else {
                    S::BAD_REQUEST
                },
                errors_status: S::UNAUTHORIZED,
                code: "invalid_client",
                description: None,
                errors_detail: false,
            },
            Refusal::UnauthorizedClient => Row {
                errors_status: S::UNAUTHORIZED,
                errors_detail: false,
                ..row(
                    S::BAD_REQUEST,
                    "unauthorized_client",
                    "this client may not use this grant type",
                )
            },
            Refusal::UnsupportedGrantType => Row {
                errors_detail: false,
                ..row(
                    S::BAD_REQUEST,
                    "unsupported_grant_type",
                    "this grant type is not supported here",
                )
            },
            Refusal::InvalidScope => Row {
                errors_detail: false,
                ..row(
                    S::BAD_REQUEST,
                    "invalid_scope",
                    "the requested scope is not allowed for this client",
                )
            },
            Refusal::MethodNotAllowed => row(
                S::METHOD_NOT_ALLOWED,
                "invalid_request",
                "the token endpoint accepts POST only",
            ),
            Refusal::PayloadTooLarge => row(
                S::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is too large",
            ),
            Refusal::RequestTimeout => row(
                S::REQUEST_TIMEOUT,
                "invalid_request",
                "the request body was not received in time",
            ),
            Refusal::MissingToken => row(
                S::UNAUTHORIZED,
                "invalid_request",
                "a Bearer access token is required",
            ),
            Refusal::InvalidToken(d) => row(S::UNAUTHORIZED, "invalid_token", d),
            Refusal::InsufficientScope { detail, .. } => {
                row(S::FORBIDDEN, "insufficient_scope", detail)
            }
            Refusal::NotFound => row(S::NOT_FOUND, "not_found", "no API is served at this path"),
            Refusal::TooManyRequests => row(
                S::TOO_MANY_REQUESTS,
                "too_many_requests",
                "this client has made too many requests; retry later",
            ),
            Refusal::TooManyFailures { .. } => row(
                S::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many failed attempts; retry later",
            ),
            Refusal::BadGateway => row(
                S::BAD_GATEWAY,
                "bad_gateway",
                "the upstream service is unavailable",
            ),
            Refusal::GatewayTimeout => row(
                S::GATEWAY_TIMEOUT,
                "gateway_timeout",
                "the upstream service did not answer in time",
            ),
            Refusal::Internal => row(
                S::INTERNAL_SERVER_ERROR,
                "server_error",
                "there was a problem processing your request",
            ),
        }
    }

    pub fn status(&self, shape: ErrorShape) -> StatusCode {
        let r = self.row();
        match shape {
            ErrorShape::OAuth => r.oauth_status,
            ErrorShape::Errors => r.errors_status,
        }
    }

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

    /// The `WWW-Authenticate` challenge this refusal carries, if any (RFC 6750 §3, RFC 7235).
    pub fn challenge(&self, shape: ErrorShape, realm: &str) -> Option<String> {
        match self {
            Refusal::InvalidClient { .. } if self.status(shape) == StatusCode::UNAUTHORIZED => {
                Some(format!("Basic realm=\"{realm}\""))
            }
            Refusal::MissingToken => Some(format!("Bearer realm=\"{realm}\"")),
            Refusal::InvalidToken(d) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{d}\""
            )),
            Refusal::InsufficientScope { detail, scope } => {
                let mut v = format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{detail}\""
                );
                if let Some(s) = scope {
                    v.push_str(&format!(", scope=\"{s}\""));
                }
                Some(v)
            }
            _ => None,
        }
    }

    /// The refusal as a response: the one place refusals become HTTP, and are logged.
    pub fn into_response(self, shape: ErrorShape, realm: &str) -> Response<Body> {
        tracing::debug!(refusal = %self, "refused");
        let mut resp = Response::new(Either::Left(Full::new(Bytes::from(self.body(shape)))));
        *resp.status_mut() = self.status(shape);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(c) = self.challenge(shape, realm) {
            // Every part of a challenge is a fixed string or a validated config value.
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        match self {
            Refusal::MethodNotAllowed => h.insert(header::ALLOW, HeaderValue::from_static("POST")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorShape::*;

    fn json(r: &Refusal, shape: ErrorShape) -> String {
        String::from_utf8(r.body(shape)).unwrap()
    }

    #[test]
    fn status_table() {
        let scope = || Refusal::InsufficientScope {
            detail: "x",
            scope: None,
        };
        let table: &[(Refusal, u16, u16)] = &[
            (Refusal::InvalidRequest("x"), 400, 400),
            (Refusal::InvalidClient { basic: false }, 400, 401),
            (Refusal::InvalidClient { basic: true }, 401, 401),
            (Refusal::UnauthorizedClient, 400, 401),
            (Refusal::UnsupportedGrantType, 400, 400),
            (Refusal::InvalidScope, 400, 400),
            (Refusal::MethodNotAllowed, 405, 405),
            (Refusal::PayloadTooLarge, 413, 413),
            (Refusal::RequestTimeout, 408, 408),
            (Refusal::MissingToken, 401, 401),
            (Refusal::InvalidToken("x"), 401, 401),
            (scope(), 403, 403),
            (Refusal::NotFound, 404, 404),
            (Refusal::TooManyRequests, 429, 429),
            (
                Refusal::TooManyFailures {
                    retry_after_secs: 9,
                },
                429,
                429,
            ),
            (Refusal::BadGateway, 502, 502),
            (Refusal::GatewayTimeout, 504, 504),
            (Refusal::Internal, 500, 500),
        ];
        for (r, oauth, errors) in table {
            assert_eq!(r.status(OAuth).as_u16(), *oauth, "{r:?}");
            assert_eq!(r.status(Errors).as_u16(), *errors, "{r:?}");
        }
    }

    #[test]
    fn seed_samples_are_rendered_exactly() {
        // seed 000-002: 400 {"error":"invalid_client"}
        assert_eq!(
            json(&Refusal::InvalidClient { basic: false }, OAuth),
            r#"{"error":"invalid_client"}"#
        );
        // seed 004: 400, 401 and 500 samples
        assert_eq!(
            json(&Refusal::InvalidRequest("x"), Errors),
            r#"{"errors":[{"title":"Bad Request","status":"400"}]}"#
        );
        assert_eq!(
            json(&Refusal::InvalidClient { basic: false }, Errors),
            r#"{"errors":[{"title":"Unauthorized","status":"401"}]}"#
        );
        assert_eq!(
            json(&Refusal::Internal, Errors),
            r#"{"errors":[{"title":"Internal Server Error","status":"500","detail":"there was a problem processing your request"}]}"#
        );
    }

    #[test]
    fn challenges_follow_rfc6750() {
        assert_eq!(
            Refusal::MissingToken.challenge(OAuth, "r").unwrap(),
            r#"Bearer realm="r""#
        );
        let c = Refusal::InvalidToken("token expired")
            .challenge(Errors, "r")
            .unwrap();
        assert_eq!(
            c,
            r#"Bearer realm="r", error="invalid_token", error_description="token expired""#
        );
        let c = Refusal::InsufficientScope {
            detail: "d",
            scope: Some("write".into()),
        }
        .challenge(OAuth, "r");
        assert!(
            c.unwrap()
                .ends_with(r#"error="insufficient_scope", error_description="d", scope="write""#)
        );
        assert_eq!(
            Refusal::InvalidClient { basic: false }.challenge(OAuth, "r"),
            None
        );
        assert_eq!(
            Refusal::InvalidClient { basic: true }
                .challenge(OAuth, "r")
                .unwrap(),
            r#"Basic realm="r""#
        );
    }
}
