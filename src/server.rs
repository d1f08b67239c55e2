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

use crate::conn::ConnInfo;
use crate::service;
use crate::state::State;

/// Serves `listener` until `shutdown` completes, then lets in-flight requests finish for up to
/// the configured grace period.
pub async fn run(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Listener settings are restart-only: a reload never changes them under open connections.
    let cfg = &state.shared.fixed;
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
        // The certificate of the generation current at accept time serves this connection.
        let acceptor = state.load().tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            serve_connection(stream, peer, acceptor, state, &builder, watcher).await;
        });
    }

    drop(listener);
    let grace = state.shared.fixed.shutdown_grace;
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
    peer: std::net::SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    builder: &Builders,
    watcher: hyper_util::server::graceful::Watcher,
) {
    // Each request loads the generation current when it starts; the connection holds none.
    let service = |conn: Arc<ConnInfo>| {
        let state = state.clone();
        service_fn(move |req| {
            let state = state.clone();
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(service::handle(req, &state, &conn).await) }
        })
    };
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = match acceptor {
        None => {
            let svc = service(Arc::new(ConnInfo::new(peer, false)));
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
            let handshake = acceptor.accept(stream);
            let tls =
                match tokio::time::timeout(state.shared.fixed.handshake_timeout, handshake).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let svc = service(Arc::new(ConnInfo::new(peer, true)));
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
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
