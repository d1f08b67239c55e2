//! The HTTP/1.1 relay on the wire: against an upstream that answers with scripted bytes
//! (chunked, delimited by its close, interim responses, garbage, an early answer to an
//! upload), with callers that pipeline, mix relayed and hyper-served requests on one
//! connection, and send headers in any case.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::scripted::*;
use support::*;

#[tokio::test]
async fn chunked_answers_are_relayed_and_the_upstream_connection_kept() {
    let (gw, seen, token) = relayed(true, |_| {
        let body = "5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        (
            format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{body}").into_bytes(),
            false,
        )
    })
    .await;
    // A client of its own: the token request sent `gw.client`'s connection to hyper.
    let client = client_for(&gw.ca_pem, false);
    for _ in 0..3 {
        let resp = client
            .get(gw.url("/admin/c"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hello world");
    }
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "one upstream connection for all"
    );
}

#[tokio::test]
async fn an_answer_delimited_by_its_close_closes_the_callers_connection() {
    let (gw, _, token) = relayed(true, |_| {
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(), true)
    })
    .await;
    let req = format!("GET /admin/x HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\r\n");
    let out = raw_https(&gw, req.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\nuntil the end"), "{out}");
}

#[tokio::test]
async fn a_malformed_answer_is_a_502_in_the_routes_shape() {
    let (gw, _, token) = relayed(true, |_| (b"SMTP ready\r\n\r\n".to_vec(), true)).await;
    let resp = fresh_get(&gw, "/admin/x", &token).await;
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway", "{body}");
    let reader = gw.token("storefront-app", READER_SECRET).await;
    let resp = fresh_get(&gw, "/shop/x", &reader).await;
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["errors"].is_array(), "the errors shape: {body}");
}

