//! A real DPoP client against the gateway: npm's openid-client v6 (installed by `scripts/test`
//! into tests/node/node_modules) runs tests/node/dpop_client.mjs. It discovers the gateway,
//! gets a DPoP-bound token with `randomDPoPKeyPair`, `getDPoPHandle` and
//! `clientCredentialsGrant`, calls a guarded route twice with `fetchProtectedResource` (a fresh
//! proof each time), and once more with the same token as a plain Bearer token.

mod support;

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::Value;
use tokio::process::Command;

use support::*;

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

/// Fails (never skips) when node, at the version openid-client needs, or the npm packages are
/// missing.
async fn assert_node_and_packages() {
    let probe = Command::new("node")
        .args(["--input-type=module", "-e", PROBE])
        .current_dir(NODE_DIR)
        .output()
        .await;
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "Node.js 20 or later with openid-client in tests/node/node_modules is needed: run \
         scripts/test, which runs `npm ci --prefix tests/node` ({probe:?})"
    );
}

/// openid-client v6 needs Node.js 20 (its README: "Node.js v20.x as baseline is required").
const PROBE: &str = "if (+process.versions.node.split('.')[0] < 20) \
    throw new Error(`Node.js 20 or later is needed, this is ${process.version}`); \
    await import('openid-client')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_gets_a_dpop_bound_token_and_uses_it() {
    drive(false).await;
}

/// With `[dpop] require_nonce`, openid-client's first token request has no nonce: it is
/// refused with `use_dpop_nonce` and a `DPoP-Nonce`, which the client signs its next proofs
/// with by itself (RFC 9449 §8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_follows_the_gateways_nonces() {
    let gw = drive(true).await;
    let nonce_refusals = (gw.state.shared.dpop.refusals())
        .find(|(reason, _)| *reason == "nonce")
        .map(|(_, n)| n);
    assert!(
        nonce_refusals >= Some(1),
        "a proof without a nonce was refused first"
    );
}

/// Runs the client against a gateway (which it returns, to be asked afterwards).
async fn drive(require_nonce: bool) -> Gateway {
    assert_node_and_packages().await;
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    // openid-client addresses the gateway where it listens, https://127.0.0.1:PORT, and checks
    // that discovery names that issuer; the port is known only now, so the issuer (and with
    // it the origin each DPoP proof's htu must have, [dpop] public_origin's default) comes in
    // a reload.
    let issuer = gw.url("");
    gw.reload_with(&config_with(up, |t| {
        t["tokens"]["issuer"] = issuer.as_str().into();
        let mut dpop = toml::Table::new();
        dpop.insert("require_nonce".into(), require_nonce.into());
        t.insert("dpop".into(), dpop.into());
    }))
    .await;
    let ca = gw.dir.path().join("test-ca.pem");
    std::fs::write(&ca, &gw.ca_pem).unwrap();

    let run = Command::new("node")
        .arg(format!("{NODE_DIR}/dpop_client.mjs"))
        .env("GATEWAY_URL", &issuer)
        .env("CLIENT_ID", "backoffice-app")
        .env("CLIENT_SECRET", SECRET)
        .env("SCOPE", "read")
        .env("PROTECTED_PATH", "/admin/echo")
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("openid-client finished within 60 s")
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "openid-client: {stdout}{stderr}");
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    // The token: DPoP (openid-client lowercases token_type), bound to the client's key.
    assert!(
        seen["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop")),
        "{seen}"
    );
    let jwk: Jwk = serde_json::from_value(seen["jwk"].clone()).unwrap();
    let claims = claims_of(seen["access_token"].as_str().unwrap());
    assert_eq!(
        claims["cnf"]["jkt"].as_str(),
        Some(jwk.thumbprint(ThumbprintHash::SHA256).unwrap().as_str()),
        "cnf.jkt is the thumbprint of openid-client's key: {claims}"
    );
    assert_eq!(claims["iss"], issuer.as_str());

    // Both DPoP requests passed (each with its own proof: a replay would be refused), and
    // reached the upstream; the Bearer downgrade did not.
    for n in ["first", "second"] {
        assert_eq!(seen[n]["status"], 200, "{n}: {seen}");
        let echo: Value = serde_json::from_str(seen[n]["body"].as_str().unwrap()).unwrap();
        assert_eq!(echo["path"], "/admin/echo", "{n}: {echo}");
    }
    assert_eq!(
        log.requests.load(Ordering::SeqCst),
        2,
        "the upstream saw both"
    );

    // RFC 9449 §7.2: a DPoP-bound token sent as Bearer is refused; the 401 says why in the
    // Bearer challenge and offers DPoP beside it (Figure 18:
    // `Bearer error="invalid_token", ..., DPoP algs="..."`).
    let bearer = &seen["bearer"];
    assert_eq!(bearer["status"], 401, "{seen}");
    let challenges = bearer["challenges"].as_array().expect("parsed challenges");
    let scheme = |name: &str| {
        challenges
            .iter()
            .find(|c| c["scheme"].as_str() == Some(name))
    };
    let bearer_challenge = scheme("bearer").unwrap_or_else(|| panic!("{bearer}"));
    assert_eq!(
        bearer_challenge["parameters"]["error"], "invalid_token",
        "{bearer}"
    );
    let dpop_challenge = scheme("dpop").unwrap_or_else(|| {
        panic!("no DPoP challenge beside Bearer (RFC 9449 §7.2, Figure 18): {bearer}")
    });
    assert!(
        dpop_challenge["parameters"]["algs"]
            .as_str()
            .is_some_and(|a| a.split(' ').any(|alg| alg == "ES256")),
        "the DPoP challenge names the algorithms, ES256 among them: {bearer}"
    );
    gw
}
