//! Client authentication at the token endpoint (RFC 6749 §2.3): the method the client is
//! registered for (RFC 7591 `token_endpoint_auth_method`) — its secret, in HTTP Basic or the
//! body; its TLS certificate (RFC 8705 §2); or a JWT it signed (RFC 7523 §2.2, `assertion`) —
//! checked through the failure throttle so that guessing is slowed down. The revocation and
//! introspection endpoints authenticate their callers the same way.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use super::request::Params;
use crate::assertion::{self, replay::Unused};
use crate::clients::{AuthMethod, Client};
use crate::conn::ConnInfo;
use crate::errors::Refusal;
use crate::metrics::MethodOutcome;
use crate::mtls::Presented;
use crate::state::{Generation, Shared};

/// Who is asking, and what their authentication is checked against.
pub struct Asking<'a> {
    g: &'a Generation,
    shared: &'a Shared,
    /// The caller's address (see `ConnInfo::source`).
    pub source: IpAddr,
    /// The certificate the caller presented, if any (see `mtls::of_request`).
    pub cert: Option<Cow<'a, Presented>>,
    /// The path of the endpoint asked (its URL is an assertion's `aud` under
    /// `[private_key_jwt] token_endpoint_audience`).
    path: &'a str,
}

/// What a request offers to authenticate with, besides the client id.
enum Offered {
    Basic(String),
    Post(String),
    Assertion(String),
    /// The client id alone: a public client, or one authenticating by its certificate.
    IdOnly,
}

impl<'a> Asking<'a> {
    /// The asking of a request to the endpoint at `path`, under generation `g`.
    pub fn new(
        (headers, path): (&http::HeaderMap, &'a str),
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
            g,
            shared,
            source: conn.source(headers, &g.config.trusted_proxies),
            cert,
            path,
        }
    }

    /// Refuses a request that authenticates no client at all — no credentials and no
    /// `client_id` — as `invalid_client` with a `Basic` challenge (401: RFC 7662 §2.3 for
    /// introspection, RFC 9110 §15.5.2), rather than as a malformed request.
    pub fn require_some(params: &Params, basic: Option<&(String, String)>) -> Result<(), Refusal> {
        let given = (params.client_id.as_ref())
            .or(params.client_secret.as_ref())
            .or(params.client_assertion.as_ref());
        match (basic, given) {
            (None, None) => Err(Refusal::InvalidClient { basic: true }),
            _ => Ok(()),
        }
    }

    /// Finds the client and checks what the request offers against the method it is
    /// registered for. With `public_ok`, a client naming itself by its id alone is accepted
    /// (the implicit grant's public clients, a public client revoking its own token). A
    /// source throttled for the client id is refused before anything is checked.
    pub async fn authenticate(
        &self,
        public_ok: bool,
        params: &Params,
        basic: Option<(String, String)>,
    ) -> Result<Arc<Client>, Refusal> {
        let via_basic = basic.is_some();
        let (id, offered) = offered(params, basic)?;
        let id = id.ok_or(Refusal::InvalidRequest("client_id is missing"))?;
        let (g, shared) = (self.g, self.shared);
        let client = g.config.clients.get_shared(&id);
        let method = method_label(&offered, client.as_deref(), public_ok);
        let count = |outcome| {
            let labels = MethodOutcome { method, outcome };
            shared.metrics.client_auth.get_or_create(&labels).inc();
        };
        let (throttle, limits) = (&shared.throttle, g.config.throttle);
        if let Err(wait) = throttle.check(&id, self.source, limits) {
            shared.metrics.throttled.inc();
            count("throttled");
            return Err(Refusal::TooManyFailures {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            });
        }
        let checked = match client {
            Some(c) => self.check(&c, &offered, public_ok).await.map(|()| c),
            None => Err(Refusal::InvalidClient { basic: via_basic }),
        };
        match checked {
            Ok(c) => {
                throttle.succeeded(&id, self.source);
                count("accepted");
                Ok(c)
            }
            Err(refusal) => {
                throttle.failed(&id, self.source, limits);
                count("refused");
                Err(refusal)
            }
        }
    }

    /// Whether what the request offers authenticates `c` by its registered method.
    async fn check(&self, c: &Client, offered: &Offered, public_ok: bool) -> Result<(), Refusal> {
        use AuthMethod::*;
        let wrong = |basic| Refusal::InvalidClient { basic };
        match (c.auth.method, offered) {
            (Secret | ClientSecretBasic, Offered::Basic(s)) => {
                c.secret_matches(s).then_some(()).ok_or(wrong(true))
            }
            (Secret | ClientSecretPost, Offered::Post(s)) => {
                c.secret_matches(s).then_some(()).ok_or(wrong(false))
            }
            (PrivateKeyJwt, Offered::Assertion(a)) => self.assertion(c, a).await,
            // A credential where the client is registered for another method.
            (_, Offered::Basic(_)) => Err(wrong(true)),
            (_, Offered::Post(_) | Offered::Assertion(_)) => Err(wrong(false)),
            (_, Offered::IdOnly) if public_ok => Ok(()),
            (TlsClientAuth, Offered::IdOnly) => {
                let cert = self.cert.as_deref().ok_or(NO_CERTIFICATE)?;
                let cas = (self.g.client_cas.as_deref()).ok_or(Refusal::ClientAuthentication(
                    "no CA is configured for client certificates",
                ))?;
                cas.verify(cert).map_err(Refusal::ClientAuthentication)?;
                let subject = c.auth.subject.as_ref();
                match subject.is_some_and(|s| s.named_by(cert.leaf())) {
                    true => Ok(()),
                    false => Err(Refusal::ClientAuthentication(
                        "the client certificate does not name this client's registered subject",
                    )),
                }
            }
            (SelfSignedTlsClientAuth, Offered::IdOnly) => {
                let cert = self.cert.as_deref().ok_or(NO_CERTIFICATE)?;
                match c.auth.certificates.contains(cert.thumbprint()) {
                    true => Ok(()),
                    false => Err(Refusal::ClientAuthentication(
                        "the client certificate is not one registered for this client",
                    )),
                }
            }
            (PrivateKeyJwt, Offered::IdOnly) => Err(Refusal::ClientAuthentication(
                "this client authenticates with a private_key_jwt client assertion",
            )),
            // RFC 6749 §5.2: a missing credential is `invalid_client`.
            (Secret | ClientSecretBasic | ClientSecretPost, Offered::IdOnly) => Err(wrong(false)),
        }
    }

