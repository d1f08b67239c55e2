//! The protocol limits of `[limits]`, each met by a request just past it: the documented status
//! (or, for HTTP/2 framing abuse, a closed connection), and the gateway keeps serving others.

mod support;

use std::sync::atomic::Ordering;

use support::*;

fn head_with(extra_headers: usize, header_bytes: usize, path_bytes: usize) -> Vec<u8> {
    let mut head = format!(
        "GET /healthz{} HTTP/1.1\r\nHost: localhost\r\n",
        "x".repeat(path_bytes)
    );
    for i in 0..extra_headers {
        head.push_str(&format!("x-filler-{i}: 1\r\n"));
    }
    if header_bytes > 0 {
        head.push_str(&format!("x-big: {}\r\n", "b".repeat(header_bytes)));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

#[tokio::test]
async fn too_many_or_too_large_headers_get_431_and_a_long_target_414() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let ok = raw_https(&gw, &head_with(90, 0, 0)).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let many = raw_https(&gw, &head_with(101, 0, 0)).await;
    assert!(many.starts_with("HTTP/1.1 431"), "{many}");
    let large = raw_https(&gw, &head_with(0, 70 * 1024, 0)).await;
    assert!(large.starts_with("HTTP/1.1 431"), "{large}");

    let token = gw.token("backoffice-app", SECRET).await;
    let long = format!("/admin/{}", "a".repeat(9 * 1024));
    let resp = gw.get_bearer(&long, &token).await;
    assert_eq!(resp.status(), 414);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
    assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
}

#[tokio::test]
async fn limits_are_configurable() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_with(up, |t| {
        let mut limits = toml::Table::new();
        limits.insert("max_headers".into(), 20.into());
        limits.insert("max_uri_bytes".into(), 512.into());
        t.insert("limits".into(), limits.into());
    }))
    .await;
    let many = raw_https(&gw, &head_with(25, 0, 0)).await;
    assert!(many.starts_with("HTTP/1.1 431"), "{many}");
    let long = raw_https(&gw, &head_with(0, 0, 600)).await;
    assert!(long.starts_with("HTTP/1.1 414"), "{long}");
}

/// The HTTP/2 settings the gateway advertises, and a header block over the list size.
#[tokio::test]
async fn http2_advertises_its_stream_and_header_list_limits() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let tls = tls_stream(&gw, &[&gw.ca_pem], &[b"h2"]).await;
    let (h2, mut connection) = h2::client::handshake(tls).await.unwrap();
    // The server's SETTINGS arrive with its first frames.
    let get = |path: &str| {
        http::Request::get(format!("https://127.0.0.1{path}"))
            .body(())
            .unwrap()
    };
    let mut ready = h2.clone().ready().await.unwrap();
    let (answer, _) = ready.send_request(get("/healthz"), true).unwrap();
    let answer = async { answer.await.unwrap() };
    let (resp, ()) = tokio::join!(answer, async {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(300), &mut connection).await;
    });
    assert_eq!(resp.status(), 200);
    assert_eq!(connection.max_concurrent_send_streams(), 128);
    tokio::spawn(connection);

    let mut big = get("/healthz");
    big.headers_mut()
        .insert("x-big", "b".repeat(70 * 1024).parse().unwrap());
    let refused = async {
        let (answer, _) = h2.clone().ready().await?.send_request(big, true)?;
        answer.await
    };
    match refused.await {
        Ok(resp) => assert_eq!(resp.status(), 431),
        Err(e) => assert!(e.is_reset() || e.is_go_away() || e.is_library(), "{e}"),
    }
}

/// Rapid reset (CVE-2023-44487): streams opened and reset at once, over and over. The
/// connection is closed after `h2_max_pending_accept_reset_streams`; others are served.
#[tokio::test]
async fn rapid_reset_closes_the_connection_not_the_gateway() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let tls = tls_stream(&gw, &[&gw.ca_pem], &[b"h2"]).await;
    let (h2, connection) = h2::client::handshake(tls).await.unwrap();
    let ended = tokio::spawn(connection);
    let mut sent = 0;
    for _ in 0..1000 {
        let Ok(mut ready) = h2.clone().ready().await else {
            break;
        };
        let req = http::Request::get("https://127.0.0.1/healthz")
            .body(())
            .unwrap();
        let Ok((_, mut stream)) = ready.send_request(req, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
    }
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), ended).await;
    assert!(end.is_ok(), "the connection was closed after {sent} resets");
    let token = gw.token("backoffice-app", SECRET).await;
    assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
}
