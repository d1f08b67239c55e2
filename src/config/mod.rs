//! Configuration: `RawConfig` mirrors gateway.toml (serde, unknown keys rejected) and
//! `Config::validate` turns it into typed, checked values. Every error names the key and the
//! value it got, so a bad deployment fails before anything binds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::clients::{ClientEntry, Clients, Grant};

mod raw;
use crate::errors::ErrorShape;
use crate::token::keys::SigningAlgorithm;
pub use raw::*;

// Defaults, with their units, in one place. Each field's doc below names the one it uses.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
pub const DEFAULT_MAX_TOKEN_BODY_BYTES: usize = 16 * 1024;
pub const DEFAULT_REALM: &str = "storegate";
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
pub const DEFAULT_CACHE_CAPACITY: u64 = 100_000;
pub const DEFAULT_CACHE_TTL_SECS: u64 = 300;
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 15_000;
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS: u64 = 90_000;

/// A configuration error: one line that names the key and what was wrong with its value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(key: &str, msg: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("config key `{key}`: {msg}"))
}

/// Which documented token API an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointShape {
    /// Seeds 000–002: `POST /connect/token`, flat RFC 6749 body, `{"error":...}` errors.
    ConnectToken,
    /// Seed 003: `POST /oauth2-token`, JSON body, flat response in that page's field order.
    Oauth2Token,
    /// Seed 004: `POST /oauth/access_token`, `{"data":{...}}` envelope, implicit grant,
    /// `{"errors":[...]}` errors.
    OauthAccessToken,
}

impl EndpointShape {
    fn parse(key: &str, s: &str) -> Result<Self, ConfigError> {
        match s {
            "connect-token" => Ok(Self::ConnectToken),
            "oauth2-token" => Ok(Self::Oauth2Token),
            "oauth-access-token" => Ok(Self::OauthAccessToken),
            other => Err(bad(
                key,
                format!(
                    "unknown shape {other:?} (expected \"connect-token\", \"oauth2-token\" or \"oauth-access-token\")"
                ),
            )),
        }
    }

    /// The error body shape this endpoint's documentation uses.
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Self::ConnectToken | Self::Oauth2Token => ErrorShape::OAuth,
            Self::OauthAccessToken => ErrorShape::Errors,
        }
    }
}

fn parse_error_shape(key: &str, s: Option<&str>) -> Result<ErrorShape, ConfigError> {
    match s {
        None | Some("oauth") => Ok(ErrorShape::OAuth),
        Some("errors") => Ok(ErrorShape::Errors),
        Some(other) => Err(bad(
            key,
            format!("unknown error shape {other:?} (expected \"oauth\" or \"errors\")"),
        )),
    }
}

#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    pub path: String,
    pub shape: EndpointShape,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    /// "http://host:port", parsed.
    pub upstream_scheme: http::uri::Scheme,
    pub upstream_authority: http::uri::Authority,
    pub api: String,
    pub error_shape: ErrorShape,
    pub timeout: Duration,
    pub forward_authorization: bool,
    pub write_scope: Option<String>,
    pub max_body_bytes: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub generate_dev_files: bool,
}

#[derive(Debug, Clone)]
pub struct SigningConfig {
    pub algorithm: SigningAlgorithm,
    pub key: PathBuf,
    pub kid: Option<String>,
    pub generate_dev_files: bool,
    pub retired: Vec<jsonwebtoken::jwk::Jwk>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_token_body_bytes: usize,
    pub realm: String,
    pub default_error_shape: ErrorShape,
    pub log: String,
    pub issuer: String,
    pub token_lifetime: Duration,
    pub leeway: Duration,
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_idle_timeout: Duration,
    pub signing: SigningConfig,
    pub token_endpoints: Vec<TokenEndpoint>,
    pub clients: Clients,
    pub routes: Vec<Route>,
    pub demo_upstream: Option<SocketAddr>,
}

impl Config {
    /// Reads and validates a config file; relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_str(&text, base)
    }

    /// Parses and validates config text; `base` is the folder relative paths start from.
    pub fn from_toml_str(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // One line: where, and what serde says (it names the key and the value it got).
            let at = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {column}")
            });
            ConfigError(format!(
                "invalid config{}: {}",
                at.unwrap_or_default(),
                e.message().replace('\n', " ")
            ))
        })?;
        raw.validate(base)
    }
}

fn parse_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        bad(
            key,
            format!("{s:?} is not an address such as \"127.0.0.1:8443\""),
        )
    })
}

fn ms(v: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(v.unwrap_or(default))
}

fn positive(key: &str, v: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match v.unwrap_or(default) {
        0 => Err(bad(key, "must be greater than 0, got 0")),
        n => Ok(n),
    }
}

