//! The protocol limits of the listener and the upstream client, each a `[limits]` key with a
//! default chosen as nginx or Envoy choose theirs. Each is restart-only: it shapes the HTTP
//! builders made at start-up. What each one answers is in the README's limits table.

/// `[limits]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Request header fields at most (HTTP/1.1); more get 431. hyper's and Envoy's default.
    pub max_headers: usize,
    /// Request head size at most, start line included (HTTP/1.1: 431), and the HTTP/2 header
    /// list size advertised in SETTINGS (a larger header block, CONTINUATION frames included,
    /// is refused). Envoy allows 60 KiB.
    pub max_header_bytes: usize,
    /// Request target length at most; longer ones get 414. nginx's request line buffer is 8 KiB.
    pub max_uri_bytes: usize,
    /// HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS); nginx: 128.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before the server accepted them, per connection,
    /// before the connection is closed (rapid reset, CVE-2023-44487). hyper's default.
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server had to reset for a client's protocol errors before the
    /// connection is closed. hyper's default.
    pub h2_max_local_error_reset_streams: usize,
    /// An upstream's response head size at most; a larger one is a 502.
    pub max_upstream_head_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            max_uri_bytes: 8 * 1024,
            h2_max_concurrent_streams: 128,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 1024,
            max_upstream_head_bytes: 64 * 1024,
        }
    }
}

/// hyper refuses buffers smaller than this (8 KiB): the least a head-size limit may be.
pub const MIN_HEAD_BYTES: usize = 8 * 1024;
