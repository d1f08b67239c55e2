//! The verification cache: verified claims keyed by a SHA-256 digest of the token (the cache
//! never stores the token itself), bounded in entries, and never holding an entry past the
//! token's `exp`; and in front of it, per connection, the last token it presented (`Recent`,
//! held as long as that connection's own buffers hold it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    ttl: Duration,
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
            ttl,
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

/// The token a connection presented last, with its verification: a keep-alive connection
/// mostly presents one token request after request, and then needs neither the digest nor the
/// cache lookup. It answers only while the cache would (the same lifetime rule, never past
/// `exp`), only for the generation it was bound under, and never with the cache off; a hit
/// counts as a cache hit. Revocation is checked after it, as after the cache.
///
/// Shared by an HTTP/2 connection's streams: one that finds it in use by another stream does
/// without it (the cache answers), so no stream ever waits for it.
#[derive(Default)]
pub struct Recent(Mutex<Option<Remembered>>);

/// The token, its verification, and until when it may answer.
type Remembered = (Box<str>, Arc<Verified>, Instant);

impl Recent {
    pub fn get(&self, token: &str, generation: u64, cache: &TokenCache) -> Option<Arc<Verified>> {
        let held = self.0.try_lock().ok()?;
        let (last, v, until) = held.as_ref()?;
        let hit = cache.is_enabled()
            && v.generation == generation
            && **last == *token
            && Instant::now() < *until;
        hit.then(|| {
            cache.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            v.clone()
        })
    }

    pub fn remember(&self, token: &str, v: &Arc<Verified>, cache: &TokenCache) {
        if cache.is_enabled()
            && let Ok(mut held) = self.0.try_lock()
        {
            let lifetime = cache_lifetime(cache.ttl, v.exp(), super::now_unix());
            *held = Some((token.into(), v.clone(), Instant::now() + lifetime));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connections_recent_token_answers_only_as_the_cache_would() {
        use crate::clients::Grant;
        // exp 0: long past.
        let v = Arc::new(crate::token::verified::for_tests(
            "store",
            Grant::ClientCredentials,
            "read",
        ));
        let on = TokenCache::new(10, Duration::from_secs(300));
        let recent = Recent::default();
        recent.remember("t", &v, &on);
        assert!(
            recent.get("t", v.generation, &on).is_none(),
            "never past exp"
        );
        let off = TokenCache::new(0, Duration::from_secs(300));
        let recent = Recent::default();
        recent.remember("t", &v, &off);
        assert!(
            recent.0.lock().unwrap().is_none(),
            "nothing remembered with the cache off"
        );
        // A token valid for an hour: a hit for the same token and generation only.
        *recent.0.lock().unwrap() = Some((
            "t".into(),
            v.clone(),
            Instant::now() + Duration::from_secs(3600),
        ));
        let busy = recent.0.lock().unwrap();
        assert!(
            recent.get("t", v.generation, &on).is_none(),
            "in use by another stream: it does not wait, the cache answers"
        );
        drop(busy);
        assert!(recent.get("t", v.generation, &on).is_some());
        assert_eq!(
            on.stats.cache_hits.load(Ordering::Relaxed),
            1,
            "counted as a hit"
        );
        assert!(
            recent.get("u", v.generation, &on).is_none(),
            "another token"
        );
        assert!(
            recent.get("t", v.generation + 1, &on).is_none(),
            "another generation"
        );
        assert!(
            recent.get("t", v.generation, &off).is_none(),
            "the cache is off"
        );
    }

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
