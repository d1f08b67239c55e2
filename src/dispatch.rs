//! What a request is for, decided once for both transports (`service` for hyper, `relay` for
//! its own HTTP/1.1): one of the gateway's own answers, a guarded route, or a refusal made
//! before any token is looked at. Every check that comes before the guard is here, in order.

use http::Method;

use crate::cors::{Cors, Policy};
use crate::errors::{ErrorShape, Refusal};
use crate::metrics::{Metrics, OutcomeLabel};
pub use crate::routes::Own;
use crate::routes::{self, Route, Target};
use crate::state::Generation;

/// What a request is for.
pub enum Dispatch<'g> {
    Own(Own<'g>),
    /// A guarded route, its path allowed: the guard decides the rest.
    Route(&'g Route),
    /// A CORS preflight for a route whose upstream answers CORS itself: forwarded without the
    /// guard (a preflight never carries a token) and without an identity.
    Preflight(&'g Route),
    /// Refused before the guard, in `shape`; `route` when it was for one (its metrics).
    Refused {
        refusal: Refusal,
        shape: ErrorShape,
        route: Option<&'g Route>,
    },
}

/// What `dispatch` reads of a request.
pub struct Asking<'a> {
    pub method: &'a Method,
    /// The target's length (path and query).
    pub target_len: usize,
    pub path: &'a str,
    /// `cors::is_preflight`.
    pub preflight: bool,
}

/// Dispatches a request.
pub fn dispatch<'g>(g: &'g Generation, metrics: &Metrics, req: &Asking<'_>) -> Dispatch<'g> {
    let cfg = &g.config;
    let (method, path) = (req.method, req.path);
    let refused = |refusal, shape, route| Dispatch::Refused {
        refusal,
        shape,
        route,
    };
    // storegate opens no tunnels: never forwarded, in any target form (RFC 9112 §3.2.3).
    if method == Method::CONNECT {
        return refused(Refusal::Connect, cfg.default_error_shape, None);
    }
    if req.target_len > cfg.limits.max_uri_bytes {
        return refused(Refusal::UriTooLong, cfg.default_error_shape, None);
    }
    // Only the well-known paths are looked up, so the guarded path pays no hash for it.
    if path.starts_with("/.well-known/")
        && let Some(doc) = g.documents.get(path)
    {
        if method == Method::GET || method == Method::HEAD {
            return Dispatch::Own(Own::Document(doc));
        }
        if req.preflight
            && let Cors::Gateway(policy) = &cfg.cors
        {
            return Dispatch::Own(Own::Preflight(policy, cfg.default_error_shape));
        }
    }
    // A proxy asking about another request: any method, and no preflight of its own.
    if let Some(decision) = &cfg.decision
        && decision.covers(path)
    {
        return Dispatch::Own(Own::Decision(decision));
    }
    let (endpoints, oauth) = (&cfg.token_endpoints, &cfg.oauth_endpoints);
    let target = routes::resolve(endpoints, oauth, &cfg.routes, method, path);
    if req.preflight
        && let Some(preflight) = preflight(g, metrics, &target, path)
    {
        return preflight;
    }
    match target {
        Target::Own(own) => Dispatch::Own(own),
        Target::NotFound => refused(Refusal::NotFound, cfg.default_error_shape, None),
        Target::Route(route) => guarded(route, path),
    }
}

/// A preflight's dispatch, when the target it asks about answers CORS: the gateway answers
/// it, or (`cors_by_upstream`) the route's upstream does.
fn preflight<'g>(
    g: &'g Generation,
    metrics: &Metrics,
    target: &Target<'g>,
    path: &str,
) -> Option<Dispatch<'g>> {
    let cfg = &g.config;
    let (cors, shape) = match target {
        Target::Own(Own::Token(ep)) => (&ep.cors, ep.shape.error_shape()),
        Target::Own(Own::Health) => return None,
        Target::Route(route) => (&route.cors, route.error_shape),
        _ => (&cfg.cors, cfg.default_error_shape),
    };
    match (cors, target) {
        (Cors::Gateway(policy), _) => Some(Dispatch::Own(Own::Preflight(policy, shape))),
        (Cors::Upstream, Target::Route(route)) if routes::path_refusal(path).is_none() => {
            let forwarded = OutcomeLabel {
                outcome: "forwarded",
            };
            metrics.cors_preflights.get_or_create(&forwarded).inc();
            Some(Dispatch::Preflight(route))
        }
        _ => None,
    }
}

/// A request for `route`: guarded, unless its path is refused first. "/admin/../shop/x"
/// matches the /admin/ route here but may be /shop/x to an upstream that normalizes paths:
/// refuse rather than guess which API it is for.
fn guarded<'g>(route: &'g Route, path: &str) -> Dispatch<'g> {
    match routes::path_refusal(path) {
        Some(why) => Dispatch::Refused {
            refusal: Refusal::InvalidRequest(why),
            shape: route.error_shape,
            route: Some(route),
        },
        None => Dispatch::Route(route),
    }
}

impl<'g> Dispatch<'g> {
    /// The CORS policy every answer to this request is under (a preflight's own answer
    /// aside): its route's or token endpoint's, else the gateway's; none for the health
    /// check and for routes whose upstream answers CORS.
    pub fn cors(&self, g: &'g Generation) -> Option<&'g Policy> {
        let cors = match self {
            Dispatch::Own(Own::Token(ep)) => &ep.cors,
            Dispatch::Own(Own::Health | Own::Preflight(..)) | Dispatch::Preflight(_) => {
                return None;
            }
            Dispatch::Own(_) | Dispatch::Refused { route: None, .. } => &g.config.cors,
            Dispatch::Route(route)
            | Dispatch::Refused {
                route: Some(route), ..
            } => &route.cors,
        };
        match cors {
            Cors::Gateway(policy) => Some(policy),
            Cors::Off | Cors::Upstream => None,
        }
    }
}