impl RawConfig {
    pub fn validate(self, base: &Path) -> Result<Config, ConfigError> {
        let s = &self.server;
        let listen = parse_addr("server.listen", &s.listen)?;
        let tls = match (&self.tls, s.plaintext) {
            (Some(t), false) => Some(TlsFiles {
                cert: base.join(&t.cert),
                key: base.join(&t.key),
                generate_dev_files: t.generate_dev_files,
            }),
            (None, true) => None,
            (Some(_), true) => {
                return Err(bad(
                    "server.plaintext",
                    "is true but a [tls] section is also given; keep one",
                ));
            }
            (None, false) => {
                return Err(bad(
                    "tls",
                    "is missing; give cert and key, or set server.plaintext = true",
                ));
            }
        };
        let realm = s.realm.clone().unwrap_or_else(|| DEFAULT_REALM.to_owned());
        if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            return Err(bad(
                "server.realm",
                format!("{realm:?} may not hold quotes, backslashes or control characters"),
            ));
        }
        let max_token_body_bytes = s
            .max_token_body_bytes
            .unwrap_or(DEFAULT_MAX_TOKEN_BODY_BYTES);
        if max_token_body_bytes < 256 {
            return Err(bad(
                "server.max_token_body_bytes",
                format!("{max_token_body_bytes} is below the least useful size, 256"),
            ));
        }

        let t = &self.tokens;
        let issuer = t.issuer.clone().unwrap_or_else(|| "storegate".to_owned());
        if issuer.is_empty() {
            return Err(bad("tokens.issuer", "may not be empty"));
        }
        let lifetime = positive(
            "tokens.lifetime_secs",
            t.lifetime_secs,
            DEFAULT_TOKEN_LIFETIME_SECS,
        )?;

        let signing = self.signing.validate(base)?;
        let token_endpoints = validate_endpoints(&self.token_endpoints)?;
        let mut entries = self.clients;
        if let Some(file) = &self.clients_file {
            entries.extend(read_clients_file(&base.join(file))?);
        }
        let clients = Clients::new(entries)?;
        let demo_upstream = match &self.demo {
            None => None,
            Some(d) => {
                let addr = parse_addr("demo.upstream_listen", &d.upstream_listen)?;
                if !addr.ip().is_loopback() {
                    return Err(bad(
                        "demo.upstream_listen",
                        format!("{addr} is not a loopback address"),
                    ));
                }
                Some(addr)
            }
        };
        let routes = validate_routes(&self.routes, &clients)?;

        Ok(Config {
            listen,
            tls,
            max_connections: s.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS).max(1),
            handshake_timeout: ms(s.handshake_timeout_ms, DEFAULT_HANDSHAKE_TIMEOUT_MS),
            header_read_timeout: ms(s.header_read_timeout_ms, DEFAULT_HEADER_READ_TIMEOUT_MS),
            body_read_timeout: ms(s.body_read_timeout_ms, DEFAULT_BODY_READ_TIMEOUT_MS),
            shutdown_grace: ms(s.shutdown_grace_ms, DEFAULT_SHUTDOWN_GRACE_MS),
            max_token_body_bytes,
            realm,
            default_error_shape: parse_error_shape("server.error_shape", s.error_shape.as_deref())?,
            log: s.log.clone().unwrap_or_else(|| "info".to_owned()),
            issuer,
            token_lifetime: Duration::from_secs(lifetime),
            leeway: Duration::from_secs(t.leeway_secs.unwrap_or(DEFAULT_LEEWAY_SECS)),
            cache_capacity: t.cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY),
            cache_ttl: Duration::from_secs(positive(
                "tokens.cache_ttl_secs",
                t.cache_ttl_secs,
                DEFAULT_CACHE_TTL_SECS,
            )?),
            upstream_connect_timeout: Duration::from_millis(DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS),
            upstream_idle_timeout: Duration::from_millis(DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS),
            signing,
            token_endpoints,
            clients,
            routes,
            demo_upstream,
        })
    }
}

