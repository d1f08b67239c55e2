//! The smaller sections of gateway.toml: `[tokens]`, `[signing]`, `[throttle]`, and the
//! `server.trusted_proxies` list.

use std::path::Path;
use std::time::Duration;

use super::raw::{RawLimits, RawSigning, RawThrottle, RawTokens};
use super::*;
use crate::limits::{HttpLimits, MIN_HEAD_BYTES};
use crate::token::keys::{SigningAlgorithm, SigningConfig};

pub(super) fn trusted_proxies(raw: &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    networks("server.trusted_proxies", raw)
}

/// Addresses or CIDR blocks, at config key `key`.
pub(super) fn networks(key: &str, raw: &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    bad(
                        &format!("{key}[{i}]"),
                        format!("{s:?} is not an address or a CIDR block such as \"10.0.0.0/8\""),
                    )
                })
        })
        .collect()
}

impl RawPrivateKeyJwt {
    pub(super) fn validate(&self) -> Result<crate::assertion::Settings, ConfigError> {
        let max_lifetime = (self.max_lifetime_secs).unwrap_or(DEFAULT_ASSERTION_LIFETIME_SECS);
        if !(1..=MAX_ASSERTION_LIFETIME_SECS).contains(&max_lifetime) {
            return Err(bad(
                "private_key_jwt.max_lifetime_secs",
                format!("{max_lifetime} is not between 1 and {MAX_ASSERTION_LIFETIME_SECS}"),
            ));
        }
        let count = |key: &str, v: Option<usize>, default: usize| {
            positive(key, v.map(|n| n as u64), default as u64).map(|n| n as usize)
        };
        Ok(crate::assertion::Settings {
            max_lifetime,
            endpoint_audience: self.token_endpoint_audience,
            replay_capacity: count(
                "private_key_jwt.replay_capacity",
                self.replay_capacity,
                DEFAULT_ASSERTION_REPLAY_CAPACITY,
            )?,
            replay_per_client: count(
                "private_key_jwt.replay_per_client",
                self.replay_per_client,
                DEFAULT_ASSERTION_REPLAY_PER_CLIENT,
            )?,
        })
    }
}

impl RawThrottle {
    pub(super) fn validate(&self) -> Result<crate::throttle::Limits, ConfigError> {
        let count = |key: &str, v: Option<u32>, default: u32| {
            positive(key, v.map(u64::from), u64::from(default)).map(|n| n as u32)
        };
        let window = positive(
            "throttle.window_secs",
            self.window_secs,
            DEFAULT_THROTTLE_WINDOW_SECS,
        )?;
        if window > crate::throttle::MAX_WINDOW.as_secs() {
            return Err(bad(
                "throttle.window_secs",
                format!("{window} is over the longest window, 3600"),
            ));
        }
        Ok(crate::throttle::Limits {
            per_source: count(
                "throttle.failures_per_source",
                self.failures_per_source,
                DEFAULT_FAILURES_PER_SOURCE,
            )?,
            per_client: count(
                "throttle.failures_per_client",
                self.failures_per_client,
                DEFAULT_FAILURES_PER_CLIENT,
            )?,
            window: Duration::from_secs(window),
        })
    }
}

impl RawTokens {
    pub(super) fn validate(&self, cfg: &mut Config) -> Result<(), ConfigError> {
        cfg.issuer = self.issuer.as_deref().unwrap_or(DEFAULT_ISSUER).to_owned();
        if cfg.issuer.is_empty() {
            return Err(bad("tokens.issuer", "may not be empty"));
        }
        cfg.token_lifetime = Duration::from_secs(positive(
            "tokens.lifetime_secs",
            self.lifetime_secs,
            DEFAULT_TOKEN_LIFETIME_SECS,
        )?);
        cfg.leeway = Duration::from_secs(self.leeway_secs.unwrap_or(DEFAULT_LEEWAY_SECS));
        let max_age = self
            .max_token_age_secs
            .unwrap_or(DEFAULT_MAX_TOKEN_AGE_SECS);
        if max_age < cfg.token_lifetime.as_secs() {
            return Err(bad(
                "tokens.max_token_age_secs",
                format!(
                    "{max_age} is below tokens.lifetime_secs ({}): every token issued would be refused",
                    cfg.token_lifetime.as_secs()
                ),
            ));
        }
        cfg.max_token_age = Duration::from_secs(max_age);
        cfg.cache_capacity = self.cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY);
        cfg.cache_ttl = Duration::from_secs(positive(
            "tokens.cache_ttl_secs",
            self.cache_ttl_secs,
            DEFAULT_CACHE_TTL_SECS,
        )?);
        Ok(())
    }
}

