//! The forwarding rules that are not about header names (those are `headers`'), written once
//! for both transports: when a request is sent again after its upstream connection closed
//! under it, and what a failed exchange is answered with, counted as and logged as. The relay
//! (`relay::exchange`, `relay::answer`) and hyper's path (`proxy`) each detect a failure in
//! their own terms and hand it here.

use std::fmt::Display;

use http::Method;

use crate::body::Fault;
use crate::errors::Refusal;
use crate::metrics::{Metrics, RouteKind};
use crate::routes::Route;

/// Whether a request may be sent again on a new connection, as far as the request decides:
/// idempotent and without a body (RFC 9110 §9.2.2), so a second copy changes nothing and
/// nothing of it was consumed by the first try.
pub fn resendable(method: &Method, bodiless: bool) -> bool {
    bodiless && method.is_idempotent()
}

/// The resend rule: a `resendable` request is sent again, once, on a new connection, when the
/// connection it went out on was kept from an earlier exchange and closed before a byte of the
/// answer came — an upstream's idle timer firing as the request was written (gunicorn's and
/// Node's are a few seconds), which the caller could not have known. A new connection that
/// fails is the upstream's failure; a request with a body is never sent twice.
pub fn resend(resendable: bool, reused: bool, closed_before_answering: bool) -> bool {
    resendable && reused && closed_before_answering
}

/// Why an exchange ended without an answer to relay to the caller.
pub enum Failed<'a> {
    /// The caller's own body: too large, stalled, or malformed.
    Caller(Fault),
    /// The upstream's: the `kind` label of its metric (`connect`, `reset`, `protocol`,
    /// `other`) and what happened, for the log.
    Upstream {
        kind: &'static str,
        error: &'a dyn Display,
    },
    /// No response head within the route's timeout after the request was sent.
    Timeout,
}

/// What the caller is answered for a failed exchange on `route`: its own fault is a 4xx and
/// not counted; the upstream's is a 502 (504 for a timeout), counted in
/// `storegate_upstream_errors_total{route, kind}` and logged as a warning.
pub fn refusal(metrics: &Metrics, route: &Route, failed: Failed<'_>) -> Refusal {
    let kind = match &failed {
        Failed::Caller(Fault::TooLarge) => return Refusal::PayloadTooLarge,
        Failed::Caller(Fault::Idle) => return Refusal::RequestTimeout,
        Failed::Caller(Fault::Broken) => {
            tracing::debug!(route = %route.prefix, "the caller's request body was malformed");
            return Refusal::InvalidRequest("the request body is malformed");
        }
        Failed::Upstream { kind, .. } => kind,
        Failed::Timeout => "timeout",
    };
    let labels = RouteKind {
        route: route.label.clone(),
        kind,
    };
    metrics.upstream_errors.get_or_create(&labels).inc();
    match failed {
        Failed::Upstream { error, .. } => {
            tracing::warn!(route = %route.prefix, %error, "upstream request failed");
            Refusal::BadGateway
        }
        _ => {
            tracing::warn!(route = %route.prefix, "upstream did not answer within {:?}", route.timeout);
            Refusal::GatewayTimeout
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bodiless_idempotent_request_on_a_kept_connection_is_sent_again() {
        assert!(resendable(&Method::GET, true) && resendable(&Method::PUT, true));
        assert!(!resendable(&Method::POST, true) && !resendable(&Method::GET, false));
        assert!(resend(true, true, true));
        assert!(
            !resend(true, false, true),
            "a new connection's failure is the upstream's"
        );
        assert!(!resend(true, true, false), "an answer had begun");
        assert!(!resend(false, true, true));
    }

    #[test]
    fn the_callers_fault_is_a_4xx_and_not_counted_the_upstreams_a_5xx_counted_by_kind() {
        let metrics = Metrics::new();
        let route = crate::routes::for_tests();
        let count = |kind: &'static str| {
            let labels = RouteKind {
                route: route.label.clone(),
                kind,
            };
            metrics.upstream_errors.get_or_create(&labels).get()
        };
        let r = |f| refusal(&metrics, &route, f);
        assert!(matches!(
            r(Failed::Caller(Fault::TooLarge)),
            Refusal::PayloadTooLarge
        ));
        assert!(matches!(
            r(Failed::Caller(Fault::Idle)),
            Refusal::RequestTimeout
        ));
        assert!(matches!(
            r(Failed::Caller(Fault::Broken)),
            Refusal::InvalidRequest(_)
        ));
        let error = "connection refused";
        let failed = Failed::Upstream {
            kind: "connect",
            error: &error,
        };
        assert!(matches!(r(failed), Refusal::BadGateway));
        assert!(matches!(r(Failed::Timeout), Refusal::GatewayTimeout));
        assert_eq!((count("connect"), count("timeout")), (1, 1));
        assert_eq!(count("reset") + count("protocol") + count("other"), 0);
    }
}
