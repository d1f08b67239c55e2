//! Client authentication at the token endpoint (RFC 6749 §2.3): HTTP Basic or the body, one
//! of them, checked through the failure throttle so that guessing a secret is slowed down.
//! The revocation and introspection endpoints authenticate their callers the same way.

use std::net::IpAddr;
use std::sync::Arc;

use super::request::Params;
use crate::clients::{Client, Clients};
use crate::conn::ConnInfo;
use crate::errors::Refusal;
use crate::state::{Generation, Shared};
use crate::throttle::{Limits, Throttle};

/// Who is asking, and what their authentication is checked against.
pub struct Asking<'a> {
    pub clients: &'a Clients,
    pub throttle: &'a Throttle,
    /// Where throttled refusals are counted.
    pub metrics: &'a crate::metrics::Metrics,
    pub limits: Limits,
    /// The caller's address (see `ConnInfo::source`).
    pub source: IpAddr,
}

impl<'a> Asking<'a> {
    /// The asking of a request under generation `g`.
    pub fn new(
        headers: &http::HeaderMap,
        g: &'a Generation,
        shared: &'a Shared,
        conn: &ConnInfo,
    ) -> Asking<'a> {
        Asking {
            clients: &g.config.clients,
            throttle: &shared.throttle,
            metrics: &shared.metrics,
            limits: g.config.throttle,
            source: conn.source(headers, &g.config.trusted_proxies),
        }
    }

    /// Refuses a request that authenticates no client at all — no credentials and no
    /// `client_id` — as `invalid_client` with a `Basic` challenge (401: RFC 7662 §2.3 for
    /// introspection, RFC 9110 §15.5.2), rather than as a malformed request.
    pub fn require_some(params: &Params, basic: Option<&(String, String)>) -> Result<(), Refusal> {
        match (basic, &params.client_id, &params.client_secret) {
            (None, None, None) => Err(Refusal::InvalidClient { basic: true }),
            _ => Ok(()),
        }
    }

    /// Finds the client and, when `with_secret`, checks its secret. A source throttled for
    /// the client id is refused before anything is checked, the right secret included.
    pub fn authenticate(
        &self,
        with_secret: bool,
        params: &Params,
        basic: Option<(String, String)>,
    ) -> Result<Arc<Client>, Refusal> {
        let via_basic = basic.is_some();
        let (id, secret) = match basic {
            Some((id, secret)) => {
                // RFC 6749 §2.3: one authentication method per request.
                if params.client_secret.is_some()
                    || params.client_id.as_ref().is_some_and(|b| *b != id)
                {
                    return Err(Refusal::InvalidRequest(
                        "client credentials were sent both in the Authorization header and in the body",
                    ));
                }
                (Some(id), Some(secret))
            }
            None => (params.client_id.clone(), params.client_secret.clone()),
        };
        let id = id.ok_or(Refusal::InvalidRequest("client_id is missing"))?;
        let secret = match (with_secret, secret) {
            (true, None) => return Err(Refusal::InvalidRequest("client_secret is missing")),
            (_, secret) => secret,
        };
        if let Err(wait) = self.throttle.check(&id, self.source, self.limits) {
            self.metrics.throttled.inc();
            return Err(Refusal::TooManyFailures {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            });
        }
        let client = self.clients.get_shared(&id);
        let accepted = match (&client, with_secret) {
            // The implicit grant identifies a public client by its id alone (seed 004).
            (Some(_), false) => true,
            (Some(c), true) => secret.is_some_and(|s| c.secret_matches(&s)),
            (None, _) => false,
        };
        match client {
            Some(c) if accepted => {
                self.throttle.succeeded(&id, self.source);
                Ok(c)
            }
            _ => {
                self.throttle.failed(&id, self.source, self.limits);
                Err(Refusal::InvalidClient { basic: via_basic })
            }
        }
    }
}
