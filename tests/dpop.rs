//! DPoP at the token endpoints (RFC 9449 §5): a request with one valid proof gets a token
//! bound to the proof's key (`cnf.jkt`, `token_type: "DPoP"`) in each of the three shapes; a
//! proof that does not pass, a replayed one, or none where the client must send one, is
//! refused 400 `invalid_dpop_proof` in the endpoint's shape. Proofs are made here by hand
//! with a fresh P-256 key, as a client library makes them.

mod support;

use serde_json::Value;

use support::dpop::*;
use support::scripted::*;
use support::*;

const SECRET_FORM: [(&str, &str); 3] = [
    ("grant_type", "client_credentials"),
    ("client_id", "backoffice-app"),
    ("client_secret", SECRET),
];

async fn ask(gw: &Gateway, path: &str, form: &[(&str, &str)], proofs: &[String]) -> (u16, Value) {
    let mut req = client_for(&gw.ca_pem, false).post(gw.url(path)).form(form);
    for p in proofs {
        req = req.header("DPoP", p);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_valid_proof_gets_a_bound_token_in_every_shape() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway(up, "").await;
    let key = Key::new();
    for (path, form, token_of) in [
        ("/connect/token", &SECRET_FORM[..], "/access_token"),
        ("/oauth2-token", &SECRET_FORM[..], "/access_token"),
        (
            "/oauth/access_token",
            &[("grant_type", "implicit"), ("client_id", "public-key")][..],
            "/data/access_token",
        ),
    ] {
        let proof = key.proof("POST", &format!("{ISSUER}{path}"), &format!("j-{path}"), 0);
        let (status, body) = ask(&gw, path, form, &[proof]).await;
        assert_eq!(status, 200, "{path}: {body}");
        let envelope = token_of.trim_end_matches("/access_token");
        let fields = body.pointer(envelope).unwrap_or(&body);
        assert_eq!(fields["token_type"], "DPoP", "{path}: {body}");
        let token = body.pointer(token_of).unwrap().as_str().unwrap();
        assert_eq!(claims_of(token)["cnf"]["jkt"], key.thumbprint(), "{path}");
    }
    // Without a proof: Bearer, unbound, as before.
    let (status, body) = ask(&gw, "/connect/token", &SECRET_FORM, &[]).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")));
    assert!(
        claims_of(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn a_proof_that_does_not_pass_is_refused_in_the_endpoints_shape() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway(up, "").await;
    let key = Key::new();
    let htu = format!("{ISSUER}/connect/token");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![key.proof("GET", &htu, "a", 0)], "another method"),
        (
            vec![key.proof("POST", "https://evil.example/connect/token", "b", 0)],
            "another URL",
        ),
        (
            vec![key.proof("POST", &format!("{ISSUER}/oauth2-token"), "c", 0)],
            "another URL",
        ),
        (vec![key.proof("POST", &htu, "d", 600)], "too old"),
        (
            vec![key.proof("POST", &htu, "e", -600)],
            "too old or from the future",
        ),
        (
            vec![
                key.proof("POST", &htu, "f", 0),
                key.proof("POST", &htu, "g", 0),
            ],
            "more than one",
        ),
        (vec!["not.a.proof".into()], "malformed"),
    ];
    for (proofs, why) in cases {
        let (status, body) = ask(&gw, "/connect/token", &SECRET_FORM, &proofs).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{why}: {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(why), "{why}: {body}");
    }
    // Replay: the same proof a second time.
    let proof = key.proof("POST", &htu, "once", 0);
    let (status, _) = ask(
        &gw,
        "/connect/token",
        &SECRET_FORM,
        std::slice::from_ref(&proof),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = ask(&gw, "/connect/token", &SECRET_FORM, &[proof]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    // The `{"errors"}` shape of seed 004.
    let bad = key.proof("GET", &format!("{ISSUER}/oauth/access_token"), "h", 0);
    let form = [("grant_type", "implicit"), ("client_id", "public-key")];
    let (status, body) = ask(&gw, "/oauth/access_token", &form, &[bad]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0]["title"].is_string(), "{body}");
}

#[tokio::test]
async fn a_client_registered_for_dpop_must_send_a_proof() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let toml = config_with(up, |t| {
        let clients = clients_of(t);
        let mut entry = client_entry("bound-app", SECRET, &["backoffice"], &["read"]);
        entry
            .as_table_mut()
            .unwrap()
            .insert("dpop_bound_access_tokens".into(), true.into());
        clients.push(entry);
    });
    let gw = spawn_gateway_toml(&toml).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "bound-app"),
        ("client_secret", SECRET),
    ];
    let (status, body) = ask(&gw, "/connect/token", &form, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let proof = Key::new().proof("POST", &format!("{ISSUER}/connect/token"), "x", 0);
    let (status, body) = ask(&gw, "/connect/token", &form, &[proof]).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
}

