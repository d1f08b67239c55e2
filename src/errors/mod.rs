//! Every refusal storegate makes, as a value, and the one table that maps each to its HTTP
//! status and its body in both documented shapes:
//!
//! * `ErrorShape::OAuth` — RFC 6749 §5.2 / RFC 6750 §3: `{"error":"...","error_description":"..."}`
//!   (seeds 000–003; the seed's `invalid_client` sample carries no description, so none is sent).
//! * `ErrorShape::Errors` — seed 004: `{"errors":[{"title":"...","status":"401"}]}`, status as a
//!   string; `detail` is added where the seed's own samples have one or where no sample exists.
//!
//! Descriptions are fixed strings: details of a failure go to the log, never to the client.

mod render;

pub use render::Challenge;

use http::StatusCode;

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
    /// A client registered for a certificate (RFC 8705 §2) or an assertion (RFC 7523) whose
    /// request presented none, or one that does not authenticate it: `invalid_client`, saying
    /// why (what was wrong with the caller's own certificate or assertion; never whether
    /// another client exists).
    #[error("client authentication refused: {0}")]
    ClientAuthentication(&'static str),
    #[error("client may not use this grant")]
    UnauthorizedClient,
    /// A client asked to revoke another client's token (RFC 7009 §2.1).
    #[error("the token was issued to another client")]
    ForeignToken,
    /// An authenticated client not registered with `introspect = true`.
    #[error("client may not introspect")]
    MayNotIntrospect,
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("scope not allowed for this client")]
    InvalidScope,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// CONNECT: storegate opens no tunnels (and a CONNECT in origin form is no valid request,
    /// RFC 9112 §3.2.3), so it is never forwarded.
    #[error("CONNECT is not served")]
    Connect,
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request target is longer than `limits.max_uri_bytes`.
    #[error("request target too long")]
    UriTooLong,
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
    /// A DPoP proof (RFC 9449) that does not pass at a token endpoint, or one missing where the
    /// client must send one.
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    /// A DPoP proof that does not pass at the guard (401 with a `DPoP` challenge, RFC 9449 §7.1).
    #[error("DPoP proof refused: {0}")]
    DpopProofRefused(&'static str),
    /// A DPoP proof without a fresh server nonce, where nonces are required (RFC 9449 §8 at a
    /// token endpoint: 400; §9 at the guard, `guard`: 401 with a `DPoP` challenge). `nonce`
    /// goes in the `DPoP-Nonce` header.
    #[error("a DPoP nonce is required")]
    UseDpopNonce { nonce: String, guard: bool },
    /// A DPoP proof that could not be replay-checked across the cluster, where
    /// `[dpop] replay_when_cluster_away = "refuse"`: the gateway's state, not the caller's fault.
    #[error("DPoP replay check unavailable")]
    ReplayUnchecked,
    /// A CORS preflight the route's or endpoint's policy does not allow (`cors`).
    #[error("cross-origin request refused: {0}")]
    CorsRefused(&'static str),
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
    /// The decision endpoint asked by a peer not in `decision.trusted_peers`.
    #[error("decision asked by an untrusted peer")]
    UntrustedDecisionPeer,
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
    /// Whether the errors shape carries `code`: only where a client must tell the error
    /// apart to act on it (DPoP's, RFC 9449 §7.1, §8), as a JSON:API error object may.
    errors_code: bool,
}

const fn row(status: StatusCode, code: &'static str, description: &'static str) -> Row {
    Row {
        oauth_status: status,
        errors_status: status,
        code,
        description: Some(description),
        errors_detail: true,
        errors_code: false,
    }
}

/// A DPoP row: the errors shape names its code.
const fn dpop_row(status: StatusCode, code: &'static str, description: &'static str) -> Row {
    Row {
        errors_code: true,
        ..row(status, code, description)
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
                errors_code: false,
            },
            Refusal::ClientAuthentication(d) => Row {
                errors_status: S::UNAUTHORIZED,
                ..row(S::BAD_REQUEST, "invalid_client", d)
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
            Refusal::ForeignToken => row(
                S::BAD_REQUEST,
                "unauthorized_client",
                "the token was issued to another client",
            ),
            Refusal::MayNotIntrospect => row(
                S::FORBIDDEN,
                "unauthorized_client",
                "this client may not introspect tokens",
            ),
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
                "this endpoint accepts POST only",
            ),
            Refusal::Connect => row(
                S::METHOD_NOT_ALLOWED,
                "invalid_request",
                "CONNECT is not served",
            ),
            Refusal::PayloadTooLarge => row(
                S::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is too large",
            ),
            Refusal::UriTooLong => row(
                S::URI_TOO_LONG,
                "invalid_request",
                "the request target is too long",
            ),
            Refusal::RequestTimeout => row(
                S::REQUEST_TIMEOUT,
                "invalid_request",
                "the request body was not received in time",
            ),
            Refusal::MissingToken => row(
                S::UNAUTHORIZED,
                "invalid_request",
                "an access token is required",
            ),
            Refusal::InvalidToken(d) => row(S::UNAUTHORIZED, "invalid_token", d),
            Refusal::InsufficientScope { detail, .. } => {
                row(S::FORBIDDEN, "insufficient_scope", detail)
            }
            Refusal::NotFound => row(S::NOT_FOUND, "not_found", "no API is served at this path"),
            Refusal::UntrustedDecisionPeer => row(
                S::FORBIDDEN,
                "access_denied",
                "the decision endpoint answers only the proxies trusted to ask",
            ),
            Refusal::CorsRefused(d) => row(S::FORBIDDEN, "invalid_request", d),
            Refusal::InvalidDpopProof(d) => dpop_row(S::BAD_REQUEST, "invalid_dpop_proof", d),
            Refusal::DpopProofRefused(d) => dpop_row(S::UNAUTHORIZED, "invalid_dpop_proof", d),
            Refusal::UseDpopNonce { guard, .. } => dpop_row(
                if *guard {
                    S::UNAUTHORIZED
                } else {
                    S::BAD_REQUEST
                },
                "use_dpop_nonce",
                "a DPoP nonce is required: sign the proof again with the nonce in DPoP-Nonce",
            ),
            Refusal::ReplayUnchecked => row(
                S::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "DPoP proofs cannot be checked for replay now; retry with a new proof",
            ),
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

    /// The OAuth error code (`error`), e.g. for the metrics.
    pub fn code(&self) -> &'static str {
        self.row().code
    }

    pub fn status(&self, shape: ErrorShape) -> StatusCode {
        let r = self.row();
        match shape {
            ErrorShape::OAuth => r.oauth_status,
            ErrorShape::Errors => r.errors_status,
        }
    }
}

#[cfg(test)]
mod tests;
