//! The real binary through SIGTERM: readiness turns 503 at once, callers hammering the
//! gateway over HTTP/1.1 and HTTP/2 see no failed request during the drain delay, and the
//! process exits 0. Its JSON log lines are read on the way.

mod support;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const DRAIN_DELAY_MS: u64 = 3000;

struct Running {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Running {
    /// Waits (10 s at most) for a log line that `wanted` picks.
    fn await_line(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                let last: Vec<_> = self.seen.iter().rev().take(5).collect();
                panic!("no log line {what} within 10 s; the last ones: {last:?}")
            });
            self.seen.push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    fn await_message(&mut self, prefix: &str) -> Value {
        self.await_line(prefix, |l| {
            l["message"].as_str().is_some_and(|m| m.starts_with(prefix))
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start(dir: &std::path::Path, upstream: std::net::SocketAddr, drain_delay_ms: u64) -> Running {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
log_format = "json"
drain_delay_ms = {drain_delay_ms}
shutdown_grace_ms = 2000

[tls]
cert = "cert.pem"
key = "key.pem"
generate_dev_files = true

[tokens]
issuer = "{ISSUER}"

[signing]
key = "signing.pem"
generate_dev_files = true

[[token_endpoints]]
path = "/connect/token"
shape = "connect-token"

[[clients]]
id = "backoffice-app"
secret_hash = "{}"
apis = ["backoffice"]
scopes = ["read"]

[[routes]]
prefix = "/admin/"
upstream = "http://{upstream}"
api = "backoffice"

[admin]
listen = "127.0.0.1:0"
"#,
        storegate::clients::hash_secret(SECRET)
    );
    std::fs::write(dir.join("gateway.toml"), toml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storegate"))
        .args([
            "--config",
            dir.join("gateway.toml").to_str().unwrap(),
            "run",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let parsed: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
            if tx.send(parsed).is_err() {
                return;
            }
        }
    });
    Running {
        child,
        lines,
        seen: Vec::new(),
    }
}

fn address_in(line: &Value) -> String {
    let m = line["message"].as_str().unwrap();
    m.rsplit(' ').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_without_failing_a_request() {
    let (up, _) = spawn_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), up, DRAIN_DELAY_MS);
    let public = address_in(&gw.await_message("storegate listening on"));
    let admin = address_in(&gw.await_message("admin listening on"));
    let ca = std::fs::read_to_string(dir.path().join("dev-ca.pem")).unwrap();
    let public = public.replace("127.0.0.1", "localhost");
    let (h1, h2) = (client_for(&ca, false), client_for(&ca, true));
    let token = send_json(
        h1.post(format!("{public}/connect/token"))
            .basic_auth("backoffice-app", Some(SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    let token = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        reqwest::get(format!("{admin}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );

    // Callers on both protocols, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, closes, retried) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    // When SIGTERM was sent, for a failure's report.
    let signalled_at: Arc<OnceLock<Instant>> = Arc::default();
    let mut callers = Vec::new();
    // 1 caller on HTTP/1.1 and 20 sharing one HTTP/2 client (many streams on a connection),
    // calling until half a second before the delay ends. With 2 + 2, the drain's HTTP/2
    // defects (a connection reset under answers not yet read, requests queued on a connection
    // that got its GOAWAY with its SETTINGS) failed this test about 1 run in 5 under load;
    // with these callers, 9 runs in 10 (two busy loops beside it), and 0 in 20 with the fixes.
    let mut clients = vec![("HTTP/1.1", h1), ("HTTP/2", h2)];
    for _ in 0..19 {
        clients.push(("HTTP/2", clients[1].1.clone()));
    }
    for (proto, client) in clients {
        let (stop, ok, failed, closes, retried) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            closes.clone(),
            retried.clone(),
        );
        let signalled_at = signalled_at.clone();
        let (url, token) = (format!("{public}/admin/echo"), token.clone());
        callers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let since_signal = || signalled_at.get().map(|s| s.elapsed());
                let began = since_signal();
                let mut sent = client.get(&url).bearer_auth(&token).send().await;
                // A request the gateway never processed may be retried (RFC 9113 §6.8, §8.7),
                // as Go's, curl's and Envoy's clients do by themselves: one the client refused
                // to send on a connection the gateway had sent a GOAWAY on (hyper reports it as
                // Canceled), and one on a stream above the GOAWAY's last stream id (h2 resets it
                // with the remote GOAWAY's error). hyper-util's pool may hand such a connection
                // out again before it has noticed the GOAWAY, so up to three attempts.
                for _ in 0..3 {
                    let unprocessed = |e: &reqwest::Error| {
                        let e = format!("{e:?}");
                        e.contains("Canceled") || e.contains("GoAway(") && e.contains("Remote")
                    };
                    if !sent.as_ref().is_err_and(unprocessed) {
                        break;
                    }
                    retried.fetch_add(1, Ordering::SeqCst);
                    sent = client.get(&url).bearer_auth(&token).send().await;
                }
                match sent {
                    Ok(r) if r.status() == 200 => {
                        if r.headers().get("connection").is_some_and(|c| c == "close") {
                            closes.fetch_add(1, Ordering::SeqCst);
                        }
                        ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        eprintln!(
                            "failed during the drain ({proto}; sent {began:?}, failed {:?} after \
                             SIGTERM): {other:?}",
                            since_signal()
                        );
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            ids
        }));
    }
    // Some traffic first, then SIGTERM.
    while ok.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let signalled = Instant::now();
    signalled_at.set(signalled).unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    loop {
        let ready = reqwest::get(format!("{admin}/readyz")).await.unwrap();
        if ready.status() == 503 {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "still ready after SIGTERM"
        );
    }
    let at_drain = ok.load(Ordering::SeqCst);
    // Keep calling until shortly before the delay ends: every request must still succeed.
    tokio::time::sleep_until((signalled + Duration::from_millis(DRAIN_DELAY_MS - 500)).into())
        .await;
    stop.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for c in callers {
        ids.extend(c.await.unwrap());
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed");
    assert!(
        ok.load(Ordering::SeqCst) > at_drain + 20,
        "requests were served during the drain"
    );
    assert!(
        closes.load(Ordering::SeqCst) > 0,
        "HTTP/1.1 callers were told to close"
    );

    // The process ends by itself after the delay and the grace period, with success.
    let end = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "still running 15 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");

    // The JSON access lines carry what a log pipeline needs, the request id first of all.
    eprintln!(
        "drain: {} requests served, {} after readiness turned 503, {} retried after a GOAWAY",
        ok.load(Ordering::SeqCst),
        ok.load(Ordering::SeqCst) - at_drain,
        retried.load(Ordering::SeqCst)
    );
    let wanted = ids.last().unwrap().clone();
    let line = gw.await_line("with the last request id", |l| {
        l["request_id"] == wanted.as_str()
    });
    assert_eq!(line["target"], "storegate::access");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/admin/");
    assert_eq!(line["path"], "/admin/echo");
    assert_eq!(line["status"], 200);
    assert_eq!(line["client_id"], "backoffice-app");
    assert!(
        line["latency_us"].is_u64() && line["protocol"].is_string(),
        "{line}"
    );
    assert!(!line.to_string().contains(&token), "no token in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_the_drain_at_once() {
    let (up, _) = spawn_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // A drain delay no test would wait for.
    let mut gw = start(dir.path(), up, 600_000);
    gw.await_message("admin listening on");
    let pid = gw.child.id().to_string();
    let term = || Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term().success());
    gw.await_message("draining");
    let signalled = Instant::now();
    assert!(term().success());
    let end = signalled + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "still running 15 s after the second signal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    gw.await_message("a second signal");
}
