//! A client's DPoP key and its proofs (RFC 9449 §4), made by hand as a client library makes
//! them, and with whatever header or claims a hostile test needs.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A client's DPoP key (P-256, ES256).
pub struct Key {
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

impl Key {
    pub fn new() -> Key {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let encoding = EncodingKey::from_ec_der(der.as_ref());
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        Key { encoding, jwk }
    }

    pub fn thumbprint(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// A proof for `htm` `htu`, with `jti`, issued now (shifted back by `age` seconds).
    pub fn proof(&self, htm: &str, htu: &str, jti: &str, age: i64) -> String {
        self.proof_with(htm, htu, jti, age, None)
    }

    /// `proof`, with `ath` for `token` when given.
    pub fn proof_with(
        &self,
        htm: &str,
        htu: &str,
        jti: &str,
        age: i64,
        token: Option<&str>,
    ) -> String {
        let mut claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": now() - age});
        if let Some(t) = token {
            claims["ath"] = ath(t).into();
        }
        self.sign(&claims)
    }

    /// Signs `claims` under a `dpop+jwt` ES256 header carrying this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// `ath`: base64url(SHA-256(token)).
pub fn ath(token: &str) -> String {
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The claims `Key::proof_with` signs, for a hostile test to edit before signing them.
pub fn proof_claims(htm: &str, htu: &str, jti: &str, age: i64, token: Option<&str>) -> Value {
    let mut claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": now() - age});
    if let Some(t) = token {
        claims["ath"] = ath(t).into();
    }
    claims
}

impl Key {
    /// The JOSE header `Key::sign` writes, as JSON, for a hostile test to edit.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": serde_json::to_value(&self.jwk).unwrap()})
    }

    /// `header` and `claims` exactly as given, signed ES256 with this key, whatever `header`
    /// names (jsonwebtoken writes only headers it can model).
    pub fn sign_as_given(&self, header: &Value, claims: &Value) -> String {
        signed(header, claims, &self.encoding, Algorithm::ES256)
    }
}

/// A compact JWS of `header` and `claims` as given, signed by `key` under `alg`, whatever
/// `header` says the algorithm is.
pub fn signed(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// A compact JWS of `header` and `claims` with an empty signature, as `alg: none` has.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}
