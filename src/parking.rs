//! Upstream connections of idle callers, kept for any caller's next request.
//!
//! A relayed caller's connection keeps its own upstream connection while it sends requests
//! (the relay's affinity: no pool checkout per request). Once it has been idle for a moment
//! (`relay`'s `PARK_AFTER`), or when it closes, that upstream connection is parked here, and a
//! caller with none takes one of these before opening a new one: nginx's `keepalive` pool. So
//! the upstream connections open are bounded by the callers with requests in flight (plus
//! `MAX_PER_UPSTREAM` parked), not by the callers connected: 10,000 idle keep-alive callers do
//! not hold 10,000 upstream connections, nor their buffers.
//!
//! A parked connection is used again only if it is still idle (the taker checks it without a
//! system call, as it checks its own); one parked longer than the upstream idle timeout is
//! closed rather than used, as the shared pool closes its own.

use std::sync::Mutex;
use std::time::Duration;

use http::uri::Authority;
use tokio::time::Instant;

use crate::dial::Stream;

/// Connections kept parked per upstream, as the shared pool's idle connections per host.
pub const MAX_PER_UPSTREAM: usize = 64;

/// The parked connections, per upstream (a route's `upstream_dial`).
pub struct Parking {
    /// One entry per upstream ever parked at, kept when empty: the upstreams are the routes'
    /// few, found by comparing authorities (no hashing on every park and take), and an entry
    /// emptied by a take is not allocated again by the next park.
    idle: Mutex<Vec<Parked>>,
    idle_timeout: Duration,
}

struct Parked {
    authority: Authority,
    /// Oldest first.
    streams: Vec<(Stream, Instant)>,
}

impl Parking {
    pub fn new(idle_timeout: Duration) -> Parking {
        Parking {
            idle: Mutex::default(),
            idle_timeout,
        }
    }

    /// Keeps `stream` (idle, with nothing unread) for the next request to `authority`; closes
    /// it when `MAX_PER_UPSTREAM` are parked there already.
    pub fn park(&self, authority: Authority, stream: Stream) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = match idle.iter().position(|p| p.authority == authority) {
            Some(at) => at,
            None => {
                idle.push(Parked {
                    authority,
                    streams: Vec::new(),
                });
                idle.len() - 1
            }
        };
        let parked = &mut idle[at].streams;
        // Oldest first (each is pushed at the end): those past the idle timeout, a prefix,
        // are closed on the way, found without visiting the rest.
        let expired = parked.partition_point(|(_, since)| now - *since >= self.idle_timeout);
        parked.drain(..expired);
        if parked.len() < MAX_PER_UPSTREAM {
            parked.push((stream, now));
        }
    }

    /// The most recently parked connection to `authority` still within the idle timeout.
    pub fn take(&self, authority: &Authority) -> Option<Stream> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let parked = idle.iter_mut().find(|p| p.authority == *authority)?;
        parked.streams.pop().and_then(|(stream, since)| {
            (now.duration_since(since) < self.idle_timeout).then_some(stream)
        })
    }

    /// Connections parked now (tests await it).
    pub fn len(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.iter().map(|p| p.streams.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (Stream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ours, theirs) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        (Stream::Tcp(ours.unwrap()), theirs.unwrap().0)
    }

    #[tokio::test]
    async fn takes_the_newest_for_its_upstream_only() {
        let parking = Parking::new(Duration::from_secs(60));
        let (a, b) = (Authority::from_static("a:1"), Authority::from_static("b:1"));
        let (first, _p1) = pair().await;
        let (second, _p2) = pair().await;
        let second_addr = match &second {
            Stream::Tcp(s) => s.local_addr().unwrap(),
            _ => unreachable!(),
        };
        parking.park(a.clone(), first);
        parking.park(a.clone(), second);
        assert_eq!(parking.len(), 2);
        assert!(parking.take(&b).is_none());
        match parking.take(&a) {
            Some(Stream::Tcp(s)) => assert_eq!(s.local_addr().unwrap(), second_addr),
            _ => panic!("the newest connection to a"),
        }
        assert!(parking.take(&a).is_some());
        assert!(parking.take(&a).is_none());
        assert!(parking.is_empty());
    }

    #[tokio::test]
    async fn keeps_at_most_its_bound_and_nothing_past_the_idle_timeout() {
        let parking = Parking::new(Duration::from_secs(60));
        let a = Authority::from_static("a:1");
        let mut peers = Vec::new();
        for _ in 0..MAX_PER_UPSTREAM + 3 {
            let (s, p) = pair().await;
            peers.push(p);
            parking.park(a.clone(), s);
        }
        assert_eq!(parking.len(), MAX_PER_UPSTREAM);

        let short = Parking::new(Duration::ZERO);
        let (s, _p) = pair().await;
        short.park(a.clone(), s);
        assert!(
            short.take(&a).is_none(),
            "past the idle timeout: closed, not used"
        );
    }
}
