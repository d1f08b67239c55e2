//! Configuration: `RawConfig` mirrors gateway.toml (serde, unknown keys rejected) and
//! `Config::validate` turns it into typed, checked values. Every error names the key and the
//! value it got, so a bad deployment fails before anything binds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod client_auth;
mod clients;
mod cors;
mod decision;
mod defaults;
mod dpop;
mod raw;
mod restart;
mod routes;
mod sections;
mod tls;

pub use defaults::*;
pub use raw::*;
pub use restart::RestartOnly;

use crate::clients::Clients;
use crate::errors::ErrorShape;
use crate::routes::{OAuthEndpoint, Route, TokenEndpoint};
use crate::tls::TlsFiles;
use crate::token::keys::SigningConfig;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

/// The admin listener (plain HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// The credential file of the state-changing endpoints; `None`: those are off.
    pub token_file: Option<PathBuf>,
}

/// The cluster store (Redis).
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// "redis://host:port[/db]" or "rediss://…"; never holds a password.
    pub redis_url: String,
    /// From `password_file` or `password_env`.
    pub password: Option<String>,
    /// For rediss://: the PEM CA certificates from `ca_file`; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &self.redis_url)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// `[forwarded_client_cert]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedClientCert {
    pub forwarded: crate::mtls::forwarded::Forwarded,
    /// The CAs and CRLs for a listener without [tls] (with one: `tls.client_ca`).
    pub ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
}

/// A configuration error: one line that names the key and what was wrong with its value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub(crate) fn bad(key: &str, msg: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("config key `{key}`: {msg}"))
}

/// The validated configuration. Fields marked "restart" are read once at start-up; a reload
/// that changes them says so and keeps the running value (see `RestartOnly`).
#[derive(Debug, Clone)]
pub struct Config {
    /// restart: the listening address.
    pub listen: SocketAddr,
    /// The certificate and key; `None` for plain HTTP (restart: whether TLS is on at all).
    pub tls: Option<TlsFiles>,
    /// restart: open connections at most.
    pub max_connections: usize,
    /// restart: TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// restart: HTTP/1 request-head deadline; also how long a new connection may wait for its
    /// first request.
    pub header_read_timeout: Duration,
    /// restart: a connection no request uses is closed after this.
    pub idle_timeout: Duration,
    /// Deadline for reading a token request body.
    pub body_read_timeout: Duration,
    /// restart: how long in-flight requests get after SIGTERM.
    pub shutdown_grace: Duration,
    /// Largest token request body.
    pub max_token_body_bytes: usize,
    /// Realm in `WWW-Authenticate` challenges (validated: no quotes or controls).
    pub realm: String,
    /// Error shape for requests that match no route.
    pub default_error_shape: ErrorShape,
    /// restart: the log filter when RUST_LOG is unset.
    pub log: String,
    /// restart: how log lines are written.
    pub log_format: LogFormat,
    /// How long the gateway serves on after SIGTERM before it stops accepting.
    pub drain_delay: Duration,
    /// restart: the admin listener, if any.
    pub admin: Option<AdminConfig>,
    /// restart: the cluster store, if any.
    pub cluster: Option<ClusterConfig>,
    /// `iss` of issued tokens, required of verified ones.
    pub issuer: String,
    /// Lifetime of issued tokens.
    pub token_lifetime: Duration,
    /// Clock leeway for `exp`/`nbf`.
    pub leeway: Duration,
    /// Longest `exp - iat` a verified token may have.
    pub max_token_age: Duration,
    /// restart: verified tokens cached at most (0: no cache).
    pub cache_capacity: u64,
    /// restart: longest a verification is reused.
    pub cache_ttl: Duration,
    /// restart: upstream connect deadline.
    pub upstream_connect_timeout: Duration,
    /// restart: how long an idle pooled upstream connection is kept.
    pub upstream_idle_timeout: Duration,
    pub signing: SigningConfig,
    pub token_endpoints: Vec<TokenEndpoint>,
    /// The revocation and introspection endpoints.
    pub oauth_endpoints: Vec<OAuthEndpoint>,
    /// The gateway's CORS policy: the revocation and introspection endpoints', the documents',
    /// and the answer to a request for no route (`[cors]`).
    pub cors: crate::cors::Cors,
    /// How DPoP proofs are checked (`[dpop]`).
    pub dpop: crate::dpop::Settings,
    /// How client assertions are checked (`[private_key_jwt]`).
    pub private_key_jwt: crate::assertion::Settings,
    /// Certificates a TLS-terminating proxy passes on (`[forwarded_client_cert]`).
    pub forwarded_client_cert: Option<ForwardedClientCert>,
    /// The decision endpoint a proxy in front asks (`[decision]`).
    pub decision: Option<crate::routes::Decision>,
    pub clients: Clients,
    /// The file more clients were read from, if any (watched for changes).
    pub clients_file: Option<PathBuf>,
    /// The clients' `jwks_file`s (reloaded when they change).
    pub jwks_files: Vec<PathBuf>,
    /// Longest prefix first.
    pub routes: Vec<Route>,
    /// restart: where the in-process demo API listens.
    pub demo_upstream: Option<SocketAddr>,
    /// restart: the folder state is kept in across restarts; `None`: in memory only.
    pub state_dir: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The token endpoint's failure throttle.
    pub throttle: crate::throttle::Limits,
    /// restart (but for `max_uri_bytes`): protocol limits.
    pub limits: crate::limits::HttpLimits,
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
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError(format!("invalid config{}", toml_error(text, &e))))?;
        raw.validate(base)
    }
}

