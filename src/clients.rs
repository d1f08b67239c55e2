//! The client registry: who may ask for tokens, with which secret (stored only as a SHA-256
//! digest), for which APIs, with which grants and scopes.
//!
//! Secrets are 256-bit random strings made by `storegate client new`, so a fast digest is
//! enough: a slow password hash protects low-entropy secrets and would cost most of the token
//! endpoint's CPU (bcrypt was 93% of Hydra's). The comparison is constant-time.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::{constant_time, digest, rand::SecureRandom};
use base64::Engine;
use serde::Deserialize;

use crate::config::{ConfigError, client_error};

/// The grants storegate issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// RFC 6749 §4.4: id + secret, full read and write access.
    ClientCredentials,
    /// The read-only public-key grant of seed 004: client id only, GET/HEAD/OPTIONS only.
    Implicit,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Implicit => "implicit",
        }
    }
}

/// One `[[clients]]` entry as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub id: String,
    /// "sha256:<64 hex digits>", as printed by `storegate client new`.
    pub secret_hash: Option<String>,
    /// The APIs (route `api` names) this client's tokens are for.
    pub apis: Vec<String>,
    /// Grants it may use; default ["client_credentials"].
    pub grants: Option<Vec<String>>,
    /// Scopes it may be granted; a request without `scope` gets all of them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Requests per second this client may make through the gateway (bursts of up to one
    /// second's worth); more get 429. Default: no limit.
    pub rate_limit_per_sec: Option<u32>,
}

