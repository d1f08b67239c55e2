//! What a process keeps for DPoP between requests: the proofs it has accepted (`replay`), its
//! link to the cluster's (`cluster`), and its count of refused proofs by reason.

use std::sync::atomic::{AtomicU64, Ordering};

use super::cluster::ClusterReplay;
use super::replay::{Bounds, ReplayStore};

/// Every reason a proof is refused: the `reason` label of
/// `storegate_dpop_proofs_refused_total`.
pub const REASONS: [&str; 21] = [
    "missing",
    "count",
    "unconfigured",
    "too_large",
    "typ",
    "crit",
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
        // A reason missing from the list is a bug (a unit test looks for it): counted as
        // malformed.
        let at = at.unwrap_or_else(|| REASONS.iter().position(|r| *r == "malformed").unwrap_or(0));
        self.refusals[at].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far, by reason.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        (REASONS.iter().zip(&self.refusals)).map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::REASONS;

    /// Every reason `proof::check` and `dpop` give is a label of its own, and described.
    #[test]
    fn every_reason_is_listed() {
        for source in [include_str!("proof.rs"), include_str!("mod.rs")] {
            let given = source
                .split("Err(\"")
                .chain(source.split("Failed::Proof(\""))
                .chain(source.split("refused(\""))
                .skip(1)
                .filter_map(|rest| rest.split('"').next());
            for reason in given {
                if reason.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    assert!(REASONS.contains(&reason), "{reason} is not in REASONS");
                }
            }
        }
    }
}
