//! The replay store: each DPoP proof is accepted once (RFC 9449 §11.1). A proof is recorded
//! by an atomic insert-if-absent — never a lookup followed by an insert, which two requests
//! carrying the same proof could both pass — keyed on its normalized claims (the key's
//! thumbprint, `jti`, `htm`, `htu`), and kept until the window in which its `iat` is accepted
//! has closed, after which the proof is refused by its age anyway.
//!
//! Bounded in total and per key thumbprint, so that one client's flood of proofs cannot
//! crowd out another's: a key at its bound, or a store at its total, has its new proofs
//! refused (`Full`) until older ones expire. It fails closed; it never forgets a live proof to
//! make room, which would let that proof be replayed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use moka::notification::RemovalCause;
use moka::sync::Cache;

/// Why a proof was not recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// It was seen before.
    Replay,
    /// Its key (or the whole store) is at its bound.
    Full,
}

/// The store's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub total: usize,
    pub per_key: usize,
    /// How long a proof is kept: the `iat` window, both ways, and a second.
    pub keep: Duration,
}

pub struct ReplayStore {
    /// A proof's digest -> its key's live-proof count (decremented when it goes).
    seen: Cache<[u8; 32], Arc<AtomicUsize>>,
    /// A key thumbprint -> how many of its proofs are live.
    per_key: Cache<String, Arc<AtomicUsize>>,
    total: Arc<AtomicUsize>,
    bounds: Bounds,
}

impl ReplayStore {
    pub fn new(bounds: Bounds) -> ReplayStore {
        let total = Arc::new(AtomicUsize::new(0));
        let gone = total.clone();
        let seen = Cache::builder()
            // Above the total bound, so that moka never evicts a live proof for room.
            .max_capacity(2 * bounds.total as u64 + 1024)
            .time_to_live(bounds.keep)
            .eviction_listener(move |_, count: Arc<AtomicUsize>, cause| {
                if cause != RemovalCause::Replaced {
                    count.fetch_sub(1, Ordering::Relaxed);
                    gone.fetch_sub(1, Ordering::Relaxed);
                }
            })
            .build();
        let per_key = Cache::builder()
            .max_capacity(2 * bounds.total as u64 + 1024)
            // Outlives each of the key's proofs: idle for `keep` after the last one came.
            .time_to_idle(bounds.keep + Duration::from_secs(1))
            .build();
        ReplayStore {
            seen,
            per_key,
            total,
            bounds,
        }
    }

    /// Records a proof, once: its digest, the key it is known by. `htu` is the normalized one.
    pub fn record(&self, jkt: &str, jti: &str, htm: &str, htu: &str) -> Result<[u8; 32], Refused> {
        let digest = digest(&[jkt, jti, htm, htu]);
        if self.seen.contains_key(&digest) {
            return Err(Refused::Replay);
        }
        let count = self
            .per_key
            .get_with_by_ref(jkt, || Arc::new(AtomicUsize::new(0)));
        if count.load(Ordering::Relaxed) >= self.bounds.per_key
            || self.total.load(Ordering::Relaxed) >= self.bounds.total
        {
            return Err(Refused::Full);
        }
        // The one atomic step: of two requests with the same proof, one inserts.
        let entry = self.seen.entry(digest).or_insert_with(|| {
            count.fetch_add(1, Ordering::Relaxed);
            self.total.fetch_add(1, Ordering::Relaxed);
            count.clone()
        });
        if entry.is_fresh() {
            Ok(digest)
        } else {
            Err(Refused::Replay)
        }
    }

    /// Proofs held now (the fill metric).
    pub fn len(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// SHA-256 over the fields, each length-prefixed so that no two field lists share a digest.
fn digest(fields: &[&str]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for f in fields {
        ctx.update(&(f.len() as u64).to_be_bytes());
        ctx.update(f.as_bytes());
    }
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(total: usize, per_key: usize) -> ReplayStore {
        ReplayStore::new(Bounds {
            total,
            per_key,
            keep: Duration::from_secs(121),
        })
    }

    #[test]
    fn a_proof_is_accepted_once() {
        let s = store(100, 10);
        assert!(s.record("k", "j1", "GET", "https://h/x").is_ok());
        assert_eq!(
            s.record("k", "j1", "GET", "https://h/x"),
            Err(Refused::Replay)
        );
        // Another key, jti, method or URL is another proof.
        assert!(s.record("k2", "j1", "GET", "https://h/x").is_ok());
        assert!(s.record("k", "j2", "GET", "https://h/x").is_ok());
        assert!(s.record("k", "j1", "POST", "https://h/x").is_ok());
        assert!(s.record("k", "j1", "GET", "https://h/y").is_ok());
        // Fields run together differently are not the same proof.
        assert!(s.record("kj", "1", "GET", "https://h/x").is_ok());
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn racing_copies_of_one_proof_pass_once() {
        let s = Arc::new(store(10_000, 10_000));
        for round in 0..50 {
            let jti = format!("j{round}");
            let start = std::sync::Barrier::new(8);
            let passed = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            s.record("k", &jti, "GET", "https://h/x").is_ok()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap().then_some(()))
                    .count()
            });
            assert_eq!(passed, 1, "round {round}");
        }
    }

    #[test]
    fn a_key_at_its_bound_is_refused_and_others_are_not() {
        let s = store(5, 2);
        assert!(s.record("flood", "1", "GET", "u").is_ok());
        assert!(s.record("flood", "2", "GET", "u").is_ok());
        assert_eq!(s.record("flood", "3", "GET", "u"), Err(Refused::Full));
        assert!(s.record("quiet", "1", "GET", "u").is_ok());
        assert!(s.record("quiet", "2", "GET", "u").is_ok());
        assert!(s.record("third", "1", "GET", "u").is_ok());
        assert_eq!(
            s.record("fourth", "1", "GET", "u"),
            Err(Refused::Full),
            "the total"
        );
    }
}
