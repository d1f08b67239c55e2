//! An HTTP/2 stream's bodiless request, exchanged on the relay's terms: the request head the
//! caller would have sent over HTTP/1.1 is judged by the relay's parser (`head::parse_request`)
//! and written upstream by its writer (`head::write_upstream_head`), on a parked upstream
//! connection or a new one (`exchange`: the same take, resend rule and response-head reader),
//! from the stream's own task, without hyper's client (its pool, its channel to a connection
//! task, its second HTTP/1.1 implementation). The response head becomes the stream's header
//! map under the relay's field rule (`ResponseHead::forwards`); the body is read from the
//! upstream connection as the stream asks for it, decoded (`framed::Body::take_decoded`), and
//! the connection parked again when the body ends cleanly.
//!
//! Only what the relay would forward itself goes this way; the rest (a head it hands to
//! hyper, a request with a body, an `https://` upstream) takes hyper's client as before.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt;

use super::exchange::Link;
pub use super::exchange::{Failure, Request};
use super::framed;
use super::head::{self, Edits, MAX_HEADERS, Parsed};
use super::held::{Held, stray_bytes};
use super::response_head::{Framing, ResponseHead};
use crate::body::Fault;
use crate::parking::Parking;

/// Bytes read from the upstream at a time while a body streams.
const READ_CHUNK: usize = 16 * 1024;

/// The HTTP/1.1 request head an HTTP/2 caller's request stands for: its method, target and
/// fields, `:authority` as `Host` when it sent none (RFC 9113 §8.3.1). Written into `out`.
pub fn caller_head(req: &http::Request<impl Sized>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !req.headers().contains_key(header::HOST)
        && let Some(authority) = req.uri().authority()
    {
        head::field(out, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in req.headers() {
        head::field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The upstream's request head for `caller` (`caller_head`'s bytes), when the relay forwards
/// such a head itself and it has no body; `None` sends the request to hyper's client.
pub fn upstream_head(caller: &[u8], edits: &Edits<'_>, out: &mut Vec<u8>) -> Option<()> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match head::parse_request(caller, &mut slots, MAX_HEADERS) {
        Parsed::Head(h) if h.content_length == 0 && h.len == caller.len() => {
            out.clear();
            head::write_upstream_head(out, &h, edits);
            Some(())
        }
        _ => None,
    }
}

/// An answered exchange: the response head for the stream, and its body to come.
pub struct Answered {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Streamed,
}

/// Sends `req` (a bodiless request's upstream head, `req.bytes`) and reads the response head.
pub async fn exchange(req: &Request<'_>, parking: Arc<Parking>) -> Result<Answered, Failure> {
    let mut taken = |r: &ResponseHead<'_, '_>, _early: bool| response_head(r);
    let sent = Link::default()
        .send_resending(req, &mut tokio::io::empty(), &mut taken)
        .await;
    let (held, (answer, (status, headers))) = sent.map_err(|e| match e {
        Ok(failure) => failure,
        // Nothing is written to a caller before the head: no response can have broken off.
        Err(_) => Failure::Upstream("other", "the exchange broke off".into()),
    })?;
    let mut body = Streamed {
        held: Some(held),
        body: framed::Body::new(answer.framing),
        reusable: answer.reusable,
        parking,
    };
    if body.body.is_done() {
        body.end();
    }
    Ok(Answered {
        status,
        headers,
        body,
    })
}

/// The stream's status and header map of an upstream's response head: the fields the relay
/// forwards of it (`ResponseHead::forwards`), but `Transfer-Encoding`, for the body is
/// decoded.
pub fn response_head(r: &ResponseHead<'_, '_>) -> Result<(http::StatusCode, HeaderMap), Failure> {
    let bad = || Failure::Upstream("protocol", "malformed response head".into());
    let status = http::StatusCode::from_u16(r.status).map_err(|_| bad())?;
    let mut headers = HeaderMap::with_capacity(r.headers.len());
    for h in r.headers {
        // What hyper's client would refuse (and the caller get a 502 for) is refused too.
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad())?;
        if r.forwards(h.name, false) {
            headers.append(name, value);
        }
    }
    Ok((status, headers))
}

/// A response body read from the upstream connection as the stream asks for it.
pub struct Streamed {
    /// `None` once the body ended (the connection parked or closed).
    held: Option<Held>,
    /// What is left of it.
    body: framed::Body,
    reusable: bool,
    parking: Arc<Parking>,
}

impl Streamed {
    /// The body ended cleanly: the connection serves another request if it may.
    fn end(&mut self) {
        if let Some(held) = self.held.take() {
            if !held.buf.is_empty() {
                stray_bytes();
            } else if self.reusable {
                held.park(&self.parking);
            }
        }
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = Fault;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Fault>>> {
        let this = &mut *self;
        loop {
            if let Some(held) = this.held.as_mut().filter(|h| !h.buf.is_empty()) {
                let Ok(data) = this.body.take_decoded(&mut held.buf) else {
                    tracing::warn!("upstream response body: malformed chunked framing");
                    this.held = None;
                    return Poll::Ready(Some(Err(Fault::Broken)));
                };
                if this.body.is_done() {
                    this.end();
                }
                if !data.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
            }
            if this.body.is_done() {
                this.end();
                return Poll::Ready(None);
            }
            let Some(held) = this.held.as_mut() else {
                return Poll::Ready(None);
            };
            held.buf.reserve(READ_CHUNK);
            let n = match poll_read_buf(held, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "upstream response body failed");
                    this.held = None;
                    return Poll::Ready(Some(Err(Fault::Broken)));
                }
            };
            if n == 0 {
                this.held = None;
                if this.body.framing == Framing::UntilClose {
                    return Poll::Ready(None);
                }
                tracing::debug!("upstream closed the connection in the middle of a response body");
                return Poll::Ready(Some(Err(Fault::Broken)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() || self.body.framing == Framing::Empty
    }

    fn size_hint(&self) -> SizeHint {
        match self.body.framing {
            Framing::Length(_) => SizeHint::with_exact(self.body.left()),
            Framing::Empty => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// Reads what the upstream sent into the connection's buffer. (`read_buf`'s future keeps no
/// state between polls: one made per poll is the same as one kept.)
fn poll_read_buf(held: &mut Held, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    let read = std::pin::pin!(held.stream.read_buf(&mut held.buf));
    read.poll(cx)
}
