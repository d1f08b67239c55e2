//! The cluster-wide replay check (`[cluster]`): a proof accepted by this replica's own store is
//! claimed in Redis too, by one atomic `SET key 1 NX PX <keep>` — the key is the proof's
//! digest — so that a copy sent to another replica is refused there. It is the one place a
//! request waits on Redis, and never for longer than `[dpop] cluster_timeout_ms`: a claim that
//! cannot be made (Redis away, slow or failing) is counted, logged once per outage, and left
//! to `[dpop] replay_when_cluster_away` (`dpop::check_once`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use redis::aio::MultiplexedConnection;

/// The prefix of the proofs' keys in Redis.
pub const KEY_PREFIX: &str = "storegate:dpop:";

/// What became of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This replica is the first to present the proof.
    Claimed,
    /// Another replica accepted it before.
    Replayed,
    /// No connection to Redis.
    Away,
    /// No answer within the timeout.
    Slow,
    /// Redis answered with an error.
    Failed,
}

impl Claim {
    const ALL: [Claim; 5] = [
        Claim::Claimed,
        Claim::Replayed,
        Claim::Away,
        Claim::Slow,
        Claim::Failed,
    ];

    /// The `outcome` label of `storegate_dpop_cluster_claims_total`.
    pub fn label(self) -> &'static str {
        match self {
            Claim::Claimed => "claimed",
            Claim::Replayed => "replayed",
            Claim::Away => "away",
            Claim::Slow => "slow",
            Claim::Failed => "failed",
        }
    }

    /// Whether Redis said whether the proof was seen.
    pub fn answered(self) -> bool {
        matches!(self, Claim::Claimed | Claim::Replayed)
    }
}

/// This replica's link to the cluster's replay keys.
pub struct ClusterReplay {
    /// Whether `[cluster]` is configured (else nothing is claimed).
    configured: bool,
    /// The cluster store's command connection while it is up (set by `cluster`).
    conn: ArcSwapOption<MultiplexedConnection>,
    /// Set while claims cannot be made, so that an outage is logged once.
    degraded: AtomicBool,
    outcomes: [AtomicU64; 5],
}

impl ClusterReplay {
    pub fn new(configured: bool) -> ClusterReplay {
        ClusterReplay {
            configured,
            conn: ArcSwapOption::empty(),
            degraded: AtomicBool::new(false),
            outcomes: Default::default(),
        }
    }

    /// The connection claims are made on, from now on (`None`: Redis is away).
    pub fn set_connection(&self, conn: Option<MultiplexedConnection>) {
        self.conn.store(conn.map(Arc::new));
    }

    /// Claims the proof whose digest is `digest` for `keep`, waiting at most `wait`. `None`
    /// when there is no cluster.
    pub async fn claim(&self, digest: &[u8; 32], keep: Duration, wait: Duration) -> Option<Claim> {
        if !self.configured {
            return None;
        }
        let claim = match self.conn.load_full() {
            None => Claim::Away,
            Some(conn) => set_nx(&mut (*conn).clone(), digest, keep, wait).await,
        };
        self.outcomes[claim as usize].fetch_add(1, Ordering::Relaxed);
        if claim.answered() {
            if self.degraded.swap(false, Ordering::Relaxed) {
                tracing::info!("DPoP proofs are replay-checked across the cluster again");
            }
        } else if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                outcome = claim.label(),
                "a DPoP proof could not be replay-checked across the cluster; until the cluster store answers, [dpop] replay_when_cluster_away applies"
            );
        }
        Some(claim)
    }

    /// Claims made so far, by outcome label.
    pub fn outcomes(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Claim::ALL.iter().map(|c| {
            (
                c.label(),
                self.outcomes[*c as usize].load(Ordering::Relaxed),
            )
        })
    }
}

async fn set_nx(
    conn: &mut MultiplexedConnection,
    digest: &[u8; 32],
    keep: Duration,
    wait: Duration,
) -> Claim {
    let key = format!("{KEY_PREFIX}{}", B64.encode(digest));
    let mut set = redis::cmd("SET");
    set.arg(key)
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
    match tokio::time::timeout(wait, set.query_async::<Option<String>>(conn)).await {
        Ok(Ok(Some(_))) => Claim::Claimed,
        Ok(Ok(None)) => Claim::Replayed,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "claiming a DPoP proof in the cluster store failed");
            Claim::Failed
        }
        Err(_) => Claim::Slow,
    }
}
