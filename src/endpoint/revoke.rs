//! Token revocation (RFC 7009). A client authenticates as at the token endpoint — a
//! confidential one with its secret, a public one (no secret registered) by its id alone — and
//! names one of its own tokens; the token's `jti` joins the revocation set, persisted before
//! the answer, and the token is refused from the next request on, cached or not.
//!
//! As §2.2 says, a token that is unknown, invalid or expired already gets 200 as well: there
//! is nothing left to revoke. A token of another client is refused (§2.1) and stays valid.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::{Either, Full};

use super::client_auth::Asking;
use crate::Body;
use crate::clients::Client;
use crate::errors::Refusal;
use crate::revocation::Revocation;
use crate::state::{Generation, Shared};

/// Answers a revocation request.
pub(super) async fn revoke(
    req: super::Asked,
    g: &Generation,
    shared: &Shared,
    asking: &Asking<'_>,
    logged_client: &mut Option<Arc<Client>>,
) -> Result<Response<Body>, Refusal> {
    let (params, basic) = super::read_post(req)?;
    // No client at all: 401. A public client naming itself by `client_id` alone is one.
    Asking::require_some(&params, basic.as_ref())?;
    // Without a secret, only a client that has none may name itself.
    let public = basic.is_none()
        && params.client_secret.is_none()
        && (params.client_id.as_deref())
            .and_then(|id| g.config.clients.get(id))
            .is_some_and(Client::is_public);
    let client = asking.authenticate(public, &params, basic).await?;
    *logged_client = Some(client.clone());
    let token = (params.token.as_deref()).ok_or(Refusal::InvalidRequest("token is missing"))?;
    // `token_type_hint` is only a hint (§2.1): every token here is an access token.
    let Ok(signed) = g.verifier.signed(token, &shared.tokens) else {
        return Ok(revoked());
    };
    if signed.client_id() != client.id {
        return Err(Refusal::ForeignToken);
    }
    let Some(jti) = signed.jti() else {
        return Ok(revoked());
    };
    let entry = Revocation::Token {
        jti: jti.to_owned(),
        client: client.id.clone(),
        until: signed.exp.saturating_add(g.config.leeway.as_secs()),
    };
    let revocations = shared.revocations.clone();
    let now = crate::token::now_unix();
    let written = tokio::task::spawn_blocking(move || revocations.add(&[entry], now)).await;
    match written {
        Ok(Ok(_)) => Ok(revoked()),
        Ok(Err(e)) => {
            // In force in this process, but a restart would forget it: the client must know.
            tracing::error!(error = %format!("{e:#}"), "a revocation could not be persisted");
            Err(Refusal::Internal)
        }
        Err(_) => Err(Refusal::Internal),
    }
}

/// RFC 7009 §2.2: 200, and the body does not matter; it is empty.
fn revoked() -> Response<Body> {
    Response::new(Either::Left(Full::new(Bytes::new())))
}
