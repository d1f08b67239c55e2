//! HTTPS upstreams (issue 22): the upstream's certificate verified against the route's
//! `upstream_ca` (a wrong CA is a 502), SNI from the host name and none for an IP literal, a
//! client certificate for an upstream that requires one, and the CA, certificate and key
//! reloaded live; from HTTP/1.1 and HTTP/2 callers alike.

mod support;

use rcgen::SanType;
use reqwest::StatusCode;
use serde_json::Value;
use support::pki::{Ca, Identity};
use support::*;

/// The default test config with the /admin/ route to `upstream` over TLS, its files in the
/// gateway's folder (written by the caller): `extra` keys for that route.
fn https_route(upstream: &str, extra: &[(&str, &str)]) -> String {
    let tcp = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    config_with(tcp, |t| {
        let route = &mut t["routes"].as_array_mut().unwrap()[0];
        let route = route.as_table_mut().unwrap();
        route.insert("upstream".into(), upstream.into());
        for (k, v) in extra {
            route.insert((*k).into(), (*v).into());
        }
    })
}

/// A gateway whose folder holds `files` before it starts.
async fn gateway_with(toml: &str, files: &[(&str, &str)]) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    spawn_gateway_in(dir, toml).await
}

async fn status_on_both(gw: &Gateway, token: &str) -> Vec<(StatusCode, Value)> {
    let mut out = Vec::new();
    for client in [gw.client.clone(), gw.http2_client()] {
        let resp = client
            .get(gw.url("/admin/echo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        out.push((status, resp.json().await.unwrap_or(Value::Null)));
    }
    out
}

fn server_identity(ca: &Ca) -> Identity {
    let ip = SanType::IpAddress([127, 0, 0, 1].into());
    ca.issue_server(
        1,
        vec![SanType::DnsName("localhost".try_into().unwrap()), ip],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_certificate_is_verified_with_sni_from_its_name() {
    let ca = Ca::new("upstream CA");
    let (up, log, names) = spawn_upstream_tls(&server_identity(&ca), None).await;
    let port = up.port();
    let toml = https_route(
        &format!("https://localhost:{port}"),
        &[("upstream_ca", "up-ca.pem")],
    );
    let gw = gateway_with(&toml, &[("up-ca.pem", &ca.pem)]).await;
    let token = gw.token("backoffice-app", SECRET).await;
    for (status, seen) in status_on_both(&gw, &token).await {
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(seen["headers"]["host"], format!("localhost:{port}"));
        assert_eq!(seen["headers"]["x-storegate-client-id"], "backoffice-app");
    }
    assert!(
        names
            .lock()
            .unwrap()
            .iter()
            .all(|n| n.as_deref() == Some("localhost")),
        "SNI is the upstream's host name"
    );
    let before = log.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(before, 2);

    // An IP literal: verified against the certificate's IP address, and no SNI (RFC 6066 §3).
    let toml = https_route(
        &format!("https://127.0.0.1:{port}"),
        &[("upstream_ca", "up-ca.pem")],
    );
    gw.reload_with(&toml).await;
    names.lock().unwrap().clear();
    for (status, seen) in status_on_both(&gw, &token).await {
        assert_eq!(status, StatusCode::OK, "{seen}");
    }
    let sent = names.lock().unwrap().clone();
    assert!(
        !sent.is_empty() && sent.iter().all(Option::is_none),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_until_the_ca_is_reloaded() {
    let (ca, other) = (Ca::new("upstream CA"), Ca::new("another CA"));
    let (up, log, _) = spawn_upstream_tls(&server_identity(&ca), None).await;
    let toml = https_route(
        &format!("https://localhost:{}", up.port()),
        &[("upstream_ca", "up-ca.pem")],
    );
    let gw = gateway_with(&toml, &[("up-ca.pem", &other.pem)]).await;
    let token = gw.token("backoffice-app", SECRET).await;
    for (status, body) in status_on_both(&gw, &token).await {
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(
            !body.to_string().contains("CA"),
            "no TLS detail to the caller: {body}"
        );
    }
    assert_eq!(log.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    let errors = {
        let metrics = &gw.state.shared.metrics;
        let labels = storegate::metrics::RouteKind {
            route: "/admin/".into(),
            kind: "connect",
        };
        metrics.upstream_errors.get_or_create(&labels).get()
    };
    assert_eq!(errors, 2, "counted as connect errors");
    // The right CA, reloaded live from the same file.
    gw.reload_file("up-ca.pem", &ca.pem).await;
    for (status, seen) in status_on_both(&gw, &token).await {
        assert_eq!(status, StatusCode::OK, "{seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_presented_and_swapped_on_reload() {
    let (ca, clients, stranger) = (Ca::new("upstream CA"), Ca::new("client CA"), Ca::new("x"));
    let cn = [(rcgen::DnType::CommonName, "storegate")];
    let (good, wrong) = (
        clients.issue(7, &cn, vec![]),
        stranger.issue(8, &cn, vec![]),
    );
    let (up, _, _) = spawn_upstream_tls(&server_identity(&ca), Some(&clients.pem)).await;
    let upstream = format!("https://localhost:{}", up.port());
    // Without a certificate, the upstream refuses the handshake.
    let bare = https_route(&upstream, &[("upstream_ca", "up-ca.pem")]);
    let gw = gateway_with(
        &bare,
        &[
            ("up-ca.pem", &ca.pem),
            ("client.pem", &wrong.cert_pem),
            ("client-key.pem", &wrong.key_pem),
        ],
    )
    .await;
    let token = gw.token("backoffice-app", SECRET).await;
    for (status, _) in status_on_both(&gw, &token).await {
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }
    // A certificate from a CA the upstream does not trust: refused too.
    let with_cert = https_route(
        &upstream,
        &[
            ("upstream_ca", "up-ca.pem"),
            ("upstream_client_cert", "client.pem"),
            ("upstream_client_key", "client-key.pem"),
        ],
    );
    gw.reload_with(&with_cert).await;
    for (status, _) in status_on_both(&gw, &token).await {
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }
    // The certificate and key swapped on disk: the next connections present the new one.
    gw.replace_file("client-key.pem", &good.key_pem);
    gw.reload_file("client.pem", &good.cert_pem).await;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let statuses = status_on_both(&gw, &token).await;
        if statuses.iter().all(|(s, _)| *s == StatusCode::OK) {
            break;
        }
        // The key and the certificate are two files: a reload may see one before the other.
        assert!(std::time::Instant::now() < end, "{statuses:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[test]
fn tls_mistakes_name_their_key() {
    for (upstream, extra, key) in [
        (
            "http://127.0.0.1:9",
            &[("upstream_ca", "ca.pem")][..],
            "upstream_ca",
        ),
        (
            "unix:/run/a.sock",
            &[("upstream_client_cert", "c.pem")][..],
            "upstream_client_cert",
        ),
        (
            "https://127.0.0.1:9",
            &[("upstream_client_cert", "c.pem")][..],
            "upstream_client_key",
        ),
        (
            "https://127.0.0.1:9",
            &[("upstream_client_key", "k.pem")][..],
            "upstream_client_cert",
        ),
        (
            "https://127.0.0.1:9",
            &[("upstream_certificate", "k.pem")][..],
            "upstream_certificate",
        ),
    ] {
        let toml = https_route(upstream, extra);
        let dir = tempfile::tempdir().unwrap();
        let err = storegate::config::Config::from_toml_str(&toml, dir.path())
            .err()
            .unwrap_or_else(|| panic!("{upstream} {extra:?} was accepted"))
            .to_string();
        assert!(err.contains(key), "{upstream} {extra:?}: {err}");
    }
}
