//! Upstream connection affinity: each HTTP/1.1 caller's connection owns one upstream
//! connection (reused for its requests, never more than one), a reload that moves the route
//! moves it too, and HTTP/2 callers (many requests at once on a connection) share the pool.

mod support;

use std::sync::atomic::Ordering;

use support::*;

/// A plain-HTTP gateway (as behind a mesh) in front of `up`.
async fn plain_gateway(up: std::net::SocketAddr) -> (Gateway, String) {
    let gw = spawn_gateway_toml(&config_with(up, |t| {
        t.remove("tls");
        let server = t["server"].as_table_mut().unwrap();
        server.insert("plaintext".into(), true.into());
        // Room for the upstream's one-second `/wait`.
        let routes = t["routes"].as_array_mut().unwrap();
        let admin = routes[0].as_table_mut().unwrap();
        admin.insert("timeout_ms".into(), 5000.into());
    }))
    .await;
    let base = format!("http://{}", gw.addr);
    (gw, base)
}

async fn plain_token(base: &str) -> String {
    let token = send_json(
        reqwest::Client::new()
            .post(format!("{base}/connect/token"))
            .basic_auth("backoffice-app", Some(SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    token["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_keep_alive_caller_owns_one_upstream_connection() {
    let (up, log) = spawn_upstream().await;
    let (_gw, base) = plain_gateway(up).await;
    let token = plain_token(&base).await;
    let before = log.connections.load(Ordering::SeqCst);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (base, token) = (base.clone(), token.clone());
            tokio::spawn(async move {
                // One connection per caller.
                let client = reqwest::Client::builder()
                    .http1_only()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                for _ in 0..10 {
                    let resp = client
                        .get(format!("{base}/admin/echo"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 40);
    // One upstream connection per caller's connection, kept for its requests; fewer when a
    // caller that finished (or paused) parked its connection before another began
    // (`storegate::parking`).
    let opened = log.connections.load(Ordering::SeqCst) - before;
    assert!(
        (1..=4).contains(&opened),
        "{opened} upstream connections for 4 callers' 40 requests"
    );
}

#[tokio::test]
async fn a_reload_that_moves_the_route_moves_a_kept_connection_too() {
    let (first, first_log) = spawn_upstream().await;
    let (second, second_log) = spawn_upstream().await;
    let gw = spawn_gateway(first, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    // One caller's connection for every request of this test.
    let tls = tls_stream(&gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    let (mut caller, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let get = async |caller: &mut hyper::client::conn::http1::SendRequest<String>| {
        let req = hyper::Request::get("/admin/echo")
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .unwrap();
        caller.send_request(req).await.unwrap().status()
    };
    assert_eq!(get(&mut caller).await, 200);
    assert_eq!(first_log.requests.load(Ordering::SeqCst), 1);

    gw.reload_with(&config_toml(second, "")).await;
    assert_eq!(get(&mut caller).await, 200);
    assert_eq!(get(&mut caller).await, 200);
    assert_eq!(
        first_log.requests.load(Ordering::SeqCst),
        1,
        "nothing more to the old upstream"
    );
    assert_eq!(second_log.requests.load(Ordering::SeqCst), 2);
    assert_eq!(second_log.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_callers_over_plain_text_send_many_requests_at_once() {
    let (up, log) = spawn_upstream().await;
    let (_gw, base) = plain_gateway(up).await;
    let token = plain_token(&base).await;
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // Twenty at once on one connection; each waits a second upstream, so they overlap.
    let requests = (0..20).map(|_| {
        h2c.get(format!("{base}/admin/wait"))
            .bearer_auth(&token)
            .send()
    });
    let before = log.connections.load(Ordering::SeqCst);
    for resp in futures_util::future::join_all(requests).await {
        let resp = resp.unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 20);
    // Sent upstream side by side (HTTP/1.1 upstream: one connection each at a time), not
    // queued behind one owned connection.
    let opened = log.connections.load(Ordering::SeqCst) - before;
    assert!(opened > 1, "{opened} upstream connections");
}
