//! The accept loop: a connection cap, HTTP/1.1 and HTTP/2 builders with their limits, and a
//! graceful shutdown with a deadline. Each connection is served by `conn`.

mod conn;
mod linger;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::limits::HttpLimits;
use crate::state::State;

/// HTTP/2 PING interval on a connection, and how long a PING may go unanswered before the
/// connection is closed: a peer that vanished is noticed even mid-stream.
pub const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
pub const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `listener` until `shutdown` completes, then lets in-flight requests finish for up to
/// the configured grace period.
pub async fn run(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Listener settings are restart-only: a reload never changes them under open connections.
    let cfg = &state.shared.fixed;
    let limits = cfg.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper-util's auto builder (plain HTTP) has no head-size limit of its own: its read
    // buffer's bound stands in for it (exceeded by at most one read).
    let head_buffer = limits.max_header_bytes.max(crate::limits::MIN_HEAD_BYTES);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_buf_size(head_buffer)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEPALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams);
    // TLS connections whose ALPN chose HTTP/1.1 (or nothing) skip the auto builder's
    // version sniffing and its rewind buffer.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    if limits.max_headers != HttpLimits::default().max_headers {
        // Only when changed: hyper then parses headers into the heap (~5% slower, its docs say).
        builder.http1().max_headers(limits.max_headers);
        http1.max_headers(limits.max_headers);
    }
    let builder = Arc::new(conn::Builders {
        auto: builder,
        http1,
    });
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let (stop, stopping) = watch::channel(false);
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
        let peer = crate::conn::canonical(peer);
        let state = state.clone();
        let builder = builder.clone();
        let stopping = stopping.clone();
        // The certificate of the generation current at accept time serves this connection.
        let acceptor = state.load().tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            conn::serve(stream, peer, acceptor, state, &builder, stopping).await;
        });
    }

    drop(listener);
    let grace = state.shared.fixed.shutdown_grace;
    let all = cfg.max_connections;
    tracing::info!(
        open = all - slots.available_permits(),
        "shutting down; waiting up to {grace:?} for open requests"
    );
    let _ = stop.send(true);
    // Every open connection holds a slot: all slots back means all connections closed.
    let all = u32::try_from(all).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing the remaining connections"),
    }
    Ok(())
}

/// Waits for `signal`, then drains: readiness turns false at once, the HTTP/2 connections open
/// then get a GOAWAY and HTTP/1.1 responses `Connection: close`, while the listener keeps
/// accepting (HTTP/2 connections opened meanwhile get their GOAWAY when the delay ends) for
/// `server.drain_delay_ms`; then returns, for `run` to stop accepting and finish what is in
/// flight. Each message on `signals` is a signal: the first starts the drain, a second cuts
/// the delay short (a channel, so that a second signal sent at once is not missed).
pub async fn drain_after(state: Arc<State>, mut signals: tokio::sync::mpsc::UnboundedReceiver<()>) {
    if signals.recv().await.is_none() {
        return std::future::pending().await;
    }
    let delay = state.load().config.drain_delay;
    tracing::info!(
        "draining: not ready; serving on for {delay:?} before closing (signal again to stop now)"
    );
    state.shared.health.start_drain();
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        Some(()) = signals.recv() => tracing::info!("a second signal: the drain ends now"),
    }
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
