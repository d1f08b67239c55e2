//! The end of every request, whichever transport served it: the route's metrics and the one
//! access-log line (`storegate::access` at info; the path without its query, which can carry
//! secrets). Both `service` (hyper) and `relay` call `finish`; neither records a request on
//! its own.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Version;

use crate::metrics::{Counted, Metrics};

/// The access line's method and path, when lines are written (`own`: the request's): for a
/// decision, those of the request it judged.
pub fn line<'a>(
    judged: Option<&'a (http::Method, String)>,
    own: Option<(&'a str, &'a str)>,
) -> Option<(&'a str, &'a str)> {
    match judged {
        Some((method, path)) => own.map(|_| (method.as_str(), path.as_str())),
        None => own,
    }
}

/// Whether access log lines are written (the `storegate::access` target at info).
pub fn access_log_on() -> bool {
    tracing::enabled!(target: "storegate::access", tracing::Level::INFO)
}

/// One finished request, as the metrics and the access line see it.
pub struct Finished<'a> {
    /// The guarded route's label, when the request was for one (its metrics are counted).
    pub route: Option<&'a Arc<str>>,
    pub status: u16,
    pub elapsed: Duration,
    /// Method and path (without the query), when access lines are written.
    pub line: Option<(&'a str, &'a str)>,
    pub client_id: Option<&'a str>,
    /// How a guarded request's token came: `bearer` or `dpop` (`Verified::auth`).
    pub auth: Option<&'static str>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub protocol: Version,
    pub request_id: &'a [u8],
    pub peer: IpAddr,
    /// A decision's answer: `line` is the request it judged.
    pub decision: bool,
}

/// Records a finished request: the route's metrics (through the connection's memo of the last
/// route's handles, `last`) and, when they are written, its access line.
pub fn finish(metrics: &Metrics, last: &Counted, f: &Finished<'_>) {
    if let Some(route) = f.route {
        metrics.request_on(last, route, f.status, f.elapsed.as_secs_f64());
    }
    let Some((method, path)) = f.line else {
        return;
    };
    tracing::info!(
        target: "storegate::access",
        method = %method,
        route = f.route.map_or("-", |r| &**r),
        path = path,
        status = f.status,
        latency_us = f.elapsed.as_micros() as u64,
        client_id = f.client_id.unwrap_or("-"),
        auth = f.auth.unwrap_or("-"),
        bytes_in = f.bytes_in,
        bytes_out = f.bytes_out,
        protocol = ?f.protocol,
        request_id = std::str::from_utf8(f.request_id).unwrap_or("-"),
        peer = %f.peer,
        decision = f.decision.then_some(true),
    );
}

/// A message's body size as its `Content-Length` says (`None` when streamed without one).
pub fn length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
