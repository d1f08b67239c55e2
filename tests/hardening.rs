//! Hostile callers: each defect found by trying the gateway as an attacker would gets a test
//! here that failed before its fix.

mod support;

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::Value;
use support::*;

/// `{"client_secret":"wrong","client_secret":"<right>"}` used to get a token: the last
/// duplicate won.
#[tokio::test]
async fn a_json_token_request_with_a_duplicate_parameter_is_refused() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let body = format!(
        r#"{{"grant_type":"client_credentials","client_id":"backoffice-app","client_secret":"wrong","client_secret":"{SECRET}"}}"#
    );
    let resp = gw
        .client
        .post(gw.url("/connect/token"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "invalid_request");
    assert!(json.get("access_token").is_none());
}

/// Tokens signed with the gateway's own key, but that no token of the gateway looks like.
#[tokio::test]
async fn a_critical_header_or_an_absurd_lifetime_is_refused() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let kid = gw.generation().keys.kid.clone();
    let pem = gw.signing_key_pem();
    let refused = |token: String| {
        let gw = &gw;
        async move { assert_invalid_token(&gw.get_bearer("/admin/echo", &token).await) }
    };

    // RFC 7515 §4.1.11: a `crit` the verifier does not understand.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    header.typ = Some("at+jwt".into());
    header.crit = Some(vec!["exp".into()]);
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&pem).unwrap();
    refused(jsonwebtoken::encode(&header, &claims(600), &key).unwrap()).await;

    // exp = u64::MAX, and a day and an hour: longer than tokens.max_token_age_secs (24 h).
    let mut forever = claims(600);
    forever["exp"] = u64::MAX.into();
    refused(mint_eddsa(&pem, &kid, &forever)).await;
    refused(mint_eddsa(&pem, &kid, &claims(25 * 3600))).await;
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);

    let within = mint_eddsa(&pem, &kid, &claims(23 * 3600));
    assert_eq!(gw.get_bearer("/admin/echo", &within).await.status(), 200);
}

/// `..;`, `..%2f`, `%2e%2e%2f`, `..%5c` and `..\` were forwarded as written, to upstreams that
/// may read them as `../` (Tomcat's `;` parameters, a decoded `%2F`, backslash separators).
#[tokio::test]
async fn every_spelling_of_a_path_escape_is_refused_on_a_guarded_route() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    for path in [
        "/admin/..;/shop/echo",
        "/admin/..%2fshop/echo",
        "/admin/%2e%2e%2fshop/echo",
        "/admin/..%5cshop/echo",
        "/admin/..\\shop/echo",
        "/admin/%252e%252e/shop/echo",
        "/admin/x%00/echo",
        "/admin/%2e%2e/shop/echo",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw_https(&gw, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(!answer.contains(&token), "{path}: the token is not echoed");
    }
    assert_eq!(
        log.requests.load(Ordering::SeqCst),
        0,
        "none reached the upstream"
    );
    for allowed in ["/admin/a;v=1/echo", "/admin/..b/echo", "/admin/v1.2/echo"] {
        let resp = gw.get_bearer(allowed, &token).await;
        assert_eq!(resp.status(), 200, "{allowed}");
    }
}

/// A caller's broken chunked body was answered 502 and logged as an upstream failure.
#[tokio::test]
async fn a_malformed_request_body_is_the_callers_400_not_a_502() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    for (what, body) in [
        ("bad chunk size", "zz\r\nhello\r\n0\r\n\r\n"),
        (
            "overflowing chunk size",
            "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        ("bare LF framing", "5\nhello\n0\n\n"),
    ] {
        let request = format!(
            "POST /admin/upload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}"
        );
        let answer = raw_https(&gw, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        assert!(answer.contains("invalid_request"), "{what}: {answer}");
    }
    assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
}

/// A caller that stops sending its body is answered 408 after the route's body idle time.
#[tokio::test]
async fn a_stalled_request_body_is_408_after_the_idle_time() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "body_idle_timeout_ms = 300").await;
    let token = gw.token("storefront-app", READER_SECRET).await;
    let request = format!(
        "POST /shop/upload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Length: 100\r\n\r\nonly ten b"
    );
    // raw_https waits for the connection to end (10 s at most): the gateway ends it.
    let started = std::time::Instant::now();
    let answer = raw_https(&gw, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// An upstream that sent the head and part of the body, then stalled, held the caller's
/// connection for as long as it liked.
#[tokio::test]
async fn an_upstream_stalling_mid_body_is_cut_off_and_the_next_request_succeeds() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "body_idle_timeout_ms = 300").await;
    let token = gw.token("storefront-app", READER_SECRET).await;
    for client in [gw.client.clone(), gw.http2_client()] {
        assert_cut_off_then_fine(&gw, &client, &token, "/shop/stall", "/shop/echo").await;
    }
}

