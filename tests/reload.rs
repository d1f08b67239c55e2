//! Live configuration: reloads under load lose no request; clients and secrets change without
//! a restart; a broken file keeps the running configuration; restart-only settings stay.
//! Certificates and signing keys: tests/rotation.rs. Every reload here is the file watcher's,
//! triggered by replacing files as a deployment would.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use support::*;

const EXTRA_SECRET: &str = "extra-secret-0123456789";

/// The default config plus client "extra-app" for backoffice, with `scopes`.
fn with_extra(up: std::net::SocketAddr, scopes: &[&str]) -> String {
    config_with(up, |t| {
        let extra = client_entry("extra-app", EXTRA_SECRET, &["backoffice"], scopes);
        clients_of(t).push(extra);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_lose_no_request() {
    let (up, _) = spawn_upstream().await;
    let (a, b) = (config_toml(up, ""), with_extra(up, &["read"]));
    let gw = Arc::new(spawn_gateway_toml(&a).await);
    let token = gw.token("backoffice-app", SECRET).await;
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    // Four HTTP/1.1 keep-alive connections and one HTTP/2 connection with two streams.
    let clients = [gw.client.clone(), gw.client.clone(), gw.client.clone()];
    let h2 = gw.http2_client();
    for (i, client) in clients.into_iter().chain([h2.clone(), h2]).enumerate() {
        let (gw, token, stop, failures) =
            (gw.clone(), token.clone(), stop.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut done = 0usize;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
                let status = if done % 10 == 9 {
                    let form = [
                        ("grant_type", "client_credentials"),
                        ("client_id", "backoffice-app"),
                        ("client_secret", SECRET),
                    ];
                    let r = client
                        .post(gw.url("/connect/token"))
                        .form(&form)
                        .send()
                        .await;
                    r.map(|r| r.status())
                } else {
                    let r = client
                        .get(gw.url("/admin/echo"))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    r.map(|r| r.status())
                };
                match status {
                    Ok(StatusCode::OK) => {}
                    other => failures
                        .lock()
                        .unwrap()
                        .push(format!("worker {i}: {other:?}")),
                }
                done += 1;
            }
            done
        }));
    }
    for i in 0..20 {
        gw.reload_with(if i % 2 == 0 { &b } else { &a }).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for w in workers {
        let done = w.await.unwrap();
        assert!(done >= 20, "a worker made only {done} requests");
        total += done;
    }
    assert_eq!(gw.generation().number, 21);
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {failures:?}",
        failures.len()
    );
}

#[tokio::test]
async fn a_removed_client_is_refused_at_once_even_cached_and_an_added_one_gets_tokens() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_toml(up, "")).await;
    let refused = gw.post_form("/connect/token", &extra_form()).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "unknown client");

    gw.reload_with(&with_extra(up, &["read"])).await;
    let token = gw.token("extra-app", EXTRA_SECRET).await;
    for _ in 0..2 {
        assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
    }
    assert!(gw.cache_hits() >= 1, "the second request was a cache hit");

    gw.reload_with(&config_toml(up, "")).await;
    let seen = log.requests.load(Ordering::SeqCst);
    assert_invalid_token(&gw.get_bearer("/admin/echo", &token).await);
    assert_eq!(
        log.requests.load(Ordering::SeqCst),
        seen,
        "never reached the upstream"
    );
}

fn extra_form() -> [(&'static str, &'static str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", "extra-app"),
        ("client_secret", EXTRA_SECRET),
    ]
}

#[tokio::test]
async fn narrowing_a_clients_scopes_or_apis_narrows_its_tokens_at_once() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&with_extra(up, &["read", "write"])).await;
    let token = gw.token("extra-app", EXTRA_SECRET).await;
    let post = || {
        gw.client
            .post(gw.url("/admin/echo"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);

    gw.reload_with(&with_extra(up, &["read"])).await;
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("insufficient_scope"));
    assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);

    gw.reload_with(&config_with(up, |t| {
        let moved = client_entry("extra-app", EXTRA_SECRET, &["storefront"], &["read"]);
        clients_of(t).push(moved);
    }))
    .await;
    let resp = gw.get_bearer("/admin/echo", &token).await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "the token lost its API"
    );
}

