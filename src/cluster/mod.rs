//! The cluster store: replicas share their revocations through Redis.
//!
//! Each revocation made on a replica (RFC 7009, the operator's, a config's
//! `revoke_issued_before`) is written to Redis as its own key, expiring when the last token it
//! can refuse would have (`SET … EXAT`), and announced on a pub/sub channel; every replica
//! applies what it hears to its own revocation set (which also persists it locally).
//!
//! On every (re)connection a replica subscribes first, then writes every revocation it holds
//! (those made while Redis was away included: they were applied locally at once and kept in
//! `state_dir`), then reads every revocation Redis holds: subscribing first leaves no gap
//! between the full read and the announcements, and applying is idempotent. Requests never
//! wait on Redis: the guard reads only the local set. While Redis is away the replica serves
//! with what it knows, logs the outage once and its end, and retries with backoff.
//!
//! The token endpoint's failure throttle counts every replica's failures: each failed (and,
//! for a source that had failed, successful) client authentication is announced on
//! `ATTEMPTS` and counted by every replica as its own.
//!
//! DPoP proofs are replay-checked across replicas (`dpop::cluster`): the one check a request
//! waits on Redis for, bounded by `[dpop] cluster_timeout_ms`.
//!
//! Rate limits hold across replicas too (`rates`); while Redis is away, limits are per
//! replica. Signing keys remembered after a rotation are shared as well (`keys`), so that a
//! replica started since verifies the tokens the old key signed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

mod keys;
mod rates;

pub use keys::KEY_PREFIX as SIGNING_KEY_PREFIX;

use crate::config::ClusterConfig;
use crate::revocation::Revocation;
use crate::state::State;
use crate::throttle::Attempt;

/// The channel revocations are announced on.
pub const CHANNEL: &str = "storegate:revocations";
/// The channel client authentications (for the failure throttle) are announced on.
pub const ATTEMPTS: &str = "storegate:attempts";
/// The prefix of the revocation keys.
pub const KEY_PREFIX: &str = "storegate:revocation:";
/// How often the command connection is checked while nothing else happens.
const PING_EVERY: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The Redis key of a revocation: one per jti, one per client and instant (so that a later
/// instant never overwrites a later one written elsewhere, and the latest applies).
pub fn key_of(r: &Revocation) -> String {
    match r {
        Revocation::Token { jti, .. } => format!("{KEY_PREFIX}jti:{jti}"),
        Revocation::Client {
            client,
            issued_before,
            ..
        } => format!("{KEY_PREFIX}client:{client}:{issued_before}"),
    }
}

/// Starts following the cluster store, if the config names one. Call once, inside the runtime.
pub fn spawn(state: &Arc<State>) -> anyhow::Result<()> {
    let Some(cfg) = state.shared.fixed.cluster.clone() else {
        return Ok(());
    };
    let client = client(&cfg)?;
    let outboxes = Outboxes {
        revocations: state.shared.revocations.follow(),
        attempts: state.shared.throttle.follow(),
    };
    tokio::spawn(follow(client, state.clone(), outboxes));
    Ok(())
}

fn client(cfg: &ClusterConfig) -> anyhow::Result<redis::Client> {
    let info = redis::IntoConnectionInfo::into_connection_info(cfg.redis_url.as_str())
        .map_err(|e| anyhow::anyhow!("config key `cluster.redis_url`: {e}"))?;
    let info = match &cfg.password {
        Some(p) => {
            let settings = info.redis_settings().clone().set_password(p.clone());
            info.set_redis_settings(settings)
        }
        None => info,
    };
    if !matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
        return Ok(redis::Client::open(info)?);
    }
    // TLS with the configured CA (else the system's roots), on rustls with aws-lc-rs.
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: cfg.ca_pem.clone(),
    };
    Ok(redis::Client::build_with_tls(info, certificates)?)
}

/// What this replica has to share.
struct Outboxes {
    revocations: UnboundedReceiver<Revocation>,
    attempts: tokio::sync::mpsc::Receiver<Attempt>,
}

