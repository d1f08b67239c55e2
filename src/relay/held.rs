//! An upstream connection held between requests: by a caller's connection (`exchange::Link`),
//! or parked for any caller's next request (`parking`), and taken again only while it is idle.

use bytes::BytesMut;
use http::uri::Authority;

use super::exchange::{Failure, Request};

pub(super) struct Held {
    pub(super) authority: Authority,
    pub(super) stream: crate::dial::Stream,
    /// Read from the upstream and not yet relayed.
    pub(super) buf: BytesMut,
}

impl Held {
    /// Parks the connection if it is idle with nothing unread; else it is closed.
    pub(super) fn park(mut self, parking: &crate::parking::Parking) {
        if self.buf.is_empty() && self.is_idle() {
            parking.park(self.authority, self.stream);
        }
    }

    /// Whether the connection is as its last answer left it: open, with nothing to read.
    /// Asks the socket without waiting; the runtime's readiness already knows of a close or
    /// of bytes that came while it was idle, so an idle connection costs no system call.
    pub(super) fn is_idle(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            Ok(0) => {
                tracing::debug!("upstream closed a kept connection while it was idle");
                false
            }
            Ok(_) => {
                stray_bytes();
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, "a kept upstream connection failed while idle");
                false
            }
        }
    }
}

/// Bytes after the end of an answer: none the upstream should have sent. The connection is
/// not used again (nginx: "upstream sent more data than specified").
pub(super) fn stray_bytes() {
    tracing::warn!("upstream sent more data than its answer; its connection is not kept");
}

pub(super) async fn connect(req: &Request<'_>) -> Result<Held, Failure> {
    let stream = crate::dial::open(req.authority, req.connect_timeout)
        .await
        .map_err(|e| Failure::Upstream("connect", format!("cannot connect: {e}")))?;
    Ok(Held {
        authority: req.authority.clone(),
        stream,
        buf: BytesMut::new(),
    })
}
