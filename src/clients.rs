//! The client registry: who may ask for tokens, with which secret (stored only as a SHA-256
//! digest), for which APIs, with which grants and scopes.
//!
//! Secrets are 256-bit random strings made by `storegate client new`, so a fast digest is
//! enough: a slow password hash protects low-entropy secrets and would cost most of the token
//! endpoint's CPU (bcrypt was 93% of Hydra's). The comparison is constant-time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::{constant_time, digest, rand::SecureRandom};
use base64::Engine;

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

    /// The grant a `grant_type` value (or a token's `gty` claim) names.
    pub fn parse(s: &str) -> Option<Grant> {
        match s {
            "client_credentials" => Some(Grant::ClientCredentials),
            "implicit" => Some(Grant::Implicit),
            _ => None,
        }
    }
}

/// A registered client, as validated from its config entry.
pub struct Client {
    pub id: String,
    /// The id as the `x-storegate-client-id` value sent upstream, made once.
    pub id_header: http::HeaderValue,
    /// SHA-256 digests of the secrets it may present (more than one while a secret is rotated).
    pub secret_digests: Vec<[u8; 32]>,
    pub apis: Vec<String>,
    pub grants: Vec<Grant>,
    pub scopes: Vec<String>,
    /// Requests a second through the gateway; the buckets live in `ratelimit::RateLimits`.
    pub rate_limit_per_sec: Option<u32>,
    /// Its tokens issued before this instant (epoch seconds) are revoked (`revocation`).
    pub revoke_issued_before: Option<u64>,
    /// It may ask the introspection endpoint about tokens (RFC 7662).
    pub introspect: bool,
    /// Its token requests must carry a DPoP proof (RFC 9449 §5.2's metadata name).
    pub dpop_bound_access_tokens: bool,
    /// How it authenticates, and its tokens' binding to its certificate.
    pub auth: ClientAuth,
}

/// How a client authenticates (RFC 7591's `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// No method registered: its secret, in HTTP Basic or in the body (as before the key).
    #[default]
    Secret,
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 8705 §2.1: a certificate from a configured CA naming the registered subject.
    TlsClientAuth,
    /// RFC 8705 §2.2: a certificate registered in the client's `jwks` (`x5c`).
    SelfSignedTlsClientAuth,
    /// RFC 7523 §2.2: a JWT signed with a key registered in the client's `jwks`.
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The RFC 7591 name; `Secret` is named by the method the request used.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Secret | AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method an RFC 7591 name registers.
    pub fn parse(s: &str) -> Option<AuthMethod> {
        Some(match s {
            "client_secret_basic" => AuthMethod::ClientSecretBasic,
            "client_secret_post" => AuthMethod::ClientSecretPost,
            "tls_client_auth" => AuthMethod::TlsClientAuth,
            "self_signed_tls_client_auth" => AuthMethod::SelfSignedTlsClientAuth,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            _ => return None,
        })
    }

    /// Whether the client authenticates with a secret.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::Secret | AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }

    /// Whether the client authenticates with its TLS certificate.
    pub fn uses_certificate(self) -> bool {
        matches!(
            self,
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
        )
    }
}

impl Default for ClientAuth {
    fn default() -> ClientAuth {
        ClientAuth {
            method: AuthMethod::default(),
            subject: None,
            certificates: Vec::new(),
            keys: Arc::new([]),
            certificate_bound: false,
        }
    }
}

