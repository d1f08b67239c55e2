//! The HTTP/1.1 relay: a caller's HTTP/1.1 connection served the way nginx serves one. The
//! request head is parsed in place (httparse), guarded, edited on its way to the upstream
//! (`head`), and the response is relayed as the bytes it came in (`exchange`), with no
//! `Request`/`HeaderMap` built on either side and the upstream connection driven in the
//! caller's connection's own task.
//!
//! The relay takes the plain case: an HTTP/1.1 request with no body or a `Content-Length` one.
//! It dispatches and guards it with the functions hyper's path calls (`decide`), forwards it
//! (`exchange`), or answers it with a refusal or the gateway's own answer (`answer`: the token
//! endpoints and documents, from the same code, with the body read from its buffer), and
//! records it with `access::finish`. Anything else — chunked or `Expect` bodies, upgrades,
//! CONNECT, HTTP/1.0, a head over the limits or one hyper would refuse — is handed to hyper
//! with the bytes read so far (`Prefixed`), and hyper serves the connection from then on,
//! exactly as it serves one that never met the relay.

mod answer;
pub(crate) mod chunked;
mod decide;
mod exchange;
mod framed;
pub(crate) mod head;
mod held;
mod prefixed;
pub(crate) mod response_head;
mod slots;
pub(crate) mod stream;

use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::conn::ConnInfo;
use crate::state::State;
use decide::{Decided, decide};
use exchange::Link;
use head::Parsed;
pub use prefixed::Prefixed;
use response_head::ResponseEdits;
use slots::Slots;

/// How a relayed connection ended.
pub enum End<T> {
    Closed,
    /// Handed to hyper, with what was read of it.
    Hyper(Prefixed<T>),
}

/// What a busy connection keeps between its requests (an idle one keeps none of it: `serve`).
#[derive(Default)]
struct Kept {
    link: Link,
    /// The upstream's head, and what is written to the caller.
    upstream_out: Vec<u8>,
    out: Vec<u8>,
}

/// How long a caller's connection waits for its next request before it lets go of all it
/// holds (`serve`: the upstream connection to the others, the buffers and the busy future to
/// the allocator): longer than a busy caller's pause between two requests, so that it keeps
/// them while it works; short enough that callers sending a request every few seconds hold
/// none of them between their requests.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// Read at a time into a request head's buffer.
const HEAD_CHUNK: usize = 4096;

/// Serves HTTP/1.1 requests on `io` until the connection ends or a request is one for hyper.
///
/// While the caller is busy, its connection is served by a boxed future (`serve_busy`) holding
/// the read buffer, the upstream connection and a request's state; once it has been idle for
/// `PARK_AFTER`, that future ends, letting go of all of them, and the connection waits here
/// for its next request with nothing but its stream (`wake`), as nginx's do: what an idle
/// connection costs is this future, not the busy one (BENCHMARKS.md, idle connections).
pub async fn serve<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    state: &State,
    conn: &ConnInfo,
    mut stopping: watch::Receiver<bool>,
) -> End<T> {
    let mut buf = head_buffer();
    loop {
        let busy = serve_busy(io, buf, state, conn, stopping.clone());
        match Box::pin(busy).await {
            Spell::Ended(end) => return end,
            Spell::Idle(idle, deadline) => match wake(idle, deadline, &mut stopping).await {
                Some((again, first)) => (io, buf) = (again, first),
                None => return End::Closed,
            },
        }
    }
}

/// How a busy spell of a connection ended.
enum Spell<T> {
    Ended(End<T>),
    /// Idle for `PARK_AFTER` with nothing of a request read; it ends at the deadline.
    Idle(T, tokio::time::Instant),
}

async fn serve_busy<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
    buf: BytesMut,
    state: &State,
    conn: &ConnInfo,
    stopping: watch::Receiver<bool>,
) -> Spell<T> {
    let mut kept = Kept::default();
    let spell = serve_on(io, buf, state, conn, stopping, &mut kept).await;
    // Ended, handed to hyper or idle: the upstream connection serves other callers.
    kept.link.park(&state.shared.parking);
    spell
}

/// Waits for an idle connection's next request to begin, until `deadline` or the server
/// stops, and reads its first byte (over TLS, rustls holds the record meanwhile) into a new
/// buffer; `None`: the connection ends.
async fn wake<T: AsyncRead + Unpin>(
    mut io: T,
    deadline: tokio::time::Instant,
    stopping: &mut watch::Receiver<bool>,
) -> Option<(T, BytesMut)> {
    let mut first = [0u8; 1];
    tokio::select! {
        read = io.read(&mut first) => match read {
            Ok(1) => {
                let mut buf = head_buffer();
                buf.extend_from_slice(&first);
                Some((io, buf))
            }
            _ => None,
        },
        _ = tokio::time::sleep_until(deadline) => None,
        _ = stopping.wait_for(|s| *s) => None,
    }
}

