//! Test support: a real gateway from a TOML string on port 0 with real TLS (a test CA from
//! rcgen), a real upstream on loopback, a real HTTP client, and token minting for the cases
//! the gateway itself would never issue (expired, foreign, tampered).
#![allow(dead_code, unused_imports)]

pub mod dpop;
mod mint;
pub mod nginx;
pub mod pki;
mod redis_server;
pub mod replicas;
pub mod scripted;
mod upstream;

pub use mint::*;
pub use redis_server::Redis;
pub use upstream::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use storegate::config::Config;
use storegate::state::{Generation, State};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const SECRET: &str = "test-secret-0123456789";
pub const READER_SECRET: &str = "reader-secret-0123456789";
pub const ISSUER: &str = "https://gateway.test";

/// A running gateway; dropping it shuts the server down.
pub struct Gateway {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    pub client: reqwest::Client,
    /// For the gateway's own endpoints and documents: a connection that carries one is served
    /// by hyper from then on, so `client`'s connections stay with the relay (guarded requests).
    endpoints: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    /// Watches the config's files and reloads on change (as `storegate run` does).
    pub reloader: storegate::reload::Reloader,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// A client on the same CA that speaks HTTP/2 only.
    pub fn http2_client(&self) -> reqwest::Client {
        client_for(&self.ca_pem, true)
    }

