//! Signing and verification keys: load (or, for development, generate) the PKCS#8 signing key,
//! derive its public JWK and `kid`, add the retired keys, and publish them all as a JWKS
//! (RFC 7517) for upstreams that verify tokens themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;

use crate::devfiles;

/// The signing key files and the retired public keys, as configured.
#[derive(Debug, Clone, Default)]
pub struct SigningConfig {
    pub algorithm: SigningAlgorithm,
    /// PKCS#8 PEM private key.
    pub key: PathBuf,
    /// Key id; default: the RFC 7638 thumbprint.
    pub kid: Option<String>,
    /// A development key: generate one when the file is missing.
    pub generate_dev_files: bool,
    /// The key that signs next: published and trusted, not yet signing.
    pub next_key: Option<PathBuf>,
    pub next_kid: Option<String>,
    /// Public keys that still verify (and are published) but no longer sign.
    pub retired: Vec<Jwk>,
}

/// The algorithms storegate signs with. Verification is pinned per key to the algorithm the
/// key was configured with (RFC 8725 §3.1): never `none`, never HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlgorithm {
    #[default]
    EdDSA,
    ES256,
    RS256,
}

impl SigningAlgorithm {
    pub fn jwt_name(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
        }
    }

    fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EdDSA => &rcgen::PKCS_ED25519,
            Self::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::RS256 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// The private half, parsed once so that signing does no key parsing per token.
pub enum Signer {
    Ed(signature::Ed25519KeyPair),
    Es(signature::EcdsaKeyPair),
    Rs(signature::RsaKeyPair),
}

impl Signer {
    /// Signs a JWS signing input; the signature bytes in the algorithm's JWS encoding.
    /// ECDSA and RSA signing can fail only if the crypto library does (its random source, say).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match self {
            Signer::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Signer::Es(k) => Ok(k.sign(&rng, msg)?.as_ref().to_vec()),
            Signer::Rs(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)?;
                Ok(sig)
            }
        }
    }

    /// Signs `jws` (a JWS signing input, `header.payload` in base64url) and appends
    /// `.signature`, making it a compact JWS.
    pub fn append_signature(&self, jws: &mut String) -> Result<(), aws_lc_rs::error::Unspecified> {
        let signature = self.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, jws);
        Ok(())
    }

    fn public_jwk_params(&self) -> serde_json::Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            Signer::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
            Signer::Es(k) => {
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            Signer::Rs(k) => {
                let p = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(p.modulus().big_endian_without_leading_zero()),
                    "e": b64(p.exponent().big_endian_without_leading_zero()),
                })
            }
        }
    }
}

/// A key that verifies tokens: its algorithm is fixed by configuration, not by the token.
pub struct VerifyKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// All key material of a running gateway.
pub struct KeySet {
    pub algorithm: SigningAlgorithm,
    pub kid: String,
    pub signer: Signer,
    /// The signing key's public JWK (with `kid`, `alg` and `use`).
    pub current: Jwk,
    /// The other trusted keys: the next key, retired keys, keys remembered after a rotation.
    pub others: Vec<Jwk>,
    /// By kid: the signing key's public half and every other trusted key.
    pub verify: HashMap<std::sync::Arc<str>, VerifyKey>,
    /// `{"keys":[...]}`, serialized once.
    pub jwks: bytes::Bytes,
}

