//! What the server knows about the connection a request came on.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

use crate::affinity::Slot;

/// The peer and transport of one connection, made once after its handshake.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer's address as the `X-Forwarded-For` value, made once per connection.
    pub forwarded_for: HeaderValue,
    /// The upstream connection this connection owns (HTTP/1.1 callers'; see `affinity`).
    pub affinity: Option<Arc<Slot>>,
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
        }
    }

    /// The same, owning an upstream connection for its requests (an HTTP/1.1 caller's, or
    /// one that may be: plain-text callers are told apart by their first bytes).
    pub fn owning_upstream(mut self) -> ConnInfo {
        self.affinity = Some(Arc::default());
        self
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
            match hop.parse::<IpAddr>() {
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
    }
}
