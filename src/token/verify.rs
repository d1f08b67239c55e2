//! Verifying Bearer tokens: the key is chosen by `kid`, the algorithm is the key's own
//! (RFC 8725 §3.1), `typ` must be `at+jwt` (RFC 9068 §4), and `exp`/`nbf`/`iss` are checked
//! with a small leeway. The audience is checked per route by the caller, so one cached
//! verification serves every route. Results are cached by token digest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Deserialize;

use super::cache::{TokenCache, digest};
use super::keys::KeySet;
use crate::clients::Grant;
use crate::errors::Refusal;

/// What a verified token says, as the guard and the upstream need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub client_id: String,
    pub aud: Vec<String>,
    pub scope: String,
    pub grant: Grant,
    pub exp: u64,
}

impl Verified {
    pub fn is_for(&self, api: &str) -> bool {
        self.aud.iter().any(|a| a == api)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

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
}

/// Counters that make the cache observable.
#[derive(Debug, Default)]
pub struct VerifyStats {
    pub cache_hits: AtomicU64,
    pub verifications: AtomicU64,
}

pub struct Verifier {
    keys: Arc<KeySet>,
    /// By kid: the rules for that key's tokens, its algorithm pinned. Built once.
    validation: HashMap<String, Validation>,
    cache: Option<TokenCache>,
    pub stats: VerifyStats,
}

impl Verifier {
    /// `cache_capacity` 0 turns the cache off.
    pub fn new(
        keys: Arc<KeySet>,
        issuer: &str,
        leeway_secs: u64,
        cache_capacity: u64,
        cache_ttl: std::time::Duration,
    ) -> Verifier {
        let validation = keys
            .verify
            .iter()
            .map(|(kid, key)| {
                let mut v = Validation::new(key.algorithm);
                v.set_issuer(&[issuer]);
                v.validate_aud = false;
                v.validate_nbf = true;
                v.leeway = leeway_secs;
                v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
                (kid.clone(), v)
            })
            .collect();
        let cache = (cache_capacity > 0).then(|| TokenCache::new(cache_capacity, cache_ttl));
        Verifier {
            keys,
            validation,
            cache,
            stats: VerifyStats::default(),
        }
    }

    /// Verifies a token, from the cache when it was verified before.
    pub fn verify(&self, token: &str) -> Result<Arc<Verified>, Refusal> {
        let Some(cache) = &self.cache else {
            return self.verify_uncached(token).map(Arc::new);
        };
        let key = digest(token);
        if let Some(v) = cache.get(&key) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v);
        }
        let v = Arc::new(self.verify_uncached(token)?);
        cache.insert(key, v.clone());
        Ok(v)
    }

    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// Full verification: header, key, signature, claims.
    pub fn verify_uncached(&self, token: &str) -> Result<Verified, Refusal> {
        self.stats.verifications.fetch_add(1, Ordering::Relaxed);
        let header =
            decode_header(token).map_err(|_| Refusal::InvalidToken("the token is malformed"))?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(Refusal::InvalidToken("the token is not an access token"));
        }
        let unknown = Refusal::InvalidToken("the token was not signed by a known key");
        let kid = header.kid.as_deref().ok_or(unknown.clone())?;
        let (Some(key), Some(validation)) = (self.keys.verify.get(kid), self.validation.get(kid))
        else {
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
        let grant = match c.gty.as_deref() {
            Some("client_credentials") => Grant::ClientCredentials,
            Some("implicit") => Grant::Implicit,
            _ => return Err(Refusal::InvalidToken("the token names no known grant")),
        };
        let aud = match c.aud {
            OneOrMany::One(a) => vec![a],
            OneOrMany::Many(a) => a,
        };
        Ok(Verified {
            client_id: c.client_id.unwrap_or(c.sub),
            aud,
            scope: c.scope,
            grant,
            exp: c.exp,
        })
    }
}
