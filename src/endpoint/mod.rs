//! The endpoints clients authenticate at: the token endpoint (here: read the request, decide
//! the grant, issue a token, answer in the shape of the documented API it is mounted as), and
//! the token lifecycle's `revoke` (RFC 7009) and `introspect` (RFC 7662). All three read a form
//! or JSON body (`request`) and authenticate the client alike (`client_auth`). A request comes
//! with its body already read (`Asked`), by hyper's path (`read`) or the relay's.

pub mod client_auth;
pub mod introspect;
pub mod request;
pub mod response;
pub mod revoke;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::Body;
use crate::clients::{Client, Grant};
use crate::config::Config;
use crate::conn::ConnInfo;
use crate::errors::Refusal;
use crate::metrics::{EndpointError, EndpointGrant};
use crate::outcome::Outcome;
use crate::routes::{EndpointShape, OAuthEndpoint, OAuthKind, TokenEndpoint};
use crate::state::{Generation, Shared};
use crate::token::issue::Cnf;
use client_auth::Asking;

/// A request to one of the endpoints: its head, and its body read whole (or why it was not).
pub struct Asked {
    pub head: http::request::Parts,
    pub body: Result<Bytes, Refusal>,
}

/// A request as hyper hands it over, its body read (POST only: any other method is refused
/// before its body matters, and the body is drained as a refusal's).
pub async fn read(req: Request<Incoming>, cfg: &Config) -> Asked {
    let (head, body) = req.into_parts();
    let body = if head.method == Method::POST {
        read_body(body, cfg).await
    } else {
        crate::body::drain_before_refusal(head.version, body).await;
        Ok(Bytes::new())
    };
    Asked { head, body }
}

/// The refusal of a body that did not come within `body_read_timeout_ms`.
pub const BODY_TOO_SLOW: Refusal =
    Refusal::InvalidRequest("the request body was not received in time");

/// Answers a token request (the client, once known, goes in the outcome for the access log).
pub async fn handle(
    req: Asked,
    ep: &TokenEndpoint,
    g: &Generation,
    shared: &Shared,
    conn: &ConnInfo,
) -> Outcome {
    let mut client = None;
    let asking = Asking::new((&req.head.headers, &ep.path), g, shared, conn);
    let result = token_response(req, ep, (g, shared), &asking, &mut client).await;
    let m = &shared.metrics;
    match &result {
        Ok(resp) => {
            let grant = resp.extensions().get::<Grant>().map_or("-", |g| g.as_str());
            let labels = EndpointGrant {
                endpoint: ep.label.clone(),
                grant,
            };
            m.tokens_issued.get_or_create(&labels).inc();
        }
        Err(refusal) => {
            let labels = EndpointError {
                endpoint: ep.label.clone(),
                error: refusal.code(),
            };
            m.token_refusals.get_or_create(&labels).inc();
        }
    }
    Outcome {
        client,
        no_store: true,
        ..Outcome::new(result, ep.shape.error_shape())
    }
}

/// Answers a revocation or introspection request; like the token endpoint's, its answers are
/// never to be cached, and the client, once known, goes in the outcome for the access log.
pub async fn handle_oauth(
    req: Asked,
    ep: &OAuthEndpoint,
    g: &Generation,
    shared: &Shared,
    conn: &ConnInfo,
) -> Outcome {
    let mut client = None;
    let asking = Asking::new((&req.head.headers, &ep.path), g, shared, conn);
    let result = match ep.kind {
        OAuthKind::Revocation => revoke::revoke(req, g, shared, &asking, &mut client).await,
        OAuthKind::Introspection => {
            introspect::introspect(req, g, shared, &asking, &mut client).await
        }
    };
    Outcome {
        client,
        no_store: true,
        ..Outcome::new(result, ep.error_shape)
    }
}

