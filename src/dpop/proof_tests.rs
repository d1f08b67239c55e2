use super::*;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const HTU: &str = "https://api.shop.example/api/orders";
const NOW: u64 = 4_000_000_000;

fn rules() -> Rules {
    Rules {
        algs: vec![
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
        ],
        iat_window: 60,
    }
}

/// A fresh key and its public JWK.
fn key_and_jwk(alg: Algorithm) -> (EncodingKey, Jwk) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    match alg {
        Algorithm::ES256 => {
            let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let key = EncodingKey::from_ec_der(der.as_ref());
            let jwk = Jwk::from_encoding_key(&key, alg).unwrap();
            (key, jwk)
        }
        Algorithm::EdDSA => {
            use aws_lc_rs::signature::KeyPair as _;
            let der = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let public = Ed25519KeyPair::from_pkcs8(der.as_ref())
                .unwrap()
                .public_key()
                .as_ref()
                .to_vec();
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public)});
            (
                EncodingKey::from_ed_der(der.as_ref()),
                serde_json::from_value(jwk).unwrap(),
            )
        }
        _ => unreachable!(),
    }
}

fn jwk(alg: Algorithm) -> Jwk {
    key_and_jwk(alg).1
}

fn claims() -> serde_json::Value {
    json!({"jti": "proof-1", "htm": "POST", "htu": HTU, "iat": NOW, "ath": ath("the-token")})
}

/// A proof by a fresh `alg` key, with `claims` and the header `edit` made.
fn proof_with(alg: Algorithm, claims: serde_json::Value, edit: impl FnOnce(&mut Header)) -> String {
    let (k, public) = key_and_jwk(alg);
    let mut header = Header::new(alg);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(public);
    edit(&mut header);
    jsonwebtoken::encode(&header, &claims, &k).unwrap()
}

fn asked() -> For<'static> {
    For {
        method: "POST",
        htu: HTU,
        access_token: Some("the-token"),
        now: NOW,
    }
}

#[test]
fn a_fresh_proof_for_this_request_passes_with_its_keys_thumbprint() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let p = proof_with(alg, claims(), |_| {});
        let checked = check(&p, &rules(), &asked()).unwrap();
        assert_eq!(checked.jti, "proof-1");
        assert_eq!(checked.jkt.len(), 43, "base64url SHA-256");
    }
    // At a token endpoint there is no token to hash.
    let p = proof_with(
        Algorithm::ES256,
        json!({"jti": "j", "htm": "POST", "htu": HTU, "iat": NOW}),
        |_| {},
    );
    let at_endpoint = For {
        access_token: None,
        ..asked()
    };
    assert!(check(&p, &rules(), &at_endpoint).is_ok());
}

#[test]
fn each_claim_is_checked() {
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims();
        edit(&mut c);
        check(&proof_with(Algorithm::ES256, c, |_| {}), &rules(), &asked())
    };
    assert_eq!(with(&|c| c["htm"] = "GET".into()).unwrap_err(), "htm");
    for other in [
        "https://evil.example/api/orders",
        "https://api.shop.example/api/other",
        "https://api.shop.example:8443/api/orders",
        "http://api.shop.example/api/orders",
    ] {
        assert_eq!(
            with(&|c| c["htu"] = other.into()).unwrap_err(),
            "htu",
            "{other}"
        );
    }
    // Normalized before comparing; the query is not part of it.
    assert!(with(&|c| c["htu"] = "HTTPS://API.shop.example:443/api/./orders?x=1".into()).is_ok());
    assert_eq!(with(&|c| c["iat"] = (NOW - 61).into()).unwrap_err(), "iat");
    assert_eq!(with(&|c| c["iat"] = (NOW + 61).into()).unwrap_err(), "iat");
    assert_eq!(
        with(&|c| c["ath"] = ath("another-token").into()).unwrap_err(),
        "ath"
    );
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("ath");
        })
        .unwrap_err(),
        "ath"
    );
    assert_eq!(with(&|c| c["jti"] = "".into()).unwrap_err(), "jti");
    assert_eq!(
        with(&|c| c["jti"] = "j".repeat(129).into()).unwrap_err(),
        "jti"
    );
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("jti");
        })
        .unwrap_err(),
        "jti"
    );
}

