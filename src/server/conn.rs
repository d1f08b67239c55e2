//! One connection: the TLS handshake under a deadline, HTTP/1.1 or HTTP/2 (ALPN decides, or
//! the auto builder sniffs on plain HTTP), and its end: the server's shutdown, or idleness.
//!
//! A connection no request is using is closed gracefully (HTTP/2 GOAWAY; HTTP/1.1 after the
//! response in progress) once it has been idle for `server.idle_timeout_ms`, or, before its
//! first request, for `server.header_read_timeout_ms`: an HTTP/2 connection that sends nothing
//! (or only its preface and SETTINGS) holds no connection slot for longer than that.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::linger::Lingering;
use crate::conn::ConnInfo;
use crate::metrics::Protocol;
use crate::mtls::Presented;
use crate::relay::{self, End};
use crate::service;
use crate::state::State;
use prometheus_client::metrics::gauge::Gauge;

pub(super) struct Builders {
    pub auto: auto::Builder<TokioExecutor>,
    pub http1: hyper::server::conn::http1::Builder,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(super) async fn serve(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    builder: &Builders,
    stopping: watch::Receiver<bool>,
) {
    // Each request loads the generation current when it starts; the connection holds none.
    let service = |conn: Arc<ConnInfo>| {
        let state = state.clone();
        service_fn(move |req| {
            let (state, conn) = (state.clone(), conn.clone());
            let busy = conn.busy();
            async move {
                // Boxed: hyper spawns each HTTP/2 stream's future as a task, moving it several
                // times on the way; the request's own state (over 5 KiB) moves once, here.
                let resp = Box::pin(service::handle(req, &state, &conn)).await;
                drop(busy);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    // This connection's own graceful shutdown, started by the server's or by idleness.
    let local = GracefulShutdown::new();
    let watcher = local.watcher();
    let metrics = &state.shared.metrics;
    // A drain sends the HTTP/2 connections open when it starts a GOAWAY at once (HTTP/1.1
    // gets `Connection: close` on its next response, from the service). One opened during the
    // drain (a caller not yet moved elsewhere) is served until the drain delay ends, and
    // closed with the rest: a GOAWAY right behind its SETTINGS only sends the caller back to
    // reconnect here, and it reaches a client that has just queued requests on the new
    // connection before writing any of them: hyper's client (reqwest) can then close the
    // connection with none of them written, and they wait for their timeout.
    let draining = state.shared.health.draining();
    let drained_at_accept = *draining.borrow();
    let ends = |h2: bool| Ends {
        stopping: stopping.clone(),
        draining: (h2 && !drained_at_accept).then(|| draining.clone()),
    };
    let result: Result<(), BoxError> = match acceptor {
        None => {
            let _open = Open::new(metrics, "plaintext");
            let info = Arc::new(ConnInfo::new(peer, false).owning_upstream());
            // The relay first; what it does not take (HTTP/2 among it) goes to hyper.
            let stream = Lingering::new(stream);
            let stream = match Box::pin(relay::serve(stream, &state, &info, stopping.clone())).await
            {
                End::Closed => return,
                End::Hyper(stream) => stream,
            };
            let svc = service(info.clone());
            let conn = builder
                .auto
                .serve_connection(TokioIo::new(stream), svc)
                .into_owned();
            Box::pin(drive(
                watcher.watch(conn),
                local,
                ends(false),
                &state,
                &info,
            ))
            .await
        }
        Some(acceptor) => {
            // Boxed: the handshake's state (the TLS session, over 1 KiB) is done with once it
            // ends, and would otherwise stay in this future, which every connection keeps
            // for its whole life (BENCHMARKS.md, idle connections).
            let handshake = acceptor.accept(stream);
            let handshake = Box::pin(tokio::time::timeout(
                state.shared.fixed.handshake_timeout,
                handshake,
            ));
            let tls = match handshake.await {
                // Boxed at once: see below.
                Ok(Ok(tls)) => Box::new(tls),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let session = tls.get_ref().1;
            let h2 = session.alpn_protocol() == Some(b"h2");
            let cert = Presented::of_tls(session);
            let _open = Open::new(metrics, if h2 { "http2" } else { "http1" });
            // Every close from here on is a lingering one (see `linger`). The TLS session (over
            // 1 KiB) was boxed at the handshake, so that this future and those that take the
            // stream in turn (relay, then maybe hyper) hold a pointer, not a copy each: every
            // idle connection pays for those futures' size (BENCHMARKS.md, idle connections).
            let tls = Lingering::new(tls);
            if h2 {
                let info = Arc::new(ConnInfo::new(peer, true).presenting(cert));
                // ALPN already chose: skip the auto builder's preface sniffing.
                let svc = service(info.clone());
                let h2 = builder.auto.clone();
                let conn = h2
                    .http2_only()
                    .serve_connection(TokioIo::new(tls), svc)
                    .into_owned();
                Box::pin(drive(watcher.watch(conn), local, ends(true), &state, &info)).await
            } else {
                let info = Arc::new(ConnInfo::new(peer, true).presenting(cert).owning_upstream());
                let relayed = Box::pin(relay::serve(tls, &state, &info, stopping.clone()));
                let tls = match relayed.await {
                    End::Closed => return,
                    End::Hyper(tls) => tls,
                };
                let svc = service(info.clone());
                let conn = watcher.watch(builder.http1.serve_connection(TokioIo::new(tls), svc));
                Box::pin(drive(conn, local, ends(false), &state, &info)).await
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// What ends a connection besides itself: the server stopping, and (for HTTP/2) a drain.
struct Ends {
    stopping: watch::Receiver<bool>,
    draining: Option<watch::Receiver<bool>>,
}

async fn drain_started(draining: &mut Option<watch::Receiver<bool>>) {
    match draining {
        Some(d) => {
            if d.wait_for(|on| *on).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Counts an open connection by protocol while it lives.
struct Open(Gauge);

impl Open {
    fn new(metrics: &crate::metrics::Metrics, protocol: &'static str) -> Open {
        let gauge = metrics
            .open_connections
            .get_or_create_owned(&Protocol { protocol });
        gauge.inc();
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Runs a connection until it ends (boxed by its callers, as the relay is: each connection
/// allocates the future of the protocol it speaks, rather than every connection carrying the
/// largest of them, which every idle connection would pay for; BENCHMARKS.md, idle
/// connections); starts its graceful shutdown when the server stops or the
/// connection has been idle too long, and keeps running it until the shutdown completes.
async fn drive<E: Into<BoxError>>(
    conn: impl Future<Output = Result<(), E>>,
    local: GracefulShutdown,
    ends: Ends,
    state: &State,
    conn_info: &ConnInfo,
) -> Result<(), BoxError> {
    let fixed = &state.shared.fixed;
    let (activity, first, idle) = (
        &conn_info.activity,
        fixed.header_read_timeout,
        fixed.idle_timeout,
    );
    let Ends {
        mut stopping,
        mut draining,
    } = ends;
    tokio::pin!(conn);
    let mut local = Some(local);
    let mut closing: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
    let mut close = |why: &str| {
        tracing::debug!("closing the connection: {why}");
        local
            .take()
            .map(|l| Box::pin(l.shutdown()) as Pin<Box<dyn Future<Output = ()> + Send>>)
    };
    if *stopping.borrow() {
        closing = close("the server is shutting down");
    }
    // An idle connection whose graceful close does not complete (an HTTP/2 peer that never
    // answers the PING that follows GOAWAY, or never sent its preface) is dropped after this.
    let mut drop_at: Option<Instant> = None;
    loop {
        // A request that ends can move the idle time earlier: look again within `idle`.
        let idle_at = activity.idle_at(first, idle).min(Instant::now() + idle);
        tokio::select! {
            r = &mut conn => return r.map_err(Into::into),
            _ = stopping.changed(), if closing.is_none() => closing = close("the server is shutting down"),
            () = drain_started(&mut draining), if closing.is_none() => closing = close("draining"),
            () = tokio::time::sleep_until(idle_at), if closing.is_none() => {
                if activity.idle_at(first, idle) <= Instant::now() {
                    closing = close("idle");
                    drop_at = Some(Instant::now() + idle.min(IDLE_CLOSE_GRACE));
                }
            }
            () = sleep_until_some(drop_at) => {
                tracing::debug!("dropping an idle connection that did not close gracefully");
                return Ok(());
            }
            () = async { if let Some(c) = closing.as_mut() { c.await } }, if closing.is_some() => {}
        }
    }
}

/// Longest an idle connection's graceful close may take before the connection is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
