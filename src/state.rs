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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::config::{Config, RestartOnly};
use crate::discovery::Documents;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::proxy::Upstream;
use crate::ratelimit::RateLimits;
use crate::request_id::RequestIds;
use crate::revocation::Revocations;
use crate::throttle::Throttle;
use crate::token::cache::TokenCache;
use crate::token::issue::TokenIssuer;
use crate::token::keys::KeySet;
use crate::token::rotation::KeyMemory;
use crate::token::verify::{Rules, Verifier};

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
    /// The RFC 8414 and RFC 9728 metadata documents, by path.
    pub documents: Documents,
    /// `None` when the listener serves plain HTTP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The CAs trusted for client certificates (`tls.client_ca`), the judge of
    /// `tls_client_auth` (see `mtls`).
    pub client_cas: Option<Arc<crate::mtls::ClientCas>>,
    /// When the first key remembered after a rotation expires (epoch seconds): the generation
    /// is rebuilt then, so that the key leaves the JWKS.
    pub next_key_expiry: Option<u64>,
    /// When the serving certificate expires (epoch seconds), for the metrics.
    pub certificate_expiry: Option<i64>,
    /// The TLS client configs of the `https://` upstreams (handed to the pool's connector).
    pub upstream_tls: Arc<crate::upstream_tls::Configs>,
}

/// What outlives a configuration generation.
pub struct Shared {
    /// The settings a reload cannot change, as the process started with them.
    pub fixed: RestartOnly,
    pub upstream: Upstream,
    /// Upstream connections of idle relayed callers, for any caller's next request (HTTP/2
    /// streams' relayed exchanges take and park them too: `upstream` holds the same).
    pub parking: Arc<crate::parking::Parking>,
    pub rate_limits: RateLimits,
    /// Failed client authentications at the token endpoint.
    pub throttle: Throttle,
    pub tokens: TokenCache,
    /// Signing keys remembered after a rotation (in `state_dir` when one is configured).
    pub key_memory: KeyMemory,
    /// Revoked tokens (in `state_dir` when one is configured).
    pub revocations: Arc<Revocations>,
    pub reloads: ReloadStats,
    pub metrics: Arc<Metrics>,
    /// Readiness and draining.
    pub health: Health,
    pub request_ids: RequestIds,
    /// DPoP proofs seen (`[dpop]`'s bounds, as the process started with them), here and
    /// across the cluster, and proofs refused.
    pub dpop: crate::dpop::Stores,
    /// Client assertions' `jti`s seen (`[private_key_jwt]`'s bounds, as the process started).
    pub assertions: crate::assertion::replay::AssertionReplay,
}

/// What reloads did, for logs, tests and (later) metrics.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    /// The last failure's message (names the file and key; never a secret value).
    pub last_error: Mutex<Option<String>>,
    /// Held while a reload builds and stores a generation: one at a time.
    serial: Mutex<()>,
    /// Woken after every reload, stored or failed.
    pub done: tokio::sync::Notify,
}

impl ReloadStats {
    pub fn success(&self) {
        self.succeeded.fetch_add(1, Ordering::Relaxed);
        self.done.notify_waiters();
    }

    pub fn failure(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.done.notify_waiters();
    }

    /// Serializes reloads.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.serial.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Generation {
    /// Loads the keys and certificate `config` names (generating development files where it
    /// allows) and records the signing key in `memory`, the last step that can fail. Blocking
    /// file I/O: call it off the async workers once serving.
    pub fn build(config: Config, number: u64, memory: &KeyMemory) -> anyhow::Result<Generation> {
        let (tls, certificate_expiry, client_cas) = match &config.tls {
            Some(files) => {
                let loaded =
                    crate::tls::load(files).context("config keys `tls.cert` and `tls.key`")?;
                let acceptor = tokio_rustls::TlsAcceptor::from(loaded.server);
                (Some(acceptor), loaded.expiry, loaded.client_cas)
            }
            None => (None, None, None),
        };
        // Behind a proxy that does the mTLS, without [tls]: its own CA keys.
        let client_cas = match (client_cas, &config.forwarded_client_cert) {
            (None, Some(f)) => match &f.ca {
                Some(ca) => Some(Arc::new(
                    crate::mtls::ClientCas::load(ca, f.crl.as_deref()).context(
                        "config keys `forwarded_client_cert.client_ca` and `client_crl`",
                    )?,
                )),
                None => None,
            },
            (cas, _) => cas,
        };
        let upstream_tls = Arc::new(crate::upstream_tls::build(&config.routes)?);
        let keys = KeySet::load(&config.signing)?;
        let remembered = memory
            .rotate_to(
                &keys.current,
                config.token_lifetime.as_secs(),
                config.leeway.as_secs(),
                crate::token::now_unix(),
            )
            .context("remembering the signing key")?;
        let next_key_expiry = remembered.iter().map(|r| r.until + 1).min();
        let jwks: Vec<_> = remembered.into_iter().map(|r| r.jwk).collect();
        let keys = Arc::new(keys.trust(&jwks).context("trusting the remembered keys")?);
        let issuer = TokenIssuer::new(
            keys.clone(),
            config.issuer.clone(),
            config.token_lifetime.as_secs(),
        );
        let rules = Rules {
            issuer: &config.issuer,
            leeway_secs: config.leeway.as_secs(),
            max_age_secs: config.max_token_age.as_secs(),
        };
        let verifier = Verifier::new(keys.clone(), rules, number);
        let documents = Documents::build(&config);
        Ok(Generation {
            number,
            config,
            keys,
            issuer,
            verifier,
            documents,
            tls,
            client_cas,
            next_key_expiry,
            certificate_expiry,
            upstream_tls,
        })
    }
}