/// A validated client.
pub struct Client {
    pub id: String,
    /// The id as the `x-storegate-client-id` value sent upstream, made once.
    pub id_header: http::HeaderValue,
    secret_digest: Option<[u8; 32]>,
    pub apis: Vec<String>,
    pub grants: Vec<Grant>,
    pub scopes: Vec<String>,
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket: `per_sec` tokens a second, holding at most `per_sec`.
pub struct RateLimit {
    per_sec: f64,
    bucket: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl RateLimit {
    pub fn new(per_sec: u32) -> RateLimit {
        let per_sec = f64::from(per_sec);
        RateLimit {
            per_sec,
            bucket: std::sync::Mutex::new((per_sec, std::time::Instant::now())),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&self, now: std::time::Instant) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = *b;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.per_sec)
            .min(self.per_sec);
        if refilled >= 1.0 {
            *b = (refilled - 1.0, now);
            true
        } else {
            *b = (refilled, now);
            false
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digest is not the secret, but it is no business of a log line either.
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("apis", &self.apis)
            .field("grants", &self.grants)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn may_use(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }

    /// Checks a presented secret in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        let presented = digest::digest(&digest::SHA256, secret.as_bytes());
        match &self.secret_digest {
            Some(stored) => {
                constant_time::verify_slices_are_equal(presented.as_ref(), stored).is_ok()
            }
            None => false,
        }
    }
}

/// All registered clients, by id.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    by_id: HashMap<String, std::sync::Arc<Client>>,
}

impl Clients {
    pub fn new(entries: Vec<ClientEntry>) -> Result<Clients, ConfigError> {
        let mut by_id = HashMap::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let k = |field: &str| format!("clients[{i}].{field}");
            if e.id.is_empty() || e.id.contains(':') || e.id.chars().any(char::is_control) {
                return Err(client_error(
                    &k("id"),
                    format!(
                        "{:?} must be non-empty, without ':' or control characters",
                        e.id
                    ),
                ));
            }
            let grants = match &e.grants {
                None => vec![Grant::ClientCredentials],
                Some(g) if g.is_empty() => {
                    return Err(client_error(&k("grants"), "may not be empty"));
                }
                Some(g) => g
                    .iter()
                    .map(|s| Grant::parse(&k("grants"), s))
                    .collect::<Result<_, _>>()?,
            };
            let secret_digest = match &e.secret_hash {
                Some(h) => Some(parse_secret_hash(h).ok_or_else(|| {
                    client_error(
                        &k("secret_hash"),
                        "must be \"sha256:\" and 64 hex digits (see `storegate client new`)",
                    )
                })?),
                None if grants.contains(&Grant::ClientCredentials) => {
                    return Err(client_error(
                        &k("secret_hash"),
                        format!("is missing; client {:?} may use client_credentials", e.id),
                    ));
                }
                None => None,
            };
            if e.apis.is_empty() || e.apis.iter().any(String::is_empty) {
                return Err(client_error(
                    &k("apis"),
                    format!("{:?} must name at least one API", e.apis),
                ));
            }
            if e.rate_limit_per_sec == Some(0) {
                return Err(client_error(
                    &k("rate_limit_per_sec"),
                    "must be at least 1, got 0",
                ));
            }
            if let Some(s) = e.scopes.iter().find(|s| !is_scope_token(s)) {
                return Err(client_error(
                    &k("scopes"),
                    format!("{s:?} is not a valid scope token (RFC 6749 §3.3)"),
                ));
            }
            let id_header = http::HeaderValue::from_str(&e.id).map_err(|_| {
                client_error(
                    &k("id"),
                    format!(
                        "{:?} must be printable ASCII (it is sent in a header)",
                        e.id
                    ),
                )
            })?;
            if e.apis.len() > 64 {
                return Err(client_error(
                    &k("apis"),
                    format!("names {} APIs; 64 at most", e.apis.len()),
                ));
            }
            let client = Client {
                id: e.id.clone(),
                id_header,
                secret_digest,
                apis: e.apis,
                grants,
                scopes: e.scopes,
                rate_limit: e.rate_limit_per_sec.map(RateLimit::new),
            };
            if by_id
                .insert(e.id.clone(), std::sync::Arc::new(client))
                .is_some()
            {
                return Err(client_error(
                    &k("id"),
                    format!("{:?} is registered twice", e.id),
                ));
            }
        }
        Ok(Clients { by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.by_id.get(id).map(|c| &**c)
    }

    /// The client, to be held beyond a borrow of the registry.
    pub fn get_shared(&self, id: &str) -> Option<std::sync::Arc<Client>> {
        self.by_id.get(id).cloned()
    }

    pub fn any_for_api(&self, api: &str) -> bool {
        self.by_id.values().any(|c| c.apis.iter().any(|a| a == api))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn parse_secret_hash(s: &str) -> Option<[u8; 32]> {
    let hex = s.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The `secret_hash` value for a secret.
pub fn hash_secret(secret: &str) -> String {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A fresh client secret: 32 random bytes, base64url without padding.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, secret: &str) -> ClientEntry {
        ClientEntry {
            id: id.into(),
            secret_hash: Some(hash_secret(secret)),
            apis: vec!["store".into()],
            grants: None,
            scopes: vec!["read".into()],
            rate_limit_per_sec: None,
        }
    }

    #[test]
    fn the_rate_limit_allows_a_second_of_burst_then_refills() {
        let limit = RateLimit::new(3);
        let t0 = std::time::Instant::now();
        assert!((0..3).all(|_| limit.try_take(t0)));
        assert!(!limit.try_take(t0));
        assert!(!limit.try_take(t0 + std::time::Duration::from_millis(200)));
        assert!(limit.try_take(t0 + std::time::Duration::from_millis(400)));
        assert!(!limit.try_take(t0 + std::time::Duration::from_millis(400)));
    }

    #[test]
    fn secret_check_accepts_only_the_registered_secret() {
        let clients = Clients::new(vec![entry("a", "s3cret")]).unwrap();
        let c = clients.get("a").unwrap();
        assert!(c.secret_matches("s3cret"));
        assert!(!c.secret_matches("s3cret "));
        assert!(!c.secret_matches(""));
    }

    #[test]
    fn generated_secrets_differ_and_round_trip_through_the_hash() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(parse_secret_hash(&hash_secret(&a)).unwrap().len(), 32);
    }

    #[test]
    fn bad_entries_name_their_key() {
        let mut e = entry("a", "x");
        e.secret_hash = Some("md5:abc".into());
        let err = Clients::new(vec![e]).unwrap_err().to_string();
        assert!(err.contains("clients[0].secret_hash"), "{err}");
        let mut e = entry("a", "x");
        e.grants = Some(vec!["password".into()]);
        assert!(
            Clients::new(vec![e])
                .unwrap_err()
                .to_string()
                .contains("clients[0].grants")
        );
        let err = Clients::new(vec![entry("a", "x"), entry("a", "y")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[1].id"), "{err}");
    }

    #[test]
    fn implicit_only_clients_need_no_secret() {
        let mut e = entry("pub", "x");
        e.secret_hash = None;
        e.grants = Some(vec!["implicit".into()]);
        let clients = Clients::new(vec![e]).unwrap();
        assert!(!clients.get("pub").unwrap().secret_matches(""));
    }
}
