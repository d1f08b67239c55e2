//! What the gateway writes to its log: one access line per request, and never a secret or a
//! token, even at trace level. Runs the real binary and reads its output.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const SECRET: &str = "log-test-secret-9f8e7d6c5b4a";

#[tokio::test]
async fn logs_name_requests_but_never_secrets_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let dead = support::dead_address().await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
log = "trace"
[tls]
cert = "certs/cert.pem"
key = "certs/key.pem"
generate_dev_files = true
[signing]
key = "certs/signing.pem"
generate_dev_files = true
[[token_endpoints]]
path = "/connect/token"
shape = "connect-token"
[[clients]]
id = "logged-client"
secret_hash = "{}"
apis = ["store"]
[[routes]]
prefix = "/api/"
upstream = "http://{dead}"
api = "store"
"#,
        storegate::clients::hash_secret(SECRET)
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storegate"))
        .args(["--config", path.to_str().unwrap()])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).await.unwrap() > 0,
                "exited early: {seen}"
            );
            seen.push_str(&line);
            if let Some(rest) = line.split("listening on https://127.0.0.1:").nth(1) {
                return rest.trim().parse::<u16>().unwrap();
            }
        }
    })
    .await
    .expect("the gateway said where it listens");

    let ca = std::fs::read_to_string(dir.path().join("certs/dev-ca.pem")).unwrap();
    let client = support::client_for(&ca, false);
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let body = support::send_json(client.post(url("/connect/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "logged-client"),
        ("client_secret", SECRET),
    ]))
    .await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    client
        .post(url("/connect/token"))
        .basic_auth("logged-client", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    client
        .post(url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "logged-client"),
            ("client_secret", "wrong-secret-xyz"),
        ])
        .send()
        .await
        .unwrap();
    let r = client
        .get(url("/api/orders?access_token=in-the-query"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    client
        .get(url("/api/orders"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    seen.push_str(&rest);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    seen.push_str(&stderr);

    let access: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("storegate::access"))
        .collect();
    assert_eq!(access.len(), 5, "one access line per request:\n{seen}");
    assert!(
        access
            .iter()
            .any(|l| l.contains("client_id=\"logged-client\"") && l.contains("status=502")),
        "{seen}"
    );
    let signature = token.rsplit('.').next().unwrap();
    for secret in [SECRET, "wrong-secret-xyz", signature, "in-the-query"] {
        assert!(
            !seen.contains(secret),
            "{secret:?} appears in the log:\n{seen}"
        );
    }
}
