//! What a request is for, decided once for both transports (`service` for hyper, `relay` for
//! its own HTTP/1.1): one of the gateway's own answers, a guarded route, or a refusal made
//! before any token is looked at. Every check that comes before the guard is here, in order.

use http::Method;

use crate::errors::{ErrorShape, Refusal};
pub use crate::routes::Own;
use crate::routes::{self, Route, Target};
use crate::state::Generation;

/// What a request is for.
pub enum Dispatch<'g> {
    Own(Own<'g>),
    /// A guarded route, its path allowed: the guard decides the rest.
    Route(&'g Route),
    /// Refused before the guard, in `shape`; `route` when it was for one (its metrics).
    Refused {
        refusal: Refusal,
        shape: ErrorShape,
        route: Option<&'g Route>,
    },
}

/// Dispatches a request: `target_len` is its target's length (path and query), `path` its
/// path.
pub fn dispatch<'g>(
    g: &'g Generation,
    method: &Method,
    target_len: usize,
    path: &str,
) -> Dispatch<'g> {
    let cfg = &g.config;
    let refused = |refusal, shape, route| Dispatch::Refused {
        refusal,
        shape,
        route,
    };
    // storegate opens no tunnels: never forwarded, in any target form (RFC 9112 §3.2.3).
    if method == Method::CONNECT {
        return refused(Refusal::Connect, cfg.default_error_shape, None);
    }
    if target_len > cfg.limits.max_uri_bytes {
        return refused(Refusal::UriTooLong, cfg.default_error_shape, None);
    }
    // Only the well-known paths are looked up, so the guarded path pays no hash for it.
    if path.starts_with("/.well-known/")
        && let Some(doc) = g.documents.get(path)
        && (method == Method::GET || method == Method::HEAD)
    {
        return Dispatch::Own(Own::Document(doc));
    }
    let (endpoints, oauth) = (&cfg.token_endpoints, &cfg.oauth_endpoints);
    match routes::resolve(endpoints, oauth, &cfg.routes, method, path) {
        Target::Own(own) => Dispatch::Own(own),
        Target::NotFound => refused(Refusal::NotFound, cfg.default_error_shape, None),
        // "/admin/../shop/x" matches the /admin/ route here but may be /shop/x to an upstream
        // that normalizes paths: refuse rather than guess which API it is for.
        Target::Route(route) => match routes::path_refusal(path) {
            Some(why) => refused(Refusal::InvalidRequest(why), route.error_shape, Some(route)),
            None => Dispatch::Route(route),
        },
    }
}
