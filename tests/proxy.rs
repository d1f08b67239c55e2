//! Forwarding: streaming bodies, upstream failures, header hygiene, HTTP/1.1 and HTTP/2.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use support::*;

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn a_64_mib_upload_streams_through_without_being_buffered() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let auth = format!("Bearer {}", gw.token("backoffice-app", SECRET).await);
    let total = 64 * MIB;
    let chunk = Bytes::from(vec![7u8; 256 * 1024]);
    let log2 = log.clone();
    // The client sends 1 MiB, then waits until the upstream has received it before sending
    // the rest. A gateway that collected the whole body first would never pass it on, and
    // the upload would stall until the test's timeout.
    let body = futures_util::stream::iter(0..total / chunk.len()).then(move |i| {
        let chunk = chunk.clone();
        let log = log2.clone();
        async move {
            if i == 4 {
                while log.upload_bytes.load(Ordering::SeqCst) < MIB as u64 {
                    let notified = log.upload_progress.notified();
                    if log.upload_bytes.load(Ordering::SeqCst) >= MIB as u64 {
                        break;
                    }
                    let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
                }
            }
            Ok::<_, std::io::Error>(chunk)
        }
    });
    let send = gw
        .client
        .post(gw.url("/admin/upload"))
        .header("authorization", auth)
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let resp = tokio::time::timeout(Duration::from_secs(60), send)
        .await
        .expect("the upload stalled")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["received"], total as u64);
}

#[tokio::test]
async fn a_64_mib_download_streams_back() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let resp = gw
        .client
        .get(gw.url(&format!("/admin/download?bytes={}", 64 * MIB)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        n += chunk.unwrap().len();
    }
    assert_eq!(n, 64 * MIB);
}

#[tokio::test]
async fn upstream_down_is_502_with_no_internals() {
    let dead = dead_address().await;
    let gw = spawn_gateway(dead, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    // HTTP/1.1 (the relay) and HTTP/2 (a stream's bodiless request, exchanged on the relay's
    // terms): the same answer.
    for client in [gw.client.clone(), gw.http2_client()] {
        let resp = client.get(gw.url("/admin/echo")).bearer_auth(&token);
        let resp = resp.send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::BAD_GATEWAY,
            "{:?}",
            resp.version()
        );
        let body = resp.text().await.unwrap();
        assert_eq!(
            body,
            r#"{"error":"bad_gateway","error_description":"the upstream service is unavailable"}"#
        );
    }
    let resp = gw
        .get_bearer(
            "/shop/echo",
            &gw.token("storefront-app", READER_SECRET).await,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"title":"Bad Gateway","status":"502","detail":"the upstream service is unavailable"}]}"#
    );
}

#[tokio::test]
async fn a_slow_upstream_is_504() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await; // route timeout 1000 ms, upstream answers after 5 s
    let token = gw.token("backoffice-app", SECRET).await;
    for client in [gw.client.clone(), gw.http2_client()] {
        let resp = client.get(gw.url("/admin/slow")).bearer_auth(&token);
        let resp = resp.send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::GATEWAY_TIMEOUT,
            "{:?}",
            resp.version()
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "gateway_timeout");
    }
}

#[tokio::test]
async fn spoofed_identity_and_hop_by_hop_headers_are_dropped() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let resp = gw
        .client
        .get(gw.url("/admin/echo?x=1"))
        .bearer_auth(&token)
        .header("x-storegate-client-id", "admin")
        .header("x-storegate-scope", "everything")
        .header("x-storegate-grant", "client_credentials")
        .header("x-forwarded-for", "6.6.6.6")
        .header("connection", "x-drop-me")
        .header("x-drop-me", "1")
        .header("x-keep-me", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = log.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(
        seen.get_all("x-storegate-client-id")
            .iter()
            .collect::<Vec<_>>(),
        ["backoffice-app"]
    );
    assert_eq!(seen["x-storegate-scope"], "read write");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "https");
    assert_eq!(
        seen["x-forwarded-host"],
        format!("127.0.0.1:{}", gw.addr.port())
    );
    assert_eq!(seen["x-keep-me"], "1");
    assert!(seen.get("x-drop-me").is_none());
    assert!(
        seen.get("authorization").is_none(),
        "Authorization is not forwarded by default"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["path"], "/admin/echo");
}

#[tokio::test]
async fn authorization_is_forwarded_when_the_route_says_so() {
    let (up, log) = spawn_upstream().await;
    let extra = format!(
        "\n[[routes]]\nprefix = \"/admin/keep/\"\nupstream = \"http://{up}\"\napi = \"backoffice\"\nforward_authorization = true\n"
    );
    let gw = spawn_gateway(up, &extra).await;
    let token = gw.token("backoffice-app", SECRET).await;
    let resp = gw.get_bearer("/admin/keep/echo", &token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = log.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(seen["authorization"], format!("Bearer {token}"));
}

#[tokio::test]
async fn http2_and_http1_clients_both_work() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    // spawn_gateway's client speaks HTTP/1.1 only; the second one HTTP/2 only.
    let r1 = gw.get_bearer("/admin/echo", &token).await;
    assert_eq!(r1.version(), reqwest::Version::HTTP_11);
    assert_eq!(r1.status(), StatusCode::OK);
    let h2 = gw.http2_client();
    let r2 = h2
        .get(gw.url("/admin/echo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r2.version(), reqwest::Version::HTTP_2);
    assert_eq!(r2.status(), StatusCode::OK);
    let r3 = h2.get(gw.url("/admin/echo")).send().await.unwrap();
    assert_eq!(r3.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unrouted_paths_are_404_and_health_and_jwks_need_no_token() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let r = gw.client.get(gw.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_found");
    let r = gw.client.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);
    let r = gw
        .client
        .get(gw.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["keys"][0]["kty"], "OKP");
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let (up, _) = spawn_upstream().await;
    let toml = config_toml(up, "").replace(
        "timeout_ms = 1000\nwrite_scope",
        "timeout_ms = 10000\nwrite_scope",
    );
    let gw = spawn_gateway_toml(&toml).await;
    let token = gw.token("backoffice-app", SECRET).await;
    // /admin/wait answers after 1 s, inside the 2 s grace period.
    let client = gw.client.clone();
    let url = gw.url("/admin/wait");
    let in_flight = tokio::spawn(async move {
        client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    gw.stop().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "shutdown respects its grace period: {took:?}"
    );
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        StatusCode::OK,
        "the in-flight request was answered"
    );
    assert!(
        took >= Duration::from_millis(500),
        "shutdown waited for the request: {took:?}"
    );
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_closed_ones_replaced() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    for _ in 0..20 {
        assert_eq!(
            gw.get_bearer("/admin/echo", &token).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        log.connections.load(Ordering::SeqCst),
        1,
        "one keep-alive connection served all 20"
    );
    // The upstream closes after each of these; every next request still gets through.
    for _ in 0..5 {
        assert_eq!(
            gw.get_bearer("/admin/close", &token).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            gw.get_bearer("/admin/echo", &token).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 30);
    assert_eq!(
        log.connections.load(Ordering::SeqCst),
        6,
        "a new connection after each close"
    );
}
