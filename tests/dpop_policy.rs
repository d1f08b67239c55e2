//! What a gateway says about DPoP and asks of it: a route that takes DPoP-bound tokens only
//! (`dpop_bound_access_tokens_required`), the metadata that says so (RFC 8414, RFC 9728), the
//! server nonces of `[dpop] require_nonce` (RFC 9449 §8, §9) in both error shapes, what the
//! upstream is told, and the metrics and access line.

mod support;

use reqwest::StatusCode;
use serde_json::Value;

use support::dpop::*;
use support::scripted::*;
use support::*;

/// The test config with `/admin/` requiring DPoP and `[dpop]` as given.
fn config(up: std::net::SocketAddr, dpop: &[(&str, toml::Value)]) -> String {
    config_with(up, |t| {
        let routes = t["routes"].as_array_mut().unwrap();
        for r in routes {
            if r["prefix"].as_str() == Some("/admin/") {
                let r = r.as_table_mut().unwrap();
                r.insert("dpop_bound_access_tokens_required".into(), true.into());
            }
        }
        let mut section = toml::Table::new();
        for (k, v) in dpop {
            section.insert((*k).into(), v.clone());
        }
        t.insert("dpop".into(), section.into());
    })
}

async fn token_request(gw: &Gateway, proof: Option<&str>) -> reqwest::Response {
    let mut req = (client_for(&gw.ca_pem, false).post(gw.url("/connect/token"))).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "backoffice-app"),
        ("client_secret", SECRET),
    ]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

