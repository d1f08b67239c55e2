//! Bodies streamed through the proxy, guarded: cut off at a byte limit, ended when no byte
//! arrives for an idle time, and remembering why they failed. The caller's body goes upstream
//! in one; the upstream's response body comes back in another. When an upstream request fails,
//! the caller's body says whether the failure was the caller's (a malformed chunk, a body over
//! the limit, a stall: 4xx) or the upstream's (5xx).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// Most of a refused HTTP/2 request's body read (and dropped) before the refusal is sent.
pub const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Longest wait for it.
pub const DRAIN_MAX_TIME: Duration = Duration::from_secs(1);

/// Reads and drops a small request body before it is refused, on HTTP/2 only. Answering
/// before the body ends is allowed (RFC 9113 §8.1), but the stream is then reset with
/// NO_ERROR, and curl 7.88 (Debian 12's) reports that as a framing error for a third to two
/// thirds of such requests and never shows the error body. On HTTP/1.1 a refusal is sent
/// without reading (with `Expect: 100-continue` that is the point).
pub async fn drain_for_refusal(req: http::Request<Incoming>) {
    let (head, body) = req.into_parts();
    drain_before_refusal(head.version, body).await
}

/// `drain_for_refusal`, for a request already taken apart.
pub async fn drain_before_refusal(version: http::Version, mut body: Incoming) {
    if version != http::Version::HTTP_2 || body.is_end_stream() {
        return;
    }
    let read_all = async {
        let mut read = 0;
        while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > DRAIN_MAX_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, read_all).await;
}

/// Why a guarded body ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// More bytes than the limit.
    TooLarge,
    /// The peer's framing was broken (a bad chunk size, say) or its connection reset.
    Broken,
    /// No byte for the idle time.
    Idle,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fault::TooLarge => "the body is larger than allowed",
            Fault::Broken => "the body could not be read",
            Fault::Idle => "no byte of the body arrived in time",
        })
    }
}

impl std::error::Error for Fault {}

/// What a body records for whoever sent it: why it failed, or when it was all read.
#[derive(Debug, Default, Clone)]
pub struct Track(Arc<TrackInner>);

#[derive(Debug, Default)]
struct TrackInner {
    fault: OnceLock<Fault>,
    finished: OnceLock<Instant>,
}

impl Track {
    pub fn fault(&self) -> Option<Fault> {
        self.0.fault.get().copied()
    }

    /// When the last byte was read, if it was.
    pub fn finished(&self) -> Option<Instant> {
        self.0.finished.get().copied()
    }

    fn set(&self, fault: Fault) -> Fault {
        *self.0.fault.get_or_init(|| fault)
    }

    fn finish(&self) {
        self.0.finished.get_or_init(Instant::now);
    }
}

/// What a response body drives while it streams: the upstream connection it arrives on, when
/// the caller's own connection task drives that connection (`affinity`).
pub trait Driver: Send {
    /// Moves the connection on (reads what the body is waiting for).
    fn poll_drive(&mut self, cx: &mut Context<'_>);
    /// The body ended cleanly: the connection may serve the next request.
    fn done(self: Box<Self>);
}

/// A response body the gateway reads from its upstream connection itself (an HTTP/2 stream's
/// exchange on the relay's terms, `relay::stream`), rather than one hyper's client reads.
pub type Relayed = Pin<Box<dyn Body<Data = Bytes, Error = Fault> + Send>>;

/// Where a guarded body's frames come from.
enum Inner {
    Hyper(Incoming),
    Relayed(Relayed),
}

impl Inner {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Fault>>> {
        match self {
            Inner::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(|_| Fault::Broken))),
            Inner::Relayed(b) => b.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Inner::Hyper(b) => b.is_end_stream(),
            Inner::Relayed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Inner::Hyper(b) => b.size_hint(),
            Inner::Relayed(b) => b.size_hint(),
        }
    }
}

