//! `POST /revocations` on the admin listener: the operator revokes everything a client holds
//! (its tokens issued before an instant, by default now) or one token by its `jti`. Loopback
//! peers only, with the admin credential; the body is JSON:
//!
//! ```json
//! {"client": "order-sync"}
//! {"client": "order-sync", "issued_before": "2026-11-23T10:00:00Z"}
//! {"jti": "Vn0hX2...", "client": "order-sync"}
//! ```
//!
//! Each goes into the same revocation set as RFC 7009's, persisted before the answer.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{AdminResponse, json};
use crate::revocation::Revocation;
use crate::state::State;

/// Largest request body.
const MAX_BODY: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub client: Option<String>,
    /// RFC 3339; default now. Only with `client` and without `jti`.
    pub issued_before: Option<String>,
    pub jti: Option<String>,
}

fn error(status: StatusCode, message: &str) -> AdminResponse {
    json(status, serde_json::json!({ "error": message }).to_string())
}

pub(super) async fn handle(
    req: Request<Incoming>,
    state: &State,
    token: Option<&str>,
    peer: SocketAddr,
) -> AdminResponse {
    if !peer.ip().is_loopback() {
        return error(StatusCode::FORBIDDEN, "only accepted from the host itself");
    }
    let Some(expected) = token else {
        return error(
            StatusCode::FORBIDDEN,
            "off: set admin.token_file or server.state_dir to turn it on",
        );
    };
    let presented = (req.headers().get(header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), expected.as_bytes())
        .is_err()
    {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "the admin credential is missing or wrong",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"storegate-admin\""),
        );
        return resp;
    }
    let body = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(Duration::from_secs(5), body).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body could not be read (4 KiB at most)",
            );
        }
    };
    let Ok(asked) = serde_json::from_slice::<RevokeRequest>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be {\"client\":...} or {\"jti\":...}, as JSON",
        );
    };
    let entry = match entry(&asked, state) {
        Ok(e) => e,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let revocations = state.shared.revocations.clone();
    let now = crate::token::now_unix();
    match tokio::task::spawn_blocking(move || revocations.add(&[entry], now)).await {
        Ok(Ok(added)) => {
            tracing::info!(client = ?asked.client, by_jti = asked.jti.is_some(), added, "operator revocation");
            json(
                StatusCode::OK,
                serde_json::json!({ "added": added }).to_string(),
            )
        }
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "an operator revocation could not be persisted");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "in force, but it could not be persisted",
            )
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the revocation failed"),
    }
}

/// The revocation asked for, with its expiry from the running configuration.
fn entry(asked: &RevokeRequest, state: &State) -> Result<Revocation, String> {
    let g = state.load();
    let cfg = &g.config;
    let now = crate::token::now_unix();
    let max_age = (cfg.max_token_age + cfg.leeway).as_secs();
    match (&asked.jti, &asked.client) {
        (Some(jti), client) => {
            if jti.is_empty() || asked.issued_before.is_some() {
                return Err("a jti revocation takes a non-empty jti and no issued_before".into());
            }
            Ok(Revocation::Token {
                jti: jti.clone(),
                client: client.clone().unwrap_or_default(),
                // The token's exp is not known here: keep it as long as any token can live.
                until: now + max_age,
            })
        }
        (None, Some(client)) => {
            if cfg.clients.get(client).is_none() {
                return Err(format!("no client {client:?} in the running configuration"));
            }
            let before = match &asked.issued_before {
                // Everything it holds now, the tokens issued in this very second included.
                None => now + 1,
                Some(s) => crate::token::past_instant(s)
                    .map_err(|why| format!("issued_before {s:?} {why}"))?,
            };
            Ok(Revocation::Client {
                client: client.clone(),
                issued_before: before,
                until: before + max_age,
            })
        }
        (None, None) => Err("name a client or a jti".into()),
    }
}
