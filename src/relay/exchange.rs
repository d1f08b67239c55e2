//! One relayed exchange with the upstream: on the caller's connection's own upstream
//! connection (opened on first use, replaced when the route's upstream moved or the upstream
//! closed it), the request head and body written, the response head read and written again
//! for the caller, its body relayed as the bytes it came in.
//!
//! A held connection is used again only while it is idle: closed by the upstream meanwhile
//! (app servers close idle keep-alive connections on their own timers), or holding bytes no
//! request asked for, it is dropped before a byte is written on it, and the request goes on a
//! new one. A request is sent again on a new connection only when that is safe, as nginx's
//! `proxy_next_upstream` rules have it: the upstream closed a connection kept from an earlier
//! request before a byte of its answer came, and the request is idempotent and has no body.

use std::time::Duration;

use bytes::BytesMut;
use http::uri::Authority;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};

use super::framed::Body;
use super::head::MAX_HEADERS;
use super::held::{Held, connect, stray_bytes};
use super::response_head::{self, Framing, ResponseEdits, ResponseHead};
use super::slots::Slots;
use crate::forwarding;

/// Bytes read from a socket at a time while relaying a body.
const READ_CHUNK: usize = 16 * 1024;

/// The upstream connection a caller's connection holds between its requests.
#[derive(Default)]
pub struct Link(Option<Held>);

/// What one exchange needs to know.
pub struct Request<'a> {
    pub authority: &'a Authority,
    /// The head (and the body bytes the caller sent with it).
    pub bytes: &'a [u8],
    /// Body bytes still to come from the caller.
    pub body_left: u64,
    pub head_request: bool,
    /// `forwarding::resendable`.
    pub resendable: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub body_idle: Duration,
    pub max_head: usize,
    /// Where idle callers' upstream connections wait for the next request.
    pub parking: &'a crate::parking::Parking,
}

/// Why an exchange failed before the caller was sent a byte of the response.
#[derive(Debug)]
pub enum Failure {
    /// The upstream's: the `kind` label of its metric, and what happened.
    Upstream(&'static str, String),
    /// No response head within the route's timeout.
    Timeout,
    /// The caller's body stalled.
    CallerIdle,
    /// The caller's connection ended or failed: there is no one to answer.
    CallerGone,
}

impl Failure {
    /// The failure in the terms of the one rule of what it is answered with
    /// (`forwarding::refusal`).
    pub fn failed(&self) -> forwarding::Failed<'_> {
        match self {
            Failure::Upstream(kind, error) => forwarding::Failed::Upstream { kind, error },
            Failure::Timeout => forwarding::Failed::Timeout,
            Failure::CallerIdle | Failure::CallerGone => {
                forwarding::Failed::Caller(crate::body::Fault::Idle)
            }
        }
    }
}

/// A finished exchange.
pub struct Relayed {
    pub status: u16,
    pub bytes_out: Option<u64>,
    /// The caller's connection must close: the response said so, is delimited by the close,
    /// failed halfway, or the caller's body was not read to its end.
    pub close: bool,
}

/// The error of an exchange whose response had started: the caller's connection closes.
pub struct Broken;

impl Link {
    /// Sends `req` and relays the answer to `down`. `Err(Ok(failure))` when nothing was
    /// written to the caller (it gets a refusal), `Err(Err(Broken))` when the response broke
    /// off on the way.
    pub async fn exchange<D: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        req: &Request<'_>,
        down: &mut D,
        mut edits: ResponseEdits<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Relayed, Result<Failure, Broken>> {
        let mut caller_head = |r: &ResponseHead<'_, '_>, early: bool| {
            // The caller's body was not read to its end: its connection cannot go on.
            edits.close |= early;
            out.clear();
            response_head::write_response_head(out, r, &edits);
            Ok(())
        };
        let (mut held, (answer, ())) = self.send_resending(req, down, &mut caller_head).await?;
        let relayed = Relayed {
            status: answer.status,
            bytes_out: answer.bytes_out,
            close: edits.close || answer.framing == Framing::UntilClose,
        };
        if relay(&mut held, answer, req, down, out).await? {
            self.0 = Some(held);
        }
        Ok(relayed)
    }

