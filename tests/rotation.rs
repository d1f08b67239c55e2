//! Rotating what a gateway trusts and presents, live: its TLS certificate (new handshakes get
//! the new one, open connections continue), its signing key (the old key overlaps until its
//! tokens expire, across restarts; a next key is published before it signs), and files
//! mounted the Kubernetes way, swapped through a `..data` symlink.

mod support;

use std::sync::atomic::Ordering;

use support::*;

/// A TLS connection to the gateway trusting `cas`, and the SHA-256 of the certificate it saw.
async fn connect(
    gw: &Gateway,
    cas: &[&str],
) -> (hyper::client::conn::http1::SendRequest<String>, Vec<u8>) {
    let tls = tls_stream(gw, cas, &[b"http/1.1"]).await;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let io = hyper_util::rt::TokioIo::new(tls);
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    (sender, leaf)
}

async fn get(sender: &mut hyper::client::conn::http1::SendRequest<String>, token: &str) -> u16 {
    let req = hyper::Request::get("/admin/echo")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    sender.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_new_certificate_serves_new_connections_while_open_ones_continue() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_toml(up, "")).await;
    let token = gw.token("backoffice-app", SECRET).await;
    let renewed = storegate::tls::DevPki::generate(&["localhost", "127.0.0.1"]).unwrap();
    let cas = [gw.ca_pem.as_str(), renewed.ca_pem.as_str()];
    let (mut open, old_cert) = connect(&gw, &cas).await;
    assert_eq!(get(&mut open, &token).await, 200);

    let stored = gw.state.shared.reloads.succeeded.load(Ordering::SeqCst);
    gw.replace_file("key.pem", &renewed.key_pem);
    gw.replace_file("cert.pem", &renewed.cert_pem);
    gw.await_reloads(|s, _| s > stored).await;

    let (mut fresh, new_cert) = connect(&gw, &cas).await;
    let expected = rustls_pki_types::CertificateDer::from_pem_slice(renewed.cert_pem.as_bytes());
    use rustls_pki_types::pem::PemObject;
    assert_ne!(new_cert, old_cert);
    assert_eq!(
        new_cert,
        expected.unwrap().to_vec(),
        "the renewed certificate"
    );
    assert_eq!(get(&mut fresh, &token).await, 200);
    assert_eq!(
        get(&mut open, &token).await,
        200,
        "the open connection continues"
    );
}

/// Kubernetes mounts a ConfigMap or Secret as `..data -> ..<timestamp>/` with each file a
/// symlink through `..data`, and updates it by swapping `..data` atomically.
#[tokio::test]
async fn a_mounted_secret_swapped_through_its_data_symlink_is_reloaded() {
    use std::os::unix::fs::symlink;
    let (up, _) = spawn_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("..2026_11_23_a")).unwrap();
    symlink("..2026_11_23_a", root.join("..data")).unwrap();
    for f in ["gateway.toml", "cert.pem", "key.pem", "signing.pem"] {
        symlink(format!("..data/{f}"), root.join(f)).unwrap();
    }
    let gw = spawn_gateway_in(dir, &config_toml(up, "")).await;
    assert!(
        root_is_linked(&gw),
        "the gateway wrote through the symlinks"
    );

    let next = gw.dir.path().join("..2026_11_23_b");
    std::fs::create_dir(&next).unwrap();
    for f in ["cert.pem", "key.pem", "signing.pem"] {
        std::fs::copy(gw.dir.path().join(f), next.join(f)).unwrap();
    }
    let with_client = config_with(up, |t| {
        clients_of(t).push(client_entry(
            "new-app",
            "new-secret-01234",
            &["store"],
            &["read"],
        ))
    });
    std::fs::write(next.join("gateway.toml"), with_client).unwrap();
    let stored = gw.state.shared.reloads.succeeded.load(Ordering::SeqCst);
    symlink("..2026_11_23_b", gw.dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(
        gw.dir.path().join("..data_tmp"),
        gw.dir.path().join("..data"),
    )
    .unwrap();
    gw.await_reloads(|s, _| s > stored).await;
    gw.token("new-app", "new-secret-01234").await;
}

fn root_is_linked(gw: &Gateway) -> bool {
    let real = gw.dir.path().join("..2026_11_23_a");
    ["gateway.toml", "cert.pem", "key.pem", "signing.pem"]
        .iter()
        .all(|f| real.join(f).is_file())
}

fn kid_of_token(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn new_signing_key() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem()
}

/// A config whose signing key file is `key`, with tokens of `lifetime` seconds, leeway 0.
fn signing_config(up: std::net::SocketAddr, key: &str, lifetime: i64, state_dir: bool) -> String {
    config_with(up, |t| {
        let signing = t["signing"].as_table_mut().unwrap();
        signing.insert("key".into(), key.into());
        let tokens = t["tokens"].as_table_mut().unwrap();
        tokens.insert("lifetime_secs".into(), lifetime.into());
        tokens.insert("leeway_secs".into(), 0.into());
        if state_dir {
            let server = t["server"].as_table_mut().unwrap();
            server.insert("state_dir".into(), "state".into());
        }
    })
}