    pub fn signing_key_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("signing.pem")).unwrap()
    }

    /// The /connect/token answer for `client_id` with `secret`, asking for `scope`.
    pub async fn scoped_token(&self, client_id: &str, secret: &str, scope: &str) -> Value {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ];
        self.post_form_json("/connect/token", &form).await
    }

    /// Gets a token from /connect/token for `client_id` with `secret`.
    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let resp = self
            .endpoints
            .post(self.url("/connect/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The configuration generation serving now.
    pub fn generation(&self) -> Arc<Generation> {
        self.state.load()
    }

    pub fn verifications(&self) -> u64 {
        let stats = &self.state.shared.tokens.stats;
        stats.verifications.load(Ordering::Relaxed)
    }

    pub fn cache_hits(&self) -> u64 {
        let stats = &self.state.shared.tokens.stats;
        stats.cache_hits.load(Ordering::Relaxed)
    }

    /// Stops the server, waits for it to finish, and hands over its folder (for a restart).
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        dir
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

impl Gateway {
    /// GET `path` with a Bearer token.
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// GET `path` without a token and read the JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.endpoints
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The `kid`s the JWKS lists, in its order.
    pub async fn jwks_kids(&self) -> Vec<String> {
        let jwks = self.get_json("/.well-known/jwks.json").await;
        let keys = jwks["keys"].as_array().unwrap();
        keys.iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// POST a form to `path`.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.endpoints
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// POST a form to `path` and read the JSON answer.
    pub async fn post_form_json(&self, path: &str, form: &[(&str, &str)]) -> Value {
        self.post_form(path, form).await.json().await.unwrap()
    }

    /// An implicit-grant token from /oauth/access_token.
    pub async fn implicit_token(&self, client_id: &str) -> String {
        let body = self
            .post_form_json(
                "/oauth/access_token",
                &[("grant_type", "implicit"), ("client_id", client_id)],
            )
            .await;
        body["data"]["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The default test config: TLS, EdDSA signing, three clients, a route per API to `upstream`.
/// `extra` is appended after the `/shop/` route: bare keys land in that route.
pub fn config_toml(upstream: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_ms = 2000
max_token_body_bytes = 4096

[tls]
cert = "cert.pem"
key = "key.pem"

[tokens]
issuer = "{ISSUER}"
leeway_secs = 5

[signing]
key = "signing.pem"
generate_dev_files = true

[[token_endpoints]]
path = "/connect/token"
shape = "connect-token"

[[token_endpoints]]
path = "/oauth2-token"
shape = "oauth2-token"

[[token_endpoints]]
path = "/oauth/access_token"
shape = "oauth-access-token"

[[clients]]
id = "backoffice-app"
secret_hash = "{}"
apis = ["backoffice"]
scopes = ["read", "write"]

[[clients]]
id = "storefront-app"
secret_hash = "{}"
apis = ["storefront"]
grants = ["client_credentials", "implicit"]
scopes = ["read"]

[[clients]]
id = "public-key"
apis = ["storefront"]
grants = ["implicit"]

[[routes]]
prefix = "/admin/"
upstream = "http://{upstream}"
api = "backoffice"
timeout_ms = 1000
write_scope = "write"

[[routes]]
prefix = "/shop/"
upstream = "http://{upstream}"
api = "storefront"
error_shape = "errors"
timeout_ms = 1000
{extra}
"#,
        storegate::clients::hash_secret(SECRET),
        storegate::clients::hash_secret(READER_SECRET),
    )
}

/// The default test config with `edit` applied to it as a TOML table (no text substitution
/// that silently does nothing when its anchor changes).
pub fn config_with(upstream: SocketAddr, edit: impl FnOnce(&mut toml::Table)) -> String {
    let mut table: toml::Table = config_toml(upstream, "").parse().unwrap();
    edit(&mut table);
    toml::to_string(&table).unwrap()
}

/// A `[[clients]]` entry for client_credentials with one secret.
pub fn client_entry(id: &str, secret: &str, apis: &[&str], scopes: &[&str]) -> toml::Value {
    let strings = |v: &[&str]| toml::Value::Array(v.iter().map(|s| (*s).into()).collect());
    let mut t = toml::Table::new();
    t.insert("id".into(), id.into());
    t.insert(
        "secret_hash".into(),
        storegate::clients::hash_secret(secret).into(),
    );
    t.insert("apis".into(), strings(apis));
    t.insert("scopes".into(), strings(scopes));
    toml::Value::Table(t)
}

/// The `[[clients]]` array of a config table.
pub fn clients_of(table: &mut toml::Table) -> &mut Vec<toml::Value> {
    table["clients"].as_array_mut().unwrap()
}

/// Starts a gateway with `config_toml(upstream, extra)`.
pub async fn spawn_gateway(upstream: SocketAddr, extra: &str) -> Gateway {
    spawn_gateway_toml(&config_toml(upstream, extra)).await
}

/// Starts a gateway from a full TOML text; cert.pem/key.pem/ca.pem are written beside it.
pub async fn spawn_gateway_toml(toml: &str) -> Gateway {
    spawn_gateway_in(tempfile::tempdir().unwrap(), toml).await
}

/// Starts a gateway whose gateway.toml is `toml`, written into `dir` with a fresh TLS
/// certificate (cert.pem, key.pem); files already in `dir` (a signing key, a state folder)
/// are kept, as for a restarted gateway.
pub async fn spawn_gateway_in(dir: tempfile::TempDir, toml: &str) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_gateway_on(listener, dir, toml).await
}

/// `spawn_gateway_in`, serving on `listener` (an IPv6 or dual-stack one, say).
pub async fn spawn_gateway_on(
    listener: TcpListener,
    dir: tempfile::TempDir,
    toml: &str,
) -> Gateway {
    let pki = storegate::tls::DevPki::generate(&["localhost", "127.0.0.1", "::1"]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &pki.key_pem).unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(&path).expect("test config is valid");
    let state = Arc::new(State::new(config).expect("gateway state"));
    let reloader = storegate::reload::spawn(state.clone(), path).unwrap();
    storegate::cluster::spawn(&state).unwrap();
    state.shared.health.set_ready();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(storegate::server::run(
        listener,
        state.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    Gateway {
        addr,
        state,
        client: client_for(&pki.ca_pem, false),
        endpoints: client_for(&pki.ca_pem, false),
        dir,
        ca_pem: pki.ca_pem,
        reloader,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl Gateway {
    /// Starts the admin listener on a free loopback port, with the credential of the config's
    /// `admin.token_file` (if any), as `storegate run` does; returns its base URL.
    pub async fn spawn_admin(&self) -> String {
        let token = self.state.shared.fixed.admin.as_ref().and_then(|a| {
            let file = a.token_file.as_ref()?;
            Some(storegate::admin::load_or_create_token(file).unwrap().into())
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(storegate::admin::serve(listener, self.state.clone(), token));
        format!("http://{addr}")
    }

    /// Replaces `name` in the gateway's folder atomically (write aside, then rename), as a
    /// deployment tool would.
    pub fn replace_file(&self, name: &str, contents: impl AsRef<[u8]>) {
        let path = self.dir.path().join(name);
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// Waits (10 s at most) until the reload counters satisfy `done`: (stored, failed).
    pub async fn await_reloads(&self, done: impl Fn(u64, u64) -> bool) {
        let stats = &self.state.shared.reloads;
        let wait = async {
            loop {
                let woken = stats.done.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let stored = stats.succeeded.load(Ordering::SeqCst);
                if done(stored, stats.failed.load(Ordering::SeqCst)) {
                    return;
                }
                woken.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .is_err()
        {
            let last = stats.last_error();
            panic!("the reload did not happen within 10 s; last reload error: {last:?}");
        }
    }

    /// Replaces gateway.toml and waits until the watcher has stored the new generation.
    pub async fn reload_with(&self, toml: &str) -> Arc<Generation> {
        let before = self.generation().number;
        let stored = self.state.shared.reloads.succeeded.load(Ordering::SeqCst);
        self.replace_file("gateway.toml", toml);
        self.await_reloads(|s, _| s > stored).await;
        let g = self.generation();
        assert!(g.number > before);
        g
    }

    /// A token request for backoffice-app with `secret`, sent as if a trusted proxy relayed it
    /// for the caller `from` (`X-Forwarded-For`): its status.
    pub async fn token_attempt_from(&self, secret: &str, from: &str) -> reqwest::StatusCode {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "backoffice-app"),
            ("client_secret", secret),
        ];
        let req = self.client.post(self.url("/connect/token")).form(&form);
        req.header("x-forwarded-for", from)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Replaces a file and waits until the watcher has stored the generation built from it.
    pub async fn reload_file(&self, name: &str, contents: impl AsRef<[u8]>) {
        let stored = self.state.shared.reloads.succeeded.load(Ordering::SeqCst);
        self.replace_file(name, contents);
        self.await_reloads(|s, _| s > stored).await;
    }

    /// Runs a real client (`cmd`, named `what` in failures) for at most 60 s and returns its
    /// stdout; fails with its output when it does not succeed.
    pub async fn run_client(mut cmd: tokio::process::Command, what: &str) -> String {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            cmd.stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{what} finished within 60 s"))
        .unwrap_or_else(|e| panic!("{what} could not start ({e}): run scripts/test"));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{what}: {stdout}{stderr}");
        stdout.into_owned()
    }

    /// Replaces a file and waits until the watcher has tried, and failed, to reload.
    pub async fn reload_fails_with(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let failed = self.state.shared.reloads.failed.load(Ordering::SeqCst);
        self.replace_file(name, contents);
        self.await_reloads(|_, f| f > failed).await;
        self.state.shared.reloads.last_error().unwrap()
    }
}

/// Sends a request and reads its JSON answer.
pub async fn send_json(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// A reqwest client that trusts `ca_pem` only.
pub fn client_for(ca_pem: &str, http2: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30));
    let b = if http2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    };
    b.build().unwrap()
}

/// Asserts a 401 whose challenge says `invalid_token`.
pub fn assert_invalid_token(resp: &reqwest::Response) {
    assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

/// GETs `cut` and asserts its head came but its body was cut off (within 5 s, no hang), then
/// that `fine` on the same client succeeds.
pub async fn assert_cut_off_then_fine(
    gw: &Gateway,
    client: &reqwest::Client,
    token: &str,
    cut: &str,
    fine: &str,
) {
    let resp = client
        .get(gw.url(cut))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{cut}: the head came through");
    let body = tokio::time::timeout(Duration::from_secs(5), resp.bytes()).await;
    assert!(
        matches!(body, Ok(Err(_))),
        "{cut}: the body was cut off: {body:?}"
    );
    let next = client
        .get(gw.url(fine))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200, "{fine} after {cut}");
}

/// A TLS connection to the gateway, trusting `cas`, offering `alpn`.
pub async fn tls_stream(
    gw: &Gateway,
    cas: &[&str],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Sends raw bytes over TLS and returns the raw response (for requests no HTTP client will
/// send as written, such as unnormalized paths).
pub async fn raw_https(gw: &Gateway, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = tls_stream(gw, &[&gw.ca_pem], &[]).await;
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Debian's Python, where `scripts/test` installs the python3-* packages the tests use (not a
/// pyenv shim on PATH).
pub const PYTHON: &str = "/usr/bin/python3";

/// Runs `PYTHON` with `args` off the runtime's threads: whether it succeeded, its stdout and
/// its stderr.
pub async fn python(args: Vec<String>) -> (bool, String, String) {
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new(PYTHON).args(args).output())
            .await
            .unwrap()
            .expect("running python3");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