impl RawSigning {
    pub(super) fn validate(&self, base: &Path) -> Result<SigningConfig, ConfigError> {
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
        if self.next_kid.is_some() && self.next_key.is_none() {
            return Err(bad(
                "signing.next_kid",
                "is set but signing.next_key is not",
            ));
        }
        if self.next_key.as_ref() == Some(&self.key) {
            return Err(bad(
                "signing.next_key",
                "names the same file as signing.key",
            ));
        }
        Ok(SigningConfig {
            algorithm,
            key: base.join(&self.key),
            kid: self.kid.clone(),
            generate_dev_files: self.generate_dev_files,
            next_key: self.next_key.as_ref().map(|k| base.join(k)),
            next_kid: self.next_kid.clone(),
            retired,
        })
    }
}

impl RawLimits {
    pub(super) fn validate(&self) -> Result<HttpLimits, ConfigError> {
        let d = HttpLimits::default();
        let at_least = |key: &str, v: Option<usize>, default: usize, least: usize| {
            let v = v.unwrap_or(default);
            if v < least {
                return Err(bad(key, format!("{v} is below the least allowed, {least}")));
            }
            Ok(v)
        };
        let head = |key, v, default| at_least(key, v, default, MIN_HEAD_BYTES);
        Ok(HttpLimits {
            max_headers: at_least("limits.max_headers", self.max_headers, d.max_headers, 8)?,
            max_header_bytes: head(
                "limits.max_header_bytes",
                self.max_header_bytes,
                d.max_header_bytes,
            )?,
            max_uri_bytes: at_least(
                "limits.max_uri_bytes",
                self.max_uri_bytes,
                d.max_uri_bytes,
                256,
            )?,
            h2_max_concurrent_streams: at_least(
                "limits.h2_max_concurrent_streams",
                self.h2_max_concurrent_streams.map(|n| n as usize),
                d.h2_max_concurrent_streams as usize,
                1,
            )? as u32,
            h2_max_pending_accept_reset_streams: at_least(
                "limits.h2_max_pending_accept_reset_streams",
                self.h2_max_pending_accept_reset_streams,
                d.h2_max_pending_accept_reset_streams,
                1,
            )?,
            h2_max_local_error_reset_streams: at_least(
                "limits.h2_max_local_error_reset_streams",
                self.h2_max_local_error_reset_streams,
                d.h2_max_local_error_reset_streams,
                1,
            )?,
            max_upstream_head_bytes: head(
                "limits.max_upstream_head_bytes",
                self.max_upstream_head_bytes,
                d.max_upstream_head_bytes,
            )?,
        })
    }
}

/// `[cluster]`: a redis:// or rediss:// URL without a password, the password from a file or
/// the environment (never inline, so that it is in no config dump or log line), and for TLS
/// the CA certificates to verify the server with.
pub(super) fn cluster(
    c: &super::raw::RawCluster,
    base: &Path,
) -> Result<ClusterConfig, ConfigError> {
    let key = "cluster.redis_url";
    let url: http::Uri = c
        .redis_url
        .parse()
        .map_err(|_| bad(key, "is not a URL such as \"redis://127.0.0.1:6379\""))?;
    let tls = match url.scheme_str() {
        Some("redis") => false,
        Some("rediss") => true,
        _ => return Err(bad(key, "must start with redis:// or rediss:// (TLS)")),
    };
    if c.redis_url.contains('#') {
        return Err(bad(
            key,
            "has a fragment (#insecure?); storegate always verifies the Redis server's certificate",
        ));
    }
    let ca_pem = match &c.ca_file {
        Some(_) if !tls => return Err(bad("cluster.ca_file", "is for a rediss:// URL only")),
        Some(f) => Some(ca_certificates(&base.join(f))?),
        None => None,
    };
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad(
            key,
            "carries credentials; give the password in cluster.password_file or cluster.password_env",
        ));
    }
    let password = match (&c.password_file, &c.password_env) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "cluster.password_file",
                "and cluster.password_env are both given; keep one",
            ));
        }
        (Some(f), None) => {
            let path = base.join(f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                bad(
                    "cluster.password_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Some(text.trim_end_matches(['\n', '\r']).to_owned())
        }
        (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
            bad(
                "cluster.password_env",
                format!("the environment variable {var:?} is not set"),
            )
        })?),
        (None, None) => None,
    };
    Ok(ClusterConfig {
        redis_url: c.redis_url.clone(),
        password,
        ca_pem,
    })
}

/// The PEM file of `cluster.ca_file`, checked to hold at least one certificate.
fn ca_certificates(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let key = "cluster.ca_file";
    let pem = std::fs::read(path)
        .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(pem),
        _ => Err(bad(
            key,
            format!("{} holds no PEM certificate", path.display()),
        )),
    }
}