#[tokio::test]
async fn interim_responses_are_not_relayed() {
    let (gw, _, token) = relayed(true, |_| {
        let mut b =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n".to_vec();
        b.extend(ok("final"));
        (b, false)
    })
    .await;
    let resp = fresh_get(&gw, "/admin/x", &token).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "final");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (gw, seen, token) = relayed(true, |head| (ok(path_of(head)), false)).await;
    let one =
        |p: &str| format!("GET {p} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\r\n");
    let post = format!(
        "POST /admin/c HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\ncontent-length: 4\r\n\r\nbody"
    );
    let mut tls = tls_stream(&gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    let all = [one("/admin/a"), post, one("/admin/b")].concat();
    tls.write_all(all.as_bytes()).await.unwrap();
    let out = read_responses(&mut tls, 3).await;
    let bodies: Vec<&str> = out
        .split("HTTP/1.1 200 OK")
        .skip(1)
        .map(|r| r.rsplit("\r\n\r\n").next().unwrap())
        .collect();
    assert_eq!(bodies, ["/admin/a", "/admin/c", "/admin/b"], "{out}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

/// The relay keeps an upstream's header names as they came; hyper writes them in lower case.
/// So an answer shows which of the two served it.
fn marked(head: &str) -> (Vec<u8>, bool) {
    let body = path_of(head);
    let answer = format!(
        "HTTP/1.1 200 OK\r\nX-Served-By: up\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    (answer.into_bytes(), false)
}

fn relayed_answer(out: &str) -> bool {
    out.contains("\r\nX-Served-By: up\r\n")
}

#[tokio::test]
async fn a_token_request_keeps_the_connection_with_the_relay() {
    let (gw, seen, _) = relayed(true, marked).await;
    let get = |p: &str, t: &str| {
        format!("GET {p} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {t}\r\n\r\n")
    };
    let form = "grant_type=client_credentials";
    let token_head = format!(
        "POST /connect/token HTTP/1.1\r\nhost: gw\r\nauthorization: Basic {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        base64_basic("backoffice-app", SECRET),
        form.len()
    );
    let mut tls = tls_stream(&gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    // The body after the head, in a write of its own (as Python's requests sends it).
    tls.write_all(token_head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tokio::task::yield_now().await;
    tls.write_all(form.as_bytes()).await.unwrap();
    let out = read_responses(&mut tls, 1).await;
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("\r\ncache-control: no-store\r\n"), "{out}");
    let body: serde_json::Value =
        serde_json::from_str(out.rsplit("\r\n\r\n").next().unwrap()).unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    for req in [
        get("/admin/first", &token),
        get("/.well-known/jwks.json", "-"),
        get("/healthz", "-"),
        get("/admin/after", &token),
    ] {
        tls.write_all(req.as_bytes()).await.unwrap();
        let out = read_responses(&mut tls, 1).await;
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        if req.contains("/admin/") {
            assert!(relayed_answer(&out), "served by the relay: {out}");
        }
    }
    // A request the relay does not take hands the connection to hyper, which the marker shows.
    let handoff = format!(
        "GET /admin/hyper HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\nconnection: x-hop\r\nx-hop: 1\r\n\r\n"
    );
    tls.write_all(handoff.as_bytes()).await.unwrap();
    let out = read_responses(&mut tls, 1).await;
    assert!(
        out.starts_with("HTTP/1.1 200 OK") && !relayed_answer(&out),
        "{out}"
    );
    assert_eq!(
        seen.paths(),
        ["/admin/first", "/admin/after", "/admin/hyper"]
    );
}

fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

#[tokio::test]
async fn headers_in_any_case_are_edited_as_the_proxy_edits_them() {
    let (gw, seen, token) = relayed(true, |_| {
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nX-Request-Id: theirs\r\n\r\nok".to_vec(),
            false,
        )
    })
    .await;
    let req = format!(
        "GET /admin/x?q=1 HTTP/1.1\r\nHost: shop.example\r\nAuthorization: Bearer {token}\r\n\
         X-Storegate-Client-Id: evil\r\nX-Forwarded-For: 6.6.6.6\r\nProxy-Authorization: x\r\n\
         TE: trailers\r\nX-Request-Id: mine-1\r\nAccept: a/b\r\nAccept: c/d\r\nConnection: close\r\n\r\n"
    );
    let out = raw_https(&gw, req.as_bytes()).await;
    let lower = out.to_ascii_lowercase();
    assert!(lower.contains("\r\nx-request-id: mine-1\r\n"), "{out}");
    assert!(
        !lower.contains("keep-alive") && !lower.contains("theirs"),
        "{out}"
    );
    assert!(
        lower.contains("\r\nconnection: close\r\n"),
        "the caller asked to close: {out}"
    );
    let head = seen.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /admin/x?q=1 http/1.1\r\n"), "{head}");
    let up = gw.state.load().config.routes[0]
        .upstream_authority
        .to_string();
    assert!(head.contains(&format!("\r\nhost: {up}\r\n")), "{head}");
    for gone in [
        "evil",
        "6.6.6.6",
        "proxy-authorization",
        "te:",
        "authorization:",
        "connection:",
    ] {
        assert!(!head.contains(gone), "{gone} in {head}");
    }
    for kept in [
        "\r\nx-forwarded-for: 127.0.0.1\r\n",
        "\r\nx-forwarded-host: shop.example\r\n",
        "\r\nx-forwarded-proto: https\r\n",
        "\r\nx-storegate-client-id: backoffice-app\r\n",
        "\r\nx-request-id: mine-1\r\n",
        "\r\naccept: a/b\r\naccept: c/d\r\n",
    ] {
        assert!(head.contains(kept), "{kept:?} not in {head}");
    }
}

#[tokio::test]
async fn an_early_answer_to_an_upload_ends_the_callers_connection() {
    // The upstream answers as soon as it has the head, reading no body.
    let (gw, _, token) = relayed(false, |_| {
        (
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig".to_vec(),
            false,
        )
    })
    .await;
    let mut tls = tls_stream(&gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    let head = format!(
        "PUT /admin/x HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\ncontent-length: 1000000\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&[b'x'; 1000]).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{out}"
    );
    assert!(out.ends_with("big"), "then the connection closed: {out}");
}

/// A token request whose body stops short is refused once `body_read_timeout_ms` has run out
/// (400 in the endpoint's shape, the connection closed): by the relay itself, where it was
/// handed to hyper after that wait and waited for a second time there.
#[tokio::test]
async fn a_token_body_that_stops_short_is_refused_after_one_body_timeout() {
    const BODY_TIMEOUT: Duration = Duration::from_millis(1500);
    let (up, _) = scripted(false, |_| (ok("x"), false)).await;
    let toml = config_with(up, |t| {
        let ms = BODY_TIMEOUT.as_millis() as i64;
        let server = t["server"].as_table_mut().unwrap();
        server.insert("body_read_timeout_ms".into(), ms.into());
    });
    let gw = spawn_gateway_toml(&toml).await;
    let mut tls = tls_stream(&gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    let started = tokio::time::Instant::now();
    let short = "POST /connect/token HTTP/1.1\r\nhost: gw\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 29\r\n\r\ngrant_type=";
    tls.write_all(short.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection is closed after the refusal");
    let waited = started.elapsed();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("not received in time"), "{out}");
    assert!(
        waited >= BODY_TIMEOUT && waited < 2 * BODY_TIMEOUT,
        "one body timeout, not two: {waited:?}"
    );
}
