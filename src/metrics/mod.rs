//! Prometheus metrics (OpenMetrics text, served on the admin listener's `/metrics`).
//!
//! Every label value comes from the configuration (a route prefix, an endpoint path) or from a
//! fixed set (a status code, a refusal reason), never from the request itself, so no caller
//! can grow the number of series. Counters on the request path are one hashed lookup and an
//! atomic add; what the gateway already counts elsewhere (the cache, reloads, the revocation
//! set, open connections) is read when the metrics are scraped rather than counted twice.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::errors::Refusal;

mod labels;

pub use labels::*;

/// A connection's memo of its last route's metric handles (`Metrics::request_on`).
#[derive(Default)]
pub struct Counted(std::sync::Mutex<Option<RouteHandles>>);

/// The metric handles of one route and status (`Metrics::request_on`).
pub struct RouteHandles {
    route: Value,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteStatus, Counter>,
    pub request_duration: Family<RouteLabel, Histogram, LatencyBuckets>,
    pub tokens_issued: Family<EndpointGrant, Counter>,
    pub token_refusals: Family<EndpointError, Counter>,
    pub verifications: Family<ResultLabel, Counter>,
    pub upstream_errors: Family<RouteKind, Counter>,
    pub config_reloads: Family<ResultLabel, Counter>,
    pub config_generation: Gauge,
    pub open_connections: Family<Protocol, Gauge>,
    pub certificate_expiry: Gauge,
    pub revoked_tokens: Gauge,
    pub throttled: Counter,
    pub cluster_connected: Gauge,
    pub cluster_applied: Counter,
    pub cors_preflights: Family<OutcomeLabel, Counter>,
    pub dpop_refused: Family<ReasonLabel, Counter>,
    pub dpop_replay_entries: Gauge,
    pub dpop_cluster_claims: Family<OutcomeLabel, Counter>,
    pub client_auth: Family<MethodOutcome, Counter>,
    pub decisions: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("storegate");
        let m = Metrics {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(LatencyBuckets),
            tokens_issued: Family::default(),
            token_refusals: Family::default(),
            verifications: Family::default(),
            upstream_errors: Family::default(),
            config_reloads: Family::default(),
            config_generation: Gauge::default(),
            open_connections: Family::default(),
            certificate_expiry: Gauge::default(),
            revoked_tokens: Gauge::default(),
            throttled: Counter::default(),
            cluster_connected: Gauge::default(),
            cluster_applied: Counter::default(),
            cors_preflights: Family::default(),
            dpop_refused: Family::default(),
            dpop_replay_entries: Gauge::default(),
            dpop_cluster_claims: Family::default(),
            client_auth: Family::default(),
            decisions: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "Requests to guarded routes, by route prefix and response status",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a guarded request's arrival to its response head, by route prefix",
            m.request_duration.clone(),
        );
        r.register(
            "tokens_issued",
            "Access tokens issued, by token endpoint path and grant",
            m.tokens_issued.clone(),
        );
        r.register(
            "token_requests_refused",
            "Refused token requests, by token endpoint path and OAuth error code",
            m.token_refusals.clone(),
        );
        r.register(
            "verifications",
            "Bearer token checks on guarded routes: cache_hit, verified, or why it was refused",
            m.verifications.clone(),
        );
        r.register(
            "upstream_errors",
            "Failed upstream requests, by route prefix and kind (connect, timeout, reset, protocol)",
            m.upstream_errors.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads, by result (success, failure)",
            m.config_reloads.clone(),
        );
        r.register(
            "config_generation",
            "The number of the configuration generation serving (1 at start, +1 per stored reload)",
            m.config_generation.clone(),
        );
        r.register(
            "open_connections",
            "Open client connections, by protocol (http1, http2; plaintext when not negotiated)",
            m.open_connections.clone(),
        );
        r.register(
            "certificate_expiry_timestamp_seconds",
            "When the serving TLS certificate expires (Unix time; absent in plaintext mode)",
            m.certificate_expiry.clone(),
        );
        r.register(
            "revoked_tokens",
            "Entries in the revocation set (revoked tokens and clients' issued-before instants)",
            m.revoked_tokens.clone(),
        );
        r.register(
            "token_throttled",
            "Client authentications refused by the failure throttle (429)",
            m.throttled.clone(),
        );
        r.register(
            "cluster_connected",
            "1 while the cluster store (Redis) is connected, 0 while it is away or not configured",
            m.cluster_connected.clone(),
        );
        r.register(
            "cluster_revocations_applied",
            "Revocations made on other replicas and applied here from the cluster store",
            m.cluster_applied.clone(),
        );
        r.register(
            "cors_preflights",
            "CORS preflights, by outcome (allowed, forwarded to an upstream that answers CORS, origin_refused, method_refused, headers_refused)",
            m.cors_preflights.clone(),
        );
        r.register(
            "dpop_proofs_refused",
            "DPoP proofs refused at token endpoints and guarded routes, by reason",
            m.dpop_refused.clone(),
        );
        r.register(
            "dpop_replay_entries",
            "DPoP proofs held by this replica's replay store (bounded by [dpop] replay_capacity)",
            m.dpop_replay_entries.clone(),
        );
        r.register(
            "dpop_cluster_claims",
            "DPoP proofs claimed in the cluster store, by outcome (claimed, replayed; away, slow, failed: checked on this replica only, or refused)",
            m.dpop_cluster_claims.clone(),
        );
        r.register(
            "client_authentications",
            "Client authentications at the token, revocation and introspection endpoints, by method (client_secret_basic, client_secret_post, tls_client_auth, self_signed_tls_client_auth, none: a public client naming itself) and outcome (accepted, refused, throttled)",
            m.client_auth.clone(),
        );
        r.register(
            "decisions",
            "Answers of the decision endpoint, by outcome (allowed, refused, untrusted_peer: asked by a peer not in decision.trusted_peers, undescribed: the original request not named)",
            m.decisions.clone(),
        );
        r.register(
            "build",
            "The storegate build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics { registry, ..m }
    }

