//! What the gateway writes to its log: one access line per request, and never a secret or a
//! token, even at trace level. Runs the real binary and reads its output.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const SECRET: &str = "log-test-secret-9f8e7d6c5b4a";

/// A config for the real binary: TLS and signing key generated under certs/, a token endpoint,
/// one client; `tail` is appended.
fn binary_config(tail: &str) -> String {
    format!(
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
{tail}"#,
        storegate::clients::hash_secret(SECRET)
    )
}

/// Starts the real binary on `config`: the child, its stdout, what it said so far, its port.
async fn start(config: &std::path::Path) -> (Child, Lines, String, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storegate"))
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let port = read_until(&mut stdout, &mut seen, "listening on https://127.0.0.1:").await;
    (child, stdout, seen, port.trim().parse().unwrap())
}

type Lines = BufReader<tokio::process::ChildStdout>;

/// Reads log lines (30 s at most) until one contains `marker`; returns what follows it.
async fn read_until(stdout: &mut Lines, seen: &mut String, marker: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).await.unwrap() > 0,
                "exited early: {seen}"
            );
            seen.push_str(&line);
            if let Some(rest) = line.split(marker).nth(1) {
                return rest.to_owned();
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no log line with {marker:?} in:\n{seen}"))
}

/// Waits until `n` access lines are out (each is written once its answer is sent, so the last
/// may follow the client's read of it), stops the binary and adds the rest of its stdout.
async fn stop_after_access_lines(
    child: &mut Child,
    stdout: &mut Lines,
    seen: &mut String,
    n: usize,
) {
    while seen.matches("storegate::access").count() < n {
        read_until(stdout, seen, "storegate::access").await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    seen.push_str(&rest);
}

#[tokio::test]
async fn logs_name_requests_but_never_secrets_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let dead = support::dead_address().await;
    let config = binary_config(&format!(
        "[[routes]]\nprefix = \"/api/\"\nupstream = \"http://{dead}\"\napi = \"store\"\n"
    ));
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let (mut child, mut stdout, mut seen, port) = start(&path).await;

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

    stop_after_access_lines(&mut child, &mut stdout, &mut seen, 5).await;
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
            .any(|l| l.contains("client_id=\"logged-client\"")
                && l.contains("auth=\"bearer\"")
                && l.contains("status=502")),
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

/// A client trusting the binary's development CA, and its token request for `logged-client`.
async fn token_request(dir: &std::path::Path, port: u16) -> (reqwest::Client, reqwest::Response) {
    let ca = std::fs::read_to_string(dir.join("certs/dev-ca.pem")).unwrap();
    let client = support::client_for(&ca, false);
    let resp = client
        .post(format!("https://127.0.0.1:{port}/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "logged-client"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    (client, resp)
}

/// SIGHUP reloads; a broken file is one error line naming the file and the key, and the
/// running configuration goes on serving.
#[tokio::test]
async fn sighup_reloads_and_a_bad_file_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = binary_config("");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, &config).unwrap();
    let (mut child, mut stdout, mut seen, port) = start(&path).await;

    let pid = child.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status();
    assert!(hup.unwrap().success());
    let line = read_until(&mut stdout, &mut seen, "configuration reloaded").await;
    assert!(
        line.contains("generation=2") && line.contains("Request"),
        "{line}"
    );

    let broken = config.replace(
        "shape = \"connect-token\"",
        "shape = \"connect-token\"\nbogus = 1",
    );
    std::fs::write(&path, broken).unwrap();
    let line = read_until(&mut stdout, &mut seen, "configuration reload failed").await;
    assert!(
        line.contains("gateway.toml") && line.contains("bogus"),
        "{line}"
    );

    let (_, resp) = token_request(dir.path(), port).await;
    assert_eq!(resp.status(), 200, "the running configuration still serves");
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// Issue 17, defect 9: at trace level, a log written into the folder the reload watcher
/// watches fed the watcher with its own lines (each write an event, each event a trace line:
/// ~2 GB in two minutes). The watcher's own per-event lines are never written.
#[tokio::test]
async fn a_log_beside_the_config_does_not_feed_the_reload_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, binary_config("")).unwrap();
    let log = dir.path().join("gateway.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storegate"))
        .args(["--config", path.to_str().unwrap()])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Waits (30 s at most) until the log has `n` lines containing `marker`.
    let until = |marker: &'static str, n: usize| {
        let log = log.clone();
        async move {
            let found = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.matches(marker).count() >= n {
                        return text;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
            found
                .await
                .unwrap_or_else(|_| panic!("no {marker:?} in the log"))
        }
    };
    let text = until("listening on https://127.0.0.1:", 1).await;
    let port: u16 = text
        .split("listening on https://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    // Log lines that reach the file, in requests and a reload.
    let (client, resp) = token_request(dir.path(), port).await;
    assert_eq!(resp.status(), 200);
    until("storegate::access", 1).await;
    let pid = child.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status();
    assert!(hup.unwrap().success());
    let before = until("configuration reloaded", 1).await.len();
    // A second request after the reload: what the log grew by is that request's lines.
    let resp = client
        .get(format!("https://127.0.0.1:{port}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = until("storegate::access", 2).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    assert!(
        !text.contains("inotify event"),
        "the watcher logs its own events"
    );
    let grown = text.len() - before;
    assert!(
        grown < 256 * 1024,
        "the log grew by {grown} bytes for one request"
    );
}

/// A certificate-bound request's access line says `auth="mtls"`; a client assertion, like a
/// secret, never appears in the log, even at trace level.
#[tokio::test]
async fn access_lines_name_mtls_and_assertions_are_never_logged() {
    use support::dpop::Key;
    use support::pki::{Pki, client_with};
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let key = Key::new();
    std::fs::write(dir.path().join("client-ca.pem"), &pki.ca.pem).unwrap();
    let mut jwk = serde_json::to_value(&key.jwk).unwrap();
    jwk["kid"] = "k1".into();
    let jwks = serde_json::json!({ "keys": [jwk] }).to_string();
    std::fs::write(dir.path().join("erp.jwks"), jwks).unwrap();
    let dead = support::dead_address().await;
    let config = binary_config(&format!(
        r#"
[[clients]]
id = "erp"
apis = ["store"]
token_endpoint_auth_method = "tls_client_auth"
tls_client_auth_subject_dn = "CN=erp,OU=b2b,O=Example Store,C=DE"
tls_client_certificate_bound_access_tokens = true
[[clients]]
id = "signer"
apis = ["store"]
token_endpoint_auth_method = "private_key_jwt"
jwks_file = "erp.jwks"
[[routes]]
prefix = "/api/"
upstream = "http://{dead}"
api = "store"
"#
    ))
    .replace(
        "generate_dev_files = true\n[signing]",
        "generate_dev_files = true\nclient_ca = \"client-ca.pem\"\n[signing]",
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let (mut child, mut stdout, mut seen, port) = start(&path).await;
    let ca = std::fs::read_to_string(dir.path().join("certs/dev-ca.pem")).unwrap();
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let erp = client_with(&ca, Some(&pki.erp), false);
    let form = [("grant_type", "client_credentials"), ("client_id", "erp")];
    let body = support::send_json(erp.post(url("/connect/token")).form(&form)).await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let r = erp
        .get(url("/api/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502, "bound token accepted, dead upstream");
    let claims = serde_json::json!({"iss": "signer", "sub": "signer",
        "aud": "storegate", "exp": support::dpop::now() + 60, "jti": "log-test"});
    let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
    let assertion = key.sign_as_given(&header, &claims);
    let plain = support::client_for(&ca, false);
    let r = plain
        .post(url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    stop_after_access_lines(&mut child, &mut stdout, &mut seen, 3).await;
    assert!(
        seen.lines().any(|l| l.contains("storegate::access")
            && l.contains("auth=\"mtls\"")
            && l.contains("client_id=\"erp\"")),
        "{seen}"
    );
    let signature = assertion.rsplit('.').next().unwrap();
    assert!(
        !seen.contains(signature),
        "the assertion appears in the log:\n{seen}"
    );
}

/// A decision's access line names the request it judged (method, path without the query,
/// route), its client, and `decision=true`; the token never appears.
#[tokio::test]
async fn a_decision_is_logged_as_the_request_it_judged() {
    let dir = tempfile::tempdir().unwrap();
    let dead = support::dead_address().await;
    let config = binary_config(&format!(
        "scopes = [\"write\"]\n[[routes]]\nprefix = \"/api/\"\nupstream = \"http://{dead}\"\n\
         api = \"store\"\n[decision]\npath = \"/_storegate\"\ntrusted_peers = [\"127.0.0.1\"]\n"
    ));
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let (mut child, mut stdout, mut seen, port) = start(&path).await;
    let (client, resp) = token_request(dir.path(), port).await;
    let body: serde_json::Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let asked = client
        .get(format!("https://127.0.0.1:{port}/_storegate"))
        .bearer_auth(&token)
        .header("x-forwarded-method", "POST")
        .header("x-forwarded-uri", "/api/orders?page=in-the-query")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    stop_after_access_lines(&mut child, &mut stdout, &mut seen, 2).await;
    let line = seen
        .lines()
        .find(|l| l.contains("storegate::access") && l.contains("decision=true"))
        .unwrap_or_else(|| panic!("no decision access line:\n{seen}"));
    for field in [
        "method=POST",
        "path=\"/api/orders\"",
        "route=\"/api/\"",
        "status=200",
        "client_id=\"logged-client\"",
        "auth=\"bearer\"",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !seen.contains(signature) && !seen.contains("in-the-query"),
        "{seen}"
    );
}

/// A caller whose handshake sends an IP address as SNI (wrk and `openssl s_client` do; rustls
/// ignores it) chooses no log line: rustls's warning of it is never written, even at trace.
#[tokio::test]
async fn a_callers_ip_address_sni_writes_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, binary_config("")).unwrap();
    let (mut child, mut stdout, mut seen, port) = start(&config).await;
    for _ in 0..3 {
        let s_client = Command::new("openssl")
            .args(["s_client", "-brief", "-servername", "127.0.0.1", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .output()
            .await
            .expect("openssl (scripts/test installs it)");
        let said = String::from_utf8_lossy(&s_client.stderr);
        assert!(said.contains("Protocol version"), "no handshake: {said}");
    }
    // A request after them: its access line is out once their handshakes' lines would be.
    let (_client, resp) = token_request(dir.path(), port).await;
    assert_eq!(resp.status(), 200);
    stop_after_access_lines(&mut child, &mut stdout, &mut seen, 1).await;
    assert!(seen.contains("storegate::access"), "{seen}");
    assert!(!seen.contains("presented as hostname"), "{seen}");
}
