//! `[dpop]` -> `dpop::Settings`.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::raw::RawDpop;
use super::{ConfigError, bad};
use crate::dpop::Settings;
use crate::dpop::proof::Rules;
use crate::dpop::replay::Bounds;

/// ±60 s: Spring Security's default proof window; Keycloak accepts 10 s of proof lifetime plus
/// its clock skew. A proof is replay-checked for as long as it is accepted, so the window also
/// sizes the replay store.
pub const DEFAULT_DPOP_IAT_WINDOW_SECS: u64 = 60;
pub const DEFAULT_DPOP_REPLAY_CAPACITY: usize = 200_000;
pub const DEFAULT_DPOP_REPLAY_PER_KEY: usize = 10_000;
const DEFAULT_ALGS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

impl RawDpop {
    pub(super) fn validate(&self, issuer: &str) -> Result<Settings, ConfigError> {
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
        Ok(Settings {
            rules: Rules { algs, iat_window },
            public_origin: origin,
            path_prefix: prefix,
            replay: Bounds {
                total,
                per_key,
                keep: Duration::from_secs(2 * iat_window + 1),
            },
        })
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

    #[test]
    fn defaults_and_refusals() {
        let s = RawDpop::default().validate("https://gw.example").unwrap();
        assert_eq!(s.public_origin.as_deref(), Some("https://gw.example"));
        assert_eq!(s.rules.iat_window, 60);
        assert!(!s.rules.algs.contains(&Algorithm::HS256));
        let raw = |f: &dyn Fn(&mut RawDpop)| {
            let mut r = RawDpop::default();
            f(&mut r);
            r.validate("storegate")
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
    }
}
