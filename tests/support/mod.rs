//! Test support: a real gateway from a TOML string on port 0 with real TLS (a test CA from
//! rcgen), a real upstream on loopback, a real HTTP client, and token minting for the cases
//! the gateway itself would never issue (expired, foreign, tampered).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use storegate::config::Config;
use storegate::state::{Generation, State};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

pub const SECRET: &str = "test-secret-0123456789";
pub const READER_SECRET: &str = "reader-secret-0123456789";
pub const ISSUER: &str = "https://gateway.test";

/// A running gateway; dropping it shuts the server down.
pub struct Gateway {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
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
            .client
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
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// POST a form to `path`.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
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

/// Starts a gateway with `config_toml(upstream, extra)`.
pub async fn spawn_gateway(upstream: SocketAddr, extra: &str) -> Gateway {
    spawn_gateway_toml(&config_toml(upstream, extra)).await
}

/// Starts a gateway from a full TOML text; cert.pem/key.pem/ca.pem are written beside it.
pub async fn spawn_gateway_toml(toml: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let pki = storegate::tls::DevPki::generate(&["localhost", "127.0.0.1"]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &pki.key_pem).unwrap();
    let config = Config::from_toml_str(toml, dir.path()).expect("test config is valid");
    let state = Arc::new(State::new(config).expect("gateway state"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
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
        dir,
        ca_pem: pki.ca_pem,
        shutdown: Some(tx),
        task: Some(task),
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

/// What the test upstream saw.
#[derive(Default)]
pub struct UpstreamLog {
    pub requests: AtomicUsize,
    /// Connections accepted.
    pub connections: AtomicUsize,
    pub last_headers: std::sync::Mutex<Option<hyper::HeaderMap>>,
    /// Bytes of the upload in progress received so far.
    pub upload_bytes: AtomicU64,
    /// Woken whenever upload bytes arrive.
    pub upload_progress: Notify,
}

/// A real HTTP/1.1 upstream on loopback:
/// * `/…/echo`: 200 with the request headers as JSON;
/// * `/…/slow`: answers after 5 s; `/…/wait`: after 1 s; `/…/close`: closes the connection;
/// * `/…/upload`: reads the body as it streams, answers with the byte count;
/// * `/…/download?bytes=N`: streams N bytes in 64 KiB chunks.
pub async fn spawn_upstream() -> (SocketAddr, Arc<UpstreamLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(UpstreamLog::default());
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let log = log2.clone();
            log.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(move |req| upstream_answer(req, log.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, log)
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

async fn upstream_answer(
    req: Request<Incoming>,
    log: Arc<UpstreamLog>,
) -> Result<Response<UpBody>, hyper::Error> {
    log.requests.fetch_add(1, Ordering::SeqCst);
    *log.last_headers.lock().unwrap() = Some(req.headers().clone());
    let path = req.uri().path().to_owned();
    let full = |s: String| Full::new(Bytes::from(s)).boxed();
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return Ok(Response::new(full("late".into())));
    }
    if path.ends_with("/close") {
        let mut resp = Response::new(full("closing".into()));
        resp.headers_mut()
            .insert("connection", "close".parse().unwrap());
        return Ok(resp);
    }
    if path.ends_with("/wait") {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return Ok(Response::new(full("waited".into())));
    }
    if path.ends_with("/upload") {
        log.upload_bytes.store(0, Ordering::SeqCst);
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame?.data_ref() {
                log.upload_bytes
                    .fetch_add(data.len() as u64, Ordering::SeqCst);
                log.upload_progress.notify_waiters();
            }
        }
        let n = log.upload_bytes.load(Ordering::SeqCst);
        return Ok(Response::new(full(json!({ "received": n }).to_string())));
    }
    if path.ends_with("/download") {
        let n: usize = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("bytes="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let frames = (0..n.div_ceil(chunk.len())).map(move |i| {
            let len = chunk.len().min(n - i * chunk.len());
            Ok::<_, std::convert::Infallible>(Frame::data(chunk.slice(..len)))
        });
        return Ok(Response::new(
            StreamBody::new(futures_util::stream::iter(frames)).boxed(),
        ));
    }
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(v.to_str().unwrap_or("").to_owned()),
            )
        })
        .collect();
    let mut resp = Response::new(full(
        json!({ "method": req.method().as_str(), "path": path, "headers": headers }).to_string(),
    ));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(resp)
}

/// An address on loopback where nothing listens.
pub async fn dead_address() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Standard claims for a backoffice token, `exp` relative to now.
pub fn claims(exp_from_now: i64) -> Value {
    let now = storegate::token::now_unix() as i64;
    json!({
        "iss": ISSUER, "sub": "backoffice-app", "aud": "backoffice", "client_id": "backoffice-app",
        "iat": now, "exp": now + exp_from_now, "jti": "t1", "scope": "read write", "gty": "client_credentials"
    })
}

/// Signs `claims` with an Ed25519 PKCS#8 PEM key, with header kid and typ at+jwt.
pub fn mint_eddsa(pem: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = Some("at+jwt".to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(pem).unwrap(),
    )
    .unwrap()
}

/// Base64url of a JSON value, for hand-made tokens.
pub fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Sends raw bytes over TLS and returns the raw response (for requests no HTTP client will
/// send as written, such as unnormalized paths).
pub async fn raw_https(gw: &Gateway, request: &[u8]) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(gw.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
