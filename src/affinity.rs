//! Upstream connection affinity. A caller's HTTP/1.1 keep-alive connection sends one request at
//! a time, so it can own one upstream HTTP/1.1 connection for its lifetime, driven in the
//! caller's own connection task: the request is written and the response read by polling the
//! upstream connection from the request's future and then from the response body (`Driver`),
//! with no pool checkout and no hop to a connection task and back. Requests of HTTP/2 callers
//! (many at once on one connection) use the shared pool.
//!
//! A connection is reused only once hyper says it is ready for the next request: the checkout
//! drives it until then (it may still be finishing the previous exchange), and a connection the
//! upstream closed meanwhile is replaced before anything is sent. One held per caller's
//! connection, so upstream connections are bounded by the callers' (`server.max_connections`),
//! plus the shared pool's. A reload that moves the route's upstream is seen per request: the
//! held connection is to another origin, so it is dropped and a new one opened.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::body::{Driver, Guarded};

type Connection = http1::Connection<TokioIo<crate::dial::Stream>, Guarded>;

/// One upstream connection and the origin it is open to.
struct Pinned {
    authority: Authority,
    /// The `Host` its requests carry.
    host: HeaderValue,
    sender: http1::SendRequest<Guarded>,
    conn: Connection,
}

enum Held {
    Empty,
    Idle(Box<Pinned>),
    /// A request is using it (or opening it).
    Busy,
}

/// The upstream connection a caller's connection owns, if any.
pub struct Slot(Mutex<Held>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Default for Slot {
    fn default() -> Slot {
        Slot(Mutex::new(Held::Empty))
    }
}

impl Slot {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the slot for one request to `authority`: with the connection it holds if that
    /// one is open to `authority`. `None` when another request of the same caller's
    /// connection is using it (an HTTP/2 caller over plain text): that one goes to the pool.
    pub fn checkout(self: &Arc<Slot>, authority: &Authority) -> Option<Lease> {
        let pinned = match std::mem::replace(&mut *self.held(), Held::Busy) {
            Held::Busy => return None,
            Held::Idle(p) if p.authority == *authority => Some(p),
            // Empty, or open to the origin the route had before a reload.
            _ => None,
        };
        Some(Lease {
            slot: self.clone(),
            pinned,
        })
    }
}

/// A slot taken by one request. Dropped before the exchange ended cleanly, it leaves the slot
/// empty and the connection closes (its state is unknown).
pub struct Lease {
    slot: Arc<Slot>,
    /// `None` once the connection has ended (the upstream closed it, or it failed).
    pinned: Option<Box<Pinned>>,
}

impl Lease {
    /// Whether the lease holds a connection that was open before this request.
    pub fn reuses(&self) -> bool {
        self.pinned.is_some()
    }

    /// Makes sure the lease holds a connection ready for a request: the held one once hyper
    /// reports it ready (driving it until then), or a new one if it closed or there is none.
    pub async fn ready(
        &mut self,
        (dial, host): (&Authority, &Authority),
        connect_timeout: Duration,
        max_head: usize,
    ) -> Result<(), std::io::Error> {
        if let Some(p) = self.pinned.as_mut() {
            let ready = std::future::poll_fn(|cx| {
                if p.conn.poll_without_shutdown(cx).is_ready() {
                    return Poll::Ready(false);
                }
                p.sender.poll_ready(cx).map(|r| r.is_ok())
            })
            .await;
            if ready {
                return Ok(());
            }
        }
        self.pinned = Some(Box::new(
            connect((dial, host), connect_timeout, max_head).await?,
        ));
        Ok(())
    }

    /// Drops the connection (it closed under a request); `ready` opens a new one.
    pub fn forget(&mut self) {
        self.pinned = None;
    }

    /// Sends `req` (its target in origin form, `Host` set here) and drives the connection
    /// until the response head comes.
    pub fn send(
        &mut self,
        mut req: Request<Guarded>,
    ) -> impl Future<Output = Result<Response<Incoming>, hyper::Error>> + '_ {
        let p = self.pinned.as_mut().expect("ready() was called first");
        req.headers_mut().insert(http::header::HOST, p.host.clone());
        let mut answer = Box::pin(p.sender.send_request(req));
        let (mut written, mut answered) = (false, None);
        std::future::poll_fn(move |cx| {
            // Each write waits for the other connections' tasks that are ready to run: the
            // requests to the upstream (and the responses to the callers) leave together,
            // and the peer on the other side is woken once for them, not once each.
            if !written {
                written = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if let Some(a) = answered.take() {
                return Poll::Ready(a);
            }
            self.drive(cx);
            let a = std::task::ready!(answer.as_mut().poll(cx));
            answered = Some(a);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(p) = self.pinned.as_mut()
            && p.conn.poll_without_shutdown(cx).is_ready()
        {
            // Ended: whatever it still delivers is in hyper's channels already (a request
            // still waiting for its answer gets an error).
            self.pinned = None;
        }
    }

    /// The exchange ended cleanly: the connection (if still open) serves the next request.
    pub fn done(mut self) {
        if let Some(p) = self.pinned.take() {
            *self.slot.held() = Held::Idle(p);
        }
    }
}

impl Driver for Lease {
    fn poll_drive(&mut self, cx: &mut Context<'_>) {
        self.drive(cx);
    }

    fn done(self: Box<Self>) {
        Lease::done(*self);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut held = self.slot.held();
        if matches!(*held, Held::Busy) {
            *held = Held::Empty;
        }
    }
}

/// Opens a connection to `authority` and hands it to hyper.
async fn connect(
    (dial, host): (&Authority, &Authority),
    timeout: Duration,
    max_head: usize,
) -> Result<Pinned, std::io::Error> {
    let stream = crate::dial::open(dial, timeout).await?;
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(max_head.max(crate::limits::MIN_HEAD_BYTES))
        .handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    let host = HeaderValue::from_str(host.as_str()).map_err(std::io::Error::other)?;
    Ok(Pinned {
        authority: dial.clone(),
        host,
        sender,
        conn,
    })
}
