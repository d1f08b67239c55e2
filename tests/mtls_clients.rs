//! Real mutual-TLS clients against the gateway (RFC 8705), installed by `scripts/test`:
//! Python's requests with `cert=` (tests/mtls_client.py) and npm's openid-client v6 with
//! `TlsClientAuth` and a certificate given through undici (tests/node/mtls_client.mjs). Each
//! gets a certificate-bound token as the erp client (tls_client_auth), uses it with its
//! certificate, and sees it refused without. (curl's `--cert` is in tests/mtls.rs.)

mod support;

use serde_json::Value;
use support::pki::{Pki, mtls_gateway, mtls_toml};
use support::*;
use tokio::process::Command;

/// Writes the gateway's CA and the erp certificate and key beside the gateway.
fn write_files(gw: &Gateway, pki: &Pki) -> [String; 3] {
    let dir = gw.dir.path();
    let files = [
        ("gw-ca.pem", &gw.ca_pem),
        ("erp.pem", &pki.erp.cert_pem),
        ("erp-key.pem", &pki.erp.key_pem),
    ];
    files.map(|(name, text)| {
        std::fs::write(dir.join(name), text).unwrap();
        dir.join(name).to_str().unwrap().to_owned()
    })
}

/// Runs `cmd` for at most 60 s and returns its stdout, failing with its output otherwise.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_with_a_client_certificate() {
    let pki = Pki::new();
    let (gw, _) = mtls_gateway(&pki, "optional", |_| {}).await;
    let [ca, cert, key] = write_files(&gw, &pki);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mtls_client.py");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args([script, &gw.url(""), &ca, "erp", &cert, &key, "/admin/echo"]);
    let out = Gateway::run_client(
        cmd,
        "python3 requests (python3-requests, installed by scripts/test)",
    )
    .await;
    assert_eq!(out.trim(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_tls_client_auth() {
    let pki = Pki::new();
    let (gw, up) = mtls_gateway(&pki, "optional", |_| {}).await;
    // openid-client checks that discovery names the URL it was given as the issuer.
    let issuer = gw.url("");
    gw.reload_with(&mtls_toml(up, "optional", |t| {
        t["tokens"]["issuer"] = issuer.as_str().into();
    }))
    .await;
    let [ca, cert, key] = write_files(&gw, &pki);
    let mut cmd = Command::new("node");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/node/mtls_client.mjs"
    ))
    .env("GATEWAY_URL", &issuer)
    .env("CLIENT_ID", "erp")
    .env("SCOPE", "read")
    .env("CLIENT_CERT", &cert)
    .env("CLIENT_KEY", &key)
    .env("PROTECTED_PATH", "/admin/echo")
    .env("NODE_EXTRA_CA_CERTS", &ca);
    let out = Gateway::run_client(
        cmd,
        "node with openid-client and undici (npm ci by scripts/test)",
    )
    .await;
    let seen: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    let claims = claims_of(seen["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], pki.erp.x5t(), "{claims}");
    assert_eq!(seen["with_certificate"], 200, "{seen}");
    assert_eq!(seen["without_certificate"], 401, "{seen}");
    let challenge = seen["challenge"].as_str().unwrap_or_default();
    assert!(challenge.contains("invalid_token"), "{seen}");
}
