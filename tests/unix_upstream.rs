//! Unix-socket upstreams (issue 22): `upstream = "unix:/path/app.sock"`, an app server in the
//! same pod, reached from the relay (HTTP/1.1 callers) and from hyper's path (HTTP/2 callers,
//! through the shared pool), with `Host: localhost` as nginx sends; a socket nobody listens
//! on is a 502; config mistakes name the key.

mod support;

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::Value;
use support::*;

fn with_unix_route(socket: &std::path::Path) -> String {
    let tcp = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    config_with(tcp, |t| {
        let route = &mut t["routes"].as_array_mut().unwrap()[0];
        let upstream = format!("unix:{}", socket.display());
        route
            .as_table_mut()
            .unwrap()
            .insert("upstream".into(), upstream.into());
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_upstream_serves_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let log = spawn_upstream_unix(&socket);
    let gw = spawn_gateway_toml(&with_unix_route(&socket)).await;
    let token = gw.token("backoffice-app", SECRET).await;
    for (client, protocol) in [
        (gw.client.clone(), "HTTP/1.1"),
        (gw.http2_client(), "HTTP/2"),
    ] {
        for n in 0..3 {
            let resp = client
                .get(gw.url(&format!("/admin/echo?n={n}")))
                .bearer_auth(&token)
                .header("host", "shop.example")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{protocol}");
            let seen: Value = resp.json().await.unwrap();
            let seen = &seen["headers"];
            assert_eq!(seen["host"], "localhost", "{protocol}: {seen}");
            assert_eq!(
                seen["x-storegate-client-id"], "backoffice-app",
                "{protocol}"
            );
            assert_eq!(seen["x-forwarded-host"], "shop.example", "{protocol}");
        }
        // A body longer than what comes with the head streams to the socket.
        let body = vec![b'u'; 300 * 1024];
        let resp = client
            .post(gw.url("/admin/upload"))
            .bearer_auth(&token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{protocol}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["received"], 300 * 1024, "{protocol}");
    }
    // Kept connections: fewer than the requests. Not an exact count: hyper-util's pool gives a
    // connection back once its answer's body is done, and a request that comes first opens
    // another (seen: 4 in a CI run, 2-3 usually).
    let connections = log.connections.load(Ordering::SeqCst);
    assert!(connections < 8, "{connections} connections for 8 requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_nobody_listens_on_is_a_bad_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gone.sock");
    let gw = spawn_gateway_toml(&with_unix_route(&socket)).await;
    let token = gw.token("backoffice-app", SECRET).await;
    for client in [gw.client.clone(), gw.http2_client()] {
        let resp = client
            .get(gw.url("/admin/echo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        let body = resp.text().await.unwrap();
        assert!(!body.contains("gone.sock"), "the path is not told: {body}");
    }
}

#[test]
fn socket_mistakes_name_their_key() {
    let long = format!("/{}", "s".repeat(120));
    for (upstream, says) in [
        ("unix:app.sock", "absolute path"),
        ("unix:", "absolute path"),
        (long.as_str(), "absolute path"),
        ("ftp://127.0.0.1:21", "unix: upstreams are supported"),
    ] {
        let upstream = if upstream.starts_with('/') {
            format!("unix:{upstream}")
        } else {
            upstream.to_owned()
        };
        let toml = config_with(std::net::SocketAddr::from(([127, 0, 0, 1], 9)), |t| {
            let route = &mut t["routes"].as_array_mut().unwrap()[0];
            let route = route.as_table_mut().unwrap();
            route.insert("upstream".into(), upstream.clone().into());
        });
        let dir = tempfile::tempdir().unwrap();
        let err = storegate::config::Config::from_toml_str(&toml, dir.path())
            .err()
            .unwrap_or_else(|| panic!("{upstream} was accepted"))
            .to_string();
        assert!(
            err.contains("routes[0].upstream") && err.contains(says),
            "{upstream}: {err}"
        );
    }
}
