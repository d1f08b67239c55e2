//! A headless Chromium driven over W3C WebDriver (Debian's `chromium` and `chromium-driver`,
//! which `scripts/test` installs): four JSON calls over reqwest, the test client already
//! here, rather than a WebDriver crate and the second TLS stack it would bring.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub struct Browser {
    base: String,
    http: reqwest::Client,
    _driver: Child,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session
    /// (certificates not checked: the gateway's is a test certificate).
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/test installs it)");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Ok(r) = http.get(format!("{base}/status")).send().await
                    && r.status().is_success()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        ready.await.expect("chromedriver answers within 30 s");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run"],
            },
        }}});
        let session = call(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            capabilities,
        )
        .await;
        let id = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Browser {
            base: format!("{base}/session/{id}"),
            http,
            _driver: driver,
        }
    }

    pub async fn goto(&self, url: &str) {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/url", self.base),
            json!({ "url": url }),
        )
        .await;
    }

    /// Runs `script` in the page until it returns something other than null (30 s at most).
    pub async fn wait_for(&self, script: &str) -> Value {
        let url = format!("{}/execute/sync", self.base);
        let body = json!({ "script": script, "args": [] });
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let v = call(&self.http, reqwest::Method::POST, &url, body.clone()).await;
                if !v.is_null() {
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        found
            .await
            .unwrap_or_else(|_| panic!("{script} stayed null for 30 s"))
    }

    /// Ends the session (and the browser with it).
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

/// One WebDriver call; its `value`.
async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Value) -> Value {
    let resp = http.request(method, url).json(&body).send().await.unwrap();
    let status = resp.status();
    let mut v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "WebDriver {url}: {status} {v}");
    v["value"].take()
}
