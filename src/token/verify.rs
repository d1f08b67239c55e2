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
use crate::clients::{Client, Clients, Grant};
use crate::errors::Refusal;
use http::HeaderValue;

/// What a verified token says, as the guard and the upstream need it. Kept small, since the
/// cache holds one per token: the client is shared with the registry, the audience is a bit
/// set over the client's APIs, and the scope is already the header value sent upstream.
#[derive(Debug, Clone)]
pub struct Verified {
    pub client: Arc<Client>,
    /// Bit i: the token is for `client.apis[i]`.
    aud_mask: u64,
    /// The granted scope (space-separated), as sent to the upstream.
    pub scope: HeaderValue,
    pub grant: Grant,
    pub exp: u64,
}

impl Verified {
    /// The token's audience and scope, narrowed to what the client is registered for now: taking
    /// an API or a scope away from a client takes it away from the tokens it already holds.
    pub fn new(
        client: Arc<Client>,
        aud: &[String],
        scope: &str,
        grant: Grant,
        exp: u64,
    ) -> Verified {
        let aud_mask = client
            .apis
            .iter()
            .enumerate()
            .filter(|(_, api)| aud.contains(api))
            .fold(0u64, |m, (i, _)| m | (1 << i));
        let granted: Vec<&str> = scope
            .split(' ')
            .filter(|s| client.scopes.iter().any(|c| c == s))
            .collect();
        // Scope tokens are checked printable ASCII at start-up, so this cannot fail.
        let scope = HeaderValue::from_str(&granted.join(" "))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        Verified {
            client,
            aud_mask,
            scope,
            grant,
            exp,
        }
    }

    pub fn is_for(&self, api: &str) -> bool {
        self.client
            .apis
            .iter()
            .position(|a| a == api)
            .is_some_and(|i| self.aud_mask & (1 << i) != 0)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .to_str()
            .is_ok_and(|v| v.split(' ').any(|s| s == scope))
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
    clients: Clients,
    /// By kid: the rules for that key's tokens, its algorithm pinned. Built once.
    validation: HashMap<String, Validation>,
    cache: Option<TokenCache>,
    pub stats: VerifyStats,
}

impl Verifier {
    /// `cache_capacity` 0 turns the cache off.
    pub fn new(
        keys: Arc<KeySet>,
        clients: Clients,
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
            clients,
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
        // A client removed from the config loses its tokens with it.
        let client_id = c.client_id.unwrap_or(c.sub);
        let client = self
            .clients
            .get_shared(&client_id)
            .ok_or(Refusal::InvalidToken(
                "the token's client is no longer registered",
            ))?;
        Ok(Verified::new(client, &aud, &c.scope, grant, c.exp))
    }
}
