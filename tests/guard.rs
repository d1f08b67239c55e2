//! The guard: every way a Bearer token can be wrong is refused with the RFC 6750 challenge
//! and the route's error body, and never reaches the upstream.

mod support;

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

async fn call(
    gw: &Gateway,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = gw.client.get(gw.url(path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status(), challenge, resp.text().await.unwrap())
}

fn kid_of(gw: &Gateway) -> String {
    gw.generation().keys.kid.clone()
}

#[tokio::test]
async fn a_valid_token_is_forwarded_with_the_verified_identity() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let (status, _, body) = call(&gw, "/admin/echo", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["headers"]["x-storegate-client-id"], "backoffice-app");
    assert_eq!(echo["headers"]["x-storegate-grant"], "client_credentials");
    assert_eq!(echo["headers"]["x-storegate-token-type"], "Bearer");
    assert_eq!(log.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_token_gets_bare_bearer_and_dpop_challenges() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    for auth in [None, Some("Basic Zm9vOmJhcg==")] {
        let (status, challenge, body) = call(&gw, "/admin/echo", auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge.as_deref(),
            Some(
                r#"Bearer realm="storegate", resource_metadata="https://gateway.test/.well-known/oauth-protected-resource/admin/", DPoP realm="storegate", algs="ES256 ES384 EdDSA PS256 RS256", resource_metadata="https://gateway.test/.well-known/oauth-protected-resource/admin/""#
            )
        );
        assert!(body.contains("an access token is required"), "{body}");
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

/// Asserts a 401 invalid_token in the OAuth shape that does not echo the token.
async fn assert_invalid(gw: &Gateway, token: &str, why: &str) {
    let (status, challenge, body) = call(gw, "/admin/echo", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    let challenge = challenge.unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="storegate", error="invalid_token""#),
        "{why}: {challenge}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "invalid_token", "{why}");
    assert!(v["error_description"].is_string(), "{why}");
    if token.len() > 8 {
        assert!(
            !body.contains(token) && !challenge.contains(token),
            "{why}: the token is echoed"
        );
    }
}

#[tokio::test]
async fn expired_token_minted_with_the_gateway_key_is_refused() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let expired = mint_eddsa(&gw.signing_key_pem(), &kid_of(&gw), &claims(-60));
    assert_invalid(&gw, &expired, "expired").await;
    // The same key and claims with a future exp pass, so the refusal above was for expiry.
    let fresh = mint_eddsa(&gw.signing_key_pem(), &kid_of(&gw), &claims(600));
    assert_eq!(
        call(&gw, "/admin/echo", Some(&format!("Bearer {fresh}")))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(log.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tokens_inside_the_leeway_still_pass() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    // leeway_secs = 5 in the test config
    let just_expired = mint_eddsa(&gw.signing_key_pem(), &kid_of(&gw), &claims(-2));
    assert_eq!(
        call(&gw, "/admin/echo", Some(&format!("Bearer {just_expired}")))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn token_signed_by_a_foreign_key_is_refused() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let foreign = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    // Same kid as the gateway's key: only the signature can tell.
    let token = mint_eddsa(
        foreign.serialize_pem().as_bytes(),
        &kid_of(&gw),
        &claims(600),
    );
    assert_invalid(&gw, &token, "foreign key, known kid").await;
    let token = mint_eddsa(
        foreign.serialize_pem().as_bytes(),
        "someone-else",
        &claims(600),
    );
    assert_invalid(&gw, &token, "foreign key, unknown kid").await;
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let kid = kid_of(&gw);
    let body = b64(&claims(600));
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}));
        assert_invalid(&gw, &format!("{header}.{body}."), alg).await;
    }
    // RFC 8725 §2.1: HS256 keyed with the published public key must not verify.
    let jwks: Value = gw.get_json("/.well-known/jwks.json").await;
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    header.typ = Some("at+jwt".into());
    for secret in [x.as_bytes().to_vec(), gw.generation().keys.jwks.to_vec()] {
        let t = jsonwebtoken::encode(
            &header,
            &claims(600),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_invalid(&gw, &t, "HS256 with public key").await;
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tampered_payload_and_garbage_are_refused() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("storefront-app", READER_SECRET).await;
    let parts: Vec<&str> = token.split('.').collect();
    // Same signature, payload upgraded to the backoffice API.
    let mut c = claims(600);
    c["sub"] = json!("storefront-app");
    let tampered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_invalid(&gw, &tampered, "tampered payload").await;
    for garbage in [
        "abc",
        "a.b.c",
        "....",
        "eyJhbGciOiJFZERTQSJ9..",
        &format!("{token}x"),
    ] {
        assert_invalid(&gw, garbage, garbage).await;
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn wrong_issuer_and_wrong_type_are_refused() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let mut c = claims(600);
    c["iss"] = json!("https://evil.example");
    assert_invalid(
        &gw,
        &mint_eddsa(&gw.signing_key_pem(), &kid_of(&gw), &c),
        "issuer",
    )
    .await;
    // An ID token or any other JWT signed by the same key is not an access token (RFC 9068 §4).
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid_of(&gw));
    header.typ = Some("JWT".into());
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&gw.signing_key_pem()).unwrap();
    assert_invalid(
        &gw,
        &jsonwebtoken::encode(&header, &claims(600), &key).unwrap(),
        "typ JWT",
    )
    .await;
}

#[tokio::test]
async fn a_token_for_another_api_is_forbidden_and_never_reaches_the_upstream() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let storefront = gw.token("storefront-app", READER_SECRET).await;
    let (status, challenge, body) =
        call(&gw, "/admin/echo", Some(&format!("Bearer {storefront}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.unwrap().contains(r#"error="insufficient_scope""#));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "insufficient_scope");
    // The other way round, on a route that speaks the errors shape.
    let backoffice = gw.token("backoffice-app", SECRET).await;
    let (status, _, body) = call(&gw, "/shop/echo", Some(&format!("Bearer {backoffice}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        r#"{"errors":[{"title":"Forbidden","status":"403","detail":"the token is for another API"}]}"#
    );
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_repeated_token_is_served_from_the_cache() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let auth = format!("Bearer {token}");
    for _ in 0..5 {
        assert_eq!(
            call(&gw, "/admin/echo", Some(&auth)).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(gw.verifications(), 1, "verified once");
    assert_eq!(gw.cache_hits(), 4, "then served from the cache");
}

#[tokio::test]
async fn with_the_cache_off_every_request_is_verified() {
    let (up, _) = spawn_upstream().await;
    let toml =
        config_toml(up, "").replace("leeway_secs = 5", "leeway_secs = 5\ncache_capacity = 0");
    let gw = spawn_gateway_toml(&toml).await;
    let auth = format!("Bearer {}", gw.token("backoffice-app", SECRET).await);
    for _ in 0..3 {
        assert_eq!(
            call(&gw, "/admin/echo", Some(&auth)).await.0,
            StatusCode::OK
        );
    }
    assert_eq!((gw.verifications(), gw.cache_hits()), (3, 0));
}

#[tokio::test]
async fn a_cached_token_is_not_accepted_past_its_expiry() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    // Valid for 2 s, with 5 s leeway: the cache must drop it at exp (2 s), and the verifier
    // then refuses it once the leeway is over.
    let short = mint_eddsa(&gw.signing_key_pem(), &kid_of(&gw), &claims(2));
    let auth = format!("Bearer {short}");
    assert_eq!(
        call(&gw, "/admin/echo", Some(&auth)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&gw, "/admin/echo", Some(&auth)).await.0,
        StatusCode::OK
    );
    assert_eq!(gw.cache_hits(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    call(&gw, "/admin/echo", Some(&auth)).await;
    assert_eq!(gw.cache_hits(), 1, "the entry did not outlive exp");
    assert_eq!(gw.verifications(), 2);
}

#[tokio::test]
async fn implicit_tokens_are_read_only() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.implicit_token("public-key").await;
    use reqwest::Method as M;
    // Reads first, then writes: the writes must not add to what the upstream has seen.
    let mut seen_after_reads = 0;
    for method in [
        M::GET,
        M::HEAD,
        M::OPTIONS,
        M::POST,
        M::PUT,
        M::PATCH,
        M::DELETE,
    ] {
        let read = matches!(method, M::GET | M::HEAD | M::OPTIONS);
        let r = gw
            .client
            .request(method.clone(), gw.url("/shop/echo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if read {
            assert_eq!(r.status(), StatusCode::OK, "{method}");
            seen_after_reads = log.requests.load(Ordering::SeqCst);
            let headers = log.last_headers.lock().unwrap().clone().unwrap();
            assert_eq!(headers["x-storegate-grant"], "implicit");
        } else {
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method}");
            assert_eq!(
                r.text().await.unwrap(),
                r#"{"errors":[{"title":"Forbidden","status":"403","detail":"an implicit token is read-only"}]}"#
            );
        }
    }
    assert_eq!(seen_after_reads, 3);
    assert_eq!(
        log.requests.load(Ordering::SeqCst),
        seen_after_reads,
        "refused writes never reach the upstream"
    );
}

#[tokio::test]
async fn writes_need_the_routes_write_scope() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let read_only = gw.scoped_token("backoffice-app", SECRET, "read").await;
    let auth = format!("Bearer {}", read_only["access_token"].as_str().unwrap());
    let r = gw
        .client
        .post(gw.url("/admin/echo"))
        .header("authorization", &auth)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#", scope="write", resource_metadata="#)
    );
    let full = gw.token("backoffice-app", SECRET).await;
    let r = gw
        .client
        .post(gw.url("/admin/echo"))
        .bearer_auth(full)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_retired_key_keeps_verifying_its_tokens() {
    let (up, _) = spawn_upstream().await;
    // Run a gateway, take a token and its key's JWK, then start a new gateway with a new key
    // that lists the old one as retired.
    let old = spawn_gateway(up, "").await;
    let token = old.token("backoffice-app", SECRET).await;
    let jwks: Value = serde_json::from_slice(&old.generation().keys.jwks).unwrap();
    let retired = jwks["keys"][0].to_string();
    let toml = config_toml(up, "").replace(
        "generate_dev_files = true",
        &format!("generate_dev_files = true\n[[signing.retired]]\njwk = '{retired}'"),
    );
    let new = spawn_gateway_toml(&toml).await;
    assert_ne!(new.generation().keys.kid, old.generation().keys.kid);
    assert_eq!(
        call(&new, "/admin/echo", Some(&format!("Bearer {token}")))
            .await
            .0,
        StatusCode::OK
    );
    let published: Value = new.get_json("/.well-known/jwks.json").await;
    assert_eq!(published["keys"].as_array().unwrap().len(), 2);
}