/// A TOML error on one line: where, and what serde says (it names the key, and the value for
/// a wrong type). Unlike the error's own `Display`, the offending line is not quoted, since it
/// may hold a secret hash.
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!(" at line {line}, column {column}")
    });
    format!(
        "{}: {}",
        at.unwrap_or_default(),
        e.message().replace('\n', " ")
    )
}

impl Config {
    /// Every file this config names besides itself: what a reload reads again.
    pub fn files(&self) -> Vec<&Path> {
        let tls = self.tls.iter().flat_map(|t| {
            [
                Some(&t.cert),
                Some(&t.key),
                t.client.ca.as_ref(),
                t.client.crl.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
        });
        let signing =
            std::iter::once(self.signing.key.as_path()).chain(self.signing.next_key.as_deref());
        let upstream_tls = self.routes.iter().filter_map(|r| r.upstream_tls.as_ref());
        let upstream_tls = upstream_tls.flat_map(|t| {
            let client = t.client.as_ref();
            [t.ca.as_ref(), client.map(|c| &c.0), client.map(|c| &c.1)]
                .into_iter()
                .flatten()
                .map(PathBuf::as_path)
        });
        tls.chain(signing)
            .chain(upstream_tls)
            .chain(self.clients_file.as_deref())
            .chain(self.jwks_files.iter().map(PathBuf::as_path))
            .chain(
                self.forwarded_client_cert
                    .iter()
                    .flat_map(|f| [f.ca.as_deref(), f.crl.as_deref()].into_iter().flatten()),
            )
            .collect()
    }
}

fn parse_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        bad(
            key,
            format!("{s:?} is not an address such as \"127.0.0.1:8443\" or \"[::]:8443\""),
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
        let mut cfg = self.server.validate(self.tls.as_ref(), base)?;
        self.tokens.validate(&mut cfg)?;
        cfg.signing = self.signing.validate(base)?;
        cfg.dpop = (self.dpop).validate(&cfg.issuer, base, self.cluster.is_some())?;
        let cors = cors::CorsBase::new(self.cors.as_ref())?;
        cfg.cors = cors.gateway();
        cfg.token_endpoints = routes::endpoints(&self.token_endpoints, &cors)?;
        cfg.oauth_endpoints =
            routes::oauth_endpoints(&self.revocation, &self.introspection, &cfg.token_endpoints)?;
        let mut entries = self.clients;
        if let Some(file) = &self.clients_file {
            let file = base.join(file);
            entries.extend(clients::read_file(&file)?);
            cfg.clients_file = Some(file);
        }
        (cfg.clients, cfg.jwks_files) = clients::validate(entries, base)?;
        if let Some(f) = &self.forwarded_client_cert {
            cfg.forwarded_client_cert = Some(tls::forwarded(f, cfg.tls.as_ref(), base)?);
        }
        tls::fit_clients(&mut cfg)?;
        cfg.routes = routes::routes(&self.routes, &cfg.clients, (&cfg.issuer, base), &cors)?;
        dpop::routes_fit(&cfg.dpop, &cfg.routes)?;
        if let Some(d) = &self.decision {
            let own = (&cfg.token_endpoints[..], &cfg.oauth_endpoints[..]);
            cfg.decision = Some(d.validate(&cfg.routes, own)?);
        }
        cfg.throttle = self.throttle.validate()?;
        cfg.private_key_jwt = self.private_key_jwt.validate()?;
        cfg.limits = self.limits.validate()?;
        if let Some(a) = &self.admin {
            let listen = parse_addr("admin.listen", &a.listen)?;
            if listen.port() != 0 && listen == cfg.listen {
                return Err(bad("admin.listen", "is the same address as server.listen"));
            }
            let token_file = (a.token_file.as_ref().map(|f| base.join(f)))
                .or_else(|| cfg.state_dir.as_ref().map(|d| d.join(ADMIN_TOKEN_FILE)));
            cfg.admin = Some(AdminConfig { listen, token_file });
        }
        if let Some(c) = &self.cluster {
            cfg.cluster = Some(sections::cluster(c, base)?);
        }
        if let Some(d) = &self.demo {
            let addr = parse_addr("demo.upstream_listen", &d.upstream_listen)?;
            if !addr.ip().is_loopback() {
                return Err(bad(
                    "demo.upstream_listen",
                    format!("{addr} is not a loopback address"),
                ));
            }
            cfg.demo_upstream = Some(addr);
        }
        Ok(cfg)
    }
}

