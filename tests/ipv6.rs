//! IPv6 (issue 22): a listener on `::1`, and a dual-stack `[::]` listener whose IPv4 callers
//! arrive as `::ffff:a.b.c.d` and must still be `a.b.c.d` to `trusted_proxies`, the throttle
//! and the `X-Forwarded-For` sent upstream.

mod support;

use reqwest::StatusCode;
use support::*;
use tokio::net::TcpListener;

/// A listener on `addr`, or `None` (said on the test's output) when the machine has no IPv6
/// loopback: the only reason these tests skip.
async fn ipv6_listener(addr: &str) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!(
                "SKIPPED: this machine cannot listen on {addr} ({e}): it has no IPv6 loopback"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_ipv6_loopback_serves_and_names_the_caller() {
    let Some(listener) = ipv6_listener("[::1]:0").await else {
        return;
    };
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway_on(listener, tempfile::tempdir().unwrap(), &config_toml(up, "")).await;
    let url = |p: &str| format!("https://[::1]:{}{p}", gw.addr.port());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "backoffice-app"),
        ("client_secret", SECRET),
    ];
    let body = send_json(gw.client.post(url("/connect/token")).form(&form)).await;
    let token = body["access_token"].as_str().unwrap();
    let resp = gw
        .client
        .get(url("/admin/echo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = log.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(seen["x-forwarded-for"], "::1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv4_caller_on_a_dual_stack_listener_is_its_ipv4_address() {
    let Some(listener) = ipv6_listener("[::]:0").await else {
        return;
    };
    let (up, log) = spawn_upstream().await;
    let toml = config_with(up, |t| {
        let server = t["server"].as_table_mut().unwrap();
        server.insert("trusted_proxies".into(), vec!["127.0.0.1/32"].into());
    });
    let gw = spawn_gateway_on(listener, tempfile::tempdir().unwrap(), &toml).await;
    // gw.url is https://127.0.0.1:PORT: an IPv4 caller of the dual-stack listener.
    let token = gw.token("backoffice-app", SECRET).await;
    assert_eq!(
        gw.get_bearer("/admin/echo", &token).await.status(),
        StatusCode::OK
    );
    let seen = log.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "not ::ffff:127.0.0.1");
    // 127.0.0.1/32 is trusted: the throttle counts the caller X-Forwarded-For names, so one
    // caller's failures do not throttle another behind the same proxy.
    let attempt = |secret: &'static str, from: &'static str| gw.token_attempt_from(secret, from);
    for _ in 0..5 {
        assert_eq!(
            attempt("wrong", "203.0.113.7").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        attempt(SECRET, "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(attempt(SECRET, "198.51.100.9").await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_on_ipv6_loopback_is_reached_on_both_paths() {
    let Some(up_listener) = ipv6_listener("[::1]:0").await else {
        return;
    };
    let (up, log) = spawn_upstream_on(up_listener);
    assert!(up.is_ipv6());
    // The route's upstream is "http://[::1]:PORT".
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    for client in [&gw.client, &gw.http2_client()] {
        let resp = client
            .get(gw.url("/admin/echo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(log.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}