#[tokio::test]
async fn a_new_signing_key_overlaps_the_old_until_its_tokens_expire() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&signing_config(up, "signing.pem", 3, false)).await;
    let old_kid = gw.generation().keys.kid.clone();
    let old_token = gw.token("backoffice-app", SECRET).await;
    gw.replace_file("signing2.pem", new_signing_key());
    let g = gw
        .reload_with(&signing_config(up, "signing2.pem", 3, false))
        .await;
    let new_kid = g.keys.kid.clone();
    assert_ne!(new_kid, old_kid);

    assert_eq!(gw.get_bearer("/admin/echo", &old_token).await.status(), 200);
    let new_token = gw.token("backoffice-app", SECRET).await;
    assert_eq!(kid_of_token(&new_token), new_kid);
    let kids = gw.jwks_kids().await;
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );

    // The old key's tokens live 3 s: then a rebuild of its own takes the key out.
    let stored = gw.state.shared.reloads.succeeded.load(Ordering::SeqCst);
    gw.await_reloads(|s, _| s > stored).await;
    assert_eq!(gw.jwks_kids().await, vec![new_kid]);
    assert_eq!(gw.get_bearer("/admin/echo", &old_token).await.status(), 401);
}

#[tokio::test]
async fn a_gateway_restarted_mid_rotation_still_verifies_the_old_keys_tokens() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&signing_config(up, "signing.pem", 600, true)).await;
    let old_kid = gw.generation().keys.kid.clone();
    let old_token = gw.token("backoffice-app", SECRET).await;
    gw.replace_file("signing2.pem", new_signing_key());
    let rotated = signing_config(up, "signing2.pem", 600, true);
    gw.reload_with(&rotated).await;
    let dir = gw.stop_keeping_dir().await;

    let restarted = spawn_gateway_in(dir, &rotated).await;
    assert!(restarted.jwks_kids().await.contains(&old_kid));
    let resp = restarted.get_bearer("/admin/echo", &old_token).await;
    assert_eq!(
        resp.status(),
        200,
        "remembered in state_dir across the restart"
    );
}

#[tokio::test]
async fn a_next_key_is_published_before_it_signs_then_promoted() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config_toml(up, "")).await;
    let first_kid = gw.generation().keys.kid.clone();
    gw.replace_file("next.pem", new_signing_key());
    let g = gw
        .reload_with(&config_with(up, |t| {
            let signing = t["signing"].as_table_mut().unwrap();
            signing.insert("next_key".into(), "next.pem".into());
            signing.insert("next_kid".into(), "2026-12".into());
        }))
        .await;
    assert_eq!(g.keys.kid, first_kid, "the next key does not sign yet");
    assert_eq!(
        gw.jwks_kids().await,
        vec![first_kid.clone(), "2026-12".into()]
    );
    let old_token = gw.token("backoffice-app", SECRET).await;
    assert_eq!(kid_of_token(&old_token), first_kid);

    gw.reload_with(&config_with(up, |t| {
        let signing = t["signing"].as_table_mut().unwrap();
        signing.insert("key".into(), "next.pem".into());
        signing.insert("kid".into(), "2026-12".into());
    }))
    .await;
    let token = gw.token("backoffice-app", SECRET).await;
    assert_eq!(kid_of_token(&token), "2026-12");
    assert!(
        gw.jwks_kids().await.contains(&first_kid),
        "the old key is remembered"
    );
    assert_eq!(gw.get_bearer("/admin/echo", &old_token).await.status(), 200);
}

#[tokio::test]
async fn a_kid_reused_for_a_new_key_does_not_vouch_for_the_old_keys_cached_tokens() {
    let (up, _) = spawn_upstream().await;
    let named = |key: &str| {
        config_with(up, |t| {
            let signing = t["signing"].as_table_mut().unwrap();
            signing.insert("key".into(), key.into());
            signing.insert("kid".into(), "fixed".into());
        })
    };
    let gw = spawn_gateway_toml(&named("signing.pem")).await;
    let token = gw.token("backoffice-app", SECRET).await;
    for _ in 0..2 {
        assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
    }
    assert!(gw.cache_hits() >= 1);
    gw.replace_file("signing2.pem", new_signing_key());
    gw.reload_with(&named("signing2.pem")).await;
    let resp = gw.get_bearer("/admin/echo", &token).await;
    assert_eq!(resp.status(), 401, "signed by the old key, cached or not");
    let fresh = gw.token("backoffice-app", SECRET).await;
    assert_eq!(gw.get_bearer("/admin/echo", &fresh).await.status(), 200);
}