impl Generation {
    /// Adds the clients' `revoke_issued_before` instants to the revocation set.
    fn revoke_configured(&self, revocations: &Revocations) {
        let c = &self.config;
        let max_age = (c.max_token_age + c.leeway).as_secs();
        revocations.apply_config(&c.clients, max_age, crate::token::now_unix());
    }
}

impl State {
    /// The state of a starting gateway: its first generation and the shared parts.
    pub fn new(config: Config) -> anyhow::Result<State> {
        let fixed = RestartOnly::of(&config);
        let metrics = Arc::new(Metrics::new());
        let parking = Arc::new(crate::parking::Parking::new(fixed.upstream_idle_timeout));
        let shared = Shared {
            upstream: Upstream::new(
                fixed.upstream_connect_timeout,
                fixed.upstream_idle_timeout,
                fixed.limits.max_upstream_head_bytes,
                metrics.clone(),
                parking.clone(),
            ),
            parking,
            rate_limits: RateLimits::default(),
            throttle: Throttle::default(),
            tokens: TokenCache::new(fixed.cache_capacity, fixed.cache_ttl),
            key_memory: KeyMemory::open(fixed.state_dir.as_deref())?,
            revocations: Arc::new(Revocations::open(
                fixed.state_dir.as_deref(),
                crate::token::now_unix(),
            )?),
            reloads: ReloadStats::default(),
            metrics,
            health: Health::default(),
            request_ids: RequestIds::default(),
            dpop: crate::dpop::Stores::new(config.dpop.replay, fixed.cluster.is_some()),
            assertions: crate::assertion::replay::AssertionReplay::new(&config.private_key_jwt),
            fixed,
        };
        let first = Generation::build(config, 1, &shared.key_memory)?;
        first.revoke_configured(&shared.revocations);
        shared.upstream.use_tls(first.upstream_tls.clone());
        Ok(State {
            shared,
            current: ArcSwap::from_pointee(first),
        })
    }

    /// The current generation.
    pub fn load(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Makes `next` the current generation. Requests already under way finish with the one
    /// they loaded; the next request loads `next`. Cached verifications are bound again to
    /// `next`'s clients on their next use, unless the token rules changed (issuer, leeway,
    /// maximum age, or a kid now naming another key), in which case they are dropped and
    /// verified afresh.
    pub fn store(&self, next: Generation) {
        // In force before any request sees the generation that configured them.
        next.revoke_configured(&self.shared.revocations);
        self.shared.upstream.use_tls(next.upstream_tls.clone());
        let clients = &next.config.clients;
        self.shared.rate_limits.retain(|id| {
            clients
                .get(id)
                .is_some_and(|c| c.rate_limit_per_sec.is_some())
        });
        let next = Arc::new(next);
        let previous = self.current.swap(next.clone());
        let (was, is) = (&previous.config, &next.config);
        // A kid that now names other key material must not vouch for what the old key signed.
        let kid_reused = (previous.keys.verify.keys()).any(|kid| {
            next.keys
                .jwk(kid)
                .is_some_and(|j| previous.keys.jwk(kid) != Some(j))
        });
        if was.issuer != is.issuer
            || was.leeway != is.leeway
            || was.max_token_age != is.max_token_age
            || kid_reused
        {
            self.shared.tokens.invalidate_all();
        }
    }
}