/// A client's authentication beyond its secrets.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub method: AuthMethod,
    /// `tls_client_auth`: who its certificate must name.
    pub subject: Option<crate::mtls::subject::Subject>,
    /// `self_signed_tls_client_auth`: SHA-256 thumbprints of the certificates registered in
    /// its JWKS (`x5c`, the first of each key's chain).
    pub certificates: Vec<[u8; 32]>,
    /// `private_key_jwt`: the public keys its assertions are signed with.
    pub keys: Arc<[crate::assertion::ClientKey]>,
    /// `tls_client_certificate_bound_access_tokens` (RFC 8705 §3.4): its tokens carry the
    /// thumbprint of the certificate its token request presented.
    pub certificate_bound: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digests are not the secrets, but they are no business of a log line either.
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("apis", &self.apis)
            .field("grants", &self.grants)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client_credentials client with one secret, for tools and benches (the config path
    /// validates more). `None` when the id cannot be sent in a header.
    pub fn with_secret(id: &str, secret: &str, apis: &[&str], scopes: &[&str]) -> Option<Client> {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Some(Client {
            id: id.to_owned(),
            id_header: http::HeaderValue::from_str(id).ok()?,
            secret_digests: vec![
                *digest::digest(&digest::SHA256, secret.as_bytes())
                    .as_ref()
                    .first_chunk::<32>()?,
            ],
            apis: owned(apis),
            grants: vec![Grant::ClientCredentials],
            scopes: owned(scopes),
            rate_limit_per_sec: None,
            revoke_issued_before: None,
            introspect: false,
            dpop_bound_access_tokens: false,
            auth: ClientAuth::default(),
        })
    }

    /// A public client: one that has nothing to authenticate with, neither a secret nor
    /// another method.
    pub fn is_public(&self) -> bool {
        self.secret_digests.is_empty() && self.auth.method.uses_secret()
    }

    pub fn may_use(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }

    /// Checks a presented secret against every registered digest, each in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        let presented = digest::digest(&digest::SHA256, secret.as_bytes());
        // No early exit: which of several digests matched is not to be read from the timing.
        self.secret_digests.iter().fold(false, |ok, stored| {
            constant_time::verify_slices_are_equal(presented.as_ref(), stored).is_ok() | ok
        })
    }
}

/// All registered clients, by id.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    by_id: HashMap<String, Arc<Client>>,
}

impl Clients {
    /// Adds a client; false (and nothing added) when its id is registered already.
    pub fn insert(&mut self, client: Client) -> bool {
        match self.by_id.entry(client.id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Arc::new(client));
                true
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.by_id.get(id).map(|c| &**c)
    }

    /// The client, to be held beyond a borrow of the registry.
    pub fn get_shared(&self, id: &str) -> Option<Arc<Client>> {
        self.by_id.get(id).cloned()
    }

    pub fn any_for_api(&self, api: &str) -> bool {
        self.by_id.values().any(|c| c.apis.iter().any(|a| a == api))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.by_id.values().map(|c| &**c)
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

/// The digest in a `secret_hash` value: "sha256:" and 64 hex digits.
pub fn parse_secret_hash(s: &str) -> Option<[u8; 32]> {
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
    format_secret_hash(d.as_ref())
}

/// A digest written as a `secret_hash` value: "sha256:" and lower-case hex.
pub fn format_secret_hash(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
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

    fn client(secrets: &[&str]) -> Client {
        let mut c = Client::with_secret("a", "unused", &["store"], &["read"]).unwrap();
        c.secret_digests = secrets
            .iter()
            .map(|s| parse_secret_hash(&hash_secret(s)).unwrap())
            .collect();
        c
    }

    #[test]
    fn secret_check_accepts_only_the_registered_secret() {
        let c = client(&["s3cret"]);
        assert!(c.secret_matches("s3cret"));
        assert!(!c.secret_matches("s3cret "));
        assert!(!c.secret_matches(""));
        assert!(!client(&[]).secret_matches(""), "no secret, no match");
    }

    #[test]
    fn generated_secrets_differ_and_round_trip_through_the_hash() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(parse_secret_hash(&hash_secret(&a)).unwrap().len(), 32);
    }

    #[test]
    fn a_client_id_is_registered_once() {
        let mut clients = Clients::default();
        assert!(clients.insert(client(&["x"])));
        assert!(!clients.insert(client(&["y"])));
        assert!(clients.get("a").unwrap().secret_matches("x"));
    }
}
