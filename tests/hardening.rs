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
