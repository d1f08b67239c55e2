//! The client's side, for `storegate dpop`: a key (ES256) and proofs made with it, so that a
//! DPoP token can be got and used from a shell with curl. Not used by the gateway itself.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// Writes a fresh P-256 key (PKCS#8 PEM, readable by its owner only) to `path`.
pub fn new_key(path: &Path) -> anyhow::Result<()> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating a DPoP key")?;
    crate::devfiles::write_private_file(path, key.serialize_pem().as_bytes())
}

/// What a proof is for.
pub struct ProofFor<'a> {
    pub htm: &'a str,
    pub htu: &'a str,
    /// The access token it goes with (`ath`), at a guarded route.
    pub token: Option<&'a str>,
    /// A nonce the server gave (`DPoP-Nonce`).
    pub nonce: Option<&'a str>,
}

/// A proof (RFC 9449 §4.2) signed with the P-256 key in `key_pem`, issued now.
pub fn proof(key_pem: &[u8], asked: &ProofFor<'_>) -> anyhow::Result<String> {
    let key = EncodingKey::from_ec_pem(key_pem).context("the key is no P-256 PKCS#8 PEM key")?;
    let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).context("the key's public part")?;
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(jwk);
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).context("the system's random source")?;
    let mut claims = serde_json::json!({
        "jti": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jti),
        "htm": asked.htm,
        "htu": asked.htu,
        "iat": crate::token::now_unix(),
    });
    if let Some(token) = asked.token {
        claims["ath"] = super::proof::ath(token).into();
    }
    if let Some(nonce) = asked.nonce {
        claims["nonce"] = nonce.into();
    }
    jsonwebtoken::encode(&header, &claims, &key).context("signing the proof")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_made_here_passes_the_gateways_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dpop.pem");
        new_key(&path).unwrap();
        let pem = std::fs::read(&path).unwrap();
        let htu = "https://shop.example/api/x";
        let made = proof(
            &pem,
            &ProofFor {
                htm: "GET",
                htu,
                token: Some("t"),
                nonce: Some("n"),
            },
        )
        .unwrap();
        let rules = super::super::proof::Rules {
            algs: vec![Algorithm::ES256],
            iat_window: 60,
        };
        let asked = super::super::proof::For {
            method: "GET",
            htu,
            access_token: Some("t"),
            now: crate::token::now_unix(),
        };
        let checked = super::super::proof::check(&made, &rules, &asked).unwrap();
        assert_eq!(checked.nonce.as_deref(), Some("n"));
    }
}