impl Signer {
    /// Parses a PKCS#8 key of the given algorithm.
    pub fn from_pkcs8(alg: SigningAlgorithm, der: &[u8]) -> anyhow::Result<Signer> {
        Ok(match alg {
            SigningAlgorithm::EdDSA => Signer::Ed(
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| anyhow::anyhow!("is not an Ed25519 key: {e}"))?,
            ),
            SigningAlgorithm::ES256 => Signer::Es(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                )
                .map_err(|e| anyhow::anyhow!("is not a P-256 key: {e}"))?,
            ),
            SigningAlgorithm::RS256 => {
                let k = signature::RsaKeyPair::from_pkcs8(der)
                    .map_err(|e| anyhow::anyhow!("is not an RSA key: {e}"))?;
                if k.public_modulus_len() < 256 {
                    bail!("RSA keys must have at least 2048 bits");
                }
                Signer::Rs(k)
            }
        })
    }

    /// Parses a PKCS#8 key of whichever supported algorithm it is for.
    fn from_pkcs8_any(der: &[u8]) -> anyhow::Result<(SigningAlgorithm, Signer)> {
        [
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::ES256,
            SigningAlgorithm::RS256,
        ]
        .into_iter()
        .find_map(|alg| Signer::from_pkcs8(alg, der).ok().map(|s| (alg, s)))
        .context("is not an Ed25519, P-256 or RSA (2048 bits or more) key")
    }

    /// The public JWK, named `kid` or by its RFC 7638 thumbprint.
    fn public_jwk(&self, alg: SigningAlgorithm, kid: Option<&str>) -> anyhow::Result<Jwk> {
        let mut params = self.public_jwk_params();
        let kid = match kid {
            Some(k) => k.to_owned(),
            None => serde_json::from_value::<Jwk>(params.clone())
                .context("building the public JWK")?
                .thumbprint(ThumbprintHash::SHA256)
                .context("computing the key thumbprint")?,
        };
        params["use"] = json!("sig");
        params["alg"] = json!(alg.jwt_name());
        params["kid"] = json!(kid);
        serde_json::from_value(params).context("building the public JWK")
    }
}

/// Reads a PKCS#8 PEM private key; errors name the file.
fn read_pkcs8(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let der = PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let PrivateKeyDer::Pkcs8(pkcs8) = der else {
        bail!(
            "{what} {} must be PKCS#8 (\"BEGIN PRIVATE KEY\")",
            path.display()
        );
    };
    Ok(pkcs8.secret_pkcs8_der().to_vec())
}

impl KeySet {
    /// Loads the configured signing key (generating a development key when allowed), the next
    /// key and the retired keys.
    pub fn load(cfg: &SigningConfig) -> anyhow::Result<KeySet> {
        if devfiles::to_generate(cfg.generate_dev_files, &[&cfg.key]) {
            generate_key_file(cfg.algorithm, &cfg.key)?;
            tracing::warn!(file = %cfg.key.display(), "generated a development signing key; do not use it in production");
        }
        let mut others = cfg.retired.clone();
        if let Some(next) = &cfg.next_key {
            let jwk = read_pkcs8(next, "next signing key")
                .and_then(|der| {
                    let (alg, signer) = Signer::from_pkcs8_any(&der)
                        .with_context(|| format!("next signing key {}", next.display()))?;
                    signer.public_jwk(alg, cfg.next_kid.as_deref())
                })
                .context("config key `signing.next_key`")?;
            others.push(jwk);
        }
        read_pkcs8(&cfg.key, "signing key")
            .and_then(|der| {
                Self::from_pkcs8(cfg.algorithm, &der, cfg.kid.clone(), &others)
                    .with_context(|| format!("signing key {}", cfg.key.display()))
            })
            .context("config key `signing.key`")
    }

    /// Builds the key set from PKCS#8 DER bytes and the public keys it also trusts.
    pub fn from_pkcs8(
        alg: SigningAlgorithm,
        der: &[u8],
        kid: Option<String>,
        others: &[Jwk],
    ) -> anyhow::Result<KeySet> {
        let signer = Signer::from_pkcs8(alg, der)?;
        let current = signer.public_jwk(alg, kid.as_deref())?;
        Self::assemble(alg, signer, current, others.to_vec())
    }

    /// The public JWK trusted under `kid`.
    pub fn jwk(&self, kid: &str) -> Option<&Jwk> {
        std::iter::once(&self.current)
            .chain(&self.others)
            .find(|j| j.common.key_id.as_deref() == Some(kid))
    }

    /// The same keys, also trusting `extra` (keys with a kid already trusted are skipped).
    pub fn trust(self, extra: &[Jwk]) -> anyhow::Result<KeySet> {
        let mut others = self.others;
        for jwk in extra {
            if !self
                .verify
                .contains_key(jwk.common.key_id.as_deref().unwrap_or_default())
            {
                others.push(jwk.clone());
            }
        }
        Self::assemble(self.algorithm, self.signer, self.current, others)
    }