/// A streamed body with a byte limit and an idle timeout.
pub struct Guarded {
    /// `None`: an empty body (a request sent again).
    inner: Option<Inner>,
    /// Bytes still allowed.
    left: u64,
    idle: Duration,
    /// Armed while waiting for the peer; reset by every frame.
    timer: Option<Pin<Box<Sleep>>>,
    track: Track,
    /// An upstream's response body: its failures are logged here, since nobody else sees them
    /// (a caller's are answered and logged by the proxy).
    upstream: bool,
    /// The connection it arrives on, when this body drives it; dropped (closing the connection)
    /// if the body does not end cleanly.
    driver: Option<Box<dyn Driver>>,
}

impl Guarded {
    /// `limit` bytes at most (`u64::MAX`: none), `idle` at most between two frames.
    pub fn new(inner: Incoming, limit: u64, idle: Duration) -> Guarded {
        let track = Track::default();
        if inner.is_end_stream() {
            track.finish();
        }
        Guarded {
            inner: Some(Inner::Hyper(inner)),
            left: limit,
            idle,
            timer: None,
            track,
            upstream: false,
            driver: None,
        }
    }

    /// The same body, driving `driver` as it streams.
    pub fn driven_by(mut self, driver: Box<dyn Driver>) -> Guarded {
        self.driver = Some(driver);
        self
    }

    /// An upstream's response body, ended (and logged) when it stalls for `idle`.
    pub fn from_upstream(inner: Incoming, idle: Duration) -> Guarded {
        Guarded {
            upstream: true,
            ..Guarded::new(inner, u64::MAX, idle)
        }
    }

    /// A response body read from the upstream by the gateway itself (`relay::stream`), ended
    /// (and logged) when it stalls for `idle`.
    pub fn relayed(inner: Relayed, idle: Duration) -> Guarded {
        let track = Track::default();
        if inner.is_end_stream() {
            track.finish();
        }
        Guarded {
            inner: Some(Inner::Relayed(inner)),
            left: u64::MAX,
            idle,
            timer: None,
            track,
            upstream: true,
            driver: None,
        }
    }

    /// An empty body.
    pub fn empty() -> Guarded {
        let track = Track::default();
        track.finish();
        Guarded {
            inner: None,
            left: 0,
            idle: Duration::ZERO,
            timer: None,
            track,
            upstream: false,
            driver: None,
        }
    }

    /// Where this body records why it failed, or when it ended.
    pub fn track(&self) -> Track {
        self.track.clone()
    }

    fn fail(&mut self, fault: Fault) -> Poll<Option<Result<Frame<Bytes>, Fault>>> {
        self.timer = None;
        self.driver = None;
        if self.upstream {
            // A failed upstream body can only be cut off (h1: the connection closes; h2: the
            // stream is reset).
            match fault {
                Fault::Idle => {
                    tracing::warn!(idle = ?self.idle, "the upstream's response body stalled; ending the response")
                }
                _ => tracing::warn!("the upstream's response body failed; ending the response"),
            }
        }
        Poll::Ready(Some(Err(self.track.set(fault))))
    }
}

impl Guarded {
    /// The body ended cleanly.
    fn end(&mut self) {
        self.timer = None;
        self.track.finish();
        if let Some(d) = self.driver.take() {
            d.done();
        }
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = Fault;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Fault>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let mut polled = inner.poll_frame(cx);
        if polled.is_pending()
            && let Some(d) = this.driver.as_mut()
        {
            // Asked for first, the frame is read by the drive at once (hyper reads a body
            // only once it is wanted), not after another wake-up.
            d.poll_drive(cx);
            polled = inner.poll_frame(cx);
        }
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if len > this.left {
                    return this.fail(Fault::TooLarge);
                }
                this.left -= len;
                if let Some(t) = &mut this.timer {
                    t.as_mut().reset(Instant::now() + this.idle);
                }
                if this.is_end_stream() {
                    this.end();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => this.fail(Fault::Broken),
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.fail(Fault::Idle),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Inner::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Inner::size_hint)
    }
}
