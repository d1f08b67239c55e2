//! Tokens the gateway itself would never issue (expired, foreign, tampered), minted here.

use serde_json::{Value, json};

use super::ISSUER;

/// Standard claims for a backoffice token, `exp` relative to now.
pub fn claims(exp_from_now: i64) -> Value {
    let now = storegate::token::now_unix() as i64;
    json!({
        "iss": ISSUER, "sub": "backoffice-app", "aud": "backoffice", "client_id": "backoffice-app",
        "iat": now, "exp": now + exp_from_now, "jti": "t1", "scope": "read write", "gty": "client_credentials"
    })
}

/// Signs `claims` with an Ed25519 PKCS#8 PEM key, with header kid and typ at+jwt.
pub fn mint_eddsa(pem: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = Some("at+jwt".to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(pem).unwrap(),
    )
    .unwrap()
}

/// The claims of a token (unverified), e.g. to read its `jti` or `iss`.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWS has a claims part");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url claims");
    serde_json::from_slice(&raw).expect("JSON claims")
}

/// Base64url of a JSON value, for hand-made tokens.
pub fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}
