//! `[decision]`: the decision endpoint a proxy in front asks per request (nginx
//! `auth_request`, Traefik `forwardAuth`, Envoy `ext_authz`).

use serde::Deserialize;

use super::{ConfigError, bad};
use crate::routes::{Decision, OAuthEndpoint, Route, TokenEndpoint};

/// `[decision]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecision {
    /// The path on the public listener the proxy asks ("/authz"); Envoy asks below it.
    pub path: String,
    /// The proxies (addresses or CIDR blocks) allowed to ask.
    pub trusted_peers: Vec<String>,
}

impl RawDecision {
    pub(super) fn validate(
        &self,
        routes: &[Route],
        endpoints: (&[TokenEndpoint], &[OAuthEndpoint]),
    ) -> Result<Decision, ConfigError> {
        let path = self.path.as_str();
        if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
            return Err(bad(
                "decision.path",
                format!("{path:?} is not a path such as \"/authz\" (a leading /, no trailing /)"),
            ));
        }
        if path.contains(['?', '#', '%']) || path.split('/').any(|s| s == "." || s == "..") {
            return Err(bad(
                "decision.path",
                format!("{path:?} must be a plain path, without a query, escapes or dot segments"),
            ));
        }
        let below = |p: &str| p == path || p.starts_with(&format!("{path}/"));
        if path.starts_with("/.well-known/") {
            return Err(bad(
                "decision.path",
                "is under /.well-known/, the documents' home",
            ));
        }
        let own = (endpoints.0.iter().map(|e| e.path.as_str()))
            .chain(endpoints.1.iter().map(|e| e.path.as_str()));
        if let Some(taken) = own.into_iter().find(|p| below(p)) {
            return Err(bad(
                "decision.path",
                format!("{path:?} would hide the endpoint at {taken:?}"),
            ));
        }
        // A route the decision path covers would never be reached on the data path.
        if let Some(route) = routes
            .iter()
            .find(|r| below(&r.prefix) || below(r.prefix.trim_end_matches('/')))
        {
            return Err(bad(
                "decision.path",
                format!("{path:?} would hide the route at {:?}", route.prefix),
            ));
        }
        let trusted_peers =
            super::sections::networks("decision.trusted_peers", &self.trusted_peers)?;
        if trusted_peers.is_empty() {
            return Err(bad(
                "decision.trusted_peers",
                "is empty: no proxy could ask; list the proxies, or remove the section",
            ));
        }
        Ok(Decision {
            path: path.to_owned(),
            trusted_peers,
        })
    }
}
