//! The verification cache: verified claims keyed by a SHA-256 digest of the token (the token
//! itself is never stored), bounded in entries, and never holding an entry past the token's
//! `exp`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;

use super::verified::Verified;

/// How long a verification may be reused: the configured TTL, but never past `exp`.
pub fn cache_lifetime(ttl: Duration, exp: u64, now: u64) -> Duration {
    ttl.min(Duration::from_secs(exp.saturating_sub(now)))
}

pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

struct UntilExp {
    ttl: Duration,
}

impl Expiry<TokenDigest, Arc<Verified>> for UntilExp {
    fn expire_after_create(
        &self,
        _: &TokenDigest,
        v: &Arc<Verified>,
        _: Instant,
    ) -> Option<Duration> {
        Some(cache_lifetime(self.ttl, v.exp(), super::now_unix()))
    }
}

/// Counters that make the cache observable.
#[derive(Debug, Default)]
pub struct VerifyStats {
    pub cache_hits: AtomicU64,
    /// Full verifications (signature and claims).
    pub verifications: AtomicU64,
    /// Full verifications that accepted the token.
    pub verified: AtomicU64,
}

/// The verification cache of the process: it outlives configuration generations, so each
/// entry says which generation it was bound under.
pub struct TokenCache {
    /// `None` when `cache_capacity` is 0.
    inner: Option<moka::sync::Cache<TokenDigest, Arc<Verified>>>,
    pub stats: VerifyStats,
}

impl TokenCache {
    /// `capacity` 0 turns the cache off.
    pub fn new(capacity: u64, ttl: Duration) -> TokenCache {
        let inner = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp { ttl })
                .build()
        });
        TokenCache {
            inner,
            stats: VerifyStats::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    pub fn get(&self, key: &TokenDigest) -> Option<Arc<Verified>> {
        let v = self.inner.as_ref()?.get(key)?;
        self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(v)
    }

    /// Forgets every verification (their tokens are verified afresh on next use).
    pub fn invalidate_all(&self) {
        if let Some(c) = &self.inner {
            c.invalidate_all();
        }
    }

    pub fn insert(&self, key: TokenDigest, v: Arc<Verified>) {
        if let Some(c) = &self.inner {
            c.insert(key, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_is_the_ttl_or_the_time_left_whichever_is_shorter() {
        let ttl = Duration::from_secs(300);
        assert_eq!(cache_lifetime(ttl, 10_000, 1_000), ttl);
        assert_eq!(cache_lifetime(ttl, 1_100, 1_000), Duration::from_secs(100));
        assert_eq!(cache_lifetime(ttl, 1_000, 1_000), Duration::ZERO);
        assert_eq!(
            cache_lifetime(ttl, 900, 1_000),
            Duration::ZERO,
            "an expired token is never cached"
        );
    }
}