/// With `max_connections` TLS connections that negotiated h2 and then sent nothing (or only
/// the preface and SETTINGS), every new client was locked out until they closed.
#[tokio::test]
async fn silent_http2_connections_do_not_hold_connection_slots() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_with(up, |t| {
        let server = t["server"].as_table_mut().unwrap();
        server.insert("max_connections".into(), 4.into());
        server.insert("header_read_timeout_ms".into(), 500.into());
        server.insert("idle_timeout_ms".into(), 500.into());
    }))
    .await;
    let mut silent = Vec::new();
    for i in 0..4 {
        let mut tls = tls_stream(&gw, &[&gw.ca_pem], &[b"h2"]).await;
        if i % 2 == 1 {
            // The client preface and an empty SETTINGS frame, then nothing.
            tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
                .await
                .unwrap();
        }
        silent.push(tls);
    }
    let started = std::time::Instant::now();
    let token = gw.token("backoffice-app", SECRET).await;
    assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The silent ones were closed by the gateway (GOAWAY, then EOF), not left open.
    for mut tls in silent {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tls.read_to_end(&mut rest),
        );
        assert!(
            read.await.is_ok(),
            "the gateway closed the silent connection"
        );
    }
}

/// A keep-alive connection that no request uses is closed after `idle_timeout_ms`.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_with(up, |t| {
        let server = t["server"].as_table_mut().unwrap();
        server.insert("idle_timeout_ms".into(), 300.into());
    }))
    .await;
    let mut tls = tls_stream(&gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut all));
    assert!(read.await.is_ok(), "closed after the idle time");
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
}

/// A POST refused before its body was read (401 here) ended its HTTP/2 stream with
/// RST_STREAM(NO_ERROR), which curl 7.88 reports as a framing error instead of showing the
/// refusal. The body is now read first, so the stream ends normally.
#[tokio::test]
async fn an_http2_refusal_reads_a_small_body_first_so_the_stream_is_not_reset() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let tls = tls_stream(&gw, &[&gw.ca_pem], &[b"h2"]).await;
    let (mut h2, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    for path in ["/admin/orders", "/nowhere", "/connect/token"] {
        let method = if path == "/connect/token" {
            "PUT"
        } else {
            "POST"
        };
        let req = http::Request::builder()
            .method(method)
            .uri(format!("https://127.0.0.1{path}"))
            .body(())
            .unwrap();
        let (answer, mut send) = h2.send_request(req, false).unwrap();
        send.send_data(bytes::Bytes::from(vec![b'x'; 8 * 1024]), false)
            .unwrap();
        // The rest of the body comes a little later, as an upload's would.
        let later = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let _ = send.send_data(bytes::Bytes::from_static(b"end"), true);
            std::future::poll_fn(|cx| send.poll_reset(cx)).await.ok()
        });
        let resp = answer.await.unwrap();
        assert!(resp.status().is_client_error(), "{path}: {}", resp.status());
        let mut body = resp.into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        assert!(
            String::from_utf8_lossy(&text).contains("error"),
            "{path}: the error body"
        );
        let reset = tokio::time::timeout(std::time::Duration::from_millis(500), later).await;
        assert!(
            !matches!(reset, Ok(Ok(Some(_)))),
            "{path}: the stream was reset: {reset:?}"
        );
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

/// 300 wrong secrets for one client id took 0.1 s, all answered. Now a source is throttled
/// after `failures_per_source` failures, in the endpoint's own error shape, with Retry-After;
/// the real client calling from elsewhere is not locked out; X-Forwarded-For counts only from
/// a trusted proxy.
#[tokio::test]
async fn secret_guessing_is_throttled_per_source_without_locking_out_the_real_client() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_with(up, |t| {
        let server = t["server"].as_table_mut().unwrap();
        server.insert("trusted_proxies".into(), vec!["127.0.0.1"].into());
    }))
    .await;
    let attempt = |secret: &'static str, from: &'static str| {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "backoffice-app"),
            ("client_secret", secret),
        ];
        let req = gw.client.post(gw.url("/connect/token")).form(&form);
        async move { req.header("x-forwarded-for", from).send().await.unwrap() }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong", "203.0.113.7").await.status(), 400);
    }
    let throttled = attempt(SECRET, "203.0.113.7").await;
    assert_eq!(
        throttled.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right secret"
    );
    let wait: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert_eq!(
        attempt(SECRET, "198.51.100.9").await.status(),
        200,
        "another source"
    );

    // The errors-shaped endpoint answers in its own shape.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "backoffice-app"),
        ("client_secret", "x"),
    ];
    let req = gw.client.post(gw.url("/oauth/access_token")).form(&form);
    let resp = req
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["status"], "429");
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_dodge_the_throttle() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "backoffice-app"),
            ("client_secret", "wrong"),
        ];
        let req = gw.client.post(gw.url("/connect/token")).form(&form);
        let resp = req
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429, 429, 429]);
}

/// A guess spread over many sources: past `failures_per_client`, every source that failed for
/// the client id is refused, and a source that never failed still gets its token.
#[tokio::test]
async fn a_distributed_guess_meets_the_per_client_ceiling() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_with(up, |t| {
        let server = t["server"].as_table_mut().unwrap();
        server.insert("trusted_proxies".into(), vec!["127.0.0.0/8"].into());
        let mut throttle = toml::Table::new();
        throttle.insert("failures_per_client".into(), 3.into());
        t.insert("throttle".into(), throttle.into());
    }))
    .await;
    let gw = &gw;
    let attempt = |secret: &'static str, from: String| async move {
        gw.token_attempt_from(secret, &from).await
    };
    for i in 0..3 {
        assert_eq!(attempt("wrong", format!("203.0.113.{i}")).await, 400);
    }
    assert_eq!(
        attempt(SECRET, "203.0.113.1".into()).await,
        429,
        "it failed before"
    );
    assert_eq!(
        attempt(SECRET, "198.51.100.9".into()).await,
        200,
        "it never failed"
    );
}
