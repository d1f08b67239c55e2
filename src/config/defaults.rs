//! The configuration's defaults, with their units, in one place. Each `Config` field's doc
//! names the one it uses.

pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 10_000;
/// A connection no request uses is closed after this (nginx's keepalive_timeout is 75 s).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// Long enough for an endpoints controller to stop routing to a pod that turned unready.
pub const DEFAULT_DRAIN_DELAY_MS: u64 = 5_000;
/// The admin credential's file name in `state_dir`.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
pub const DEFAULT_MAX_TOKEN_BODY_BYTES: usize = 16 * 1024;
pub const DEFAULT_REALM: &str = "storegate";
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Longest `exp - iat` a token may have to be accepted (24 h, generous on purpose: lowering
/// `lifetime_secs` by reload must not refuse the tokens already out).
pub const DEFAULT_MAX_TOKEN_AGE_SECS: u64 = 86_400;
pub const DEFAULT_CACHE_CAPACITY: u64 = 100_000;
pub const DEFAULT_CACHE_TTL_SECS: u64 = 300;
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 15_000;
/// As nginx's client_body_timeout and proxy_read_timeout.
pub const DEFAULT_BODY_IDLE_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS: u64 = 90_000;
pub const DEFAULT_ISSUER: &str = "storegate";
pub const DEFAULT_LOG: &str = "info";
/// Failed authentications before a source is throttled; Authelia bans after 3 in 2 minutes.
pub const DEFAULT_FAILURES_PER_SOURCE: u32 = 5;
pub const DEFAULT_FAILURES_PER_CLIENT: u32 = 100;
pub const DEFAULT_THROTTLE_WINDOW_SECS: u64 = 300;
/// A client assertion lives at most this long by default (RFC 7523bis clients sign per request).
pub const DEFAULT_ASSERTION_LIFETIME_SECS: u64 = 300;
/// The longest `[private_key_jwt] max_lifetime_secs` may allow (authlib signs for an hour).
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 3600;
pub const DEFAULT_ASSERTION_REPLAY_CAPACITY: usize = 200_000;
pub const DEFAULT_ASSERTION_REPLAY_PER_CLIENT: usize = 50_000;
/// Least useful `server.max_token_body_bytes`: a form with an id, a secret and a scope.
pub const MIN_TOKEN_BODY_BYTES: usize = 256;