#[test]
fn the_header_and_key_are_checked() {
    let refused = |p: &str| check(p, &rules(), &asked()).unwrap_err();
    assert_eq!(
        refused(&proof_with(Algorithm::ES256, claims(), |h| h.typ = Some("JWT".into()))),
        "typ"
    );
    assert_eq!(
        refused(&proof_with(Algorithm::ES256, claims(), |h| h.jwk = None)),
        "key"
    );
    // Another key's jwk: the signature does not verify under it.
    let other = jwk(Algorithm::ES256);
    assert_eq!(
        refused(&proof_with(Algorithm::ES256, claims(), |h| h.jwk = Some(other))),
        "signature"
    );
    // An Ed25519 key claimed as ES256: the key does not fit the algorithm.
    let ed = jwk(Algorithm::EdDSA);
    assert_eq!(
        refused(&proof_with(Algorithm::ES256, claims(), |h| h.jwk = Some(ed))),
        "key"
    );
    // HMAC, whatever key it names; and an algorithm not allowed.
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("dpop+jwt".into());
    h.jwk = Some(jwk(Algorithm::ES256));
    let hmac = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(b"s")).unwrap();
    assert_eq!(refused(&hmac), "alg");
    let es_only = Rules {
        algs: vec![Algorithm::ES256],
        ..rules()
    };
    let ed_proof = proof_with(Algorithm::EdDSA, claims(), |_| {});
    assert_eq!(check(&ed_proof, &es_only, &asked()).unwrap_err(), "alg");
    // alg none: an unsigned proof.
    let none = format!(
        "{}.{}.",
        B64.encode(
            br#"{"typ":"dpop+jwt","alg":"none","jwk":{"kty":"EC","crv":"P-256","x":"x","y":"y"}}"#
        ),
        B64.encode(claims().to_string())
    );
    assert_eq!(refused(&none), "malformed");
    assert_eq!(refused(&"a".repeat(MAX_PROOF_BYTES + 1)), "too_large");
    assert_eq!(refused("not a jwt"), "malformed");
}

#[test]
fn a_private_key_in_the_header_is_refused() {
    let p = proof_with(Algorithm::ES256, claims(), |_| {});
    let (header, rest) = p.split_once('.').unwrap();
    let mut h: serde_json::Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    h["jwk"]["d"] = "c2VjcmV0".into();
    let forged = format!("{}.{rest}", B64.encode(h.to_string()));
    assert_eq!(
        check(&forged, &rules(), &asked()).unwrap_err(),
        "private_key"
    );
}

#[test]
fn a_critical_header_or_a_missing_jti_is_named() {
    let crit = proof_with(Algorithm::ES256, claims(), |h| {
        h.crit = Some(vec!["urn:example:must-understand".into()]);
    });
    let asked = For {
        method: "POST",
        htu: HTU,
        access_token: Some("the-token"),
        now: NOW,
    };
    assert_eq!(check(&crit, &rules(), &asked).unwrap_err(), "crit");
    let mut no_jti = claims();
    no_jti.as_object_mut().unwrap().remove("jti");
    let proof = proof_with(Algorithm::ES256, no_jti, |_| {});
    assert_eq!(check(&proof, &rules(), &asked).unwrap_err(), "jti");
}

#[test]
fn a_null_crit_and_an_empty_rsa_modulus_are_refused() {
    let asked = For {
        method: "POST",
        htu: HTU,
        access_token: Some("the-token"),
        now: NOW,
    };
    let proof = proof_with(Algorithm::ES256, claims(), |_| {});
    // The same proof with `"crit":null` added to its header (the signature no longer fits,
    // but the header is refused first).
    let (h, rest) = proof.split_once('.').unwrap();
    let mut header: serde_json::Value = serde_json::from_slice(&B64.decode(h).unwrap()).unwrap();
    header["crit"] = serde_json::Value::Null;
    let with_null = format!("{}.{rest}", B64.encode(header.to_string()));
    assert_eq!(check(&with_null, &rules(), &asked).unwrap_err(), "crit");
    header.as_object_mut().unwrap().remove("crit");
    header["alg"] = "RS256".into();
    header["jwk"] = json!({"kty": "RSA", "n": "", "e": "AQAB"});
    let empty_n = format!("{}.{rest}", B64.encode(header.to_string()));
    assert_eq!(check(&empty_n, &rules(), &asked).unwrap_err(), "key");
}