async fn serve_on<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    mut buf: BytesMut,
    state: &State,
    conn: &ConnInfo,
    mut stopping: watch::Receiver<bool>,
    kept: &mut Kept,
) -> Spell<T> {
    let shared = &state.shared;
    let fixed = &shared.fixed;
    let max_head = fixed.limits.max_header_bytes;
    let mut wait = fixed.header_read_timeout;
    let mut g;
    loop {
        // Between requests the idle timeout; once a head has begun (pipelined behind the last
        // request, or its first bytes read), the rest of it within the header read timeout.
        if !buf.is_empty() {
            wait = fixed.header_read_timeout;
        }
        let now = tokio::time::Instant::now();
        let mut deadline = now + wait;
        // Waiting for a request with nothing of it read: at `park_at` (`PARK_AFTER`) this busy
        // spell ends, and `serve` waits for the next request with the stream alone.
        let mut park_at = (buf.is_empty() && !*stopping.borrow())
            .then(|| now + PARK_AFTER)
            .filter(|at| *at < deadline);
        // Set while the body of a request for one of the gateway's own targets is awaited,
        // and once it is late.
        let (mut awaiting_body, mut late) = (false, false);
        let (plan, seen, started) = loop {
            let mut slots = Slots::new();
            match slots.request(&buf, fixed.limits.max_headers) {
                // However it arrived, a head over the limit is hyper's to refuse (431).
                Parsed::Head(h) if h.len > max_head => {
                    return Spell::Ended(End::Hyper(Prefixed::new(buf, io)));
                }
                Parsed::Head(h) => {
                    let started = Instant::now();
                    // Each request loads the generation current when it starts.
                    g = state.load();
                    kept.upstream_out.clear();
                    let out = &mut kept.upstream_out;
                    match decide(&h, &buf, (&g, shared, conn), late, out).await {
                        Decided::Take(plan, seen) => break (plan, seen, started),
                        Decided::Hyper => return Spell::Ended(End::Hyper(Prefixed::new(buf, io))),
                        Decided::MoreBody if !awaiting_body => {
                            awaiting_body = true;
                            deadline = tokio::time::Instant::now() + g.config.body_read_timeout;
                        }
                        Decided::MoreBody => {}
                    }
                }
                Parsed::Elsewhere => return Spell::Ended(End::Hyper(Prefixed::new(buf, io))),
                Parsed::Partial if buf.len() > max_head => {
                    return Spell::Ended(End::Hyper(Prefixed::new(buf, io)));
                }
                Parsed::Partial => {}
            }
            let was_empty = buf.is_empty();
            tokio::select! {
                read = read_more(&mut io, &mut buf) => match read {
                    Ok(n) if n > 0 => park_at = None,
                    _ => return Spell::Ended(End::Closed),
                },
                // A late body is refused (`decide` sees `late`), and the connection closed.
                _ = tokio::time::sleep_until(deadline), if awaiting_body => {
                    late = true;
                    continue;
                }
                // Between requests, or in a head: the connection ends (first, between requests,
                // it lets go of what it holds). Never both arms on one deadline: `select!`
                // picks among ready arms at random.
                _ = tokio::time::sleep_until(park_at.unwrap_or(deadline)), if !awaiting_body => {
                    if park_at.take().is_none() {
                        return Spell::Ended(End::Closed);
                    }
                    return Spell::Idle(io, deadline);
                }
                _ = stopping.wait_for(|s| *s) => return Spell::Ended(End::Closed),
            }
            if was_empty {
                // The rest of the head within the header read timeout.
                deadline = tokio::time::Instant::now() + fixed.header_read_timeout;
            }
        };
        buf.advance(seen.consumed);
        let date = http_date();
        let edits = ResponseEdits {
            request_id: seen.request_id.as_bytes(),
            close: seen.close || shared.health.is_draining() || *stopping.borrow(),
            date: &date,
            cors: seen.cors.as_ref(),
        };
        conn.activity.begin();
        let answered = answer::answer(
            &mut io,
            kept,
            plan,
            &seen,
            edits,
            started,
            (&g, state, conn),
        )
        .await;
        conn.activity.end();
        let Some(close) = answered else {
            return Spell::Ended(End::Closed);
        };
        if close {
            let _ = tokio::time::timeout(CLOSE_TIME, io.shutdown()).await;
            return Spell::Ended(End::Closed);
        }
        wait = fixed.idle_timeout;
    }
}

/// The buffer a busy spell reads its request heads into.
fn head_buffer() -> BytesMut {
    BytesMut::with_capacity(2 * HEAD_CHUNK)
}

/// Reads more of a request head into `buf`.
async fn read_more<T: AsyncRead + Unpin>(io: &mut T, buf: &mut BytesMut) -> std::io::Result<usize> {
    buf.reserve(HEAD_CHUNK);
    io.read_buf(buf).await
}

/// Longest wait for a closing connection's last bytes (and TLS close_notify) to leave, and
/// then (`server::linger`) for the caller to close its end.
const CLOSE_TIME: Duration = Duration::from_secs(1);

/// The `Date` header's value, made once a second per thread.
fn http_date() -> [u8; 29] {
    thread_local! {
        static DATE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((0, [0; 29])) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let (at, date) = d.get();
        if at == secs {
            return date;
        }
        let mut fresh = [b' '; 29];
        let text = httpdate::fmt_http_date(now);
        let n = text.len().min(29);
        fresh[..n].copy_from_slice(&text.as_bytes()[..n]);
        d.set((secs, fresh));
        fresh
    })
}