impl RawSigning {
    fn validate(&self, base: &Path) -> Result<SigningConfig, ConfigError> {
        let algorithm = match self.algorithm.as_deref() {
            None | Some("EdDSA") => SigningAlgorithm::EdDSA,
            Some("ES256") => SigningAlgorithm::ES256,
            Some("RS256") => SigningAlgorithm::RS256,
            Some(other) => {
                return Err(bad(
                    "signing.algorithm",
                    format!("{other:?} is not one of \"EdDSA\", \"ES256\", \"RS256\""),
                ));
            }
        };
        let mut retired = Vec::with_capacity(self.retired.len());
        for (i, r) in self.retired.iter().enumerate() {
            let key = format!("signing.retired[{i}].jwk");
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&r.jwk)
                .map_err(|e| bad(&key, format!("is not a public JWK: {e}")))?;
            crate::token::keys::check_retired_jwk(&jwk).map_err(|e| bad(&key, e))?;
            retired.push(jwk);
        }
        Ok(SigningConfig {
            algorithm,
            key: base.join(&self.key),
            kid: self.kid.clone(),
            generate_dev_files: self.generate_dev_files,
            retired,
        })
    }
}

fn validate_endpoints(raw: &[RawTokenEndpoint]) -> Result<Vec<TokenEndpoint>, ConfigError> {
    let mut seen = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, e)| {
            let key = format!("token_endpoints[{i}].path");
            if !e.path.starts_with('/') || e.path.contains(['?', '#']) {
                return Err(bad(
                    &key,
                    format!("{:?} must be a plain path starting with '/'", e.path),
                ));
            }
            if !seen.insert(e.path.clone()) {
                return Err(bad(&key, format!("{:?} is mounted twice", e.path)));
            }
            let shape = EndpointShape::parse(&format!("token_endpoints[{i}].shape"), &e.shape)?;
            Ok(TokenEndpoint {
                path: e.path.clone(),
                shape,
            })
        })
        .collect()
}

fn validate_routes(raw: &[RawRoute], clients: &Clients) -> Result<Vec<Route>, ConfigError> {
    let mut seen = HashSet::new();
    let mut routes = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let k = |field: &str| format!("routes[{i}].{field}");
        if !r.prefix.starts_with('/') {
            return Err(bad(
                &k("prefix"),
                format!("{:?} must start with '/'", r.prefix),
            ));
        }
        if !seen.insert(r.prefix.clone()) {
            return Err(bad(&k("prefix"), format!("{:?} is routed twice", r.prefix)));
        }
        let uri: http::Uri = r
            .upstream
            .parse()
            .map_err(|_| bad(&k("upstream"), format!("{:?} is not a URL", r.upstream)))?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(bad(
                &k("upstream"),
                format!(
                    "{:?} needs a scheme and host, e.g. \"http://127.0.0.1:9000\"",
                    r.upstream
                ),
            ));
        };
        if scheme != &http::uri::Scheme::HTTP {
            return Err(bad(
                &k("upstream"),
                format!(
                    "{:?}: only http:// upstreams are supported (a sidecar's upstream is local)",
                    r.upstream
                ),
            ));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad(
                &k("upstream"),
                format!(
                    "{:?} must be an origin without a path; the request path is kept as it is",
                    r.upstream
                ),
            ));
        }
        if r.api.is_empty() {
            return Err(bad(&k("api"), "may not be empty"));
        }
        if !clients.any_for_api(&r.api) {
            tracing::warn!(route = %r.prefix, api = %r.api, "no client is registered for this route's API");
        }
        routes.push(Route {
            prefix: r.prefix.clone(),
            upstream_scheme: scheme.clone(),
            upstream_authority: authority.clone(),
            api: r.api.clone(),
            error_shape: parse_error_shape(&k("error_shape"), r.error_shape.as_deref())?,
            timeout: Duration::from_millis(positive(
                &k("timeout_ms"),
                r.timeout_ms,
                DEFAULT_UPSTREAM_TIMEOUT_MS,
            )?),
            forward_authorization: r.forward_authorization,
            write_scope: r.write_scope.clone(),
            max_body_bytes: r.max_body_bytes,
        });
    }
    // Longest prefix first, so the first match is the most specific one.
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Ok(routes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    #[serde(default)]
    clients: Vec<ClientEntry>,
}

fn read_clients_file(path: &Path) -> Result<Vec<ClientEntry>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(
            "clients_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let file: ClientsFile = toml::from_str(&text).map_err(|e| {
        bad(
            "clients_file",
            format!("{} is invalid: {e}", path.display()),
        )
    })?;
    Ok(file.clients)
}

impl Grant {
    pub fn parse(key: &str, s: &str) -> Result<Grant, ConfigError> {
        match s {
            "client_credentials" => Ok(Grant::ClientCredentials),
            "implicit" => Ok(Grant::Implicit),
            other => Err(bad(
                key,
                format!(
                    "unknown grant {other:?} (expected \"client_credentials\" or \"implicit\")"
                ),
            )),
        }
    }
}

/// Used by `clients.rs` so that its errors read like every other config error.
pub(crate) fn client_error(key: &str, msg: impl std::fmt::Display) -> ConfigError {
    bad(key, msg)
}
