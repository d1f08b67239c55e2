//! `RawConfig`: the serde mirror of gateway.toml, field for field, unknown keys rejected.
//! Each field's doc names its default; `super::Config` is what validation makes of it.

use std::path::PathBuf;

use serde::Deserialize;

/// The serde mirror of gateway.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub tokens: RawTokens,
    pub signing: RawSigning,
    #[serde(default)]
    pub token_endpoints: Vec<RawTokenEndpoint>,
    /// The RFC 7009 revocation endpoint.
    #[serde(default)]
    pub revocation: RawOAuthEndpoint,
    /// The RFC 7662 introspection endpoint.
    #[serde(default)]
    pub introspection: RawOAuthEndpoint,
    #[serde(default)]
    pub clients: Vec<RawClient>,
    /// A TOML file holding more `[[clients]]` entries (relative to this file).
    pub clients_file: Option<PathBuf>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    pub demo: Option<RawDemo>,
    #[serde(default)]
    pub throttle: RawThrottle,
    #[serde(default)]
    pub limits: RawLimits,
    pub admin: Option<RawAdmin>,
    pub cluster: Option<RawCluster>,
    pub cors: Option<RawCors>,
    pub forwarded_client_cert: Option<RawForwardedClientCert>,
    pub decision: Option<super::decision::RawDecision>,
    #[serde(default)]
    pub private_key_jwt: RawPrivateKeyJwt,
    #[serde(default)]
    pub dpop: RawDpop,
}

/// `[dpop]`: how DPoP proofs (RFC 9449) are checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDpop {
    /// Proof signature algorithms accepted; default ES256, ES384, EdDSA, PS256, RS256.
    pub algs: Option<Vec<String>>,
    /// How far a proof's `iat` may be from now, either way; default DEFAULT_DPOP_IAT_WINDOW_SECS.
    pub iat_window_secs: Option<u64>,
    /// The origin clients address ("https://api.shop.example"), the scheme and authority of
    /// every `htu`; default: the issuer's origin.
    pub public_origin: Option<String>,
    /// The path an ingress in front strips before a request reaches the gateway; default "".
    pub public_path_prefix: Option<String>,
    /// Proofs remembered at most (replay store), and per key; defaults
    /// DEFAULT_DPOP_REPLAY_CAPACITY and DEFAULT_DPOP_REPLAY_PER_KEY.
    pub replay_capacity: Option<usize>,
    pub replay_per_key: Option<usize>,
    /// With `[cluster]`: the longest a request waits for Redis to say whether another replica
    /// saw its proof; default DEFAULT_DPOP_CLUSTER_TIMEOUT_MS.
    pub cluster_timeout_ms: Option<u64>,
    /// With `[cluster]`, when Redis cannot say (away, slow, failing): "per_replica" (default:
    /// the proof is accepted on this replica's own check, logged and counted) or "refuse" (503).
    pub replay_when_cluster_away: Option<String>,
    /// Every proof must carry a fresh server nonce (RFC 9449 §8, §9); default false.
    #[serde(default)]
    pub require_nonce: bool,
    /// How long a nonce is accepted; default DEFAULT_DPOP_NONCE_LIFETIME_SECS.
    pub nonce_lifetime_secs: Option<u64>,
    /// A file of at least 32 random bytes that every replica shares, keying the nonces;
    /// required with `require_nonce` and `[cluster]` (else a per-process random key).
    pub nonce_secret_file: Option<std::path::PathBuf>,
}

/// `[cors]`: CORS for browser pages on other origins, for the whole gateway (token
/// endpoints, revocation, the documents, and routes), unless a route or token endpoint sets
/// its own `cors_allowed_origins`. Without the section, no CORS at all.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// Exact origins ("https://shop.example"), or ["*"] for any (not with credentials).
    pub allowed_origins: Vec<String>,
    /// Default: GET, HEAD, POST, PUT, PATCH, DELETE.
    pub allowed_methods: Option<Vec<String>>,
    /// Request headers a page may send; default: Authorization, Content-Type, DPoP, x-request-id.
    pub allowed_headers: Option<Vec<String>>,
    /// Response headers a page may read; default: WWW-Authenticate, DPoP-Nonce, x-request-id.
    pub exposed_headers: Option<Vec<String>>,
    /// How long a browser may keep a preflight's answer; default DEFAULT_CORS_MAX_AGE_SECS.
    pub max_age_secs: Option<u64>,
    /// `Access-Control-Allow-Credentials: true` (cookies, client certificates); default false.
    #[serde(default)]
    pub allow_credentials: bool,
}

