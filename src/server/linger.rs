//! A lingering close (RFC 9112 §9.6, nginx's `lingering_close`): when the gateway closes a
//! connection, it shuts its sending side (TLS close_notify, then TCP FIN) and then reads and
//! discards what the peer still sends until the peer closes too, or `LINGER` has passed; only
//! then is the socket closed.
//!
//! Closing a socket outright while the peer is still sending makes the kernel answer with a TCP
//! RST. A peer that gets it fails its next write, and an HTTP/2 client (h2) then tears its
//! connection down with the responses the gateway already sent still unread in its receive
//! buffer: every request on it fails ("stream closed because of a broken pipe"). A peer
//! always has something to send at that moment: an HTTP/2 client acknowledges the PING that
//! comes with the GOAWAY, cancels (RST_STREAM) the streams whose bodies it does not read, and
//! sends its own close_notify. During a drain every HTTP/2 connection ends that way.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Longest wait for the peer to close after the gateway has closed its sending side.
pub const LINGER: Duration = Duration::from_secs(2);

/// `io`, whose shutdown lingers until the peer closes (or `linger` passes).
pub struct Lingering<T> {
    io: T,
    linger: Duration,
    closing: Closing,
}

enum Closing {
    Open,
    /// Our side is shut; reading until the peer's end, or the deadline.
    Draining(Pin<Box<Sleep>>),
    Done,
}

impl<T> Lingering<T> {
    pub fn new(io: T) -> Lingering<T> {
        Lingering::with_linger(io, LINGER)
    }

    fn with_linger(io: T, linger: Duration) -> Lingering<T> {
        Lingering {
            io,
            linger,
            closing: Closing::Open,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Lingering<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    // What the peer sends from here on is discarded: any error ends the close.
                    if let Err(e) = ready!(Pin::new(&mut this.io).poll_shutdown(cx)) {
                        this.closing = Closing::Done;
                        return Poll::Ready(Err(e));
                    }
                    this.closing = Closing::Draining(Box::pin(tokio::time::sleep(this.linger)));
                }
                Closing::Draining(deadline) => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.closing = Closing::Done;
                        continue;
                    }
                    let mut scratch = [0u8; 2048];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                        // The peer's end (or an error): nothing left to wait for.
                        Poll::Ready(_) => this.closing = Closing::Done,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn shutdown_waits_for_the_peer_to_close() {
        let (ours, mut peer) = tokio::io::duplex(64);
        let mut ours = Lingering::new(ours);
        let closing = tokio::spawn(async move { ours.shutdown().await });
        // The peer sees our end, may still write (discarded), and then closes.
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
        peer.write_all(b"late frames").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!closing.is_finished(), "closed before the peer did");
        drop(peer);
        closing.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_gives_up_on_a_peer_that_never_closes() {
        let (ours, _peer) = tokio::io::duplex(64);
        let linger = Duration::from_millis(100);
        let mut ours = Lingering::with_linger(ours, linger);
        let started = tokio::time::Instant::now();
        ours.shutdown().await.unwrap();
        assert!(started.elapsed() >= linger);
    }
}
