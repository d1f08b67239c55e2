//! `[dpop]` -> `dpop::Settings`.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::raw::RawDpop;
use super::{ConfigError, bad};
use crate::dpop::Settings;
use crate::dpop::nonce::Nonces;
use crate::dpop::proof::Rules;
use crate::dpop::replay::Bounds;

/// ±60 s: Spring Security's default proof window; Keycloak accepts 10 s of proof lifetime plus
/// its clock skew. A proof is replay-checked for as long as it is accepted, so the window also
/// sizes the replay store.
pub const DEFAULT_DPOP_IAT_WINDOW_SECS: u64 = 60;
pub const DEFAULT_DPOP_REPLAY_CAPACITY: usize = 200_000;
pub const DEFAULT_DPOP_REPLAY_PER_KEY: usize = 10_000;
/// A few milliseconds: a Redis on the cluster's network answers `SET NX` in well under one.
pub const DEFAULT_DPOP_CLUSTER_TIMEOUT_MS: u64 = 5;
/// Two minutes: a client fetches a new nonce at most every two minutes, and a proof cannot be
/// made ahead of its nonce by longer.
pub const DEFAULT_DPOP_NONCE_LIFETIME_SECS: u64 = 120;
/// The least secret a nonce key is made from.
const MIN_NONCE_SECRET_BYTES: usize = 32;
const DEFAULT_ALGS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

impl RawDpop {
    /// `base`: the config's folder; `clustered`: whether `[cluster]` is configured.
    pub(super) fn validate(
        &self,
        issuer: &str,
        base: &std::path::Path,
        clustered: bool,
    ) -> Result<Settings, ConfigError> {
        let algs = match &self.algs {
            None => DEFAULT_ALGS.to_vec(),
            Some(names) => names
                .iter()
                .map(|n| alg("dpop.algs", n))
                .collect::<Result<_, _>>()?,
        };
        if algs.is_empty() {
            return Err(bad("dpop.algs", "names no algorithm"));
        }
        let iat_window = self.iat_window_secs.unwrap_or(DEFAULT_DPOP_IAT_WINDOW_SECS);
        if !(1..=600).contains(&iat_window) {
            return Err(bad("dpop.iat_window_secs", "must be 1 to 600 seconds"));
        }
        let origin = match &self.public_origin {
            Some(o) => Some(public_origin(o)?),
            None => crate::routes::url_for(issuer, ""),
        };
        let prefix = self.public_path_prefix.clone().unwrap_or_default();
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/')) {
            return Err(bad(
                "dpop.public_path_prefix",
                format!("{prefix:?} must start with '/' and not end with one, e.g. \"/store\""),
            ));
        }
        let total = self.replay_capacity.unwrap_or(DEFAULT_DPOP_REPLAY_CAPACITY);
        let per_key = self.replay_per_key.unwrap_or(DEFAULT_DPOP_REPLAY_PER_KEY);
        if total == 0 || per_key == 0 || per_key > total {
            return Err(bad(
                "dpop.replay_per_key",
                "replay_capacity and replay_per_key must be above 0, per key at most the capacity",
            ));
        }
        let cluster_timeout = self
            .cluster_timeout_ms
            .unwrap_or(DEFAULT_DPOP_CLUSTER_TIMEOUT_MS);
        if !(1..=1000).contains(&cluster_timeout) {
            return Err(bad("dpop.cluster_timeout_ms", "must be 1 to 1000 ms"));
        }
        let refuse_when_cluster_away = match self.replay_when_cluster_away.as_deref() {
            None | Some("per_replica") => false,
            Some("refuse") => true,
            Some(other) => {
                return Err(bad(
                    "dpop.replay_when_cluster_away",
                    format!("{other:?} is neither \"per_replica\" nor \"refuse\""),
                ));
            }
        };
        let nonces = self.nonces(base, clustered)?;
        Ok(Settings {
            algs_names: (algs.iter())
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            rules: Rules { algs, iat_window },
            public_origin: origin,
            path_prefix: prefix,
            replay: Bounds {
                total,
                per_key,
                keep: Duration::from_secs(2 * iat_window + 1),
            },
            nonces,
            cluster_timeout: Duration::from_millis(cluster_timeout),
            refuse_when_cluster_away,
        })
    }

    /// The nonce maker, when nonces are required.
    fn nonces(
        &self,
        base: &std::path::Path,
        clustered: bool,
    ) -> Result<Option<Nonces>, ConfigError> {
        let lifetime = (self.nonce_lifetime_secs).unwrap_or(DEFAULT_DPOP_NONCE_LIFETIME_SECS);
        if !(10..=3600).contains(&lifetime) {
            return Err(bad(
                "dpop.nonce_lifetime_secs",
                "must be 10 to 3600 seconds",
            ));
        }
        if !self.require_nonce {
            return Ok(None);
        }
        let key = "dpop.nonce_secret_file";
        let secret = match &self.nonce_secret_file {
            None if clustered => {
                return Err(bad(
                    key,
                    "is required with require_nonce and [cluster]: every replica must accept every replica's nonces",
                ));
            }
            None => None,
            Some(file) => {
                let path = base.join(file);
                // Never the file's content in an error: it is a secret.
                let bytes = std::fs::read(&path)
                    .map_err(|e| bad(key, format!("{} could not be read: {e}", path.display())))?;
                if bytes.len() < MIN_NONCE_SECRET_BYTES {
                    return Err(bad(
                        key,
                        format!(
                            "{} holds fewer than {MIN_NONCE_SECRET_BYTES} bytes",
                            path.display()
                        ),
                    ));
                }
                Some(bytes)
            }
        };
        Ok(Some(Nonces::new(secret.as_deref(), lifetime)))
    }
}

