//! Verifying Bearer tokens: the key is chosen by `kid`, the algorithm is the key's own
//! (RFC 8725 §3.1), `typ` must be `at+jwt` (RFC 9068 §4), and `exp`/`nbf`/`iss` are checked
//! with a small leeway. The audience is checked per route by the caller, so one cached
//! verification serves every route. Results are cached by token digest.
//!
//! The signature is checked once per token; a reload only binds the cached claims again to the
//! new generation's clients (and keeps them only if their key is still trusted), so a reload
//! costs no burst of signature checks and a removed client is refused on its next request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Deserialize;

use super::cache::{Recent, TokenCache, digest};
use super::keys::KeySet;
use super::verified::{Signed, Verified};
use crate::clients::{Clients, Grant};
use crate::errors::Refusal;

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    aud: OneOrMany,
    client_id: Option<String>,
    exp: u64,
    #[serde(default)]
    scope: String,
    gty: Option<String>,
    iat: Option<u64>,
    jti: Option<String>,
    cnf: Option<Confirmation>,
}

/// `cnf` (RFC 7800): what a token is bound to; this gateway reads `jkt` (RFC 9449) and
/// `x5t#S256` (RFC 8705).
#[derive(Deserialize)]
struct Confirmation {
    jkt: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t: Option<String>,
}

/// One generation's verification rules: its keys, each with its algorithm pinned.
pub struct Verifier {
    keys: Arc<KeySet>,
    /// By kid: the rules for that key's tokens. Built once per generation.
    validation: HashMap<Arc<str>, Validation>,
    /// The generation whose keys and clients these are.
    generation: u64,
    /// Longest `exp - iat` accepted.
    max_age_secs: u64,
}

/// What a generation's verifier checks besides the keys.
pub struct Rules<'a> {
    pub issuer: &'a str,
    pub leeway_secs: u64,
    pub max_age_secs: u64,
}

impl Verifier {
    pub fn new(keys: Arc<KeySet>, rules: Rules, generation: u64) -> Verifier {
        let validation = keys
            .verify
            .iter()
            .map(|(kid, key)| {
                let mut v = Validation::new(key.algorithm);
                v.set_issuer(&[rules.issuer]);
                v.validate_aud = false;
                v.validate_nbf = true;
                v.leeway = rules.leeway_secs;
                v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
                (kid.clone(), v)
            })
            .collect();
        Verifier {
            keys,
            validation,
            generation,
            max_age_secs: rules.max_age_secs,
        }
    }

    /// Verifies a token, from the cache when it was verified before. An entry bound under an
    /// older generation is bound again to this one's clients, if its key is still trusted.
    pub fn verify(
        &self,
        token: &str,
        clients: &Clients,
        cache: &TokenCache,
    ) -> Result<Arc<Verified>, Refusal> {
        if !cache.is_enabled() {
            let signed = self.verify_uncached(token, cache)?;
            return Ok(Arc::new(Verified::bind(signed, clients, self.generation)?));
        }
        let key = digest(token);
        let signed = match cache.get(&key) {
            Some(v) if v.generation == self.generation => return Ok(v),
            Some(v) if self.validation.contains_key(&v.signed.kid) => v.signed.clone(),
            _ => self.verify_uncached(token, cache)?,
        };
        let v = Arc::new(Verified::bind(signed, clients, self.generation)?);
        cache.insert(key, v.clone());
        Ok(v)
    }

    /// `verify`, asking first the connection's `recent` token (see `cache::Recent`).
    pub fn verify_recent(
        &self,
        token: &str,
        clients: &Clients,
        cache: &TokenCache,
        recent: &Recent,
    ) -> Result<Arc<Verified>, Refusal> {
        if let Some(v) = recent.get(token, self.generation, cache) {
            return Ok(v);
        }
        let v = self.verify(token, clients, cache)?;
        recent.remember(token, &v, cache);
        Ok(v)
    }

    /// The claims of a token this generation's keys vouch for, from the cache when it was
    /// verified before, bound to no client (the revocation endpoint checks whose it is).
    pub fn signed(&self, token: &str, cache: &TokenCache) -> Result<Signed, Refusal> {
        match cache.get(&digest(token)) {
            Some(v) if self.validation.contains_key(&v.signed.kid) => Ok(v.signed.clone()),
            _ => self.verify_uncached(token, cache),
        }
    }

    /// Full verification: header, key, signature, claims. Counted in `cache.stats`.
    pub fn verify_uncached(&self, token: &str, cache: &TokenCache) -> Result<Signed, Refusal> {
        cache.stats.verifications.fetch_add(1, Ordering::Relaxed);
        let header =
            decode_header(token).map_err(|_| Refusal::InvalidToken("the token is malformed"))?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(Refusal::InvalidToken("the token is not an access token"));
        }
        // RFC 7515 §4.1.11: storegate understands no header extension, so any `crit` is one
        // it must refuse.
        if header.crit.is_some() {
            return Err(Refusal::InvalidToken(
                "the token has a critical header parameter",
            ));
        }
        let unknown = Refusal::InvalidToken("the token was not signed by a known key");
        let kid = header.kid.ok_or(unknown.clone())?;
        let (Some((kid, key)), Some(validation)) = (
            self.keys.verify.get_key_value(kid.as_str()),
            self.validation.get(kid.as_str()),
        ) else {
            return Err(unknown);
        };
        if header.alg != key.algorithm {
            return Err(Refusal::InvalidToken(
                "the token's algorithm does not match its key",
            ));
        }
        let data = decode::<Claims>(token, &key.key, validation).map_err(|e| {
            Refusal::InvalidToken(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidIssuer => "the token was issued by someone else",
                ErrorKind::InvalidSignature => "the token signature is invalid",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                _ => "the token is malformed",
            })
        })?;
        let c = data.claims;
        // RFC 9068 §2.2: `iat` and `jti` are required; revocation needs both.
        let (Some(iat), Some(jti)) = (c.iat, c.jti.as_deref().filter(|j| !j.is_empty())) else {
            return Err(Refusal::InvalidToken("the token lacks a required claim"));
        };
        // A token valid for longer than any this gateway issues (exp = u64::MAX, say) is no
        // token of ours, whatever key signed it.
        if c.exp.saturating_sub(iat) > self.max_age_secs {
            return Err(Refusal::InvalidToken("the token's lifetime is too long"));
        }
        let grant = c
            .gty
            .as_deref()
            .and_then(Grant::parse)
            .ok_or(Refusal::InvalidToken("the token names no known grant"))?;
        let aud = match &c.aud {
            OneOrMany::One(a) => std::slice::from_ref(a),
            OneOrMany::Many(a) => a.as_slice(),
        };
        cache.stats.verified.fetch_add(1, Ordering::Relaxed);
        Signed::new(
            kid.clone(),
            c.client_id.as_deref().unwrap_or(&c.sub),
            &c.scope,
            Some(jti),
            aud.iter().map(String::as_str),
            (grant, c.exp, Some(iat)),
        )
        .and_then(|s| {
            let cnf = c.cnf.as_ref();
            let x5t = match cnf.and_then(|cnf| cnf.x5t.as_deref()) {
                Some(v) => Some(crate::mtls::parse_x5t(v)?),
                None => None,
            };
            Some(s.bound_to(cnf.and_then(|cnf| cnf.jkt.as_deref()), x5t))
        })
        .ok_or(Refusal::InvalidToken("the token is malformed"))
    }
}
