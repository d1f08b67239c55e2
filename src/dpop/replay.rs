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
//!
//! Every proof is kept equally long, so the order proofs came in is the order they expire: each
//! shard keeps its proofs' digests in a set and in a queue, and drops the expired ones from the
//! queue's front whenever it is written. The digest is SHA-256, so its first bytes serve as the
//! set's hash as they are (no hashing again).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// Shards, so that requests on other cores rarely wait for one lock.
const SHARDS: usize = 16;

pub struct ReplayStore {
    /// By the digest's first byte.
    shards: Box<[Mutex<Shard>]>,
    /// A key thumbprint -> how many of its proofs are held, by the thumbprint's shard.
    per_key: Box<[Mutex<KeyCounts>]>,
    total: AtomicUsize,
    bounds: Bounds,
}

/// How many proofs each key thumbprint has held.
type KeyCounts = HashMap<Arc<str>, usize>;

#[derive(Default)]
struct Shard {
    seen: HashSet<[u8; 32], BuildHasherDefault<DigestHasher>>,
    /// Oldest first: when each expires, its digest and its key.
    queue: VecDeque<(Instant, [u8; 32], Arc<str>)>,
}

impl ReplayStore {
    pub fn new(bounds: Bounds) -> ReplayStore {
        ReplayStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_key: (0..SHARDS).map(|_| Mutex::default()).collect(),
            total: AtomicUsize::new(0),
            bounds,
        }
    }

    /// Records a proof by the key `jkt`, once, in `bucket`'s allowance (the key's own at the
    /// guard; the client's at a token endpoint, for the client picks its keys): its digest, the
    /// key it is known by everywhere, whichever bucket it came through. `htu` is the
    /// normalized one.
    pub fn record(
        &self,
        bucket: &str,
        (jkt, jti, htm, htu): (&str, &str, &str, &str),
    ) -> Result<[u8; 32], Refused> {
        let digest = digest(&[jkt, jti, htm, htu]);
        let jkt = bucket;
        let now = Instant::now();
        match self.insert(digest, jkt, now) {
            // Proofs that expired in other shards may still count against the bounds: drop
            // them all, then try once more.
            Err(Refused::Full) => {
                for i in 0..SHARDS {
                    self.expire(&mut lock(&self.shards[i]), now);
                }
                self.insert(digest, jkt, now)?;
            }
            other => other?,
        }
        Ok(digest)
    }

    /// The one atomic step: under the digest's shard lock, a proof is looked up and inserted.
    fn insert(&self, digest: [u8; 32], jkt: &str, now: Instant) -> Result<(), Refused> {
        let mut shard = lock(&self.shards[usize::from(digest[0]) % SHARDS]);
        self.expire(&mut shard, now);
        if shard.seen.contains(&digest) {
            return Err(Refused::Replay);
        }
        let mut keys = lock(&self.per_key[key_shard(jkt)]);
        let (key, held) = match keys.get_key_value(jkt) {
            Some((k, n)) => (k.clone(), *n),
            None => (Arc::from(jkt), 0),
        };
        if held >= self.bounds.per_key || self.total.load(Ordering::Relaxed) >= self.bounds.total {
            return Err(Refused::Full);
        }
        keys.insert(key.clone(), held + 1);
        drop(keys);
        self.total.fetch_add(1, Ordering::Relaxed);
        shard.seen.insert(digest);
        shard.queue.push_back((now + self.bounds.keep, digest, key));
        Ok(())
    }

    /// Drops a shard's expired proofs (locks each key's shard after the proofs' one, as
    /// `insert` does).
    fn expire(&self, shard: &mut Shard, now: Instant) {
        while let Some((until, digest, key)) = shard.queue.front().cloned() {
            if until > now {
                break;
            }
            shard.queue.pop_front();
            shard.seen.remove(&digest);
            let mut keys = lock(&self.per_key[key_shard(&key)]);
            match keys.get_mut(&key) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    keys.remove(&key);
                }
            }
            self.total.fetch_sub(1, Ordering::Relaxed);
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

/// A lock whose holder cannot have left its map half-changed: a panic while holding it (a
/// bug) leaves the store usable rather than failing every later request.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn key_shard(jkt: &str) -> usize {
    // A thumbprint is base64url SHA-256: its bytes are spread already.
    usize::from(jkt.as_bytes().first().copied().unwrap_or(0)) % SHARDS
}

/// The set's hasher: a digest's first eight bytes (SHA-256 output: uniformly spread).
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Some(first) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*first);
        }
    }

    /// The length a `[u8; 32]` hashes first: the same for every digest, so not read.
    fn write_usize(&mut self, _: usize) {}
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
        assert!(s.record("k", ("k", "j1", "GET", "https://h/x")).is_ok());
        assert_eq!(
            s.record("k", ("k", "j1", "GET", "https://h/x")),
            Err(Refused::Replay)
        );
        // Another key, jti, method or URL is another proof.
        assert!(s.record("k2", ("k2", "j1", "GET", "https://h/x")).is_ok());
        assert!(s.record("k", ("k", "j2", "GET", "https://h/x")).is_ok());
        assert!(s.record("k", ("k", "j1", "POST", "https://h/x")).is_ok());
        assert!(s.record("k", ("k", "j1", "GET", "https://h/y")).is_ok());
        // Fields run together differently are not the same proof.
        assert!(s.record("kj", ("kj", "1", "GET", "https://h/x")).is_ok());
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
                            s.record("k", ("k", &jti, "GET", "https://h/x")).is_ok()
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
        assert!(s.record("flood", ("flood", "1", "GET", "u")).is_ok());
        assert!(s.record("flood", ("flood", "2", "GET", "u")).is_ok());
        assert_eq!(
            s.record("flood", ("flood", "3", "GET", "u")),
            Err(Refused::Full)
        );
        assert!(s.record("quiet", ("quiet", "1", "GET", "u")).is_ok());
        assert!(s.record("quiet", ("quiet", "2", "GET", "u")).is_ok());
        assert!(s.record("third", ("third", "1", "GET", "u")).is_ok());
        assert_eq!(
            s.record("fourth", ("fourth", "1", "GET", "u")),
            Err(Refused::Full),
            "the total"
        );
    }

    #[test]
    fn a_proof_is_forgotten_once_its_window_closed_and_frees_its_key() {
        let s = ReplayStore::new(Bounds {
            total: 10,
            per_key: 1,
            keep: Duration::from_millis(50),
        });
        assert!(s.record("k", ("k", "1", "GET", "u")).is_ok());
        assert_eq!(s.record("k", ("k", "2", "GET", "u")), Err(Refused::Full));
        std::thread::sleep(Duration::from_millis(60));
        // Expired, wherever its shard: the key and the store have room again.
        assert!(s.record("k", ("k", "2", "GET", "u")).is_ok());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_hasher_reads_the_digest_itself() {
        use std::hash::BuildHasher as _;
        let d = digest(&["a"]);
        let h = BuildHasherDefault::<DigestHasher>::default().hash_one(d);
        assert_eq!(h, u64::from_le_bytes(d[..8].try_into().unwrap()));
    }

    #[test]
    fn a_proof_is_one_proof_whichever_bucket_it_comes_through() {
        let s = store(100, 10);
        let proof = ("key", "j", "POST", "https://h/token");
        assert!(s.record("client:a", proof).is_ok());
        // The same proof with another client's credentials: still a replay.
        assert_eq!(s.record("client:b", proof), Err(Refused::Replay));
    }
}