/// The cluster store replicas share revocations through. Restart only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// "redis://host:port[/db]" or "rediss://…" (TLS), without a password.
    pub redis_url: String,
    /// A file holding the Redis password (e.g. a mounted Secret).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the Redis password.
    pub password_env: Option<String>,
    /// For rediss://: the PEM CA certificates the Redis server's certificate must chain to.
    /// Default: the system's roots (the image carries Debian's CA certificates).
    pub ca_file: Option<PathBuf>,
}

/// The admin listener: metrics, probes, and the operator's revocations. Restart only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Address of the plain-HTTP admin listener, e.g. "127.0.0.1:9901".
    pub listen: String,
    /// The file holding the credential the state-changing admin endpoints require (created,
    /// readable by its owner only, when missing). Default: admin.token in `server.state_dir`;
    /// with neither, those endpoints are off.
    pub token_file: Option<PathBuf>,
}

/// Protocol limits; each field's default is in `crate::limits::HttpLimits::default`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_headers: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_uri_bytes: Option<usize>,
    pub h2_max_concurrent_streams: Option<u32>,
    pub h2_max_pending_accept_reset_streams: Option<usize>,
    pub h2_max_local_error_reset_streams: Option<usize>,
    pub max_upstream_head_bytes: Option<usize>,
}

