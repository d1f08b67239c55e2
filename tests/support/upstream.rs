//! A real HTTP/1.1 upstream on loopback that records what it saw.

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
use tokio::net::TcpListener;
use tokio::sync::Notify;

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
/// * `/…/stall`: sends the head and a first chunk, then stalls for 30 s;
/// * `/…/slow`: answers after 5 s; `/…/wait`: after 1 s; `/…/close`: closes the connection;
/// * `/…/upload`: reads the body as it streams, answers with the byte count;
/// * `/…/download?bytes=N`: streams N bytes in 64 KiB chunks.
pub async fn spawn_upstream() -> (SocketAddr, Arc<UpstreamLog>) {
    spawn_upstream_on(TcpListener::bind("127.0.0.1:0").await.unwrap())
}

/// `spawn_upstream` over TLS with `identity`'s certificate, asking for client certificates
/// issued by `client_ca` when one is given (and refusing callers without one); records the
/// SNI each connection sent (`None`: none) in the second value.
pub async fn spawn_upstream_tls(
    identity: &super::pki::Identity,
    client_ca: Option<&str>,
) -> (
    SocketAddr,
    Arc<UpstreamLog>,
    Arc<std::sync::Mutex<Vec<Option<String>>>>,
) {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (log, names) = (Arc::new(UpstreamLog::default()), Arc::default());
    let (log2, names2): (_, Arc<std::sync::Mutex<Vec<Option<String>>>>) =
        (log.clone(), Arc::clone(&names));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (log, names, acceptor) = (log2.clone(), names2.clone(), acceptor.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_owned);
                names.lock().unwrap().push(sni);
                serve(tls, log);
            });
        }
    });
    (addr, log, names)
}

/// `spawn_upstream`, serving on a unix socket at `path` (an app server in the same pod).
pub fn spawn_upstream_unix(path: &std::path::Path) -> Arc<UpstreamLog> {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let log = Arc::new(UpstreamLog::default());
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream, log2.clone());
        }
    });
    log
}

/// `spawn_upstream`, serving on `listener` (an IPv6 one, say).
pub fn spawn_upstream_on(listener: TcpListener) -> (SocketAddr, Arc<UpstreamLog>) {
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(UpstreamLog::default());
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream, log2.clone());
        }
    });
    (addr, log)
}

/// Serves one accepted connection (counted in `log`) with `upstream_answer`.
fn serve<S>(stream: S, log: Arc<UpstreamLog>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    log.connections.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let svc = service_fn(move |req| upstream_answer(req, log.clone()));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    });
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
    if path.ends_with("/stall") {
        // The head and a first chunk, then nothing for 30 s.
        let first = futures_util::stream::once(async { Ok(Frame::data(Bytes::from("partial"))) });
        let late = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Frame::data(Bytes::from("late")))
        });
        let body = StreamBody::new(futures_util::StreamExt::chain(first, late));
        return Ok(Response::new(body.boxed()));
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