/// `GET /admin/orders` with a DPoP token and its proof.
async fn orders(gw: &Gateway, token: &str, proof: impl AsRef<str>) -> reqwest::Response {
    (gw.client.get(gw.url("/admin/orders")))
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", proof.as_ref())
        .send()
        .await
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    (resp.headers().get(name)).map_or(String::new(), |v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_route_that_requires_dpop_refuses_bearer_and_its_metadata_says_so() {
    let (up, seen) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway_toml(&config(up, &[("algs", vec!["ES256", "EdDSA"].into())])).await;
    // A Bearer token: refused there, with the DPoP challenge alone and the configured algs.
    let bearer = gw.token("backoffice-app", SECRET).await;
    let resp = gw.get_bearer("/admin/orders", &bearer).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&resp, "www-authenticate");
    assert!(
        challenge
            .starts_with(r#"DPoP realm="storegate", algs="ES256 EdDSA", error="invalid_token""#)
            && !challenge.contains("Bearer"),
        "{challenge}"
    );
    // A DPoP-bound one with its proof: through, and the upstream is told how it came.
    let key = Key::new();
    let proof = key.proof("POST", &format!("{ISSUER}/connect/token"), "t", 0);
    let body: Value = token_request(&gw, Some(&proof)).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let htu = format!("{ISSUER}/admin/orders");
    let resp = orders(&gw, token, key.proof_with("GET", &htu, "g", 0, Some(token))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let heads = seen.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "only the DPoP request reached the upstream");
    assert!(
        heads[0].contains("x-storegate-token-type: DPoP\r\n"),
        "{}",
        heads[0]
    );
    // Metadata (RFC 8414 §2 via RFC 9449 §5.1; RFC 9728 §2).
    let server: Value = (gw
        .client
        .get(gw.url("/.well-known/oauth-authorization-server")))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let algs = serde_json::json!(["ES256", "EdDSA"]);
    assert_eq!(server["dpop_signing_alg_values_supported"], algs);
    let resource = |path: &str| {
        let url = gw.url(&format!("/.well-known/oauth-protected-resource{path}"));
        let client = gw.client.clone();
        async move {
            let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            v
        }
    };
    let admin = resource("/admin/").await;
    assert_eq!(admin["dpop_bound_access_tokens_required"], true, "{admin}");
    assert_eq!(admin["dpop_signing_alg_values_supported"], algs);
    let api = resource("/api/").await;
    assert_eq!(api.get("dpop_bound_access_tokens_required"), None, "{api}");
}

#[tokio::test]
async fn with_nonces_required_a_proof_without_a_fresh_one_is_told_the_nonce() {
    let (up, seen) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway_toml(&config(up, &[("require_nonce", true.into())])).await;
    let key = Key::new();
    let endpoint = format!("{ISSUER}/connect/token");
    // Token endpoint, no nonce: 400 use_dpop_nonce, the nonce in DPoP-Nonce (RFC 9449 §8).
    let resp = token_request(&gw, Some(&key.proof("POST", &endpoint, "a", 0))).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let nonce = header(&resp, "dpop-nonce");
    assert!(!nonce.is_empty());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce", "{body}");
    // With it: a token, and a nonce with it.
    let with_nonce = |htm: &str, htu: &str, jti: &str, nonce: &str, token: Option<&str>| {
        let mut claims =
            serde_json::json!({"jti": jti, "htm": htm, "htu": htu, "iat": now(), "nonce": nonce});
        if let Some(t) = token {
            claims["ath"] = ath(t).into();
        }
        key.sign(&claims)
    };
    let resp = token_request(&gw, Some(&with_nonce("POST", &endpoint, "b", &nonce, None))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!header(&resp, "dpop-nonce").is_empty());
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();

    // The guard: no nonce, or a forged one, is 401 use_dpop_nonce (§9) with a fresh nonce.
    let htu = format!("{ISSUER}/admin/orders");
    let get = async |proof: String| orders(&gw, &token, proof).await;
    let forged = "AAAAAGlTV0Z0ZXN0dGVzdHRlc3R0ZXN0";
    for (n, proof) in [
        key.proof_with("GET", &htu, "c", 0, Some(&token)),
        with_nonce("GET", &htu, "d", forged, Some(&token)),
    ]
    .into_iter()
    .enumerate()
    {
        let resp = get(proof).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{n}");
        let challenge = header(&resp, "www-authenticate");
        assert!(
            challenge.contains(r#"error="use_dpop_nonce""#),
            "{challenge}"
        );
        assert!(!header(&resp, "dpop-nonce").is_empty());
    }
    let resp = get(with_nonce("GET", &htu, "e", &nonce, Some(&token))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(seen.heads.lock().unwrap().len(), 1);

    // The `{"errors"}` shape (seed 004) names the code, so that a client can act on it.
    let resp = (client_for(&gw.ca_pem, false).post(gw.url("/oauth/access_token")))
        .form(&[("grant_type", "implicit"), ("client_id", "public-key")])
        .header(
            "DPoP",
            key.proof("POST", &format!("{ISSUER}/oauth/access_token"), "f", 0),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(!header(&resp, "dpop-nonce").is_empty());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "use_dpop_nonce", "{body}");
    assert_eq!(body["errors"][0]["status"], "400", "{body}");

    // Counted by reason.
    let refused = |reason: &str| {
        (gw.state.shared.dpop.refusals())
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| n)
    };
    assert_eq!(refused("nonce"), 4);
}

/// `storegate dpop key` and `storegate dpop proof` make what curl needs: a token request's
/// proof, and a guarded request's (with `ath` from the token in the environment).
#[tokio::test]
async fn the_cli_makes_the_proofs_a_shell_sends() {
    let (up, seen) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway_toml(&config(up, &[])).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dpop.pem");
    let storegate = |args: &[&str], token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_storegate"));
        cmd.args(args).env_remove("STOREGATE_DPOP_TOKEN");
        if let Some(t) = token {
            cmd.env("STOREGATE_DPOP_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    storegate(&["dpop", "key", key.to_str().unwrap()], None);
    let key = key.to_str().unwrap();
    let endpoint = format!("{ISSUER}/connect/token");
    let proof = storegate(&["dpop", "proof", "--key", key, "POST", &endpoint], None);
    let resp = token_request(&gw, Some(&proof)).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap();
    let htu = format!("{ISSUER}/admin/orders");
    let proof = storegate(&["dpop", "proof", "--key", key, "GET", &htu], Some(token));
    let resp = orders(&gw, token, proof).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(seen.heads.lock().unwrap().len(), 1);
}

/// A proof by another key than the token's is refused before it is recorded: the binding is
/// checked before the replay store (and Redis) are written, so such proofs fill nothing.
#[tokio::test]
async fn a_proof_by_another_key_is_refused_before_it_is_recorded() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway_toml(&config(up, &[])).await;
    let key = Key::new();
    let proof = key.proof("POST", &format!("{ISSUER}/connect/token"), "t", 0);
    let body: Value = token_request(&gw, Some(&proof)).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let held = gw.state.shared.dpop.local.len();
    let htu = format!("{ISSUER}/admin/orders");
    let other = Key::new().proof_with("GET", &htu, "o", 0, Some(token));
    let resp = orders(&gw, token, other).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(gw.state.shared.dpop.local.len(), held, "nothing recorded");
    // The token's own key's proof is recorded.
    let own = key.proof_with("GET", &htu, "k", 0, Some(token));
    let resp = orders(&gw, token, own).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(gw.state.shared.dpop.local.len(), held + 1);
}
