//! Client authentication at the token endpoint (RFC 6749 §2.3): the method the client is
//! registered for (RFC 7591 `token_endpoint_auth_method`) — its secret, in HTTP Basic or the
//! body, or its TLS certificate (RFC 8705 §2) — checked through the failure throttle so that
//! guessing is slowed down. The revocation and introspection endpoints authenticate their
//! callers the same way.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use super::request::Params;
use crate::clients::{AuthMethod, Client, Clients};
use crate::conn::ConnInfo;
use crate::errors::Refusal;
use crate::metrics::MethodOutcome;
use crate::mtls::{ClientCas, Presented};
use crate::state::{Generation, Shared};
use crate::throttle::{Limits, Throttle};

/// Who is asking, and what their authentication is checked against.
pub struct Asking<'a> {
    pub clients: &'a Clients,
    pub throttle: &'a Throttle,
    /// Where throttled refusals and authentications are counted.
    pub metrics: &'a crate::metrics::Metrics,
    pub limits: Limits,
    /// The caller's address (see `ConnInfo::source`).
    pub source: IpAddr,
    /// The certificate the caller presented, if any (see `mtls::of_request`).
    pub cert: Option<Cow<'a, Presented>>,
    /// The CAs trusted for client certificates, if any are configured.
    pub cas: Option<&'a ClientCas>,
}

/// What a request offers to authenticate with, besides the client id.
enum Offered {
    Basic(String),
    Post(String),
    /// The client id alone: a public client, or one authenticating by its certificate.
    IdOnly,
}

impl<'a> Asking<'a> {
    /// The asking of a request under generation `g`.
    pub fn new(
        headers: &http::HeaderMap,
        g: &'a Generation,
        shared: &'a Shared,
        conn: &'a ConnInfo,
    ) -> Asking<'a> {
        let forwarded = g.config.forwarded_client_cert.as_ref();
        let cert = crate::mtls::of_request(
            (conn.peer.ip(), conn.client_cert.as_ref()),
            forwarded.map(|f| &f.forwarded),
            |name| {
                headers
                    .get_all(name)
                    .iter()
                    .map(http::HeaderValue::as_bytes)
            },
        );
        Asking {
            clients: &g.config.clients,
            throttle: &shared.throttle,
            metrics: &shared.metrics,
            limits: g.config.throttle,
            source: conn.source(headers, &g.config.trusted_proxies),
            cert,
            cas: g.client_cas.as_deref(),
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

    /// Finds the client and checks what the request offers against the method it is
    /// registered for. With `public_ok`, a client naming itself by its id alone is accepted
    /// (the implicit grant's public clients, a public client revoking its own token). A
    /// source throttled for the client id is refused before anything is checked.
    pub fn authenticate(
        &self,
        public_ok: bool,
        params: &Params,
        basic: Option<(String, String)>,
    ) -> Result<Arc<Client>, Refusal> {
        let via_basic = basic.is_some();
        let (id, offered) = match basic {
            Some((id, secret)) => {
                // RFC 6749 §2.3: one authentication method per request.
                if params.client_secret.is_some()
                    || params.client_id.as_ref().is_some_and(|b| *b != id)
                {
                    return Err(Refusal::InvalidRequest(
                        "client credentials were sent both in the Authorization header and in the body",
                    ));
                }
                (Some(id), Offered::Basic(secret))
            }
            None => match params.client_secret.clone() {
                Some(secret) => (params.client_id.clone(), Offered::Post(secret)),
                None => (params.client_id.clone(), Offered::IdOnly),
            },
        };
        let id = id.ok_or(Refusal::InvalidRequest("client_id is missing"))?;
        let client = self.clients.get_shared(&id);
        let method = method_label(&offered, client.as_deref(), public_ok);
        let count = |outcome| {
            let labels = MethodOutcome { method, outcome };
            self.metrics.client_auth.get_or_create(&labels).inc();
        };
        if let Err(wait) = self.throttle.check(&id, self.source, self.limits) {
            self.metrics.throttled.inc();
            count("throttled");
            return Err(Refusal::TooManyFailures {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            });
        }
        let checked = match client {
            Some(c) => self.check(&c, &offered, public_ok).map(|()| c),
            None => Err(Refusal::InvalidClient { basic: via_basic }),
        };
        match checked {
            Ok(c) => {
                self.throttle.succeeded(&id, self.source);
                count("accepted");
                Ok(c)
            }
            Err(refusal) => {
                self.throttle.failed(&id, self.source, self.limits);
                count("refused");
                Err(refusal)
            }
        }
    }

    /// Whether what the request offers authenticates `c` by its registered method.
    fn check(&self, c: &Client, offered: &Offered, public_ok: bool) -> Result<(), Refusal> {
        use AuthMethod::*;
        let wrong = |basic| Refusal::InvalidClient { basic };
        match (c.auth.method, offered) {
            (Secret | ClientSecretBasic, Offered::Basic(s)) => {
                c.secret_matches(s).then_some(()).ok_or(wrong(true))
            }
            (Secret | ClientSecretPost, Offered::Post(s)) => {
                c.secret_matches(s).then_some(()).ok_or(wrong(false))
            }
            // A secret where the client is registered for another method.
            (_, Offered::Basic(_)) => Err(wrong(true)),
            (_, Offered::Post(_)) => Err(wrong(false)),
            (_, Offered::IdOnly) if public_ok => Ok(()),
            (TlsClientAuth, Offered::IdOnly) => {
                let cert = self.cert.as_deref().ok_or(NO_CERTIFICATE)?;
                let cas = self.cas.ok_or(Refusal::ClientCertificate(
                    "no CA is configured for client certificates",
                ))?;
                cas.verify(cert).map_err(Refusal::ClientCertificate)?;
                let subject = c.auth.subject.as_ref();
                match subject.is_some_and(|s| s.named_by(cert.leaf())) {
                    true => Ok(()),
                    false => Err(Refusal::ClientCertificate(
                        "the client certificate does not name this client's registered subject",
                    )),
                }
            }
            (SelfSignedTlsClientAuth, Offered::IdOnly) => {
                let cert = self.cert.as_deref().ok_or(NO_CERTIFICATE)?;
                match c.auth.certificates.contains(cert.thumbprint()) {
                    true => Ok(()),
                    false => Err(Refusal::ClientCertificate(
                        "the client certificate is not one registered for this client",
                    )),
                }
            }
            // RFC 6749 §5.2: a missing credential is `invalid_client`.
            (Secret | ClientSecretBasic | ClientSecretPost, Offered::IdOnly) => Err(wrong(false)),
        }
    }
}

const NO_CERTIFICATE: Refusal =
    Refusal::ClientCertificate("this client authenticates with a TLS client certificate");

/// The method a request tried, as the metrics name it.
fn method_label(offered: &Offered, client: Option<&Client>, public_ok: bool) -> &'static str {
    match offered {
        Offered::Basic(_) => "client_secret_basic",
        Offered::Post(_) => "client_secret_post",
        Offered::IdOnly => match client.map(|c| c.auth.method) {
            Some(m) if m.uses_certificate() && !public_ok => m.name(),
            _ => "none",
        },
    }
}
