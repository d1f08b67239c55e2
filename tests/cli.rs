//! The command line and the shipped gateway.toml: bad configs exit 64 naming the key,
//! `check-config`, `client new`, and the README's demo flow from the shipped file.

mod support;

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";

fn storegate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_storegate"))
        .args(args)
        .env_remove("STOREGATE_CONFIG")
        .output()
        .unwrap()
}

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml")).unwrap()
}

#[test]
fn bad_configs_exit_64_and_name_the_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "listen = \"127.0.0.1:8443\"",
            "listen = \"localhost-8443\"",
            "server.listen",
            "localhost-8443",
        ),
        (
            "algorithm = \"EdDSA\"",
            "algorithm = \"HS256\"",
            "signing.algorithm",
            "HS256",
        ),
        (
            "upstream = \"http://127.0.0.1:9081\"",
            "upstream = \"ftp://127.0.0.1:9081\"",
            "routes[0].upstream",
            "ftp://127.0.0.1:9081",
        ),
        (
            "shape = \"oauth2-token\"",
            "shape = \"oauth3\"",
            "token_endpoints[1].shape",
            "oauth3",
        ),
        (
            "lifetime_secs = 3600",
            "lifetime_secs = 0",
            "tokens.lifetime_secs",
            "0",
        ),
        (
            "realm = \"storegate\"",
            "realm = \"storegate\"\nrealms = 1",
            "realms",
            "unknown field",
        ),
        (
            "grants = [\"implicit\"]",
            "grants = [\"password\"]",
            "clients[1].grants",
            "password",
        ),
    ];
    for (from, to, key, value) in cases {
        let text = shipped().replacen(from, to, 1);
        assert_ne!(text, shipped(), "{from} is in gateway.toml");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        for cmd in [&["check-config"][..], &[]] {
            let mut args = vec!["--config", path.to_str().unwrap()];
            args.extend_from_slice(cmd);
            let out = storegate(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{key}: {stderr}");
            assert!(
                stderr.contains(key) && stderr.contains(value),
                "{key}/{value} not named: {stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
        }
    }
}

#[test]
fn the_shipped_config_checks_out() {
    let out = storegate(&[
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml"),
        "check-config",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn check_config_loads_the_files_start_up_would() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    // Development files not there yet: fine, and said.
    std::fs::write(&path, shipped()).unwrap();
    let out = storegate(&["--config", path.to_str().unwrap(), "check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("dev-cert.pem will be generated"),
        "{stdout}"
    );
    assert!(
        !dir.path().join("certs").exists(),
        "check-config generates nothing"
    );
    // A signing key that is not a key: named, exit 1.
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/dev-signing-key.pem"), "not a key").unwrap();
    let out = storegate(&["--config", path.to_str().unwrap(), "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("dev-signing-key.pem"), "{stderr}");
    // An https:// upstream's CA that is not PEM: the key and the file, exit 1.
    std::fs::remove_file(dir.path().join("certs/dev-signing-key.pem")).unwrap();
    std::fs::write(dir.path().join("upstream-ca.pem"), "not a certificate").unwrap();
    let text = format!(
        "{}\n[[routes]]\nprefix = \"/orders/\"\nupstream = \"https://orders.internal:8443\"\n\
         api = \"store\"\nupstream_ca = \"upstream-ca.pem\"\n",
        shipped()
    );
    std::fs::write(&path, text).unwrap();
    let out = storegate(&["--config", path.to_str().unwrap(), "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("upstream-ca.pem") && stderr.contains("upstream_ca"),
        "{stderr}"
    );
}

#[test]
fn a_missing_production_certificate_fails_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = shipped()
        .replace("listen = \"127.0.0.1:8443\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "cert = \"certs/dev-cert.pem\"",
            "cert = \"missing/cert.pem\"",
        )
        .replacen("generate_dev_files = true", "generate_dev_files = false", 1)
        .replace("[demo]\nupstream_listen = \"127.0.0.1:9081\"", "");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let out = storegate(&["--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing/cert.pem"), "{stderr}");
}

#[test]
fn client_new_prints_a_secret_and_a_matching_entry() {
    let out = storegate(&["client", "new", "order-sync", "--api", "backoffice"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("# ")
        .to_owned();
    let entry: toml::Value = toml::from_str(&text).unwrap();
    let client = &entry["clients"][0];
    assert_eq!(client["id"].as_str(), Some("order-sync"));
    assert_eq!(client["apis"][0].as_str(), Some("backoffice"));
    assert_eq!(
        client["secret_hash"].as_str().unwrap(),
        storegate::clients::hash_secret(&secret)
    );
    assert!(
        !text.contains(&format!("secret_hash = \"{secret}")),
        "only the hash goes in the entry"
    );
}

#[tokio::test]
async fn the_shipped_config_runs_the_readme_flow_with_its_demo_upstream() {
    // The shipped file as it is, but on port 0 and in a temporary folder, so that the
    // development files are generated there and no fixed port is needed.
    let demo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo_addr = demo.local_addr().unwrap();
    tokio::spawn(storegate::demo::serve(demo));
    let text = shipped()
        .replace("listen = \"127.0.0.1:8443\"", "listen = \"127.0.0.1:0\"")
        .replace("127.0.0.1:9081", &demo_addr.to_string());
    let dir = tempfile::tempdir().unwrap();
    let config = storegate::config::Config::from_toml_str(&text, dir.path()).unwrap();
    let state = std::sync::Arc::new(storegate::state::State::new(config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(storegate::server::run(
        listener,
        state,
        std::future::pending(),
    ));
    let ca = std::fs::read_to_string(dir.path().join("certs/dev-ca.pem"))
        .expect("the dev CA was generated");
    assert!(dir.path().join("certs/dev-signing-key.pem").exists());
    // As the README's curl does: https://localhost, trusting certs/dev-ca.pem.
    let base = format!("https://localhost:{port}");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();

    let token = support::send_json(client.post(format!("{base}/connect/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "demo-client"),
        ("client_secret", DEMO_SECRET),
    ]))
    .await;
    let access = token["access_token"]
        .as_str()
        .expect("a token for the demo client");
    let products = client
        .get(format!("{base}/api/products"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(products.status(), StatusCode::OK);
    let body: Value = products.json().await.unwrap();
    assert!(body["data"].as_array().unwrap().len() >= 2);
    let refused = client
        .get(format!("{base}/api/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The shipped issuer is the README's URL, so the challenge names where the route's
    // metadata is (RFC 9728 §5.1), and that path answers here.
    let metadata = "/.well-known/oauth-protected-resource/api/";
    assert_eq!(
        refused.headers()["www-authenticate"],
        format!(
            "Bearer realm=\"storegate\", resource_metadata=\"https://localhost:8443{metadata}\", \
             DPoP realm=\"storegate\", algs=\"ES256 ES384 EdDSA PS256 RS256\", resource_metadata=\"https://localhost:8443{metadata}\""
        )
    );
    let doc = support::send_json(client.get(format!("{base}{metadata}"))).await;
    assert_eq!(doc["resource"], "https://localhost:8443/api/");
    assert_eq!(doc["authorization_servers"][0], "https://localhost:8443");
}

#[test]
fn client_new_prints_entries_for_certificate_and_assertion_clients() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--auth-method",
                "tls_client_auth",
                "--subject-dn",
                "CN=erp,O=Example Store,C=DE",
                "--certificate-bound",
            ],
            "tls_client_auth_subject_dn = \"CN=erp,O=Example Store,C=DE\"",
        ),
        (
            &[
                "--auth-method",
                "private_key_jwt",
                "--jwks-file",
                "erp.jwks",
            ],
            "jwks_file = \"erp.jwks\"",
        ),
        (
            &[
                "--auth-method",
                "self_signed_tls_client_auth",
                "--jwks-file",
                "erp.jwks",
            ],
            "jwks_file",
        ),
    ];
    for (args, expect) in cases {
        let mut all = vec!["client", "new", "erp", "--api", "backoffice"];
        all.extend_from_slice(args);
        let out = storegate(&all);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(expect), "{text}");
        assert!(!text.contains("secret"), "no secret for {args:?}: {text}");
        let entry: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(entry["clients"][0]["id"].as_str(), Some("erp"));
    }
    for args in [
        &["--auth-method", "tls_client_auth"][..],
        &["--auth-method", "private_key_jwt"],
        &["--auth-method", "client_secret_jwt"],
        &["--subject-dn", "CN=x"],
    ] {
        let mut all = vec!["client", "new", "erp"];
        all.extend_from_slice(args);
        let out = storegate(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
