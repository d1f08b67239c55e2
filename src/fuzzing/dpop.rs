//! The `dpop` target: what a caller controls of DPoP. The first byte picks what the rest is:
//! a whole proof (`proof::check` must refuse it with a reason, never panic); the claims of a
//! proof signed with a real key (so that the claim checks past the signature are reached;
//! whatever passes must be for the request checked); a URL for `htu::normalize` (a normalized
//! URL normalizes to itself); a nonce (never accepted unless made here).

use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::dpop::{htu, nonce::Nonces, proof};

const HTU: &str = "https://api.shop.example/api/orders";
const NOW: u64 = 4_000_000_000;
const TOKEN: &str = "the-access-token";

/// A client's P-256 key, made once per process.
fn key() -> &'static (EncodingKey, Header) {
    static KEY: OnceLock<(EncodingKey, Header)> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("a P-256 key")
            .serialize_pem();
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).expect("its PEM");
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(Jwk::from_encoding_key(&key, Algorithm::ES256).expect("its JWK"));
        (key, header)
    })
}

pub fn dpop(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let rules = proof::Rules {
        algs: vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
        iat_window: 60,
    };
    let asked = proof::For {
        method: "GET",
        htu: HTU,
        access_token: Some(TOKEN),
        now: NOW,
    };
    match mode % 4 {
        0 => {
            if let Ok(c) = proof::check(&text, &rules, &asked) {
                // Only a proof signed by its own key can pass: not one made of random bytes.
                assert!(!c.jkt.is_empty() && !c.jti.is_empty(), "{text:?}");
            }
        }
        1 => {
            let Ok(claims) = serde_json::from_slice::<serde_json::Value>(rest) else {
                return;
            };
            let (k, header) = key();
            let Ok(proof) = jsonwebtoken::encode(header, &claims, k) else {
                return;
            };
            if let Ok(c) = proof::check(&proof, &rules, &asked) {
                // What passed is for this request: its method, URL, token and time.
                assert_eq!(claims["htm"], "GET", "{claims}");
                let htu = claims["htu"].as_str().expect("a string htu");
                assert_eq!(htu::normalize(htu).as_deref(), Some(HTU), "{claims}");
                assert_eq!(claims["ath"], proof::ath(TOKEN), "{claims}");
                let iat = claims["iat"].as_f64().expect("a number iat");
                assert!((iat - NOW as f64).abs() <= 60.0, "{claims}");
                assert!(!c.jti.is_empty() && c.jti.len() <= proof::MAX_JTI_BYTES);
            }
        }
        2 => {
            if let Some(n) = htu::normalize(&text) {
                assert_eq!(htu::normalize(&n).as_deref(), Some(n.as_str()), "{text:?}");
            }
        }
        _ => {
            // Accepted only if it is one this key made within the lifetime (a forgery of the
            // 128-bit tag is not what a fuzzer finds).
            let nonces = Nonces::new(Some(b"0123456789abcdef0123456789abcdef"), 120);
            if nonces.accepts(&text, NOW) {
                assert!(
                    (NOW - 120..=NOW + 5).any(|t| nonces.make(t) == text),
                    "{text:?}"
                );
            }
        }
    }
}