impl RawServer {
    /// The `[server]` and `[tls]` sections; the other sections' fields get their defaults here
    /// and are filled in by their own validation.
    fn validate(&self, tls: Option<&RawTls>, base: &Path) -> Result<Config, ConfigError> {
        let tls = match (tls, self.plaintext) {
            (Some(t), false) => Some(tls::files(t, base)?),
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
        let realm = self.realm.as_deref().unwrap_or(DEFAULT_REALM).to_owned();
        if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            return Err(bad(
                "server.realm",
                format!("{realm:?} may not hold quotes, backslashes or control characters"),
            ));
        }
        let max_token_body_bytes = self
            .max_token_body_bytes
            .unwrap_or(DEFAULT_MAX_TOKEN_BODY_BYTES);
        if max_token_body_bytes < MIN_TOKEN_BODY_BYTES {
            return Err(bad(
                "server.max_token_body_bytes",
                format!(
                    "{max_token_body_bytes} is below the least useful size, {MIN_TOKEN_BODY_BYTES}"
                ),
            ));
        }
        Ok(Config {
            listen: parse_addr("server.listen", &self.listen)?,
            tls,
            max_connections: positive(
                "server.max_connections",
                self.max_connections.map(|n| n as u64),
                DEFAULT_MAX_CONNECTIONS as u64,
            )? as usize,
            handshake_timeout: ms(self.handshake_timeout_ms, DEFAULT_HANDSHAKE_TIMEOUT_MS),
            header_read_timeout: ms(self.header_read_timeout_ms, DEFAULT_HEADER_READ_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(positive(
                "server.idle_timeout_ms",
                self.idle_timeout_ms,
                DEFAULT_IDLE_TIMEOUT_MS,
            )?),
            body_read_timeout: ms(self.body_read_timeout_ms, DEFAULT_BODY_READ_TIMEOUT_MS),
            shutdown_grace: ms(self.shutdown_grace_ms, DEFAULT_SHUTDOWN_GRACE_MS),
            max_token_body_bytes,
            realm,
            default_error_shape: routes::error_shape(
                "server.error_shape",
                self.error_shape.as_deref(),
            )?,
            log: self.log.as_deref().unwrap_or(DEFAULT_LOG).to_owned(),
            log_format: match self.log_format.as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(bad(
                        "server.log_format",
                        format!("unknown format {other:?} (expected \"text\" or \"json\")"),
                    ));
                }
            },
            drain_delay: ms(self.drain_delay_ms, DEFAULT_DRAIN_DELAY_MS),
            admin: None,
            cluster: None,
            issuer: DEFAULT_ISSUER.to_owned(),
            token_lifetime: Duration::from_secs(DEFAULT_TOKEN_LIFETIME_SECS),
            leeway: Duration::from_secs(DEFAULT_LEEWAY_SECS),
            max_token_age: Duration::from_secs(DEFAULT_MAX_TOKEN_AGE_SECS),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            cache_ttl: Duration::from_secs(DEFAULT_CACHE_TTL_SECS),
            upstream_connect_timeout: Duration::from_millis(DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS),
            upstream_idle_timeout: Duration::from_millis(DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS),
            signing: SigningConfig::default(),
            token_endpoints: Vec::new(),
            oauth_endpoints: Vec::new(),
            cors: crate::cors::Cors::Off,
            dpop: raw::RawDpop::default().validate(DEFAULT_ISSUER, Path::new("."), false)?,
            clients: Clients::default(),
            clients_file: None,
            jwks_files: Vec::new(),
            forwarded_client_cert: None,
            decision: None,
            private_key_jwt: raw::RawPrivateKeyJwt::default().validate()?,
            routes: Vec::new(),
            demo_upstream: None,
            state_dir: self.state_dir.as_ref().map(|d| base.join(d)),
            trusted_proxies: sections::trusted_proxies(&self.trusted_proxies)?,
            throttle: crate::throttle::Limits {
                per_source: DEFAULT_FAILURES_PER_SOURCE,
                per_client: DEFAULT_FAILURES_PER_CLIENT,
                window: Duration::from_secs(DEFAULT_THROTTLE_WINDOW_SECS),
            },
            limits: crate::limits::HttpLimits::default(),
        })
    }
}