/// The guard: a bound token passes only as `DPoP` with a fresh proof by its key for this
/// method and URL, over the relay and HTTP/2 alike; as `Bearer` it is refused (no downgrade).
#[tokio::test]
async fn the_guard_checks_the_proof_and_the_binding_on_every_request() {
    let (up, seen) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway(up, "").await;
    let key = Key::new();
    let endpoint = format!("{ISSUER}/connect/token");
    let (_, body) = ask(
        &gw,
        "/connect/token",
        &SECRET_FORM,
        &[key.proof("POST", &endpoint, "t", 0)],
    )
    .await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let htu = format!("{ISSUER}/admin/orders");
    let get = async |client: &reqwest::Client,
                     scheme: &str,
                     proof: Option<String>,
                     host: Option<&str>| {
        let mut req = client
            .get(gw.url("/admin/orders?page=2"))
            .header("authorization", format!("{scheme} {token}"));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        if let Some(h) = host {
            req = req.header("host", h);
        }
        let resp = req.send().await.unwrap();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (resp.status().as_u16(), challenge.unwrap_or_default())
    };
    for (n, client) in [client_for(&gw.ca_pem, false), gw.http2_client()]
        .iter()
        .enumerate()
    {
        let fresh =
            |jti: &str| Some(key.proof_with("GET", &htu, &format!("{n}-{jti}"), 0, Some(&token)));
        assert_eq!(
            get(client, "DPoP", fresh("ok"), None).await.0,
            200,
            "client {n}"
        );
        // The same proof again: a replay.
        let once = fresh("once");
        assert_eq!(get(client, "DPoP", once.clone(), None).await.0, 200);
        let (status, challenge) = get(client, "DPoP", once, None).await;
        assert_eq!(status, 401);
        // Both schemes are accepted here: both challenges, the proof's error in DPoP's.
        let (bearer, dpop) = challenge.split_once(", DPoP ").expect("two challenges");
        assert!(
            bearer.starts_with("Bearer ") && !bearer.contains("error="),
            "{challenge}"
        );
        assert!(
            dpop.contains(r#"algs="ES256 ES384 EdDSA PS256 RS256""#)
                && dpop.contains(r#"error="invalid_dpop_proof""#),
            "{challenge}"
        );
        // No downgrade, no proof, another key, another URL or method, no ath.
        let (status, challenge) = get(client, "Bearer", fresh("bearer"), None).await;
        assert_eq!(status, 401, "a bound token as Bearer");
        assert!(challenge.contains("invalid_token"), "{challenge}");
        assert_eq!(get(client, "DPoP", None, None).await.0, 401);
        let other = Key::new().proof_with("GET", &htu, &format!("{n}-k"), 0, Some(&token));
        assert_eq!(
            get(client, "DPoP", Some(other), None).await.0,
            401,
            "another key"
        );
        let elsewhere = key.proof_with(
            "GET",
            "https://evil.example/admin/orders",
            &format!("{n}-h"),
            0,
            Some(&token),
        );
        // Naming the proof's host in Host does not make its htu ours.
        assert_eq!(
            get(client, "DPoP", Some(elsewhere), Some("evil.example"))
                .await
                .0,
            401
        );
        let post = key.proof_with("POST", &htu, &format!("{n}-m"), 0, Some(&token));
        assert_eq!(
            get(client, "DPoP", Some(post), None).await.0,
            401,
            "another method"
        );
        let no_ath = key.proof("GET", &htu, &format!("{n}-a"), 0);
        assert_eq!(
            get(client, "DPoP", Some(no_ath), None).await.0,
            401,
            "no ath"
        );
    }
    // Only the good requests reached the upstream: two per client.
    assert_eq!(seen.heads.lock().unwrap().len(), 4);
    // An unbound token as DPoP is refused; as Bearer it passes, as before.
    let (_, body) = ask(&gw, "/connect/token", &SECRET_FORM, &[]).await;
    let bearer = body["access_token"].as_str().unwrap();
    let client = client_for(&gw.ca_pem, false);
    let as_dpop = client
        .get(gw.url("/admin/x"))
        .header("authorization", format!("DPoP {bearer}"));
    assert_eq!(as_dpop.send().await.unwrap().status(), 401);
    assert_eq!(gw.get_bearer("/admin/x", bearer).await.status(), 200);
}

/// Introspection says a bound token is DPoP and names its key (RFC 9449 §6.2).
#[tokio::test]
async fn introspection_names_the_key_of_a_bound_token() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let toml = config_with(up, |t| {
        let mut entry = client_entry("inspector", SECRET, &["backoffice"], &["read"]);
        let table = entry.as_table_mut().unwrap();
        table.insert("introspect".into(), true.into());
        clients_of(t).push(entry);
    });
    let gw = spawn_gateway_toml(&toml).await;
    let key = Key::new();
    let proof = key.proof("POST", &format!("{ISSUER}/connect/token"), "i", 0);
    let (_, body) = ask(&gw, "/connect/token", &SECRET_FORM, &[proof]).await;
    let token = body["access_token"].as_str().unwrap();
    let form = [
        ("token", token),
        ("client_id", "inspector"),
        ("client_secret", SECRET),
    ];
    let (status, answer) = ask(&gw, "/connect/introspect", &form, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"]["jkt"], key.thumbprint());
}