/// Failed client authentications at the token endpoint, before a source is refused (429).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    /// Failures of one client id from one source address per window; default
    /// DEFAULT_FAILURES_PER_SOURCE.
    pub failures_per_source: Option<u32>,
    /// Failures of one client id from all sources per window, after which every source that
    /// failed for it is refused; default DEFAULT_FAILURES_PER_CLIENT.
    pub failures_per_client: Option<u32>,
    /// The window, in seconds (at most 3600); default DEFAULT_THROTTLE_WINDOW_SECS.
    pub window_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address to listen on, e.g. "127.0.0.1:8443".
    pub listen: String,
    /// Serve plain HTTP instead of TLS. Must be said explicitly; default false.
    #[serde(default)]
    pub plaintext: bool,
    /// Open connections at most; default DEFAULT_MAX_CONNECTIONS.
    pub max_connections: Option<usize>,
    /// TLS handshake deadline; default DEFAULT_HANDSHAKE_TIMEOUT_MS.
    pub handshake_timeout_ms: Option<u64>,
    /// HTTP/1 request-head deadline, and how long a new connection (HTTP/1 or 2) may wait for
    /// its first request; default DEFAULT_HEADER_READ_TIMEOUT_MS.
    pub header_read_timeout_ms: Option<u64>,
    /// A connection no request uses is closed after this; default DEFAULT_IDLE_TIMEOUT_MS.
    pub idle_timeout_ms: Option<u64>,
    /// Deadline for reading a token request body; default DEFAULT_BODY_READ_TIMEOUT_MS.
    pub body_read_timeout_ms: Option<u64>,
    /// In-flight requests get this long after SIGTERM; default DEFAULT_SHUTDOWN_GRACE_MS.
    pub shutdown_grace_ms: Option<u64>,
    /// Largest token request body; default DEFAULT_MAX_TOKEN_BODY_BYTES.
    pub max_token_body_bytes: Option<usize>,
    /// Realm in WWW-Authenticate; default DEFAULT_REALM.
    pub realm: Option<String>,
    /// Error shape for requests that match no route: "oauth" (default) or "errors".
    pub error_shape: Option<String>,
    /// Log filter when RUST_LOG is unset; default "info".
    pub log: Option<String>,
    /// "text" (default) or "json" (one object per line).
    pub log_format: Option<String>,
    /// After SIGTERM, the gateway keeps serving this long (not ready, closing keep-alive
    /// connections) before it stops accepting; default DEFAULT_DRAIN_DELAY_MS.
    pub drain_delay_ms: Option<u64>,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the caller, e.g. a
    /// mesh sidecar on loopback. Default: none, the peer is the caller.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// A folder the gateway keeps state in across restarts (signing keys it still verifies
    /// after a rotation). Default: none, kept in memory only.
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// These are development files: generate a localhost certificate when they are missing.
    #[serde(default)]
    pub generate_dev_files: bool,
    /// PEM file of the CAs trusted to issue client certificates (RFC 8705 §2.1).
    pub client_ca: Option<PathBuf>,
    /// PEM file of certificate revocation lists for those CAs.
    pub client_crl: Option<PathBuf>,
    /// Ask callers for a certificate: "off", "optional" or "required". Default "optional"
    /// with `client_ca`, else "off".
    pub client_auth: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    /// `iss` of issued tokens, checked on every token; default "storegate".
    pub issuer: Option<String>,
    /// Access-token lifetime; default DEFAULT_TOKEN_LIFETIME_SECS.
    pub lifetime_secs: Option<u64>,
    /// Clock leeway for exp/nbf; default DEFAULT_LEEWAY_SECS.
    pub leeway_secs: Option<u64>,
    /// Longest `exp - iat` a token may have to be accepted; default DEFAULT_MAX_TOKEN_AGE_SECS.
    pub max_token_age_secs: Option<u64>,
    /// Verified tokens held at most; 0 turns the cache off. Default DEFAULT_CACHE_CAPACITY.
    pub cache_capacity: Option<u64>,
    /// Longest a verification is reused (never past the token's exp); default DEFAULT_CACHE_TTL_SECS.
    pub cache_ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigning {
    /// "EdDSA" (default), "ES256" or "RS256".
    pub algorithm: Option<String>,
    /// PKCS#8 PEM private key.
    pub key: PathBuf,
    /// Key id in the token header; default: the RFC 7638 thumbprint of the public key.
    pub kid: Option<String>,
    /// A development key: generate one when the file is missing.
    #[serde(default)]
    pub generate_dev_files: bool,
    /// The key that will sign next (PKCS#8 PEM): published in the JWKS and trusted now, so
    /// that upstreams have it cached before it is promoted to `key`.
    pub next_key: Option<PathBuf>,
    /// Key id of `next_key`; default: its RFC 7638 thumbprint.
    pub next_kid: Option<String>,
    /// Retired public keys (JWK JSON with "kid" and "alg") that still verify until their tokens expire.
    #[serde(default)]
    pub retired: Vec<RawRetiredKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetiredKey {
    pub jwk: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenEndpoint {
    pub path: String,
    /// "connect-token", "oauth2-token" or "oauth-access-token".
    pub shape: String,
    /// This endpoint's own CORS origins instead of `[cors] allowed_origins` ([] for none).
    pub cors_allowed_origins: Option<Vec<String>>,
}

/// `[revocation]` or `[introspection]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuthEndpoint {
    /// Where it is mounted; defaults `crate::routes::DEFAULT_REVOCATION_PATH` and
    /// `DEFAULT_INTROSPECTION_PATH`.
    pub path: Option<String>,
    /// "oauth" (default) or "errors".
    pub error_shape: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Path prefix, e.g. "/api/". The longest matching prefix wins.
    pub prefix: String,
    /// Upstream origin, "http://host:port" or "https://host:port" (no path), or
    /// "unix:/absolute/path.sock".
    pub upstream: String,
    /// https:// upstreams: the CAs its certificate must chain to (PEM); default: the system's.
    pub upstream_ca: Option<PathBuf>,
    /// https:// upstreams asking for a client certificate: the chain and key presented (PEM).
    pub upstream_client_cert: Option<PathBuf>,
    pub upstream_client_key: Option<PathBuf>,
    /// The API a token must be for (its `aud`).
    pub api: String,
    /// "oauth" (default) or "errors".
    pub error_shape: Option<String>,
    /// Deadline for the upstream's response head, counted from the end of the request body;
    /// default DEFAULT_UPSTREAM_TIMEOUT_MS.
    pub timeout_ms: Option<u64>,
    /// Longest pause in a request or response body streamed through; the request is then
    /// refused (408) or the response ended. Default DEFAULT_BODY_IDLE_TIMEOUT_MS.
    pub body_idle_timeout_ms: Option<u64>,
    /// Pass the caller's Authorization header on to the upstream; default false.
    #[serde(default)]
    pub forward_authorization: bool,
    /// A scope every non-read request (not GET/HEAD/OPTIONS) must carry.
    pub write_scope: Option<String>,
    /// Largest request body passed on, in bytes; larger ones get 413. Default: no limit.
    pub max_body_bytes: Option<u64>,
    /// This route's own CORS origins instead of `[cors] allowed_origins` ([] for none).
    pub cors_allowed_origins: Option<Vec<String>>,
    /// The upstream answers CORS itself: preflights are forwarded without a token and its
    /// `Access-Control-*` headers kept; default false.
    #[serde(default)]
    pub cors_by_upstream: bool,
    /// Only DPoP-bound tokens, each with its proof (RFC 9728's name); default false: Bearer
    /// and DPoP tokens both.
    #[serde(default)]
    pub dpop_bound_access_tokens_required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDemo {
    /// Where the in-process demo store API listens (loopback only).
    pub upstream_listen: String,
}

/// `[private_key_jwt]`: how client assertions (RFC 7523) are checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivateKeyJwt {
    /// Longest lifetime (`exp - iat`) accepted; default DEFAULT_ASSERTION_LIFETIME_SECS, at
    /// most MAX_ASSERTION_LIFETIME_SECS.
    pub max_lifetime_secs: Option<u64>,
    /// Also accept the URL of the endpoint the assertion was sent to as its `aud`.
    #[serde(default)]
    pub token_endpoint_audience: bool,
    /// `jti`s remembered at most, and per client; defaults DEFAULT_ASSERTION_REPLAY_CAPACITY
    /// and DEFAULT_ASSERTION_REPLAY_PER_CLIENT.
    pub replay_capacity: Option<usize>,
    pub replay_per_client: Option<usize>,
}

/// `[forwarded_client_cert]`: the certificate a TLS-terminating proxy passes on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwardedClientCert {
    /// The proxies (addresses or CIDR blocks) whose header is believed.
    pub trusted_peers: Vec<String>,
    /// "client-cert" (RFC 9440, default), "x-forwarded-client-cert" (Envoy),
    /// "ssl-client-cert" (ingress-nginx) or "x-forwarded-tls-client-cert" (Traefik).
    pub header: Option<String>,
    /// Without [tls] (plain HTTP behind the proxy): the CAs and CRLs for tls_client_auth.
    pub client_ca: Option<PathBuf>,
    pub client_crl: Option<PathBuf>,
}

