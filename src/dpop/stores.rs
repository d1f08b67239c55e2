//! What a process keeps for DPoP between requests: the proofs it has accepted (`replay`), its
//! link to the cluster's (`cluster`), and its count of refused proofs by reason.

use std::sync::atomic::{AtomicU64, Ordering};

use super::cluster::ClusterReplay;
use super::replay::{Bounds, ReplayStore};

/// Every reason a proof is refused: the `reason` label of
/// `storegate_dpop_proofs_refused_total`.
pub const REASONS: [&str; 20] = [
    "missing",
    "count",
    "unconfigured",
    "too_large",
    "typ",
    "alg",
    "key",
    "private_key",
    "signature",
    "jti",
    "htm",
    "htu",
    "iat",
    "ath",
    "malformed",
    "replay",
    "full",
    "key_mismatch",
    "nonce",
    "cluster_away",
];

pub struct Stores {
    pub local: ReplayStore,
    pub cluster: ClusterReplay,
    refusals: [AtomicU64; REASONS.len()],
}

impl Stores {
    /// `bounds` as the process starts with them; `cluster`: whether `[cluster]` is configured.
    pub fn new(bounds: Bounds, cluster: bool) -> Stores {
        Stores {
            local: ReplayStore::new(bounds),
            cluster: ClusterReplay::new(cluster),
            refusals: Default::default(),
        }
    }

    /// Counts a refusal.
    pub(super) fn refused(&self, reason: &str) {
        let at = REASONS.iter().position(|r| *r == reason);
        // A reason missing from the list is a bug; it is counted as malformed.
        let at = at.unwrap_or(14);
        self.refusals[at].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far, by reason.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        (REASONS.iter().zip(&self.refusals)).map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
    }
}