/// Follows the store for as long as the process runs, reconnecting with backoff.
async fn follow(client: redis::Client, state: Arc<State>, mut outbox: Outboxes) {
    let metrics = &state.shared.metrics;
    let away = AtomicBool::new(false);
    let mut backoff = BACKOFF_MIN;
    loop {
        let reached = AtomicBool::new(false);
        let connected = || {
            reached.store(true, Ordering::Relaxed);
            metrics.cluster_connected.set(1);
            if away.swap(false, Ordering::Relaxed) {
                tracing::info!("the cluster store is reachable again; revocations are shared");
            }
        };
        let ended = session(&client, &mut outbox, &state, connected).await;
        state.shared.dpop.cluster.set_connection(None);
        metrics.cluster_connected.set(0);
        // A connection that was up starts the next retries from the shortest wait.
        if reached.load(Ordering::Relaxed) {
            backoff = BACKOFF_MIN;
        }
        if let Err(e) = ended {
            if !away.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    error = %e,
                    "the cluster store is unreachable; serving with the revocations known here, sharing new ones when it is back; rate limits count per replica meanwhile"
                );
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

/// One connection's life: subscribe, share everything held here, read everything held there,
/// then apply announcements and share new revocations until a connection fails.
async fn session(
    client: &redis::Client,
    outbox: &mut Outboxes,
    state: &Arc<State>,
    connected: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub
        .subscribe(&[CHANNEL, ATTEMPTS, keys::CHANNEL])
        .await?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    // What was made while away is in the local set already: share the whole set. Attempts
    // made while away stay counted here only.
    while outbox.revocations.try_recv().is_ok() {}
    while outbox.attempts.try_recv().is_ok() {}
    let now = crate::token::now_unix();
    write(&mut conn, &state.shared.revocations.entries(), now).await?;
    let held = read_all(&mut conn).await?;
    apply(state, held).await;
    keys::share(&mut conn, state).await?;
    let mut shared_keys_at = state.load().number;
    keys::learn(state, scan_values(&mut conn, keys::KEY_PREFIX).await?).await;
    // What was admitted while away was limited locally: it is not reported afterwards.
    state.shared.rate_limits.take_unsynced();
    let mut rates = rates::Seconds::default();
    // DPoP proofs are claimed on the same connection, each by one `SET NX` of its own.
    state.shared.dpop.cluster.set_connection(Some(conn.clone()));
    connected();
    let mut messages = pubsub.on_message();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut sync = tokio::time::interval(crate::ratelimit::SYNC_INTERVAL);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    anyhow::bail!("the subscription ended");
                };
                let payload = message.get_payload_bytes();
                if message.get_channel_name() == keys::CHANNEL {
                    let record = String::from_utf8_lossy(payload).into_owned();
                    keys::learn(state, vec![record]).await;
                    continue;
                }
                if message.get_channel_name() == ATTEMPTS {
                    match serde_json::from_slice::<Attempt>(payload) {
                        Ok(a) => state.shared.throttle.apply_shared(&a, state.load().config.throttle),
                        Err(e) => tracing::warn!(error = %e, "an unreadable attempt announcement was ignored"),
                    }
                    continue;
                }
                match serde_json::from_slice::<Revocation>(payload) {
                    Ok(r) => apply(state, vec![r]).await,
                    Err(e) => tracing::warn!(error = %e, "an unreadable revocation announcement was ignored"),
                }
            }
            made = outbox.revocations.recv() => {
                let Some(r) = made else { return Ok(()) };
                write(&mut conn, &[r], crate::token::now_unix()).await?;
            }
            attempt = outbox.attempts.recv() => {
                let Some(a) = attempt else { return Ok(()) };
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(ATTEMPTS)
                    .arg(serde_json::to_string(&a)?)
                    .query_async(&mut conn)
                    .await?;
            }
            _ = ping.tick() => {
                let _: String = redis::cmd("PING").query_async(&mut conn).await?;
                // A new generation may sign with a new key and remember the old one.
                let generation = state.load().number;
                if generation != shared_keys_at {
                    shared_keys_at = generation;
                    keys::share(&mut conn, state).await?;
                }
            }
            _ = sync.tick() => rates::share_rates(&mut conn, state, &mut rates).await?,
        }
    }
}

/// Writes revocations (each its own key, expiring with it) and announces them, atomically.
async fn write(
    conn: &mut redis::aio::MultiplexedConnection,
    entries: &[Revocation],
    now: u64,
) -> anyhow::Result<()> {
    let live: Vec<&Revocation> = entries.iter().filter(|r| r.until() >= now).collect();
    if live.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for r in live {
        let json = serde_json::to_string(r)?;
        pipe.cmd("SET")
            .arg(key_of(r))
            .arg(&json)
            .arg("EXAT")
            .arg(r.until().max(now + 1))
            .ignore();
        pipe.cmd("PUBLISH").arg(CHANNEL).arg(&json).ignore();
    }
    let () = pipe.query_async(conn).await?;
    Ok(())
}

/// Every revocation the store holds.
async fn read_all(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<Vec<Revocation>> {
    let values = scan_values(conn, KEY_PREFIX).await?;
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match serde_json::from_str(&v) {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::warn!(error = %e, "an unreadable revocation in the cluster store was ignored")
            }
        }
    }
    Ok(out)
}

/// The values of every key under `prefix`.
async fn scan_values(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query_async(conn).await?;
        // A key that expired between SCAN and MGET is simply gone.
        out.extend(values.into_iter().flatten());
    }
    Ok(out)
}

/// Applies revocations heard from the store to the local set, which also writes them to
/// `state_dir` and syncs the file: on the blocking pool, so that no request waits on the disk.
async fn apply(state: &State, entries: Vec<Revocation>) {
    let revocations = state.shared.revocations.clone();
    let now = crate::token::now_unix();
    let applied =
        tokio::task::spawn_blocking(move || revocations.apply_shared(&entries, now)).await;
    match applied {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => {
            state.shared.metrics.cluster_applied.inc_by(n as u64);
            tracing::debug!(applied = n, "revocations from the cluster store");
        }
        Ok(Err(e)) => tracing::error!(
            error = %format!("{e:#}"),
            "revocations from the cluster store are in force but could not be persisted here"
        ),
        Err(e) => tracing::error!(error = %e, "applying revocations from the cluster store failed"),
    }
}
