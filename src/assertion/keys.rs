//! A `private_key_jwt` client's registered public keys, from its JWKS (RFC 7517): several for
//! a rotation, each with its algorithm pinned — the JWK's `alg` when it has one, else the one
//! its type and curve imply (EC P-256 ES256, P-384 ES384, Ed25519 EdDSA, RSA RS256).

use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::ALGORITHMS;

/// One registered key.
pub struct ClientKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    key: DecodingKey,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    pub(super) fn decoding(&self) -> &DecodingKey {
        &self.key
    }
}

/// The signing keys of a JWKS (keys marked `"use": "enc"` are skipped); an error names the
/// key (`keys[i]`) and what is wrong with it. No key at all is an error.
pub fn keys_of(jwks: &serde_json::Value) -> Result<Vec<ClientKey>, String> {
    let list = (jwks.get("keys").and_then(|k| k.as_array()))
        .ok_or("is not a JWKS: it has no \"keys\" array")?;
    let mut out = Vec::new();
    for (i, value) in list.iter().enumerate() {
        if value.get("use").and_then(|u| u.as_str()) == Some("enc") {
            continue;
        }
        let jwk: Jwk = serde_json::from_value(value.clone())
            .map_err(|e| format!("keys[{i}] is not a JWK: {e}"))?;
        if value.get("d").is_some() {
            return Err(format!(
                "keys[{i}] holds a private key (\"d\"): register the public key only"
            ));
        }
        let alg = match jwk.common.key_algorithm {
            Some(a) => pinned(a).ok_or_else(|| {
                format!("keys[{i}] has alg {a:?}, which is not a signature algorithm accepted here")
            })?,
            None => implied(&jwk.algorithm).ok_or_else(|| {
                format!("keys[{i}] is of a type no accepted algorithm signs with")
            })?,
        };
        if !crate::dpop::proof::fits(&jwk, alg) {
            return Err(format!(
                "keys[{i}] does not fit its algorithm {alg:?} (RSA keys need 2048 bits)"
            ));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("keys[{i}]: {e}"))?;
        out.push(ClientKey {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        });
    }
    if out.is_empty() {
        return Err("holds no signing key".into());
    }
    Ok(out)
}

fn pinned(a: KeyAlgorithm) -> Option<Algorithm> {
    let alg: Algorithm = a.to_string().parse().ok()?;
    ALGORITHMS.contains(&alg).then_some(alg)
}

fn implied(params: &AlgorithmParameters) -> Option<Algorithm> {
    match params {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        _ => None,
    }
}