async fn token_response(
    req: Asked,
    ep: &TokenEndpoint,
    (g, shared): (&Generation, &Shared),
    asking: &Asking<'_>,
    // Set once the client is known, for the access log.
    logged_client: &mut Option<Arc<Client>>,
) -> Result<Response<Body>, Refusal> {
    // The proof's bytes, kept past `read_post` (a `Bytes` handle, not a copy).
    let proofs = req.head.headers.get_all(crate::dpop::DPOP);
    let (proof, count) = (proofs.iter().next().cloned(), proofs.iter().count());
    let (params, basic) = read_post(req)?;
    let grant = match params.grant_type.as_deref() {
        None => return Err(Refusal::InvalidRequest("grant_type is missing")),
        Some("client_credentials") => Grant::ClientCredentials,
        Some("implicit") if ep.shape == EndpointShape::OauthAccessToken => Grant::Implicit,
        Some(_) => return Err(Refusal::UnsupportedGrantType),
    };
    let public_ok = grant != Grant::ClientCredentials;
    let client = asking.authenticate(public_ok, &params, basic).await?;
    *logged_client = Some(client.clone());
    if !client.may_use(grant) {
        return Err(Refusal::UnauthorizedClient);
    }
    let scope = granted_scope(&client, params.scope.as_deref())?;
    let dpop = &g.config.dpop;
    let bucket = format!("client:{}", client.id);
    let asked = crate::dpop::Asked {
        proof: proof.as_ref().map(http::HeaderValue::as_bytes),
        proofs: count,
        // The endpoint's path is the request's: dispatch matched it exactly.
        path: &ep.path,
    };
    let jkt = crate::dpop::endpoint_proof(&asked, dpop, &shared.dpop, &bucket).await?;
    if jkt.is_none() && client.dpop_bound_access_tokens {
        return Err(Refusal::InvalidDpopProof(
            "this client must send a DPoP proof",
        ));
    }
    // RFC 8705 §3: bound to the certificate this request presented, however the client
    // authenticated.
    let x5t = match (client.auth.certificate_bound, asking.cert.as_deref()) {
        (false, _) => None,
        (true, Some(cert)) => Some(cert.x5t()),
        (true, None) => {
            return Err(Refusal::InvalidRequest(
                "this client's tokens are bound to a TLS client certificate; present one",
            ));
        }
    };
    // A revocation of "everything the client holds now" covers the current second (`iat`
    // has no finer grain); a token issued within it is dated at its end, so that it is not
    // born revoked.
    let now = crate::token::now_unix();
    let iat = (shared.revocations.issued_before(&client.id)).map_or(now, |b| b.clamp(now, now + 1));
    let issued = (g.issuer.issue_bound(
        &client,
        grant,
        &scope,
        iat,
        Cnf {
            jkt: jkt.as_deref(),
            x5t: x5t.as_deref(),
        },
    ))
    .map_err(|_| {
        tracing::error!("signing a token failed");
        Refusal::Internal
    })?;
    let echo_scope = params.scope.is_some().then_some(scope.as_str());
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    let mut resp = response::success(ep.shape, &issued, (grant, token_type), echo_scope);
    // Where nonces are required, each token comes with a fresh one (RFC 9449 §8.2).
    if let Some(nonce) = crate::dpop::fresh_nonce(dpop)
        && let Ok(v) = http::HeaderValue::from_str(&nonce)
    {
        resp.headers_mut().insert(crate::dpop::DPOP_NONCE, v);
    }
    // For the metrics: which grant the token came from.
    resp.extensions_mut().insert(grant);
    Ok(resp)
}

/// The parameters and any HTTP Basic credentials of a POST; other methods are refused (405).
pub fn read_post(req: Asked) -> Result<(request::Params, Option<(String, String)>), Refusal> {
    if req.head.method != Method::POST {
        return Err(Refusal::MethodNotAllowed);
    }
    let body = req.body?;
    let params = request::parse_body(&req.head.headers, &body)?;
    let basic = request::basic_credentials(&req.head.headers).transpose()?;
    Ok((params, basic))
}

async fn read_body(body: Incoming, cfg: &Config) -> Result<Bytes, Refusal> {
    let limited = Limited::new(body, cfg.max_token_body_bytes);
    match tokio::time::timeout(cfg.body_read_timeout, limited.collect()).await {
        Err(_) => Err(BODY_TOO_SLOW),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal::PayloadTooLarge),
        Ok(Err(_)) => Err(Refusal::InvalidRequest(
            "the request body could not be read",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// RFC 6749 §3.3: the requested scope must lie within the client's; none requested means all.
fn granted_scope(client: &Client, requested: Option<&str>) -> Result<String, Refusal> {
    let Some(requested) = requested else {
        return Ok(client.scopes.join(" "));
    };
    let mut granted: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !client.scopes.iter().any(|c| c == s) {
            return Err(Refusal::InvalidScope);
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    Ok(granted.join(" "))
}
