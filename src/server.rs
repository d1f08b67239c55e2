//! The accept loop: a connection cap, the TLS handshake under a deadline inside each
//! connection's task, HTTP/1.1 and HTTP/2 via hyper-util's auto builder, and a graceful
//! shutdown with a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::service::{self, ConnInfo, State};

/// Serves `listener` until `shutdown` completes, then lets in-flight requests finish for up to
/// the configured grace period.
pub async fn run(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let cfg = &state.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    // TLS connections whose ALPN chose HTTP/1.1 (or nothing) skip the auto builder's
    // version sniffing and its rewind buffer.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(Builders {
        auto: builder,
        http1,
    });
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let conn = Arc::new(ConnInfo::new(peer, state.tls.is_some()));
            serve_connection(stream, conn, state, &builder, watcher).await;
        });
    }

    drop(listener);
    let grace = state.config.shutdown_grace;
    tracing::info!(
        open = graceful.count(),
        "shutting down; waiting up to {grace:?} for open requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing the remaining connections"),
    }
    Ok(())
}

struct Builders {
    auto: auto::Builder<TokioExecutor>,
    http1: hyper::server::conn::http1::Builder,
}

async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    // A peer that gave up before we accepted is no problem of ours; anything else (such as
    // running out of file descriptors) gets a pause so the loop does not spin.
    if !matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        tracing::error!(error = %e, "accept failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn serve_connection(
    stream: TcpStream,
    conn: Arc<ConnInfo>,
    state: Arc<State>,
    builder: &Builders,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let svc_state = state.clone();
    let svc_conn = conn.clone();
    let svc = service_fn(move |req| {
        let state = svc_state.clone();
        let conn = svc_conn.clone();
        async move { Ok::<_, Infallible>(service::handle(req, &state, &conn).await) }
    });
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = match &state.tls {
        None => {
            watcher
                .watch(
                    builder
                        .auto
                        .serve_connection(TokioIo::new(stream), svc)
                        .into_owned(),
                )
                .await
        }
        Some(acceptor) => {
            let tls =
                match tokio::time::timeout(state.config.handshake_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %conn.peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %conn.peer, "TLS handshake timed out");
                        return;
                    }
                };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(tls);
            if h2 {
                // ALPN already chose: skip the auto builder's preface sniffing.
                watcher
                    .watch(
                        builder
                            .auto
                            .clone()
                            .http2_only()
                            .serve_connection(io, svc)
                            .into_owned(),
                    )
                    .await
            } else {
                watcher
                    .watch(builder.http1.serve_connection(io, svc))
                    .await
                    .map_err(Into::into)
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
    }
}
