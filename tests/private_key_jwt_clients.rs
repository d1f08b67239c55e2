//! Real private_key_jwt clients against the gateway, installed by `scripts/test`: npm's
//! openid-client v6 (`PrivateKeyJwt`: `aud` = the issuer, 60 s, as draft-ietf-oauth-rfc7523bis
//! asks — accepted as configured by default) and Python's authlib (`PrivateKeyJWT`: `aud` =
//! the token endpoint URL, one hour — refused by default, saying why, and accepted with
//! `[private_key_jwt] token_endpoint_audience = true` and `max_lifetime_secs = 3600`).

mod support;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use support::*;
use tokio::process::Command;

/// A P-256 key: its PKCS#8 PEM (for the client) and its public JWK with `kid` (for the config).
fn key(kid: &str) -> (String, Value) {
    let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap()).unwrap();
    jwk["kid"] = kid.into();
    (pem, jwk)
}

/// The test config with the `erp` client registered for private_key_jwt with `jwk`, the
/// issuer `issuer`, and `[private_key_jwt]` as given.
fn config(
    up: std::net::SocketAddr,
    jwk: &Value,
    issuer: &str,
    pkj: &[(&str, toml::Value)],
) -> String {
    config_with(up, |t| {
        t["tokens"]["issuer"] = issuer.into();
        let jwks: toml::Value = serde_json::from_value(json!({ "keys": [jwk] })).unwrap();
        let mut erp = toml::Table::new();
        erp.insert("id".into(), "erp".into());
        erp.insert("apis".into(), vec![toml::Value::from("backoffice")].into());
        erp.insert("scopes".into(), vec![toml::Value::from("read")].into());
        erp.insert(
            "token_endpoint_auth_method".into(),
            "private_key_jwt".into(),
        );
        erp.insert("jwks".into(), jwks);
        clients_of(t).push(erp.into());
        let section: toml::Table = pkj
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        t.insert("private_key_jwt".into(), section.into());
    })
}

/// A gateway whose issuer is its own URL (clients check that discovery names it), configured
/// by `config` once the port is known.
async fn gateway(jwk: &Value, pkj: &[(&str, toml::Value)]) -> Gateway {
    let (up, _) = spawn_upstream().await;
    // The same [private_key_jwt] from the start: its lifetime is restart-only.
    let gw = spawn_gateway_toml(&config(up, jwk, ISSUER, pkj)).await;
    let issuer = gw.url("");
    gw.reload_with(&config(up, jwk, &issuer, pkj)).await;
    gw
}

fn write(gw: &Gateway, name: &str, text: &str) -> String {
    let path = gw.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_private_key_jwt() {
    let (pem, jwk) = key("erp-2026-12");
    let gw = gateway(&jwk, &[]).await;
    let (ca, key_file) = (
        write(&gw, "gw-ca.pem", &gw.ca_pem),
        write(&gw, "erp.key", &pem),
    );
    let mut cmd = Command::new("node");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/node/pkj_client.mjs"
    ))
    .env("GATEWAY_URL", gw.url(""))
    .env("CLIENT_ID", "erp")
    .env("SCOPE", "read")
    .env("KID", "erp-2026-12")
    .env("CLIENT_KEY", &key_file)
    .env("NODE_EXTRA_CA_CERTS", &ca);
    let out = Gateway::run_client(cmd, "node with openid-client (npm ci by scripts/test)").await;
    let seen: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    for n in ["first", "second"] {
        let token = seen[n].as_str().unwrap_or_else(|| panic!("{seen}"));
        assert_eq!(claims_of(token)["client_id"], "erp");
        assert_eq!(gw.get_bearer("/admin/echo", token).await.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_private_key_jwt_is_refused_by_default_and_served_when_configured() {
    let (pem, jwk) = key("erp-2026-12");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/private_key_jwt_client.py"
    );
    let python = |gw: &Gateway, expect: &str| {
        let (ca, key_file) = (
            write(gw, "gw-ca.pem", &gw.ca_pem),
            write(gw, "erp.key", &pem),
        );
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args([script, &gw.url(""), &ca, "erp", &key_file, expect]);
        cmd
    };
    // Strict (the default): authlib's aud is the token endpoint URL.
    let strict = gateway(&jwk, &[]).await;
    let out = Gateway::run_client(
        python(&strict, "refused"),
        "python3 authlib (installed by scripts/test)",
    )
    .await;
    assert!(out.contains("aud must be the issuer"), "{out}");
    // Served: the endpoint URL as aud, and authlib's one-hour lifetime.
    let served = gateway(
        &jwk,
        &[
            ("token_endpoint_audience", true.into()),
            ("max_lifetime_secs", 3600.into()),
        ],
    )
    .await;
    let out = Gateway::run_client(
        python(&served, "accepted"),
        "python3 authlib (installed by scripts/test)",
    )
    .await;
    assert_eq!(out.trim(), "ok");
}