    /// A `private_key_jwt` assertion: checked, then its `jti` used once here and across the
    /// cluster.
    async fn assertion(&self, c: &Client, a: &str) -> Result<(), Refusal> {
        let (config, shared) = (&self.g.config, self.shared);
        let now = crate::token::now_unix();
        let endpoint = crate::routes::url_for(&config.issuer, self.path);
        let expected = assertion::Expected {
            issuer: &config.issuer,
            endpoint: endpoint.as_deref(),
            now,
        };
        let settings = &config.private_key_jwt;
        let checked = assertion::check(a, &c.id, &c.auth.keys, settings, &expected)
            .map_err(Refusal::ClientAuthentication)?;
        let cluster = (
            config.dpop.cluster_timeout,
            config.dpop.refuse_when_cluster_away,
        );
        let once = shared
            .assertions
            .once(&c.id, &checked, &shared.dpop.cluster, cluster, now);
        match once.await {
            Ok(()) => Ok(()),
            Err(Unused::Replayed) => Err(Refusal::ClientAuthentication(
                "the client assertion was used before: sign a new one (with a new jti) per request",
            )),
            Err(Unused::Full) => Err(Refusal::ClientAuthentication(
                "too many of this client's assertions are still live: retry later",
            )),
            Err(Unused::Unchecked) => Err(Refusal::ReplayUnchecked),
        }
    }
}

/// The client id a request names and the credential it offers (one method only, RFC 6749
/// §2.3).
fn offered(
    params: &Params,
    basic: Option<(String, String)>,
) -> Result<(Option<String>, Offered), Refusal> {
    const TWO: Refusal =
        Refusal::InvalidRequest("the request uses more than one client authentication method");
    let assertion = match (&params.client_assertion_type, &params.client_assertion) {
        (None, None) => None,
        (Some(t), Some(a)) if t == assertion::JWT_BEARER => Some(a.clone()),
        (Some(_), Some(_)) => {
            return Err(Refusal::InvalidRequest(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        (None, Some(_)) => return Err(Refusal::InvalidRequest("client_assertion_type is missing")),
        (Some(_), None) => return Err(Refusal::InvalidRequest("client_assertion is missing")),
    };
    match (basic, assertion) {
        (Some((id, secret)), None) => {
            if params.client_secret.is_some() || params.client_id.as_ref().is_some_and(|b| *b != id)
            {
                return Err(Refusal::InvalidRequest(
                    "client credentials were sent both in the Authorization header and in the body",
                ));
            }
            Ok((Some(id), Offered::Basic(secret)))
        }
        (Some(_), Some(_)) => Err(TWO),
        (None, Some(_)) if params.client_secret.is_some() => Err(TWO),
        (None, Some(a)) => {
            // RFC 7521 §4.2: client_id, when sent, names the assertion's client.
            let named = assertion::named_client(&a);
            match (&params.client_id, named) {
                (Some(id), Some(iss)) if *id != iss => Err(Refusal::ClientAuthentication(
                    "client_id is not the client the assertion names (iss)",
                )),
                (_, None) => Err(Refusal::ClientAuthentication(
                    "the client assertion is not a JWT naming its client (iss)",
                )),
                (_, Some(iss)) => Ok((Some(iss), Offered::Assertion(a))),
            }
        }
        (None, None) => Ok(match params.client_secret.clone() {
            Some(secret) => (params.client_id.clone(), Offered::Post(secret)),
            None => (params.client_id.clone(), Offered::IdOnly),
        }),
    }
}

const NO_CERTIFICATE: Refusal =
    Refusal::ClientAuthentication("this client authenticates with a TLS client certificate");

/// The method a request tried, as the metrics name it.
fn method_label(offered: &Offered, client: Option<&Client>, public_ok: bool) -> &'static str {
    match offered {
        Offered::Basic(_) => "client_secret_basic",
        Offered::Post(_) => "client_secret_post",
        Offered::Assertion(_) => "private_key_jwt",
        Offered::IdOnly => match client.map(|c| c.auth.method) {
            Some(m) if m.uses_certificate() && !public_ok => m.name(),
            _ => "none",
        },
    }
}