/// A route that requires DPoP needs an origin to check proofs against.
pub(super) fn routes_fit(
    dpop: &Settings,
    routes: &[crate::routes::Route],
) -> Result<(), ConfigError> {
    match routes.iter().find(|r| r.dpop_required) {
        Some(r) if dpop.public_origin.is_none() => Err(bad(
            &format!("routes[{}].dpop_bound_access_tokens_required", r.prefix),
            "needs [dpop] public_origin (or an https issuer) to check proofs against",
        )),
        _ => Ok(()),
    }
}

/// An asymmetric JWS algorithm a proof may use: never `none`, never HMAC.
fn alg(key: &str, name: &str) -> Result<Algorithm, ConfigError> {
    match name.parse::<Algorithm>() {
        Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => Err(bad(
            key,
            format!("{name:?} is symmetric: a proof must be signed with the client's own key"),
        )),
        Ok(a) => Ok(a),
        Err(_) => Err(bad(key, format!("{name:?} is not a JWS algorithm"))),
    }
}

/// `scheme://host[:port]`, with no path.
fn public_origin(text: &str) -> Result<String, ConfigError> {
    let key = "dpop.public_origin";
    let normalized = crate::dpop::htu::normalize(text)
        .filter(|n| n.ends_with('/') && n.matches('/').count() == 3)
        .ok_or_else(|| {
            bad(
                key,
                format!("{text:?} must be an http(s) origin without a path"),
            )
        })?;
    Ok(normalized.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn defaults_and_refusals() {
        let s = RawDpop::default()
            .validate("https://gw.example", Path::new("."), false)
            .unwrap();
        assert_eq!(s.public_origin.as_deref(), Some("https://gw.example"));
        assert_eq!(s.rules.iat_window, 60);
        assert!(!s.rules.algs.contains(&Algorithm::HS256));
        let raw = |f: &dyn Fn(&mut RawDpop)| {
            let mut r = RawDpop::default();
            f(&mut r);
            r.validate("storegate", Path::new("."), false)
        };
        assert!(raw(&|r| r.algs = Some(vec!["HS256".into()])).is_err());
        assert!(raw(&|r| r.algs = Some(vec!["none".into()])).is_err());
        assert!(raw(&|r| r.public_origin = Some("https://h/x".into())).is_err());
        assert!(raw(&|r| r.public_path_prefix = Some("store/".into())).is_err());
        let s = raw(&|r| r.public_origin = Some("HTTPS://API.Shop.Example:443".into())).unwrap();
        assert_eq!(s.public_origin.as_deref(), Some("https://api.shop.example"));
        assert_eq!(
            raw(&|_| {}).unwrap().public_origin,
            None,
            "no https issuer, no origin"
        );
        assert_eq!(
            raw(&|_| {}).unwrap().algs_names,
            "ES256 ES384 EdDSA PS256 RS256"
        );
        assert!(raw(&|r| r.replay_when_cluster_away = Some("open".into())).is_err());
        assert!(raw(&|r| r.cluster_timeout_ms = Some(0)).is_err());
        assert!(raw(&|r| r.require_nonce = true).unwrap().nonces.is_some());
        let clustered = |r: &RawDpop| r.validate("storegate", Path::new("."), true);
        let mut nonce = RawDpop {
            require_nonce: true,
            ..RawDpop::default()
        };
        assert!(clustered(&nonce).is_err(), "replicas must share the secret");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("short"), b"too short").unwrap();
        nonce.nonce_secret_file = Some(dir.path().join("short"));
        let e = clustered(&nonce).unwrap_err().to_string();
        assert!(
            e.contains("fewer than 32 bytes") && !e.contains("too short"),
            "{e}"
        );
    }
}
