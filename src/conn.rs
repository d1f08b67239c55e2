//! What the server knows and keeps of one connection, in one home lent to both transports
//! (the relay and hyper's service, HTTP/1.1 and HTTP/2 alike): the peer, its upstream
//! connection (`affinity`), the last token it presented (`Recent`), its last route's metric
//! handles (`Counted`), and its activity (requests in flight, when the last ended) that the
//! server's idle timer reads.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use tokio::time::Instant;

use crate::affinity::Slot;
use crate::metrics::Counted;
use crate::mtls::Presented;
use crate::token::cache::Recent;

/// A peer address as the rest of the gateway compares it: an IPv4 caller on a dual-stack
/// (`[::]`) listener arrives as `::ffff:a.b.c.d`, and is `a.b.c.d` from here on, so that
/// `127.0.0.1/32` in `trusted_proxies`, the admin listener's loopback rule, the throttle and
/// the `X-Forwarded-For` sent upstream all see the address the caller has.
pub fn canonical(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(peer.ip().to_canonical(), peer.port())
}

/// The peer and transport of one connection, made once after its handshake, and what the
/// connection keeps between its requests.
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer's address as the `X-Forwarded-For` value, made once per connection.
    pub forwarded_for: HeaderValue,
    /// The upstream connection this connection owns (HTTP/1.1 callers'; see `affinity`).
    pub affinity: Option<Arc<Slot>>,
    /// The last token presented and its verification (the guard asks it before the cache).
    pub recent: Recent,
    /// The last route's metric handles (`access::finish`).
    pub counted: Counted,
    pub activity: Activity,
    /// The certificate the caller presented in the TLS handshake, its key proven there
    /// (not its issuer: see `mtls`).
    pub client_cert: Option<Presented>,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        let forwarded_for = HeaderValue::from_str(&peer.ip().to_string())
            .expect("an IP address is a valid header value");
        ConnInfo {
            peer,
            tls,
            forwarded_for,
            affinity: None,
            recent: Recent::default(),
            counted: Counted::default(),
            activity: Activity::new(),
            client_cert: None,
        }
    }

    /// The same, with the certificate the TLS handshake presented.
    pub fn presenting(mut self, cert: Option<Presented>) -> ConnInfo {
        self.client_cert = cert;
        self
    }

    /// The same, owning an upstream connection for its requests (an HTTP/1.1 caller's, or
    /// one that may be: plain-text callers are told apart by their first bytes).
    pub fn owning_upstream(mut self) -> ConnInfo {
        self.affinity = Some(Arc::default());
        self
    }

    /// Marks a request in flight until the guard is dropped (also when an HTTP/2 stream is
    /// reset mid-request).
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.activity.begin();
        Busy(self.clone())
    }
}

/// What a connection is doing: requests in flight, and when it last had one.
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` when the last request ended (0: none has yet).
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    pub fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn end(&self) {
        let ms = self.started.elapsed().as_millis().max(1) as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// When the connection will have been idle too long if nothing happens meanwhile: `idle`
    /// after its last request, `first_request` after it opened when it has had none.
    pub fn idle_at(&self, first_request: Duration, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Instant::now() + idle;
        }
        match self.last_ms.load(Ordering::Relaxed) {
            0 => self.started + first_request,
            ms => self.started + Duration::from_millis(ms) + idle,
        }
    }
}

/// Held while a request is handled.
pub struct Busy(Arc<ConnInfo>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.activity.end();
    }
}

impl ConnInfo {
    /// The caller's address. When the peer is one of the `trusted` proxies (a mesh sidecar,
    /// a load balancer), it is the last `X-Forwarded-For` address that is not one of them;
    /// otherwise the peer itself, whatever the caller wrote in `X-Forwarded-For`.
    pub fn source(&self, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
        let peer = self.peer.ip();
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(&peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
                Ok(ip) if is_trusted(&ip) => continue,
                Ok(ip) => return ip,
                // Not an address: the chain cannot be followed past it.
                Err(_) => return peer,
            }
        }
        peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.1, 203.0.113.9, 10.1.1.1"),
        );
        let via_proxy = ConnInfo::new("10.0.0.2:4000".parse().unwrap(), true);
        assert_eq!(
            via_proxy.source(&h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let direct = ConnInfo::new("192.0.2.7:4000".parse().unwrap(), true);
        assert_eq!(
            direct.source(&h, &trusted),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            via_proxy.source(&HeaderMap::new(), &trusted),
            via_proxy.peer.ip()
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(via_proxy.source(&h, &trusted), via_proxy.peer.ip());
        // An IPv4-mapped hop is its IPv4 address.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("::ffff:203.0.113.9, ::ffff:10.1.1.1"),
        );
        assert_eq!(
            via_proxy.source(&h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_dual_stack_peer_is_its_ipv4_address() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        let peer = canonical(mapped);
        assert_eq!(peer, "127.0.0.1:4000".parse::<SocketAddr>().unwrap());
        assert!(peer.ip().is_loopback() && !mapped.ip().is_loopback());
        let v6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
