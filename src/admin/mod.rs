//! The admin listener: plain HTTP, separate from the public one, for the pod's own operators.
//!
//! * `GET /livez` — 200 while the process runs;
//! * `GET /readyz` — 200 once serving, 503 before and from the moment a drain starts;
//! * `GET /metrics` — the Prometheus metrics (OpenMetrics text);
//! * `POST /revocations` — the operator's revocations (`storegate revoke ...`), which change
//!   state: accepted only from a loopback peer, and only with `Authorization: Bearer` and the
//!   credential in `admin.token_file` (a Bearer credential over plain HTTP is acceptable only
//!   because the channel never leaves the host, RFC 6750 §5.3). Off when there is no file.

pub mod client;
mod revoke;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::Snapshot;
use crate::state::State;

pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Admin connections open at once, at most (probes and scrapes need a handful): the listener
/// binds the pod address, so nothing on the pod network may hold all the descriptors.
pub const MAX_CONNECTIONS: usize = 64;

type AdminResponse = Response<Full<Bytes>>;

/// The admin credential in `path`, made (random, owner-readable only) when the file is missing.
pub fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => anyhow::bail!("the admin token file {} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", path.display()));
        }
    }
    let token = crate::clients::generate_secret();
    crate::devfiles::write_private_file(path, format!("{token}\n").as_bytes())?;
    tracing::info!(file = %path.display(), "created the admin credential");
    Ok(token)
}

/// Serves the admin listener until the process ends. `token` is the credential of the
/// state-changing endpoints (`None`: they are off).
pub async fn serve(listener: TcpListener, state: Arc<State>, token: Option<Arc<str>>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // The loopback rule sees a dual-stack IPv4 peer as the IPv4 address it is.
        let peer = crate::conn::canonical(peer);
        let (state, token, http) = (state.clone(), token.clone(), http.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req| {
                let (state, token) = (state.clone(), token.clone());
                async move { Ok::<_, Infallible>(handle(req, &state, token.as_deref(), peer).await) }
            });
            if let Err(e) = http.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    state: &State,
    token: Option<&str>,
    peer: SocketAddr,
) -> AdminResponse {
    let health = &state.shared.health;
    match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/livez") => text(StatusCode::OK, "ok\n"),
        (&Method::GET | &Method::HEAD, "/readyz") => {
            if health.is_ready() {
                text(StatusCode::OK, "ready\n")
            } else if health.is_draining() {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
            }
        }
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let mut resp = text(StatusCode::OK, metrics(state));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(METRICS_CONTENT_TYPE),
            );
            resp
        }
        (&Method::POST, "/revocations") => revoke::handle(req, state, token, peer).await,
        (_, "/livez" | "/readyz" | "/metrics" | "/revocations") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Renders the metrics, with what is counted elsewhere read now.
fn metrics(state: &State) -> String {
    let shared = &state.shared;
    let g = state.load();
    let stats = &shared.tokens.stats;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    shared.metrics.render(Snapshot {
        cache_hits: stats.cache_hits.load(relaxed),
        verified: stats.verified.load(relaxed),
        reloads_succeeded: shared.reloads.succeeded.load(relaxed),
        reloads_failed: shared.reloads.failed.load(relaxed),
        generation: g.number,
        revoked: shared.revocations.len(),
        certificate_expiry: g.certificate_expiry,
        dpop_refused: shared.dpop.refusals().collect(),
        dpop_claims: shared.dpop.cluster.outcomes().collect(),
        dpop_replay_entries: shared.dpop.local.len(),
    })
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> AdminResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> AdminResponse {
    let mut resp = text(status, body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
