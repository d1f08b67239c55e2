//! `private_key_jwt` (RFC 7523 §2.2, as draft-ietf-oauth-rfc7523bis updates it): a client
//! authenticates with a short-lived JWT it signed with a key registered in its JWKS.
//!
//! An assertion passes when: its `typ` is `client-authentication+jwt`, `JWT` or absent; its
//! `alg` is the algorithm of one of the client's keys (by `kid` when it names one; none and
//! HMAC never are); the signature verifies with that key; `iss` and `sub` are the client id;
//! `aud` is one string, the issuer identifier (the update closes an audience confusion that
//! the token endpoint URL as `aud` left open; `[private_key_jwt] token_endpoint_audience`
//! also accepts the URL of the endpoint it was sent to, for clients not yet updated); `exp` is
//! present, not past, and at most `max_lifetime_secs` after `iat` (or now); `nbf`, if any, has
//! come; and `jti` was never presented before — recorded once, atomically, in a bounded store
//! and, with `[cluster]`, claimed across the replicas (`replay`).

pub mod keys;
pub mod replay;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

pub use keys::ClientKey;

/// The clock skew allowed on an assertion's `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The algorithms a registered key may have.
pub const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
];

/// `[private_key_jwt]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Longest `exp - iat` (or `exp - now`) accepted, in seconds (restart: the replay store
    /// keeps each `jti` that long).
    pub max_lifetime: u64,
    /// Also accept the URL of the endpoint the assertion was sent to as `aud`.
    pub endpoint_audience: bool,
    /// `jti`s remembered at most, and per client (restart).
    pub replay_capacity: usize,
    pub replay_per_client: usize,
}

/// What an assertion is checked against besides the client's keys.
pub struct Expected<'a> {
    /// The authorization server's issuer identifier.
    pub issuer: &'a str,
    /// The URL of the endpoint the assertion was sent to, where one can be made.
    pub endpoint: Option<&'a str>,
    pub now: u64,
}

/// An assertion whose checks passed, but for its `jti`'s single use.
#[derive(Debug)]
pub struct Checked {
    pub jti: String,
    pub exp: u64,
}

/// The claims judged here. `iss` and `sub` are strings: jsonwebtoken's own issuer check
/// would take a list that holds the client id among others.
#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
}

/// The client an assertion says it comes from (`iss`), read before anything is checked, to
/// find that client's keys. `None` when it cannot be read.
pub fn named_client(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    let claims: Iss = jsonwebtoken::dangerous::insecure_decode_claims(assertion).ok()?;
    Some(claims.iss)
}

/// Checks `assertion` as `client_id`'s, signed by one of `keys`.
pub fn check(
    assertion: &str,
    client_id: &str,
    keys: &[ClientKey],
    settings: &Settings,
    expected: &Expected<'_>,
) -> Result<Checked, &'static str> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| "the client assertion is not a signed JWT with a known alg")?;
    let typ_ok = header.typ.as_deref().is_none_or(|t| {
        let t = t.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        t == "client-authentication+jwt" || t == "jwt"
    });
    if !typ_ok {
        return Err("the client assertion's typ must be client-authentication+jwt, JWT or absent");
    }
    let candidates: Vec<&ClientKey> = (keys.iter())
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .collect();
    if candidates.is_empty() {
        return Err("the client assertion's kid names no key registered for the client");
    }
    let mut keyed = candidates
        .into_iter()
        .filter(|k| k.alg == header.alg)
        .peekable();
    if keyed.peek().is_none() {
        return Err(
            "the client assertion's alg is not the algorithm of a key registered for the client",
        );
    }
    // The signature only: every claim is judged below, against one clock (`expected.now`).
    let mut validation = Validation::new(header.alg);
    validation.set_required_spec_claims::<&str>(&[]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    for key in keyed {
        match jsonwebtoken::decode::<Claims>(assertion, key.decoding(), &validation) {
            Ok(data) => return judge(data.claims, client_id, settings, expected),
            // Another key of the client's may have signed it.
            Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {}
            Err(_) => return Err("the client assertion's claims are malformed"),
        }
    }
    Err("the client assertion's signature does not verify with the client's keys")
}

/// The checks of the verified claims: the client, one audience, the lifetime, a `jti`.
fn judge(
    c: Claims,
    client_id: &str,
    settings: &Settings,
    expected: &Expected<'_>,
) -> Result<Checked, &'static str> {
    if c.iss.as_deref() != Some(client_id) {
        return Err("the client assertion's iss must be the client id");
    }
    if c.sub.as_deref() != Some(client_id) {
        return Err("the client assertion's sub must be the client id");
    }
    let aud = match &c.aud {
        Some(serde_json::Value::String(aud)) => aud,
        Some(serde_json::Value::Array(_)) => {
            return Err("the client assertion's aud must be one string, the issuer identifier");
        }
        _ => return Err("the client assertion's aud must be the issuer identifier"),
    };
    let endpoint = settings.endpoint_audience && expected.endpoint == Some(aud.as_str());
    if aud != expected.issuer && !endpoint {
        return Err("the client assertion's aud must be the issuer identifier");
    }
    let exp = c.exp.ok_or("the client assertion has no exp")?;
    let now = expected.now;
    if exp + LEEWAY_SECS < now {
        return Err("the client assertion has expired");
    }
    if c.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err("the client assertion is not valid yet (nbf)");
    }
    if c.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err("the client assertion's iat is in the future");
    }
    let from = c.iat.unwrap_or(now).min(now);
    if exp.saturating_sub(from) > settings.max_lifetime {
        return Err(
            "the client assertion lives longer than [private_key_jwt] max_lifetime_secs allows",
        );
    }
    let jti = c
        .jti
        .filter(|j| !j.is_empty())
        .ok_or("the client assertion has no jti")?;
    Ok(Checked { jti, exp })
}