    /// Sends `req` on the held (or a parked, or a new) connection, and sends it again on a new
    /// one when `forwarding::resend` says so; `head` takes the response head (and whether
    /// the upstream answered before the caller's body was all sent).
    pub(super) async fn send_resending<D: AsyncRead + Unpin, T>(
        &mut self,
        req: &Request<'_>,
        down: &mut D,
        head: &mut impl FnMut(&ResponseHead<'_, '_>, bool) -> Result<T, Failure>,
    ) -> Result<(Held, (Answer, T)), Result<Failure, Broken>> {
        let (mut held, reused) = self.take(req).await.map_err(Ok)?;
        let mut sent = send(&mut held, req, down, head).await;
        let closed_unanswered =
            matches!(sent, Err(Failure::Upstream("reset", _))) && held.buf.is_empty();
        if forwarding::resend(req.resendable, reused, closed_unanswered) {
            tracing::debug!("upstream closed a kept connection; sending again on a new one");
            held = connect(req).await.map_err(Ok)?;
            sent = send(&mut held, req, down, head).await;
        }
        Ok((held, sent.map_err(Ok)?))
    }

    /// The held connection if it is to the route's upstream and still idle, else a parked
    /// one that is (and whether it was one of those), else a new one.
    async fn take(&mut self, req: &Request<'_>) -> Result<(Held, bool), Failure> {
        if let Some(mut h) = self.0.take() {
            if h.authority != *req.authority {
                // Open to another upstream (a reload moved the route): kept for its callers.
                h.park(req.parking);
            } else if h.is_idle() {
                return Ok((h, true));
            }
        }
        while let Some(stream) = req.parking.take(req.authority) {
            let mut h = Held {
                authority: req.authority.clone(),
                stream,
                buf: BytesMut::new(),
            };
            if h.is_idle() {
                return Ok((h, true));
            }
        }
        Ok((connect(req).await?, false))
    }

    /// Parks the held connection (if it is still idle) for any caller's next request: the
    /// caller's connection has gone idle, or is closing.
    pub fn park(&mut self, parking: &crate::parking::Parking) {
        if let Some(h) = self.0.take() {
            h.park(parking);
        }
    }
}

/// The response head, written for the caller into `out` (and taken from `held.buf`).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) framing: Framing,
    pub(super) bytes_out: Option<u64>,
    /// The upstream connection may serve another request after this one.
    pub(super) reusable: bool,
}

/// Writes the request and its body, reads the response head and hands it to `head` (with
/// whether the upstream answered before the caller's body was all sent: then the caller's
/// connection is to close, and the upstream's is not kept).
async fn send<D: AsyncRead + Unpin, T>(
    held: &mut Held,
    req: &Request<'_>,
    down: &mut D,
    head: &mut impl FnMut(&ResponseHead<'_, '_>, bool) -> Result<T, Failure>,
) -> Result<(Answer, T), Failure> {
    held.buf.clear();
    let reset = |e: std::io::Error| Failure::Upstream("reset", e.to_string());
    // The requests of the connections ready to run leave together: the upstream on the other
    // side is woken once for them, not once each (see BENCHMARKS.md, affinity).
    tokio::task::yield_now().await;
    held.stream.write_all(req.bytes).await.map_err(reset)?;
    let early = req.body_left > 0 && send_body(held, req, down).await?;
    let deadline = Instant::now() + req.timeout;
    loop {
        let mut slots = Slots::new();
        // Nothing read yet (the usual case, right after the request): nothing to parse.
        let parsed = match held.buf.is_empty() {
            true => Ok(None),
            false => slots.response(&held.buf, req.head_request),
        };
        match parsed {
            Ok(Some(r)) if (100..200).contains(&r.status) => {
                // An interim response (100 Continue unasked, 103): not relayed.
                let len = r.len;
                let _ = held.buf.split_to(len);
                continue;
            }
            Ok(Some(r)) => {
                let taken = head(&r, early)?;
                let answer = Answer {
                    status: r.status,
                    framing: r.framing,
                    bytes_out: response_head::length_of(&r),
                    reusable: r.reusable && !early,
                };
                let len = r.len;
                let _ = held.buf.split_to(len);
                return Ok((answer, taken));
            }
            Ok(None) if held.buf.len() > req.max_head => {
                return Err(Failure::Upstream(
                    "protocol",
                    "response head too large".into(),
                ));
            }
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::Upstream("protocol", e.to_string()));
            }
        }
        held.buf.reserve(READ_CHUNK);
        match timeout_at(deadline, held.stream.read_buf(&mut held.buf)).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Ok(0)) => {
                return Err(Failure::Upstream(
                    "reset",
                    "the upstream closed the connection before answering".into(),
                ));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(reset(e)),
        }
    }
}

