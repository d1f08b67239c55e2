//! Checking one DPoP proof (RFC 9449 §4.3): a JWT the client signs with the key its token is
//! bound to, naming the request it is for. Everything but replay (`replay`) and the binding to
//! a token's `cnf.jkt` (the guard's) is checked here; a refusal names its reason, one of a
//! fixed set (the `reason` label of `storegate_dpop_proofs_refused_total`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// What a proof may be.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Signature algorithms accepted (never `none`, never HMAC: `config` refuses them).
    pub algs: Vec<Algorithm>,
    /// How far `iat` may be from now, either way, in seconds.
    pub iat_window: u64,
}

/// Longest proof accepted, in bytes (RFC 9449 leaves it open; an RSA-4096 proof is ~1.5 KiB).
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted: a replay store keyed on it must not be fed megabytes.
pub const MAX_JTI_BYTES: usize = 128;

/// A proof that passed: its key's RFC 7638 thumbprint, and what the replay check needs.
#[derive(Debug)]
pub struct Checked {
    pub jkt: String,
    pub jti: String,
    pub iat: u64,
    pub nonce: Option<String>,
}

/// What a request offers a proof for.
pub struct For<'a> {
    /// `htm`: the request's method.
    pub method: &'a str,
    /// `htu`, normalized (`htu::expected`).
    pub htu: &'a str,
    /// The access token it comes with (`ath` is then required), `None` at a token endpoint.
    pub access_token: Option<&'a str>,
    /// Now, in Unix seconds.
    pub now: u64,
}

#[derive(Deserialize)]
struct Claims {
    /// Read as optional, so that a missing one is named as such.
    jti: Option<String>,
    htm: String,
    htu: String,
    iat: f64,
    ath: Option<String>,
    nonce: Option<String>,
}

/// A proof's header, read once.
#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: serde_json::Value,
    /// As an object first, so that a private member is seen (`Jwk` would drop it).
    jwk: Option<serde_json::Map<String, serde_json::Value>>,
    /// Present at all, `null` included: RFC 7515 §4.1.11 gives it no empty form.
    #[serde(default)]
    crit: Present,
}

/// Whether a header member was there, whatever its value.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Present, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// Checks `proof` for the request `asked`; `Err` names the reason. Each part is decoded and
/// read once, and the signature checked over the bytes as they came.
pub fn check(proof: &str, rules: &Rules, asked: &For<'_>) -> Result<Checked, &'static str> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err("too_large");
    }
    let mut parts = proof.split('.');
    let (Some(raw_header), Some(raw_claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed");
    };
    let header: ProofHeader = B64
        .decode(raw_header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("malformed")?;
    if !(header.typ.as_deref()).is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err("typ");
    }
    // A private key in the header is refused whatever else it holds (RFC 9449 §4.3 step 7).
    let private = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    if (header.jwk.as_ref()).is_some_and(|jwk| private.iter().any(|m| jwk.contains_key(*m))) {
        return Err("private_key");
    }
    // RFC 7515 §4.1.11: an extension the gateway does not understand must not be ignored.
    if header.crit.0 {
        return Err("crit");
    }
    let alg: Algorithm = serde_json::from_value(header.alg).map_err(|_| "malformed")?;
    if !rules.algs.contains(&alg) {
        return Err("alg");
    }
    let jwk: Jwk = match header.jwk {
        Some(map) => serde_json::from_value(serde_json::Value::Object(map)).map_err(|_| "key")?,
        None => return Err("key"),
    };
    if !fits(&jwk, alg) {
        return Err("key");
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "key")?;
    let signed = &proof[..raw_header.len() + 1 + raw_claims.len()];
    match jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key, alg) {
        Ok(true) => {}
        Ok(false) => return Err("signature"),
        Err(_) => return Err("malformed"),
    }
    let claims: Claims = B64
        .decode(raw_claims)
        .ok()
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or("malformed")?;
    let jti = claims.jti.unwrap_or_default();
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err("jti");
    }
    if claims.htm != asked.method {
        return Err("htm");
    }
    if super::htu::normalize(&claims.htu).as_deref() != Some(asked.htu) {
        return Err("htu");
    }
    if !claims.iat.is_finite() || (claims.iat - asked.now as f64).abs() > rules.iat_window as f64 {
        return Err("iat");
    }
    if let Some(token) = asked.access_token
        && claims.ath.as_deref() != Some(ath(token).as_str())
    {
        return Err("ath");
    }
    let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| "key")?;
    Ok(Checked {
        jkt,
        jti,
        iat: claims.iat as u64,
        nonce: claims.nonce,
    })
}

/// `ath`: base64url(SHA-256(access token)), RFC 9449 §4.2.
pub fn ath(token: &str) -> String {
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

/// Whether the key's type and curve fit the algorithm (an RSA key under 2048 bits does not).
pub(crate) fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        (
            AlgorithmParameters::RSA(p),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => B64.decode(&p.n).is_ok_and(|n| {
            // An empty modulus has no bits (never less than none).
            let leading = n.first().map_or(0, |b| b.leading_zeros() as usize);
            (n.len() * 8).saturating_sub(leading) >= 2048
        }),
        _ => false,
    }
}

#[cfg(test)]
#[path = "proof_tests.rs"]
mod tests;
