//! Per-client rate limits: one token bucket per client id, living as long as the process so
//! that a configuration reload neither refills a bucket nor gives a client a second one.
//!
//! With a cluster store, the buckets hold for the client across replicas: each replica
//! reports what it admitted (`take_unsynced`) every `SYNC_INTERVAL`, learns what the others
//! admitted in the same second, and drains its own bucket by that (`drain_remote`). A request
//! never waits for this; between two syncs every replica may admit what its bucket holds, so
//! the cluster may admit up to (replicas - 1) x rate x interval more than the rate, plus one
//! second's burst per replica after an idle spell.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// How often a replica reconciles its buckets with the others' (cluster store only).
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// A token bucket: `per_sec` tokens a second, holding at most `per_sec`.
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Admitted here since the last report to the cluster store.
    unsynced: u64,
}

impl Bucket {
    fn try_take(&mut self, per_sec: f64, now: Instant) -> bool {
        let refilled = (self.tokens
            + now.saturating_duration_since(self.last).as_secs_f64() * per_sec)
            .min(per_sec);
        self.last = now;
        if refilled >= 1.0 {
            self.tokens = refilled - 1.0;
            self.unsynced += 1;
            true
        } else {
            self.tokens = refilled;
            false
        }
    }
}

/// The buckets of every rate-limited client, by client id.
#[derive(Default)]
pub struct RateLimits {
    buckets: RwLock<HashMap<String, Arc<Mutex<Bucket>>>>,
}

impl RateLimits {
    /// Takes one request's token from `client_id`'s bucket, refilled at `per_sec` (the rate
    /// of the configuration the request is served under). A client's first request finds a
    /// full bucket.
    pub fn try_take(&self, client_id: &str, per_sec: u32, now: Instant) -> bool {
        let per_sec = f64::from(per_sec);
        let found = self
            .buckets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned();
        let bucket = found.unwrap_or_else(|| {
            let mut all = self.buckets.write().unwrap_or_else(|p| p.into_inner());
            all.entry(client_id.to_owned())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Bucket {
                        tokens: per_sec,
                        last: now,
                        unsynced: 0,
                    }))
                })
                .clone()
        });
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        b.try_take(per_sec, now)
    }

    /// Every bucket's client and what it admitted since the last call (cluster store only).
    pub fn take_unsynced(&self) -> Vec<(String, u64)> {
        let all = self.buckets.read().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .map(|(id, b)| {
                let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
                (id.clone(), std::mem::take(&mut b.unsynced))
            })
            .collect()
    }

    /// Takes from `client_id`'s bucket what other replicas admitted (it may go below zero by
    /// at most one second's worth, so that a burst elsewhere is paid for here too).
    pub fn drain_remote(&self, client_id: &str, per_sec: u32, admitted_elsewhere: u64) {
        let all = self.buckets.read().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = all.get(client_id) {
            let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
            let floor = -f64::from(per_sec);
            b.tokens = (b.tokens - admitted_elsewhere as f64).max(floor);
        }
    }

    /// Drops the buckets of clients no longer rate-limited (or no longer registered).
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        let mut all = self.buckets.write().unwrap_or_else(|p| p.into_inner());
        all.retain(|id, _| keep(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_rate_limit_allows_a_second_of_burst_then_refills() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        assert!((0..3).all(|_| limits.try_take("a", 3, t0)));
        assert!(!limits.try_take("a", 3, t0));
        assert!(!limits.try_take("a", 3, t0 + Duration::from_millis(200)));
        assert!(limits.try_take("a", 3, t0 + Duration::from_millis(400)));
        assert!(!limits.try_take("a", 3, t0 + Duration::from_millis(400)));
        assert!(
            limits.try_take("b", 3, t0),
            "another client has its own bucket"
        );
    }

    #[test]
    fn a_bucket_outlives_a_change_of_rate_and_goes_with_its_client() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        assert!(limits.try_take("a", 1, t0));
        assert!(
            !limits.try_take("a", 5, t0),
            "a new rate does not refill the bucket"
        );
        limits.retain(|id| id != "a");
        assert!(
            limits.try_take("a", 1, t0),
            "a removed client's bucket is gone"
        );
    }
}
