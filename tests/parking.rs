//! Idle callers give back their upstream connections (`storegate::parking`): a relayed caller
//! that goes idle, or closes, parks its upstream connection, and another caller's request
//! takes it rather than opening one. So upstream connections follow the requests in flight,
//! not the callers connected.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::*;

/// An HTTP/1.1 caller with a connection of its own (TLS).
fn caller(gw: &Gateway) -> reqwest::Client {
    let pem = reqwest::Certificate::from_pem(gw.ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([pem])
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, gw: &Gateway, token: &str) {
    let resp = client
        .get(gw.url("/admin/echo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
}

/// Awaits the number of parked connections reaching `n` (they park when their caller has
/// been idle for a moment, or closes).
async fn await_parked(gw: &Gateway, n: usize) {
    let parking = &gw.state.shared.parking;
    tokio::time::timeout(Duration::from_secs(10), async {
        while parking.len() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} parked, not {n}", parking.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_callers_upstream_connection_serves_the_next_caller() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let before = log.connections.load(Ordering::SeqCst);

    // Four callers, each with its own connection, at once: one upstream connection each.
    let idle: Vec<_> = (0..4).map(|_| caller(&gw)).collect();
    futures_util::future::join_all(idle.iter().map(|c| get(c, &gw, &token))).await;
    let opened = log.connections.load(Ordering::SeqCst) - before;
    assert!(opened >= 1);
    // They stay connected, idle: their upstream connections are parked...
    await_parked(&gw, opened).await;

    // ...and new callers (connected meanwhile, and staying so) take them, one at a time.
    let newcomers: Vec<_> = (0..opened).map(|_| caller(&gw)).collect();
    for c in &newcomers {
        get(c, &gw, &token).await;
    }
    assert_eq!(
        log.connections.load(Ordering::SeqCst) - before,
        opened,
        "no upstream connection opened for the newcomers"
    );
    assert_eq!(log.requests.load(Ordering::SeqCst), 2 * opened);

    // The idle callers come back: each gets a connection again (parked, or new).
    for c in &idle {
        get(c, &gw, &token).await;
    }
    drop(newcomers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_callers_upstream_connection_serves_the_next_caller() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let before = log.connections.load(Ordering::SeqCst);
    for _ in 0..3 {
        {
            let c = caller(&gw);
            get(&c, &gw, &token).await;
        }
        // The caller closed: its upstream connection waits for the next one.
        await_parked(&gw, 1).await;
    }
    assert_eq!(log.connections.load(Ordering::SeqCst) - before, 1);
    assert_eq!(log.requests.load(Ordering::SeqCst), 3);
}

/// An idle HTTP/1.1 caller's connection, once it has let go of all it held (its upstream
/// connection parked), still ends at once when the server stops: the stop does not wait out
/// the shutdown grace (30 s here) for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_callers_connection_ends_when_the_server_stops() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_with(up, |t| {
        let server = t["server"].as_table_mut().unwrap();
        server.insert("shutdown_grace_ms".into(), 30_000.into());
    }))
    .await;
    let token = gw.token("backoffice-app", SECRET).await;
    let mut tls = tls_stream(&gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    let head = format!(
        "GET /admin/echo HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    // The answer, whole (its Content-Length says where it ends).
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let whole = |got: &[u8]| {
        let text = String::from_utf8_lossy(got);
        let (head, body) = text.split_once("\r\n\r\n")?;
        (body.len() >= support::scripted::content_length(head)).then_some(())
    };
    while whole(&got).is_none() {
        let n = tls.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the answer was whole");
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    // Idle: the connection gives its upstream connection back.
    await_parked(&gw, 1).await;

    tokio::time::timeout(Duration::from_secs(10), gw.stop())
        .await
        .expect("the stop waited for the idle connection");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle connection was closed");
    assert!(rest.is_empty());
}
