//! What the server knows about the connection a request came on.

use std::net::SocketAddr;

use http::HeaderValue;

/// The peer and transport of one connection, made once after its handshake.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer's address as the `X-Forwarded-For` value, made once per connection.
    pub forwarded_for: HeaderValue,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        let forwarded_for = HeaderValue::from_str(&peer.ip().to_string())
            .expect("an IP address is a valid header value");
        ConnInfo {
            peer,
            tls,
            forwarded_for,
        }
    }
}
