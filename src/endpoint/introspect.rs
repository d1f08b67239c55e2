//! Token introspection (RFC 7662), for clients registered with `introspect = true`: an
//! upstream that cannot verify JWTs asks here. The caller authenticates with its secret, as at
//! the token endpoint and under the same failure throttle; bad credentials get 401 (§2.3), a
//! client not allowed to introspect gets 403 `unauthorized_client` (it learns why, and nothing
//! about the token).
//!
//! The answer comes from the guard's own check — the same verifier, cache and revocation set —
//! so it never disagrees with what a request with the token would get: `{"active":false}` for
//! anything the guard would refuse (expired, revoked, foreign, garbage, a removed client's).
//! With no route to check against, the audience is the token's, narrowed to the APIs its
//! client is registered for now; a token left for no API is inactive.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::{Either, Full};
use serde::Serialize;

use super::client_auth::Asking;
use crate::Body;
use crate::clients::Client;
use crate::errors::Refusal;
use crate::state::{Generation, Shared};
use crate::token::issue::Cnf;
use crate::token::verified::Verified;

/// Answers an introspection request.
pub(super) async fn introspect(
    req: super::Asked,
    g: &Generation,
    shared: &Shared,
    asking: &Asking<'_>,
    logged_client: &mut Option<Arc<Client>>,
) -> Result<Response<Body>, Refusal> {
    let (params, basic) = super::read_post(req)?;
    Asking::require_some(&params, basic.as_ref())?;
    let client = asking
        .authenticate(false, &params, basic)
        .await
        .map_err(|e| match e {
            // §2.3: invalid client credentials get 401 however they were sent.
            Refusal::InvalidClient { .. } | Refusal::ClientAuthentication(_) => {
                Refusal::InvalidClient { basic: true }
            }
            e => e,
        })?;
    *logged_client = Some(client.clone());
    if !client.introspect {
        return Err(Refusal::MayNotIntrospect);
    }
    let token = (params.token.as_deref()).ok_or(Refusal::InvalidRequest("token is missing"))?;
    let body = match crate::guard::verified(token, g, shared, None) {
        Ok(who) => active(&who, &g.config.issuer),
        Err(_) => None,
    };
    let body = body.unwrap_or_else(|| Bytes::from_static(br#"{"active":false}"#));
    let mut resp = Response::new(Either::Left(Full::new(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// One string or several, as the token carries `aud`.
#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
}

/// RFC 7662 §2.2.
#[derive(Serialize)]
struct Active<'a> {
    active: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    client_id: &'a str,
    sub: &'a str,
    aud: Audience<'a>,
    iss: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    token_type: &'static str,
    /// What the token is bound to: a DPoP key (RFC 9449 §6.2), a certificate (RFC 8705 §3.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Cnf<'a>>,
}

/// The answer for a token the guard accepts, or `None` if it is good for no API.
fn active(who: &Verified, issuer: &str) -> Option<Bytes> {
    let apis: Vec<&str> = (who.client.apis.iter())
        .map(String::as_str)
        .filter(|api| who.is_for(api))
        .collect();
    let aud = match apis.as_slice() {
        [] => return None,
        [one] => Audience::One(one),
        _ => Audience::Many(apis),
    };
    let x5t = who.signed.x5t.map(|t| URL_SAFE_NO_PAD.encode(t));
    let body = Active {
        active: true,
        scope: who.scope.to_str().unwrap_or(""),
        client_id: &who.client.id,
        sub: &who.client.id,
        aud,
        iss: issuer,
        exp: who.exp(),
        iat: who.signed.iat,
        jti: who.signed.jti(),
        token_type: who.token_type(),
        cnf: (who.signed.jkt.is_some() || x5t.is_some()).then_some(Cnf {
            jkt: who.signed.jkt.as_deref(),
            x5t: x5t.as_deref(),
        }),
    };
    Some(Bytes::from(serde_json::to_vec(&body).ok()?))
}