#[tokio::test]
async fn a_secret_is_rotated_with_overlap_and_old_tokens_stay_valid() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&with_extra(up, &["read"])).await;
    let token = gw.token("extra-app", EXTRA_SECRET).await;
    const NEW: &str = "rotated-secret-9876543210";
    let both = config_with(up, |t| {
        let mut extra = client_entry("extra-app", EXTRA_SECRET, &["backoffice"], &["read"]);
        let hashes = [EXTRA_SECRET, NEW].map(|s| storegate::clients::hash_secret(s).into());
        extra.as_table_mut().unwrap().remove("secret_hash");
        extra
            .as_table_mut()
            .unwrap()
            .insert("secret_hashes".into(), toml::Value::Array(hashes.into()));
        clients_of(t).push(extra);
    });
    gw.reload_with(&both).await;
    gw.token("extra-app", EXTRA_SECRET).await;
    gw.token("extra-app", NEW).await;

    gw.reload_with(&config_with(up, |t| {
        clients_of(t).push(client_entry("extra-app", NEW, &["backoffice"], &["read"]));
    }))
    .await;
    let old = gw.post_form("/connect/token", &extra_form()).await;
    assert_eq!(
        old.status(),
        StatusCode::BAD_REQUEST,
        "the old secret is gone"
    );
    gw.token("extra-app", NEW).await;
    let resp = gw.get_bearer("/admin/echo", &token).await;
    assert_eq!(
        resp.status(),
        200,
        "a changed secret does not revoke tokens"
    );
}

/// A broken file of each kind: the running generation keeps serving, and the error names the
/// file and the config key. Putting the good file back reloads.
#[tokio::test]
async fn a_broken_file_keeps_the_running_configuration() {
    let (up, _) = spawn_upstream().await;
    let good = config_toml(up, "");
    let gw = spawn_gateway_toml(&good).await;
    let token = gw.token("backoffice-app", SECRET).await;
    let signing = gw.signing_key_pem();
    let cert = std::fs::read(gw.dir.path().join("cert.pem")).unwrap();
    let bad_toml = good.replace("[tokens]", "[tokens");
    let unknown_key = good.replace("[tokens]", "[tokens]\nbogus_key = 1");
    // (file, broken contents, good contents, what the error must name)
    type Case<'a> = (&'a str, Vec<u8>, Vec<u8>, &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "gateway.toml",
            bad_toml.into(),
            good.clone().into(),
            &["gateway.toml", "line"],
        ),
        (
            "gateway.toml",
            unknown_key.into(),
            good.clone().into(),
            &["gateway.toml", "bogus_key"],
        ),
        (
            "cert.pem",
            b"not a certificate".to_vec(),
            cert,
            &["tls.cert", "cert.pem"],
        ),
        (
            "signing.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            signing,
            &["signing.key", "signing.pem"],
        ),
    ];
    for (file, broken, fixed, named) in cases {
        let before = gw.generation().number;
        let error = gw.reload_fails_with(file, broken).await;
        for n in named {
            assert!(error.contains(n), "{file}: the error names {n}: {error}");
        }
        assert!(
            !error.contains("BEGIN PRIVATE KEY") && !error.contains("AAAA"),
            "{error}"
        );
        assert_eq!(gw.generation().number, before, "nothing was stored");
        assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
        gw.token("backoffice-app", SECRET).await;
        let stored = gw.state.shared.reloads.succeeded.load(Ordering::SeqCst);
        gw.replace_file(file, fixed);
        gw.await_reloads(|s, _| s > stored).await;
    }
}

#[tokio::test]
async fn restart_only_settings_keep_their_running_values() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_toml(up, "")).await;
    let g = gw
        .reload_with(&config_with(up, |t| {
            let server = t["server"].as_table_mut().unwrap();
            server.insert("listen".into(), "127.0.0.1:1".into());
            server.insert("max_connections".into(), 3.into());
            server.insert("realm".into(), "reloaded".into());
            let mut dpop = toml::Table::new();
            dpop.insert("iat_window_secs".into(), 300.into());
            dpop.insert("replay_capacity".into(), 20_000.into());
            dpop.insert("require_nonce".into(), true.into());
            t.insert("dpop".into(), dpop.into());
        }))
        .await;
    assert_eq!(g.config.max_connections, 10_000, "kept");
    // The replay store was made for the window it started with: both stay.
    assert_eq!(g.config.dpop.rules.iat_window, 60, "kept");
    assert_eq!(g.config.dpop.replay.total, 200_000, "kept");
    assert!(g.config.dpop.nonces.is_some(), "live");
    assert_eq!(g.config.listen.port(), 0, "kept");
    assert_eq!(g.config.realm, "reloaded", "live");
    let resp = gw.client.get(gw.url("/admin/echo")).send().await.unwrap();
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="reloaded", "#),
        "{challenge}"
    );
}