/// One `[[clients]]` entry as written in the config (or in `clients_file`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub id: String,
    /// "sha256:<64 hex digits>", as printed by `storegate client new`.
    pub secret_hash: Option<String>,
    /// More accepted secrets, for rotating one: add the new hash, move the caller over, then
    /// remove the old one (`storegate client rotate` prints the line).
    #[serde(default)]
    pub secret_hashes: Vec<String>,
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
    /// Revokes every token of this client issued before this instant (RFC 3339, e.g.
    /// "2026-11-23T10:00:00Z"). Revocations only add up: removing the key revokes nothing back.
    pub revoke_issued_before: Option<String>,
    /// It may ask the introspection endpoint about tokens (RFC 7662); needs a secret.
    #[serde(default)]
    pub introspect: bool,
    /// Its token requests must carry a DPoP proof (RFC 9449 §5.2); default false.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// How it authenticates (RFC 7591): "client_secret_basic", "client_secret_post",
    /// "tls_client_auth" or "self_signed_tls_client_auth". Default: its secret, either way.
    pub token_endpoint_auth_method: Option<String>,
    /// tls_client_auth: exactly one of these names the subject its certificate must carry
    /// (RFC 8705 §2.1.2). The DN is an RFC 4514 string, compared as a name.
    pub tls_client_auth_subject_dn: Option<String>,
    pub tls_client_auth_san_dns: Option<String>,
    pub tls_client_auth_san_uri: Option<String>,
    pub tls_client_auth_san_ip: Option<String>,
    pub tls_client_auth_san_email: Option<String>,
    /// self_signed_tls_client_auth: a JWKS (RFC 7517) whose keys' `x5c` hold the client's
    /// certificates; a file (reloaded when it changes), or the document inline.
    pub jwks_file: Option<PathBuf>,
    pub jwks: Option<serde_json::Value>,
    /// Its tokens are bound to the certificate its token request presented (RFC 8705 §3).
    #[serde(default)]
    pub tls_client_certificate_bound_access_tokens: bool,
}

/// A `clients_file`: more `[[clients]]` entries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientsFile {
    #[serde(default)]
    pub clients: Vec<RawClient>,
}