/// Copies the rest of the caller's body upstream; `Ok(true)` when the upstream answered (or
/// closed) before it was all sent.
async fn send_body<D: AsyncRead + Unpin>(
    held: &mut Held,
    req: &Request<'_>,
    down: &mut D,
) -> Result<bool, Failure> {
    let mut left = req.body_left;
    let mut chunk = vec![0u8; READ_CHUNK];
    // Halves that read the answer while the body is written (a unix socket's too).
    let (mut r, mut w) = tokio::io::split(&mut held.stream);
    while left > 0 {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        tokio::select! {
            biased;
            answer = r.read_buf(&mut held.buf) => match answer {
                // An interim answer (`100 Continue`) is no answer to the body: send on.
                Ok(n) if n > 0 => if final_answer_began(&mut held.buf, req) {
                    return Ok(true);
                },
                Ok(_) => return Err(Failure::Upstream("reset", "the upstream closed the connection during the request body".into())),
                Err(e) => return Err(Failure::Upstream("reset", e.to_string())),
            },
            read = timeout(req.body_idle, down.read(&mut chunk[..want])) => {
                let n = match read {
                    Err(_) => return Err(Failure::CallerIdle),
                    Ok(Ok(0)) | Ok(Err(_)) => return Err(Failure::CallerGone),
                    Ok(Ok(n)) => n,
                };
                match timeout(req.body_idle, w.write_all(&chunk[..n])).await {
                    Ok(Ok(())) => left -= n as u64,
                    Ok(Err(e)) => return Err(Failure::Upstream("reset", e.to_string())),
                    Err(_) => return Err(Failure::Timeout),
                }
            }
        }
    }
    Ok(false)
}

/// Takes the interim answers (1xx but 101) off the front of `buf`; returns whether what is
/// left begins another answer (a final one, or one that is not HTTP: `send` judges it), rather
/// than nothing or the start of a head still coming.
fn final_answer_began(buf: &mut BytesMut, req: &Request<'_>) -> bool {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match response_head::parse_response(buf, &mut slots, req.head_request) {
            Ok(Some(r)) if (100..200).contains(&r.status) => {
                let len = r.len;
                let _ = buf.split_to(len);
            }
            Ok(None) => return buf.len() > req.max_head,
            Ok(Some(_)) | Err(_) => return true,
        }
    }
}

/// Writes the caller's response head (in `out`) and relays the body; returns whether the
/// upstream connection can serve another request.
async fn relay<D: AsyncWrite + Unpin>(
    held: &mut Held,
    answer: Answer,
    req: &Request<'_>,
    down: &mut D,
    out: &mut Vec<u8>,
) -> Result<bool, Result<Failure, Broken>> {
    let mut body = Body::new(answer.framing);
    let complete = body
        .take(&mut held.buf, out)
        .map_err(|()| Ok(malformed()))?;
    tokio::task::yield_now().await;
    write(down, out, req.body_idle).await.map_err(Err)?;
    if !complete {
        relay_rest(held, &mut body, down, out, req.body_idle).await?;
    }
    if !held.buf.is_empty() {
        stray_bytes();
    }
    Ok(answer.reusable && held.buf.is_empty() && body.is_done())
}

fn malformed() -> Failure {
    Failure::Upstream("protocol", "malformed chunked response body".into())
}

async fn relay_rest<D: AsyncWrite + Unpin>(
    held: &mut Held,
    body: &mut Body,
    down: &mut D,
    out: &mut Vec<u8>,
    idle: Duration,
) -> Result<(), Result<Failure, Broken>> {
    loop {
        held.buf.reserve(READ_CHUNK);
        let n = match timeout(idle, held.stream.read_buf(&mut held.buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upstream response body failed");
                return Err(Err(Broken));
            }
            Err(_) => {
                tracing::warn!("upstream response body stalled for {idle:?}");
                return Err(Err(Broken));
            }
        };
        if n == 0 {
            if body.framing == Framing::UntilClose {
                return Ok(());
            }
            tracing::warn!("upstream closed the connection in the middle of a response body");
            return Err(Err(Broken));
        }
        out.clear();
        let complete = body.take(&mut held.buf, out).map_err(|()| {
            tracing::warn!("upstream response body: {:?}", malformed());
            Err(Broken)
        })?;
        write(down, out, idle).await.map_err(Err)?;
        if complete {
            return Ok(());
        }
    }
}

/// Writes `out` to the caller, who must take it within `idle`.
async fn write<D: AsyncWrite + Unpin>(
    down: &mut D,
    out: &[u8],
    idle: Duration,
) -> Result<(), Broken> {
    let written = async {
        down.write_all(out).await?;
        down.flush().await
    };
    match timeout(idle, written).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Broken),
    }
}