    /// Counts a guarded request's response.
    pub fn request(&self, route: &Value, status: u16, seconds: f64) {
        let labels = RouteStatus {
            route: route.clone(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        let route = RouteLabel {
            route: labels.route,
        };
        self.request_duration.get_or_create(&route).observe(seconds);
    }

    /// `request`, remembering the last route's and status's metric handles in `last`: a
    /// connection's requests mostly go to one route with one status, and then skip the two
    /// label lookups (a lock and a hash each).
    pub fn request_on(&self, last: &Counted, route: &Value, status: u16, seconds: f64) {
        match last.0.try_lock() {
            Ok(mut held) => self.count_with(&mut held, route, status, seconds),
            // An HTTP/2 stream that finds the memo in use by another does without it.
            Err(_) => self.count_with(&mut None, route, status, seconds),
        }
    }

    fn count_with(
        &self,
        last: &mut Option<RouteHandles>,
        route: &Value,
        status: u16,
        seconds: f64,
    ) {
        let fresh = match last {
            Some(h) => !(Arc::ptr_eq(&h.route, route) && h.status == status),
            None => true,
        };
        if fresh {
            let labels = RouteStatus {
                route: route.clone(),
                status,
            };
            let requests = self.requests.get_or_create_owned(&labels);
            let duration = self.request_duration.get_or_create_owned(&RouteLabel {
                route: route.clone(),
            });
            *last = Some(RouteHandles {
                route: labels.route,
                status,
                requests,
                duration,
            });
        }
        if let Some(h) = last {
            h.requests.inc();
            h.duration.observe(seconds);
        }
    }

    /// Counts a refused Bearer token check by its reason.
    pub fn verification_refused(&self, refusal: &Refusal) {
        let result = refusal_reason(refusal);
        self.verifications
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Sets what is read at scrape time, then renders every metric.
    pub fn render(&self, now: Snapshot) -> String {
        let set = |result, v: u64| {
            (self.verifications.get_or_create(&ResultLabel { result }))
                .inner()
                .store(v, Ordering::Relaxed)
        };
        set("cache_hit", now.cache_hits);
        set("verified", now.verified);
        let reloads = |result, v: u64| {
            (self.config_reloads.get_or_create(&ResultLabel { result }))
                .inner()
                .store(v, Ordering::Relaxed)
        };
        reloads("success", now.reloads_succeeded);
        reloads("failure", now.reloads_failed);
        self.config_generation.set(now.generation as i64);
        self.revoked_tokens.set(now.revoked as i64);
        for (reason, n) in now.dpop_refused {
            let labels = ReasonLabel { reason };
            (self.dpop_refused.get_or_create(&labels))
                .inner()
                .store(n, Ordering::Relaxed);
        }
        for (outcome, n) in now.dpop_claims {
            let labels = OutcomeLabel { outcome };
            (self.dpop_cluster_claims.get_or_create(&labels))
                .inner()
                .store(n, Ordering::Relaxed);
        }
        self.dpop_replay_entries.set(now.dpop_replay_entries as i64);
        if let Some(t) = now.certificate_expiry {
            self.certificate_expiry.set(t);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// What the gateway counts elsewhere, read when metrics are scraped.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub cache_hits: u64,
    pub verified: u64,
    pub reloads_succeeded: u64,
    pub reloads_failed: u64,
    pub generation: u64,
    pub revoked: usize,
    pub certificate_expiry: Option<i64>,
    pub dpop_refused: Vec<(&'static str, u64)>,
    pub dpop_claims: Vec<(&'static str, u64)>,
    pub dpop_replay_entries: usize,
}

/// The `result` label of a refused token check.
pub fn refusal_reason(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::MissingToken => "missing",
        Refusal::InvalidToken(why) => match *why {
            "the token has expired" => "expired",
            "the token signature is invalid" => "bad_signature",
            "the token was not signed by a known key" => "unknown_kid",
            "the token's algorithm does not match its key" => "wrong_algorithm",
            "the token was issued by someone else" => "wrong_issuer",
            "the token has been revoked" => "revoked",
            "the token's client is no longer registered" => "unknown_client",
            "the token is not valid yet" => "not_yet_valid",
            "the token lacks a required claim" => "missing_claim",
            "the token's lifetime is too long" => "lifetime_too_long",
            "the token is not an access token" => "wrong_type",
            "the token has a critical header parameter" => "critical_header",
            "the token names no known grant" => "unknown_grant",
            _ => "malformed",
        },
        Refusal::InsufficientScope {
            detail: "the token is for another API",
            ..
        } => "wrong_audience",
        Refusal::InsufficientScope { .. } => "insufficient_scope",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_the_verifier_makes_has_its_own_reason() {
        let source = include_str!("../token/verify.rs");
        let reasons: Vec<&str> = source
            .split("Refusal::InvalidToken(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"'))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(reasons.len() >= 8, "{reasons:?}");
        for why in reasons
            .into_iter()
            .filter(|w| *w != "the token is malformed")
        {
            let r = refusal_reason(&Refusal::InvalidToken(why));
            assert_ne!(r, "malformed", "{why:?} has no reason of its own");
        }
    }

    #[test]
    fn rendering_names_every_metric() {
        let m = Metrics::new();
        let route: Value = "/api/".into();
        m.request(&route, 429, 0.001);
        let text = m.render(Snapshot {
            generation: 3,
            dpop_refused: vec![("replay", 2)],
            dpop_claims: vec![("away", 1)],
            dpop_replay_entries: 7,
            ..Snapshot::default()
        });
        for name in [
            "storegate_requests_total{route=\"/api/\",status=\"429\"} 1",
            "storegate_request_duration_seconds_bucket",
            "storegate_config_generation 3",
            "storegate_build_info{version=",
            "storegate_verifications_total{result=\"cache_hit\"} 0",
            "storegate_dpop_proofs_refused_total{reason=\"replay\"} 2",
            "storegate_dpop_cluster_claims_total{outcome=\"away\"} 1",
            "storegate_dpop_replay_entries 7",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }
}
