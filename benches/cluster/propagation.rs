//! Revocation propagation through the cluster store: two replicas (in this process, each with
//! its own state and its own Redis connections) follow one Redis; a revocation is added on A
//! and the time until B's revocation set refuses the token is measured, N times.
//!
//! `cargo run --release --example cluster_propagation -- REDIS_URL [N]`, or
//! `benches/cluster/propagation.sh [N]`, which starts a redis-server on a free loopback port.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storegate::clients::Grant;
use storegate::config::Config;
use storegate::revocation::Revocation;
use storegate::state::State;
use storegate::token::verified::Signed;

fn replica(dir: &std::path::Path, name: &str, redis: &str) -> Arc<State> {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
plaintext = true
state_dir = "{name}-state"
[signing]
key = "signing.pem"
generate_dev_files = true
[[clients]]
id = "c"
secret_hash = "sha256:6dbf164e36642cb1c67bd9781a2072f5df4c793dc2602ac1e7df56c7d18bbe80"
apis = ["store"]
[cluster]
redis_url = "{redis}"
"#
    );
    let config = Config::from_toml_str(&toml, dir).expect("config");
    Arc::new(State::new(config).expect("state"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let redis = args
        .next()
        .expect("usage: cluster_propagation REDIS_URL [N]");
    let n: usize = args.next().map_or(1000, |s| s.parse().expect("N"));
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        replica(dir.path(), "a", &redis),
        replica(dir.path(), "b", &redis),
    );
    storegate::cluster::spawn(&a).unwrap();
    storegate::cluster::spawn(&b).unwrap();
    for s in [&a, &b] {
        while s.shared.metrics.cluster_connected.get() != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let now = storegate::token::now_unix();
    let mut micros = Vec::with_capacity(n);
    for i in 0..n {
        let jti = format!("propagation-{i}");
        let token = Signed::new(
            "k".into(),
            "c",
            "",
            Some(&jti),
            ["store"],
            (Grant::ClientCredentials, now + 3600, Some(now)),
        )
        .unwrap();
        let entry = Revocation::Token {
            jti: jti.clone(),
            client: "c".into(),
            until: now + 3600,
        };
        let start = Instant::now();
        // As the revocation endpoint does: A's own file is synced on the blocking pool, and
        // the revocation is shared as soon as it is in A's set.
        let on_a = a.shared.revocations.clone();
        let written = tokio::task::spawn_blocking(move || on_a.add(&[entry], now));
        while !b.shared.revocations.is_revoked(&token) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "not propagated in 10 s"
            );
            tokio::task::yield_now().await;
        }
        micros.push(start.elapsed().as_micros() as u64);
        written.await.unwrap().unwrap();
    }
    micros.sort_unstable();
    let q = |p: f64| micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)];
    println!(
        "{n} revocations, A -> Redis -> B: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        q(0.50),
        q(0.90),
        q(0.99),
        micros[micros.len() - 1]
    );
}
