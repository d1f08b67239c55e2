//! Revocation (RFC 7009 and the per-client "issued before" instant): a revoked token is
//! refused from the next request on, cached verification or not, across a restart, and only
//! its own client can revoke it.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::*;

const REVOCATION: &str = "/connect/revocation";

/// POSTs a revocation of `token` with Basic credentials.
async fn revoke_basic(gw: &Gateway, id: &str, secret: &str, token: &str) -> reqwest::Response {
    gw.client
        .post(gw.url(REVOCATION))
        .basic_auth(id, Some(secret))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap()
}

async fn status_of(gw: &Gateway, path: &str, token: &str) -> StatusCode {
    gw.get_bearer(path, token).await.status()
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_though_its_verification_is_cached() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let other = gw.token("backoffice-app", SECRET).await;
    assert_eq!(status_of(&gw, "/admin/echo", &token).await, StatusCode::OK);
    let hits = gw.cache_hits();
    assert_eq!(status_of(&gw, "/admin/echo", &token).await, StatusCode::OK);
    assert!(gw.cache_hits() > hits, "the verification is cached");

    let resp = revoke_basic(&gw, "backoffice-app", SECRET, &token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.text().await.unwrap(), "");

    let verified = gw.verifications();
    let refused = gw.get_bearer("/admin/echo", &token).await;
    assert_invalid_token(&refused);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("the token has been revoked"),
        "{challenge}"
    );
    assert_eq!(
        gw.verifications(),
        verified,
        "refused from the cache, no new verification"
    );
    assert!(!refused.text().await.unwrap().contains(&token));
    assert_eq!(
        status_of(&gw, "/admin/echo", &other).await,
        StatusCode::OK,
        "only that token"
    );

    // Revoking again, in the body this time, is still 200 (RFC 7009 §2.2).
    let again = gw
        .post_form(
            REVOCATION,
            &[
                ("token", &token),
                ("client_id", "backoffice-app"),
                ("client_secret", SECRET),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_client_cannot_revoke_a_token_and_it_stays_valid() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let resp = revoke_basic(&gw, "storefront-app", READER_SECRET, &token).await;
    let (status, error) = error_of(resp).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
    // The public implicit client cannot either.
    let resp = gw
        .post_form(
            REVOCATION,
            &[("token", &token), ("client_id", "public-key")],
        )
        .await;
    assert_eq!(error_of(resp).await.1, "unauthorized_client");
    assert_eq!(status_of(&gw, "/admin/echo", &token).await, StatusCode::OK);
}

#[tokio::test]
async fn revocation_requests_are_checked_like_token_requests() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let wrong = revoke_basic(&gw, "backoffice-app", "wrong-secret", &token).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    // A confidential client does not revoke by naming itself: its secret is missing, which
    // is `invalid_client` (RFC 6749 §5.2).
    let resp = gw
        .post_form(
            REVOCATION,
            &[("token", &token), ("client_id", "backoffice-app")],
        )
        .await;
    assert_eq!(
        error_of(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_client".into())
    );
    let resp = gw
        .post_form(
            REVOCATION,
            &[("client_id", "backoffice-app"), ("client_secret", SECRET)],
        )
        .await;
    assert_eq!(
        error_of(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    // No client authentication at all: 401 invalid_client with a Basic challenge.
    let resp = gw.post_form(REVOCATION, &[("token", &token)]).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_eq!(
        error_of(resp).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let get = gw.client.get(gw.url(REVOCATION)).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(status_of(&gw, "/admin/echo", &token).await, StatusCode::OK);

    // Unknown, malformed or expired tokens: 200, nothing to revoke (RFC 7009 §2.2).
    let kid = gw.generation().keys.kid.clone();
    let expired = mint_eddsa(&gw.signing_key_pem(), &kid, &claims(-60));
    for t in ["garbage", "a.b.c", expired.as_str()] {
        let resp = revoke_basic(&gw, "backoffice-app", SECRET, t).await;
        assert_eq!(resp.status(), StatusCode::OK, "{t:.10}");
    }
    assert!(gw.state.shared.revocations.is_empty());

    // Failed authentications count in the token endpoint's throttle (5 per source).
    for _ in 0..5 {
        revoke_basic(&gw, "backoffice-app", "wrong-secret", &token).await;
    }
    let throttled = revoke_basic(&gw, "backoffice-app", SECRET, &token).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_public_client_revokes_its_own_tokens_by_its_id() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.implicit_token("public-key").await;
    assert_eq!(status_of(&gw, "/shop/echo", &token).await, StatusCode::OK);
    let resp = gw
        .post_form(
            REVOCATION,
            &[("token", &token), ("client_id", "public-key")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refused = gw.get_bearer("/shop/echo", &token).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The route speaks the errors shape.
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["status"], "401");
}

#[tokio::test]
async fn a_revoked_token_stays_refused_after_a_restart() {
    let (up, _) = spawn_upstream().await;
    let toml = config_with(up, |t| {
        let server = t["server"].as_table_mut().unwrap();
        server.insert("state_dir".into(), "state".into());
    });
    let gw = spawn_gateway_toml(&toml).await;
    let revoked = gw.token("backoffice-app", SECRET).await;
    let kept = gw.token("backoffice-app", SECRET).await;
    let resp = revoke_basic(&gw, "backoffice-app", SECRET, &revoked).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let dir = gw.stop_keeping_dir().await;
    assert!(
        dir.path()
            .join("state")
            .join(storegate::revocation::FILE_NAME)
            .exists()
    );

    let gw = spawn_gateway_in(dir, &toml).await;
    assert_invalid_token(&gw.get_bearer("/admin/echo", &revoked).await);
    assert_eq!(status_of(&gw, "/admin/echo", &kept).await, StatusCode::OK);
}

/// An RFC 3339 instant for epoch seconds.
fn rfc3339(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn issued_before_revokes_older_tokens_only_and_a_reload_takes_nothing_back() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let now = storegate::token::now_unix();
    let kid = gw.generation().keys.kid.clone();
    let minted = |iat: u64, jti: &str| {
        let mut c = claims(600);
        c["iat"] = iat.into();
        c["jti"] = jti.into();
        mint_eddsa(&gw.signing_key_pem(), &kid, &c)
    };
    let (old, new) = (minted(now - 100, "old"), minted(now - 10, "new"));
    let other_client = gw.token("storefront-app", READER_SECRET).await;
    assert_eq!(
        status_of(&gw, "/admin/echo", &old).await,
        StatusCode::OK,
        "cached now"
    );

    let revoking = config_with(up, |t| {
        let entry = clients_of(t)[0].as_table_mut().unwrap();
        assert_eq!(entry["id"].as_str(), Some("backoffice-app"));
        entry.insert("revoke_issued_before".into(), rfc3339(now - 50).into());
    });
    gw.reload_with(&revoking).await;
    assert_invalid_token(&gw.get_bearer("/admin/echo", &old).await);
    assert_eq!(status_of(&gw, "/admin/echo", &new).await, StatusCode::OK);
    let fresh = gw.token("backoffice-app", SECRET).await;
    assert_eq!(status_of(&gw, "/admin/echo", &fresh).await, StatusCode::OK);
    assert_eq!(
        status_of(&gw, "/shop/echo", &other_client).await,
        StatusCode::OK
    );

    // A config without the key (or with an earlier instant) revokes nothing back.
    let earlier = config_with(up, |t| {
        let entry = clients_of(t)[0].as_table_mut().unwrap();
        entry.insert("revoke_issued_before".into(), rfc3339(now - 200).into());
    });
    gw.reload_with(&earlier).await;
    gw.reload_with(&config_toml(up, "")).await;
    assert_invalid_token(&gw.get_bearer("/admin/echo", &old).await);
    assert_eq!(status_of(&gw, "/admin/echo", &new).await, StatusCode::OK);

    // An instant ahead of now is refused as a config error, and nothing changes.
    let ahead = config_with(up, |t| {
        let entry = clients_of(t)[0].as_table_mut().unwrap();
        entry.insert("revoke_issued_before".into(), rfc3339(now + 3600).into());
    });
    let error = gw.reload_fails_with("gateway.toml", ahead).await;
    assert!(error.contains("clients[0].revoke_issued_before"), "{error}");
    assert_eq!(status_of(&gw, "/admin/echo", &new).await, StatusCode::OK);
}
