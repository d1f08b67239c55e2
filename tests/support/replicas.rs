//! Replicas sharing a cluster store: their config, one started like another, and the wait
//! for a replica's connection to the store.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{Gateway, Redis, config_with, spawn_gateway_in};

/// The test config with the cluster store and a state folder.
pub fn replica_config(up: std::net::SocketAddr, redis: &Redis) -> String {
    config_with(up, |t| {
        let mut cluster = toml::Table::new();
        cluster.insert("redis_url".into(), redis.url().into());
        t.insert("cluster".into(), cluster.into());
        let server = t["server"].as_table_mut().unwrap();
        server.insert("state_dir".into(), "state".into());
    })
}

/// A replica with the same signing key as `first` (as pods given one Secret are).
pub async fn replica_like(first: &Gateway, toml: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signing.pem"), first.signing_key_pem()).unwrap();
    spawn_gateway_in(dir, toml).await
}

/// Waits (10 s at most) until `gw` answers `path` with `token` as `status`.
pub async fn await_status(gw: &Gateway, path: &str, token: &str, status: StatusCode) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let got = gw.get_bearer(path, token).await.status();
        if got == status {
            return;
        }
        assert!(
            Instant::now() < end,
            "still {got}, not {status}, after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the replica's cluster store connection is up.
pub async fn await_connected(gw: &Gateway) {
    let end = Instant::now() + Duration::from_secs(10);
    while gw.state.shared.metrics.cluster_connected.get() != 1 {
        assert!(
            Instant::now() < end,
            "not connected to the cluster store after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
