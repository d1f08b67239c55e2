//! Several replicas sharing revocations through a real Redis: a token of one replica works on
//! every other, and a revocation made on one reaches them all, also after Redis was away and
//! for a replica started later; limits count across replicas; a replica started after a key
//! rotation learns the old key from the others.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::replicas::*;
use support::*;

/// Three replicas of `toml` with one signing key, each connected to the cluster store.
async fn three_replicas(toml: &str) -> (Gateway, Gateway, Gateway) {
    let a = spawn_gateway_toml(toml).await;
    let (b, c) = (replica_like(&a, toml).await, replica_like(&a, toml).await);
    for gw in [&a, &b, &c] {
        await_connected(gw).await;
    }
    (a, b, c)
}

async fn revoke(gw: &Gateway, token: &str) {
    let resp = gw
        .client
        .post(gw.url("/connect/revocation"))
        .basic_auth("backoffice-app", Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_work_everywhere_and_a_revocation_reaches_every_replica() {
    let redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let toml = replica_config(up, &redis);
    let (a, b, c) = three_replicas(&toml).await;
    let token = a.token("backoffice-app", SECRET).await;
    let kept = b.token("backoffice-app", SECRET).await;
    for gw in [&a, &b, &c] {
        assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
        assert_eq!(gw.get_bearer("/admin/echo", &kept).await.status(), 200);
    }
    revoke(&a, &token).await;
    assert_invalid_token(&a.get_bearer("/admin/echo", &token).await);
    for gw in [&b, &c] {
        await_status(gw, "/admin/echo", &token, StatusCode::UNAUTHORIZED).await;
        assert_eq!(gw.get_bearer("/admin/echo", &kept).await.status(), 200);
    }
    let applied = b.state.shared.metrics.cluster_applied.get();
    assert!(applied >= 1, "{applied}");

    // A replica started later reads what was revoked before it started.
    let d = replica_like(&a, &toml).await;
    await_connected(&d).await;
    assert_invalid_token(&d.get_bearer("/admin/echo", &token).await);
    assert_eq!(d.get_bearer("/admin/echo", &kept).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_made_while_redis_is_away_are_shared_when_it_returns() {
    let mut redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let toml = replica_config(up, &redis);
    let (a, b, c) = three_replicas(&toml).await;
    let token = a.token("backoffice-app", SECRET).await;
    let second = a.token("backoffice-app", SECRET).await;
    assert_eq!(b.get_bearer("/admin/echo", &token).await.status(), 200);

    redis.stop();
    // Serving goes on without Redis; a revocation is in force here at once.
    revoke(&a, &token).await;
    assert_invalid_token(&a.get_bearer("/admin/echo", &token).await);
    assert_eq!(b.get_bearer("/admin/echo", &second).await.status(), 200);

    // Restarted while Redis is still away, the replica keeps it (state_dir), and revokes one
    // more, which only its own file holds.
    let dir = a.stop_keeping_dir().await;
    let a = spawn_gateway_in(dir, &toml).await;
    assert_invalid_token(&a.get_bearer("/admin/echo", &token).await);
    revoke(&a, &second).await;

    // Redis comes back empty: the replicas reconnect, A shares what it holds, B and C apply it.
    redis.start_again();
    for gw in [&b, &c] {
        await_status(gw, "/admin/echo", &token, StatusCode::UNAUTHORIZED).await;
        await_status(gw, "/admin/echo", &second, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_for_the_client_across_replicas() {
    const LIMIT: u64 = 10;
    const OFFERED_PER_SEC: u64 = 30;
    const SECONDS: u64 = 4;
    let redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let toml = config_with(up, |t| {
        let mut cluster = toml::Table::new();
        cluster.insert("redis_url".into(), redis.url().into());
        t.insert("cluster".into(), cluster.into());
        let b = clients_of(t)[0].as_table_mut().unwrap();
        b.insert("rate_limit_per_sec".into(), (LIMIT as i64).into());
    });
    let (a, b, c) = three_replicas(&toml).await;
    let token = a.token("backoffice-app", SECRET).await;
    // The client at 3x its limit, spread evenly: each replica alone sees exactly the limit,
    // so only the shared count can refuse anything.
    let replicas = [&a, &b, &c];
    let mut pace = tokio::time::interval(Duration::from_millis(1000 / OFFERED_PER_SEC));
    let (mut admitted, mut refused) = (0u64, 0u64);
    for i in 0..OFFERED_PER_SEC * SECONDS {
        pace.tick().await;
        match replicas[i as usize % 3]
            .get_bearer("/admin/echo", &token)
            .await
            .status()
        {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}"),
        }
    }
    let offered = OFFERED_PER_SEC * SECONDS;
    eprintln!(
        "rate limit {LIMIT}/s over 3 replicas, {offered} requests in {SECONDS} s: {admitted} admitted, {refused} refused"
    );
    // One bucket would admit a second's burst and then the rate: LIMIT * (SECONDS + 1) = 50.
    // Per replica, nothing would be refused (120). The stated error allows each replica a
    // sync interval's worth and one burst.
    let ideal = LIMIT * (SECONDS + 1);
    assert!(admitted >= ideal * 7 / 10, "{admitted} admitted: too few");
    assert!(
        admitted <= ideal * 3 / 2,
        "{admitted} admitted of {offered}: not held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_count_on_every_replica() {
    let redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let toml = replica_config(up, &redis);
    let (a, b, c) = three_replicas(&toml).await;
    let attempt = |gw: &Gateway, secret: &'static str| {
        gw.client
            .post(gw.url("/connect/token"))
            .basic_auth("backoffice-app", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    // A guess spread over the replicas: five failures in all (the per-source limit), none of
    // them reaching it on one replica.
    for gw in [&a, &b, &a, &b, &c] {
        assert_eq!(
            attempt(gw, "wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limits = c.generation().config.throttle;
    let source = std::net::IpAddr::from([127, 0, 0, 1]);
    let end = Instant::now() + Duration::from_secs(10);
    while c
        .state
        .shared
        .throttle
        .check("backoffice-app", source, limits)
        .is_ok()
    {
        assert!(
            Instant::now() < end,
            "the other replicas' failures did not arrive in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Now even the right secret is refused on C, as it would be on one gateway.
    let throttled = attempt(&c, SECRET).await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// The kids of the JWKS, sorted (replicas may list them in another order).
async fn sorted_kids(gw: &Gateway) -> Vec<String> {
    let mut kids = gw.jwks_kids().await;
    kids.sort();
    kids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_after_a_key_rotation_learns_the_old_key_from_the_others() {
    let redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let toml = replica_config(up, &redis);
    let a = spawn_gateway_toml(&toml).await;
    await_connected(&a).await;
    let old_kid = a.generation().keys.kid.clone();
    let old_token = a.token("backoffice-app", SECRET).await;

    // The Secret changes: A signs with the new key and remembers the old one.
    let new_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem();
    let stored = a.state.shared.reloads.succeeded.load(Ordering::SeqCst);
    a.replace_file("signing.pem", &new_key);
    a.await_reloads(|s, _| s > stored).await;
    let new_kid = a.generation().keys.kid.clone();
    assert_ne!(new_kid, old_kid);

    // A pod of the rollout starts with the new Secret and an empty state folder: it learns
    // the old key from the store, and publishes what A publishes.
    let fresh = || async {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("signing.pem"), &new_key).unwrap();
        let gw = spawn_gateway_in(dir, &toml).await;
        await_connected(&gw).await;
        gw
    };
    let c = fresh().await;
    await_status(&c, "/admin/echo", &old_token, StatusCode::OK).await;
    assert_eq!(sorted_kids(&c).await, sorted_kids(&a).await);
    assert!(c.jwks_kids().await.contains(&old_kid));

    // Whoever can write to Redis cannot make a replica trust a key: a record whose key was
    // swapped (the signature no longer matches) and one signed by another key are ignored.
    let redis_client = redis::Client::open(redis.url()).unwrap();
    let mut conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let prefix = storegate::cluster::SIGNING_KEY_PREFIX;
    let genuine: String = redis::cmd("GET")
        .arg(format!("{prefix}{old_kid}:{new_kid}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let intruder = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let jwk = storegate::token::keys::KeySet::from_pkcs8(
        storegate::token::keys::SigningAlgorithm::EdDSA,
        &intruder.serialize_der(),
        Some("intruder".into()),
        &[],
    )
    .unwrap()
    .current;
    let body = serde_json::json!({"jwk": jwk, "exp": 4_000_000_000u64});
    let (head, rest) = genuine.split_once('.').unwrap();
    let signature = rest.rsplit_once('.').unwrap().1;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("intruder".into());
    header.typ = Some("storegate-key+jwt".into());
    let pem = intruder.serialize_pem();
    let key = jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    for (name, record) in [
        ("swapped", format!("{head}.{}.{signature}", b64(&body))),
        (
            "self-signed",
            jsonwebtoken::encode(&header, &body, &key).unwrap(),
        ),
    ] {
        let () = redis::cmd("SET")
            .arg(format!("{prefix}intruder:{name}"))
            .arg(record)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let d = fresh().await;
    // D read every record in one pass: once the old key is trusted, the rest were judged.
    await_status(&d, "/admin/echo", &old_token, StatusCode::OK).await;
    let kids = d.jwks_kids().await;
    assert!(!kids.contains(&"intruder".to_owned()), "{kids:?}");
    assert_eq!(sorted_kids(&d).await, sorted_kids(&a).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_reach_redis_over_tls_with_a_password() {
    let pki = storegate::tls::DevPki::generate(&["localhost", "127.0.0.1"]).unwrap();
    let password = "redis-secret-1b9d";
    let redis = Redis::start_tls(&pki.ca_pem, &pki.cert_pem, &pki.key_pem, password);
    let (up, _) = spawn_upstream().await;
    let toml = config_with(up, |t| {
        let mut cluster = toml::Table::new();
        cluster.insert("redis_url".into(), redis.url().into());
        cluster.insert("ca_file".into(), "redis-ca.pem".into());
        cluster.insert("password_file".into(), "redis.password".into());
        t.insert("cluster".into(), cluster.into());
    });
    // Pods given the same Secret: the signing key, Redis's CA and its password.
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("redis-ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(
        secret.path().join("redis.password"),
        format!("{password}\n"),
    )
    .unwrap();
    let pod = |signing: Option<Vec<u8>>| {
        let dir = tempfile::tempdir().unwrap();
        for f in ["redis-ca.pem", "redis.password"] {
            std::fs::copy(secret.path().join(f), dir.path().join(f)).unwrap();
        }
        if let Some(pem) = signing {
            std::fs::write(dir.path().join("signing.pem"), pem).unwrap();
        }
        spawn_gateway_in(dir, &toml)
    };
    let a = pod(None).await;
    let b = pod(Some(a.signing_key_pem())).await;
    await_connected(&a).await;
    await_connected(&b).await;
    let token = a.token("backoffice-app", SECRET).await;
    assert_eq!(b.get_bearer("/admin/echo", &token).await.status(), 200);
    revoke(&a, &token).await;
    await_status(&b, "/admin/echo", &token, StatusCode::UNAUTHORIZED).await;
    let config = format!("{:?}", a.generation().config);
    assert!(!config.contains(password), "no password in a config dump");
}

#[test]
fn a_cluster_store_url_that_would_weaken_tls_or_leak_a_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    let up: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    for (cluster, key, says) in [
        (
            r#"redis_url = "rediss://127.0.0.1:6380/#insecure""#,
            "cluster.redis_url",
            "always verifies",
        ),
        (
            r#"redis_url = "redis://:hunter2@127.0.0.1:6379""#,
            "cluster.redis_url",
            "carries credentials",
        ),
        (
            r#"redis_url = "http://127.0.0.1:6379""#,
            "cluster.redis_url",
            "rediss://",
        ),
        (
            "redis_url = \"redis://127.0.0.1:6379\"\nca_file = \"ca.pem\"",
            "cluster.ca_file",
            "rediss:// URL only",
        ),
        (
            "redis_url = \"rediss://127.0.0.1:6380\"\nca_file = \"ca.pem\"",
            "cluster.ca_file",
            "no PEM certificate",
        ),
    ] {
        let toml = config_toml(up, &format!("[cluster]\n{cluster}\n"));
        let e = storegate::config::Config::from_toml_str(&toml, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(says), "{cluster}: {e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
