//! Each client assertion's `jti` is accepted once while the assertion lives: recorded by an
//! atomic insert-if-absent in a bounded store (the DPoP proofs' `ReplayStore`, a store of its
//! own with its own bounds), then, with `[cluster]`, claimed in Redis by one `SET NX PX`, so
//! that a copy sent to another replica is refused there too. When Redis cannot say,
//! `[dpop] replay_when_cluster_away` decides, as for proofs.

use std::time::Duration;

use super::{Checked, LEEWAY_SECS, Settings};
use crate::dpop::cluster::{Claim, ClusterReplay};
use crate::dpop::replay::{Bounds, Refused, ReplayStore};

/// The assertions' replay store.
pub struct AssertionReplay {
    local: ReplayStore,
}

/// Why an assertion was not accepted as new.
#[derive(Debug, PartialEq, Eq)]
pub enum Unused {
    /// Its `jti` was presented before (here or on another replica).
    Replayed,
    /// The client's allowance (or the store) is full.
    Full,
    /// Redis could not say, and `replay_when_cluster_away = "refuse"`.
    Unchecked,
}

impl AssertionReplay {
    /// Keeps each `jti` as long as any assertion may live, and the clock leeway both ways.
    pub fn new(settings: &Settings) -> AssertionReplay {
        AssertionReplay {
            local: ReplayStore::new(Bounds {
                total: settings.replay_capacity,
                per_key: settings.replay_per_client,
                keep: Duration::from_secs(settings.max_lifetime + 2 * LEEWAY_SECS + 1),
            }),
        }
    }

    /// Records `checked`'s `jti` for `client_id`, once here and across the cluster.
    pub async fn once(
        &self,
        client_id: &str,
        checked: &Checked,
        cluster: &ClusterReplay,
        (wait, refuse_when_away): (Duration, bool),
        now: u64,
    ) -> Result<(), Unused> {
        // Digest parts no DPoP proof has (its htu is never empty): a domain of their own.
        let parts = (client_id, checked.jti.as_str(), "client-assertion", "");
        let digest = self.local.record(client_id, parts).map_err(|r| match r {
            Refused::Replay => Unused::Replayed,
            Refused::Full => Unused::Full,
        })?;
        let keep = Duration::from_secs(checked.exp.saturating_sub(now) + LEEWAY_SECS + 1);
        match cluster.claim(&digest, keep, wait).await {
            None | Some(Claim::Claimed) => Ok(()),
            Some(Claim::Replayed) => Err(Unused::Replayed),
            Some(_) if refuse_when_away => Err(Unused::Unchecked),
            Some(_) => Ok(()),
        }
    }

    /// `jti`s held now.
    pub fn len(&self) -> usize {
        self.local.len()
    }

    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }
}
