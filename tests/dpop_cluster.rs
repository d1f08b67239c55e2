//! DPoP replay across replicas, through a real Redis: a proof one replica accepted is refused
//! by another (at the guard and at the token endpoint); while Redis is away or slow, a replica
//! checks proofs on its own (`per_replica`, the default) or refuses them (`refuse`), and never
//! waits past `[dpop] cluster_timeout_ms`.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use support::dpop::*;
use support::replicas::*;
use support::*;

/// The replicas' config: the cluster store, and `dpop` settings.
fn config(up: std::net::SocketAddr, redis: &Redis, dpop: &[(&str, toml::Value)]) -> String {
    let base: toml::Table = toml::from_str(&replica_config(up, redis)).unwrap();
    let mut t = base;
    let mut section = toml::Table::new();
    for (k, v) in dpop {
        section.insert((*k).into(), v.clone());
    }
    t.insert("dpop".into(), section.into());
    toml::to_string(&t).unwrap()
}

/// A DPoP-bound token from `gw`, its proof made with `jti`.
async fn bound_token(gw: &Gateway, key: &Key, jti: &str) -> String {
    let proof = key.proof("POST", &format!("{ISSUER}/connect/token"), jti, 0);
    let (status, body) = token_request(gw, &proof).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn token_request(gw: &Gateway, proof: &str) -> (u16, Value) {
    let resp = (client_for(&gw.ca_pem, false).post(gw.url("/connect/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backoffice-app"),
            ("client_secret", SECRET),
        ])
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A guarded request with `token` and `proof`: its status and body.
async fn get(gw: &Gateway, token: &str, proof: &str) -> (StatusCode, String) {
    let resp = (gw.client.get(gw.url("/admin/echo")))
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn claims(gw: &Gateway, outcome: &str) -> u64 {
    (gw.state.shared.dpop.cluster.outcomes())
        .find(|(o, _)| *o == outcome)
        .map_or(0, |(_, n)| n)
}

const HTU: &str = "https://gateway.test/admin/echo";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_accepted_on_one_replica_is_refused_on_another() {
    let redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    // A generous timeout: this test is about the answer, not about a slow Redis.
    let toml = config(up, &redis, &[("cluster_timeout_ms", 1000.into())]);
    let a = spawn_gateway_toml(&toml).await;
    let b = replica_like(&a, &toml).await;
    for gw in [&a, &b] {
        await_connected(gw).await;
    }
    let key = Key::new();
    let token = bound_token(&a, &key, "token-1").await;

    // At the guard: the proof passes on A, and its copy is refused on B, which never saw it.
    let proof = key.proof_with("GET", HTU, "once", 0, Some(&token));
    assert_eq!(get(&a, &token, &proof).await.0, StatusCode::OK);
    let (status, body) = get(&b, &token, &proof).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("the proof was used before"), "{body}");
    // A fresh proof passes on B: the token itself is fine there.
    let fresh = key.proof_with("GET", HTU, "fresh", 0, Some(&token));
    assert_eq!(get(&b, &token, &fresh).await.0, StatusCode::OK);

    // At the token endpoint: a token request's proof, replayed on the other replica.
    let proof = key.proof("POST", &format!("{ISSUER}/connect/token"), "token-2", 0);
    assert_eq!(token_request(&b, &proof).await.0, 200);
    let (status, body) = token_request(&a, &proof).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );

    assert_eq!(claims(&a, "replayed") + claims(&b, "replayed"), 2);
    assert_eq!(claims(&a, "away") + claims(&b, "away"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_proofs_are_checked_per_replica_or_refused() {
    let mut redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let open = config(up, &redis, &[]);
    let strict = config(up, &redis, &[("replay_when_cluster_away", "refuse".into())]);
    let a = spawn_gateway_toml(&open).await;
    let b = replica_like(&a, &strict).await;
    for gw in [&a, &b] {
        await_connected(gw).await;
    }
    let key = Key::new();
    let token = bound_token(&a, &key, "token").await;

    redis.stop();
    for gw in [&a, &b] {
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while gw.state.shared.metrics.cluster_connected.get() != 0 {
            assert!(std::time::Instant::now() < end, "still connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // per_replica: accepted on this replica's own check, which still refuses a replay here.
    let proof = key.proof_with("GET", HTU, "away-1", 0, Some(&token));
    assert_eq!(get(&a, &token, &proof).await.0, StatusCode::OK);
    assert_eq!(get(&a, &token, &proof).await.0, StatusCode::UNAUTHORIZED);
    assert!(claims(&a, "away") >= 1);

    // refuse: 503, retry later, in the documented shape; the caller did nothing wrong.
    let proof = key.proof_with("GET", HTU, "away-2", 0, Some(&token));
    let resp = (b.client.get(b.url("/admin/echo")))
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    // Back: proofs are claimed across the cluster again.
    redis.start_again();
    for gw in [&a, &b] {
        await_connected(gw).await;
    }
    let proof = key.proof_with("GET", HTU, "back", 0, Some(&token));
    assert_eq!(get(&b, &token, &proof).await.0, StatusCode::OK);
    assert_eq!(get(&a, &token, &proof).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_is_not_waited_for_past_the_timeout() {
    let redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let toml = config(up, &redis, &[("cluster_timeout_ms", 50.into())]);
    let a = spawn_gateway_toml(&toml).await;
    await_connected(&a).await;
    let key = Key::new();
    let token = bound_token(&a, &key, "token").await;

    // Redis holds every write for 30 s: a SET NX waits that long.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "30000", "WRITE"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let proof = key.proof_with("GET", HTU, "slow", 0, Some(&token));
    let answered = tokio::time::timeout(Duration::from_secs(10), get(&a, &token, &proof)).await;
    let (status, body) = answered.expect("answered long before Redis resumes");
    assert_eq!(status, StatusCode::OK, "{body}");
    // (At least this one: on a loaded machine the token request's claim may have timed out too.)
    assert!(claims(&a, "slow") >= 1);
    let () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut conn)
        .await
        .unwrap();
}
