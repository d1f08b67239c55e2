//! Introspection (RFC 7662): for clients registered with `introspect = true`, an answer that
//! agrees with what the guard would do with the token.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

const INTROSPECT: &str = "/connect/introspect";
const INSPECTOR_SECRET: &str = "inspector-secret-0123456789";

/// The test config plus "inspector", a client that may introspect.
fn config(up: std::net::SocketAddr) -> String {
    config_with(up, |t| {
        let mut entry = client_entry("inspector", INSPECTOR_SECRET, &["backoffice"], &[]);
        entry
            .as_table_mut()
            .unwrap()
            .insert("introspect".into(), true.into());
        clients_of(t).push(entry);
    })
}

async fn introspect_as(gw: &Gateway, id: &str, secret: &str, token: &str) -> reqwest::Response {
    gw.client
        .post(gw.url(INTROSPECT))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn introspect(gw: &Gateway, token: &str) -> Value {
    let resp = introspect_as(gw, "inspector", INSPECTOR_SECRET, token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_valid_token_is_active_with_its_claims() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up)).await;
    let token = gw.token("backoffice-app", SECRET).await;
    let body = introspect(&gw, &token).await;
    let exp = body["exp"].as_u64().unwrap();
    let iat = body["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 3600);
    let jti = body["jti"].as_str().unwrap().to_owned();
    assert!(!jti.is_empty());
    assert_eq!(
        body,
        json!({
            "active": true, "scope": "read write", "client_id": "backoffice-app",
            "sub": "backoffice-app", "aud": "backoffice", "iss": ISSUER, "exp": exp,
            "iat": iat, "jti": jti, "token_type": "Bearer"
        })
    );
    // Credentials in the body work as well as Basic.
    let resp = gw
        .post_form(
            INTROSPECT,
            &[
                ("token", &token),
                ("client_id", "inspector"),
                ("client_secret", INSPECTOR_SECRET),
            ],
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], true);
}

#[tokio::test]
async fn every_token_the_guard_would_refuse_is_inactive() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up)).await;
    let kid = gw.generation().keys.kid.clone();
    let expired = mint_eddsa(&gw.signing_key_pem(), &kid, &claims(-60));
    let foreign_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let foreign = mint_eddsa(foreign_key.serialize_pem().as_bytes(), &kid, &claims(600));
    let mut other_issuer = claims(600);
    other_issuer["iss"] = "https://elsewhere.test".into();
    let other_issuer = mint_eddsa(&gw.signing_key_pem(), &kid, &other_issuer);
    for (what, t) in [
        ("expired", expired.as_str()),
        ("foreign key", &foreign),
        ("other issuer", &other_issuer),
        ("garbage", "not-a-token"),
        ("empty-ish", "a.b.c"),
    ] {
        assert_eq!(introspect(&gw, t).await, json!({"active": false}), "{what}");
    }
    // The same claims, unexpired and signed with the gateway's key, are active: the above
    // were inactive for what was wrong with them.
    let fine = mint_eddsa(&gw.signing_key_pem(), &kid, &claims(600));
    assert_eq!(introspect(&gw, &fine).await["active"], true);

    let revoked = gw.token("backoffice-app", SECRET).await;
    assert_eq!(
        introspect(&gw, &revoked).await["active"],
        true,
        "cached now"
    );
    let resp = gw
        .client
        .post(gw.url("/connect/revocation"))
        .basic_auth("backoffice-app", Some(SECRET))
        .form(&[("token", &revoked)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(introspect(&gw, &revoked).await, json!({"active": false}));
}

#[tokio::test]
async fn a_removed_clients_tokens_become_inactive_and_scopes_narrow() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up)).await;
    let backoffice = gw.token("backoffice-app", SECRET).await;
    let storefront = gw.token("storefront-app", READER_SECRET).await;
    assert_eq!(introspect(&gw, &storefront).await["aud"], "storefront");

    let narrowed = config_with(up, |t| {
        let mut entry = client_entry("inspector", INSPECTOR_SECRET, &["backoffice"], &[]);
        let e = entry.as_table_mut().unwrap();
        e.insert("introspect".into(), true.into());
        clients_of(t).push(entry);
        let clients = clients_of(t);
        clients.retain(|c| c["id"].as_str() != Some("storefront-app"));
        let b = clients[0].as_table_mut().unwrap();
        assert_eq!(b["id"].as_str(), Some("backoffice-app"));
        b.insert("scopes".into(), toml::Value::Array(vec!["read".into()]));
    });
    gw.reload_with(&narrowed).await;
    assert_eq!(introspect(&gw, &storefront).await, json!({"active": false}));
    let body = introspect(&gw, &backoffice).await;
    assert_eq!(
        (body["active"].clone(), body["scope"].clone()),
        (json!(true), json!("read"))
    );
}

#[tokio::test]
async fn callers_that_may_not_introspect_are_refused() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up)).await;
    let token = gw.token("backoffice-app", SECRET).await;

    // Authenticated, but not registered to introspect: 403, and nothing about the token.
    let resp = introspect_as(&gw, "backoffice-app", SECRET, &token).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    assert!(body.get("active").is_none());

    // Bad credentials: 401 with a challenge, in the body as in Basic (RFC 7662 §2.3).
    let resp = introspect_as(&gw, "inspector", "wrong", &token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    let resp = gw
        .post_form(
            INTROSPECT,
            &[
                ("token", &token),
                ("client_id", "inspector"),
                ("client_secret", "wrong"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // A public client has no credential to introspect with: a missing credential is
    // `invalid_client` (RFC 6749 §5.2), 401 here as every introspection client failure.
    let resp = gw
        .post_form(
            INTROSPECT,
            &[("token", &token), ("client_id", "public-key")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // No client authentication at all: 401 invalid_client with a challenge (RFC 7662 §2.3),
    // not a malformed request.
    let resp = gw.post_form(INTROSPECT, &[("token", &token)]).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // No token: 400.
    let resp = gw
        .client
        .post(gw.url(INTROSPECT))
        .basic_auth("inspector", Some(INSPECTOR_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Against scanning: failures count in the token endpoint's throttle; the right secret
    // is refused too once it is reached (5 failures per source; the success above cleared
    // the two before it).
    for _ in 0..5 {
        introspect_as(&gw, "inspector", "wrong", &token).await;
    }
    let resp = introspect_as(&gw, "inspector", INSPECTOR_SECRET, &token).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = resp.text().await.unwrap();
    assert!(!body.contains(&token) && !body.contains(INSPECTOR_SECRET));
}

#[tokio::test]
async fn the_errors_shape_can_be_configured() {
    let (up, _) = spawn_upstream().await;
    let toml = format!(
        "{}\n[introspection]\npath = \"/oauth/introspect\"\nerror_shape = \"errors\"\n",
        config(up)
    );
    let gw = spawn_gateway_toml(&toml).await;
    let token = gw.token("backoffice-app", SECRET).await;
    let resp = gw
        .client
        .post(gw.url("/oauth/introspect"))
        .basic_auth("backoffice-app", Some(SECRET))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["status"], "403");
    let gone = gw.post_form(INTROSPECT, &[("token", &token)]).await;
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "moved, not mounted twice"
    );
}
