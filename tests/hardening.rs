//! Hostile callers: each defect found by trying the gateway as an attacker would gets a test
//! here that failed before its fix.

mod support;

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::Value;
use support::*;

/// `{"client_secret":"wrong","client_secret":"<right>"}` used to get a token: the last
/// duplicate won.
#[tokio::test]
async fn a_json_token_request_with_a_duplicate_parameter_is_refused() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let body = format!(
        r#"{{"grant_type":"client_credentials","client_id":"backoffice-app","client_secret":"wrong","client_secret":"{SECRET}"}}"#
    );
    let resp = gw
        .client
        .post(gw.url("/connect/token"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "invalid_request");
    assert!(json.get("access_token").is_none());
}

/// Tokens signed with the gateway's own key, but that no token of the gateway looks like.
#[tokio::test]
async fn a_critical_header_or_an_absurd_lifetime_is_refused() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let kid = gw.generation().keys.kid.clone();
    let pem = gw.signing_key_pem();
    let refused = |token: String| {
        let gw = &gw;
        async move {
            let resp = gw.get_bearer("/admin/echo", &token).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            let challenge = resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
    };

    // RFC 7515 §4.1.11: a `crit` the verifier does not understand.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    header.typ = Some("at+jwt".into());
    header.crit = Some(vec!["exp".into()]);
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&pem).unwrap();
    refused(jsonwebtoken::encode(&header, &claims(600), &key).unwrap()).await;

    // exp = u64::MAX, and a day and an hour: longer than tokens.max_token_age_secs (24 h).
    let mut forever = claims(600);
    forever["exp"] = u64::MAX.into();
    refused(mint_eddsa(&pem, &kid, &forever)).await;
    refused(mint_eddsa(&pem, &kid, &claims(25 * 3600))).await;
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);

    let within = mint_eddsa(&pem, &kid, &claims(23 * 3600));
    assert_eq!(gw.get_bearer("/admin/echo", &within).await.status(), 200);
}

/// `..;`, `..%2f`, `%2e%2e%2f`, `..%5c` and `..\` were forwarded as written, to upstreams that
/// may read them as `../` (Tomcat's `;` parameters, a decoded `%2F`, backslash separators).
#[tokio::test]
async fn every_spelling_of_a_path_escape_is_refused_on_a_guarded_route() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    for path in [
        "/admin/..;/shop/echo",
        "/admin/..%2fshop/echo",
        "/admin/%2e%2e%2fshop/echo",
        "/admin/..%5cshop/echo",
        "/admin/..\\shop/echo",
        "/admin/%252e%252e/shop/echo",
        "/admin/x%00/echo",
        "/admin/%2e%2e/shop/echo",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw_https(&gw, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(!answer.contains(&token), "{path}: the token is not echoed");
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 0, "none reached the upstream");
    for allowed in ["/admin/a;v=1/echo", "/admin/..b/echo", "/admin/v1.2/echo"] {
        let resp = gw.get_bearer(allowed, &token).await;
        assert_eq!(resp.status(), 200, "{allowed}");
    }
}
