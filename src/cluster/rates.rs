//! Rate limits across replicas: every `ratelimit::SYNC_INTERVAL` a replica adds what it
//! admitted to a per-client, per-second counter in Redis, and drains its own buckets by what
//! the others added (see `ratelimit`).

use crate::state::State;

/// Per client: the second being counted, what this replica added to it, and what the others
/// had added at the last sync.
pub type Seconds = std::collections::HashMap<String, (u64, u64, u64)>;

/// Reports what this replica admitted since the last sync, and drains its buckets by what the
/// other replicas admitted in the same second.
pub async fn share_rates(
    conn: &mut redis::aio::MultiplexedConnection,
    state: &State,
    seen: &mut Seconds,
) -> anyhow::Result<()> {
    let reports = state.shared.rate_limits.take_unsynced();
    if reports.is_empty() {
        return Ok(());
    }
    let second = crate::token::now_unix();
    let mut pipe = redis::pipe();
    for (client, n) in &reports {
        let key = format!("storegate:rate:{client}:{second}");
        pipe.cmd("INCRBY").arg(&key).arg(*n);
        pipe.cmd("EXPIRE").arg(&key).arg(5).ignore();
    }
    let totals: Vec<u64> = pipe.query_async(conn).await?;
    let g = state.load();
    for ((client, n), total) in reports.iter().zip(totals) {
        let entry = seen.entry(client.clone()).or_insert((second, 0, 0));
        if entry.0 != second {
            *entry = (second, 0, 0);
        }
        entry.1 += n;
        let others = total.saturating_sub(entry.1);
        let new = others.saturating_sub(entry.2);
        entry.2 = others;
        let rate = g
            .config
            .clients
            .get(client)
            .and_then(|c| c.rate_limit_per_sec);
        if let Some(per_sec) = rate.filter(|_| new > 0) {
            state.shared.rate_limits.drain_remote(client, per_sec, new);
        }
    }
    Ok(())
}