    fn assemble(
        algorithm: SigningAlgorithm,
        signer: Signer,
        current: Jwk,
        others: Vec<Jwk>,
    ) -> anyhow::Result<KeySet> {
        let mut verify = HashMap::new();
        for jwk in std::iter::once(&current).chain(&others) {
            let (k, vk) = verify_key(jwk)?;
            if verify.insert(k.as_str().into(), vk).is_some() {
                bail!("key id {k:?} is used by more than one key");
            }
        }
        let published: Vec<&Jwk> = std::iter::once(&current).chain(&others).collect();
        let jwks = serde_json::to_vec(&json!({ "keys": published }))
            .context("serializing the JWKS")?
            .into();
        Ok(KeySet {
            algorithm,
            kid: current.common.key_id.clone().unwrap_or_default(),
            signer,
            current,
            others,
            verify,
            jwks,
        })
    }
}

fn verify_key(jwk: &Jwk) -> anyhow::Result<(String, VerifyKey)> {
    let kid = jwk
        .common
        .key_id
        .clone()
        .context("a verification key has no \"kid\"")?;
    use jsonwebtoken::jwk::KeyAlgorithm;
    let algorithm = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        _ => bail!("key {kid:?} needs \"alg\" of EdDSA, ES256 or RS256"),
    };
    let key = DecodingKey::from_jwk(jwk)
        .with_context(|| format!("key {kid:?} is not a usable public key"))?;
    Ok((kid, VerifyKey { algorithm, key }))
}

/// Checks a retired key at config time, so that a bad one fails validation, not start-up.
pub fn check_retired_jwk(jwk: &Jwk) -> Result<(), String> {
    verify_key(jwk).map(|_| ()).map_err(|e| format!("{e:#}"))
}

/// Writes a fresh PKCS#8 PEM key, readable by its owner only.
pub fn generate_key_file(alg: SigningAlgorithm, path: &Path) -> anyhow::Result<()> {
    let key = rcgen::KeyPair::generate_for(alg.rcgen()).context("generating a signing key")?;
    devfiles::write_private_file(path, key.serialize_pem().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset(alg: SigningAlgorithm) -> KeySet {
        let key = rcgen::KeyPair::generate_for(alg.rcgen()).unwrap();
        KeySet::from_pkcs8(alg, &key.serialize_der(), None, &[]).unwrap()
    }

    #[test]
    fn every_algorithm_publishes_a_jwk_with_its_thumbprint_as_kid() {
        for alg in [
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::ES256,
            SigningAlgorithm::RS256,
        ] {
            let ks = keyset(alg);
            let jwks: serde_json::Value = serde_json::from_slice(&ks.jwks).unwrap();
            let k = &jwks["keys"][0];
            assert_eq!(k["kid"], ks.kid.as_str());
            assert_eq!(k["alg"], alg.jwt_name());
            assert_eq!(k["use"], "sig");
            assert!(k.get("d").is_none(), "no private part is published");
            assert_eq!(ks.verify[ks.kid.as_str()].algorithm, alg.jsonwebtoken());
        }
    }

    #[test]
    fn retired_keys_verify_and_are_published() {
        let old = keyset(SigningAlgorithm::ES256);
        let old_jwk: serde_json::Value = serde_json::from_slice(&old.jwks).unwrap();
        let retired: Jwk = serde_json::from_value(old_jwk["keys"][0].clone()).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ks = KeySet::from_pkcs8(
            SigningAlgorithm::EdDSA,
            &key.serialize_der(),
            None,
            &[retired],
        )
        .unwrap();
        assert_eq!(ks.verify.len(), 2);
        assert_eq!(ks.verify[old.kid.as_str()].algorithm, Algorithm::ES256);
        let jwks: serde_json::Value = serde_json::from_slice(&ks.jwks).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_retired_key_without_alg_is_refused() {
        let jwk: Jwk = serde_json::from_value(json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"})).unwrap();
        assert!(check_retired_jwk(&jwk).unwrap_err().contains("alg"));
    }
}
