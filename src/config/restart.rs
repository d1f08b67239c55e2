//! The settings a reload cannot change: they shape the listener, the runtime or a structure
//! that lives as long as the process. A reload that changes one logs "needs a restart" and
//! keeps the running value; everything else in `Config` is live.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Config;
use crate::limits::HttpLimits;
use crate::tls::TlsFiles;

/// The restart-only settings the process started with.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartOnly {
    pub listen: SocketAddr,
    /// Whether the listener speaks TLS (the certificate itself is live).
    pub tls: bool,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub log: String,
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_idle_timeout: Duration,
    pub demo_upstream: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub limits: crate::limits::HttpLimits,
    pub log_format: super::LogFormat,
    pub admin: Option<super::AdminConfig>,
    pub cluster: Option<super::ClusterConfig>,
    /// The DPoP replay store's bounds, and the `iat` window they are made for: a proof is
    /// remembered for as long as it is accepted, so the window cannot widen past the store.
    pub dpop_replay: crate::dpop::replay::Bounds,
    pub dpop_iat_window: u64,
    /// The client assertions' replay store: its bounds, and the lifetime it keeps `jti`s for.
    pub assertions: (u64, usize, usize),
}

/// What the assertions' replay store is built with.
fn assertion_store(s: &crate::assertion::Settings) -> (u64, usize, usize) {
    (s.max_lifetime, s.replay_capacity, s.replay_per_client)
}

impl RestartOnly {
    pub fn of(c: &Config) -> RestartOnly {
        RestartOnly {
            listen: c.listen,
            tls: c.tls.is_some(),
            max_connections: c.max_connections,
            handshake_timeout: c.handshake_timeout,
            header_read_timeout: c.header_read_timeout,
            idle_timeout: c.idle_timeout,
            shutdown_grace: c.shutdown_grace,
            log: c.log.clone(),
            cache_capacity: c.cache_capacity,
            cache_ttl: c.cache_ttl,
            upstream_connect_timeout: c.upstream_connect_timeout,
            upstream_idle_timeout: c.upstream_idle_timeout,
            demo_upstream: c.demo_upstream,
            state_dir: c.state_dir.clone(),
            limits: c.limits,
            log_format: c.log_format,
            admin: c.admin.clone(),
            cluster: c.cluster.clone(),
            dpop_replay: c.dpop.replay,
            dpop_iat_window: c.dpop.rules.iat_window,
            assertions: assertion_store(&c.private_key_jwt),
        }
    }

    /// The config keys whose value in `new` differs from the running one.
    pub fn changed_in(&self, new: &Config) -> Vec<&'static str> {
        let n = RestartOnly::of(new);
        // The URI limit is checked per request, so it is live.
        let same_limits = HttpLimits {
            max_uri_bytes: n.limits.max_uri_bytes,
            ..self.limits
        } == n.limits;
        let replay = (self.dpop_replay.total, self.dpop_replay.per_key);
        let checks: [(&'static str, bool); 19] = [
            ("server.listen", self.listen != n.listen),
            ("server.plaintext", self.tls != n.tls),
            (
                "server.max_connections",
                self.max_connections != n.max_connections,
            ),
            (
                "server.handshake_timeout_ms",
                self.handshake_timeout != n.handshake_timeout,
            ),
            (
                "server.header_read_timeout_ms",
                self.header_read_timeout != n.header_read_timeout,
            ),
            (
                "server.shutdown_grace_ms",
                self.shutdown_grace != n.shutdown_grace,
            ),
            ("server.log", self.log != n.log),
            (
                "tokens.cache_capacity",
                self.cache_capacity != n.cache_capacity,
            ),
            ("tokens.cache_ttl_secs", self.cache_ttl != n.cache_ttl),
            (
                "demo.upstream_listen",
                self.demo_upstream != n.demo_upstream,
            ),
            ("server.state_dir", self.state_dir != n.state_dir),
            (
                "server.idle_timeout_ms",
                self.idle_timeout != n.idle_timeout,
            ),
            ("limits", !same_limits),
            ("server.log_format", self.log_format != n.log_format),
            ("admin", self.admin != n.admin),
            ("cluster", self.cluster != n.cluster),
            (
                "dpop.iat_window_secs",
                self.dpop_iat_window != n.dpop_iat_window,
            ),
            (
                "dpop.replay_capacity / replay_per_key",
                replay != (n.dpop_replay.total, n.dpop_replay.per_key),
            ),
            (
                "private_key_jwt.max_lifetime_secs / replay_capacity / replay_per_client",
                self.assertions != n.assertions,
            ),
        ];
        checks.iter().filter(|(_, c)| *c).map(|(k, _)| *k).collect()
    }
}

impl RestartOnly {
    /// Puts the running restart-only values into a reloaded `config`, so that the generation
    /// built from it says what is in force. Returns the keys the reload wanted to change.
    pub fn keep_in(
        &self,
        config: &mut Config,
        running_tls: Option<&TlsFiles>,
    ) -> Vec<&'static str> {
        let changed = self.changed_in(config);
        config.listen = self.listen;
        if self.tls != config.tls.is_some() {
            // Turning TLS on or off needs a new listener: keep serving as before.
            config.tls = running_tls.cloned();
        }
        config.max_connections = self.max_connections;
        config.handshake_timeout = self.handshake_timeout;
        config.header_read_timeout = self.header_read_timeout;
        config.idle_timeout = self.idle_timeout;
        config.shutdown_grace = self.shutdown_grace;
        config.log.clone_from(&self.log);
        config.cache_capacity = self.cache_capacity;
        config.cache_ttl = self.cache_ttl;
        config.upstream_connect_timeout = self.upstream_connect_timeout;
        config.upstream_idle_timeout = self.upstream_idle_timeout;
        config.demo_upstream = self.demo_upstream;
        config.state_dir.clone_from(&self.state_dir);
        config.log_format = self.log_format;
        config.admin.clone_from(&self.admin);
        config.cluster.clone_from(&self.cluster);
        config.dpop.replay = self.dpop_replay;
        config.dpop.rules.iat_window = self.dpop_iat_window;
        let p = &mut config.private_key_jwt;
        (p.max_lifetime, p.replay_capacity, p.replay_per_client) = self.assertions;
        config.limits = HttpLimits {
            max_uri_bytes: config.limits.max_uri_bytes,
            ..self.limits
        };
        changed
    }
}
