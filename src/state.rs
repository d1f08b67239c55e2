//! The gateway's state, split by how long each part lives:
//!
//! * a `Generation` is everything built from one validated `Config` — routes, token endpoints,
//!   clients, keys, the verification rules, the TLS certificate — immutable, and swapped whole
//!   when the configuration changes;
//! * `Shared` lives as long as the process — the upstream connection pool, the rate-limit
//!   buckets, the verification cache — and carries over from one generation to the next.
//!
//! A request loads the current generation once, at its start, and uses only that one to its
//! end; a keep-alive connection loads it again for each request.

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::config::{Config, RestartOnly};
use crate::proxy::Upstream;
use crate::ratelimit::RateLimits;
use crate::token::cache::TokenCache;
use crate::token::issue::TokenIssuer;
use crate::token::keys::KeySet;
use crate::token::verify::Verifier;

/// Everything a request needs.
pub struct State {
    pub shared: Shared,
    current: ArcSwap<Generation>,
}

/// What one configuration makes: built whole and checked before any request sees it.
pub struct Generation {
    /// Counts from 1 at start-up; each stored reload adds one.
    pub number: u64,
    pub config: Config,
    pub keys: Arc<KeySet>,
    pub issuer: TokenIssuer,
    pub verifier: Verifier,
    /// `None` when the listener serves plain HTTP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// What outlives a configuration generation.
pub struct Shared {
    /// The settings a reload cannot change, as the process started with them.
    pub fixed: RestartOnly,
    pub upstream: Upstream,
    pub rate_limits: RateLimits,
    pub tokens: TokenCache,
}

impl Generation {
    /// Loads the keys and certificate `config` names (generating development files where it
    /// allows). Blocking file I/O: call it off the async workers once serving.
    pub fn build(config: Config, number: u64) -> anyhow::Result<Generation> {
        let tls = match &config.tls {
            Some(files) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::load(files)?)),
            None => None,
        };
        let keys = Arc::new(KeySet::load(&config.signing).context("loading the signing keys")?);
        let issuer = TokenIssuer::new(
            keys.clone(),
            config.issuer.clone(),
            config.token_lifetime.as_secs(),
        );
        let verifier = Verifier::new(
            keys.clone(),
            &config.issuer,
            config.leeway.as_secs(),
            number,
        );
        Ok(Generation {
            number,
            config,
            keys,
            issuer,
            verifier,
            tls,
        })
    }
}

impl State {
    /// The state of a starting gateway: its first generation and the shared parts.
    pub fn new(config: Config) -> anyhow::Result<State> {
        let fixed = RestartOnly::of(&config);
        let shared = Shared {
            upstream: Upstream::new(fixed.upstream_connect_timeout, fixed.upstream_idle_timeout),
            rate_limits: RateLimits::default(),
            tokens: TokenCache::new(fixed.cache_capacity, fixed.cache_ttl),
            fixed,
        };
        let first = Generation::build(config, 1)?;
        Ok(State {
            shared,
            current: ArcSwap::from_pointee(first),
        })
    }

    /// The current generation.
    pub fn load(&self) -> Arc<Generation> {
        self.current.load_full()
    }
}
