//! What a verified token means: `Signed`, the claims its signature vouches for (checked once,
//! reusable under any configuration), and `Verified`, those claims bound to one generation's
//! client registry (what the guard and the upstream use).

use std::sync::Arc;

use http::HeaderValue;

use crate::clients::{Client, Clients, Grant};
use crate::errors::Refusal;

/// The claims of a token whose signature, `typ`, `iss`, `exp` and `nbf` were checked. Kept
/// compact, since the cache holds one per token: the kid is shared with the key set, and the
/// strings live in one allocation, a line each.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The key that signed it.
    pub kid: Arc<str>,
    pub grant: Grant,
    pub exp: u64,
    pub iat: Option<u64>,
    /// The client id, the scope as issued, the jti (empty if none), then each audience.
    lines: Box<str>,
    /// `cnf.jkt`: the thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1).
    pub jkt: Option<Box<str>>,
    /// `cnf.x5t#S256`: the SHA-256 of the TLS client certificate it is bound to (RFC 8705 §3.1).
    pub x5t: Option<[u8; 32]>,
}

impl Signed {
    /// `None` when a value holds a line break (no token of this gateway's does).
    pub fn new<'a>(
        kid: Arc<str>,
        client_id: &'a str,
        scope: &'a str,
        jti: Option<&'a str>,
        aud: impl IntoIterator<Item = &'a str>,
        (grant, exp, iat): (Grant, u64, Option<u64>),
    ) -> Option<Signed> {
        let mut lines = String::with_capacity(client_id.len() + scope.len() + 48);
        let fields = [client_id, scope, jti.unwrap_or("")].into_iter().chain(aud);
        for (i, f) in fields.enumerate() {
            if f.contains('\n') {
                return None;
            }
            if i > 0 {
                lines.push('\n');
            }
            lines.push_str(f);
        }
        Some(Signed {
            kid,
            grant,
            exp,
            iat,
            lines: lines.into_boxed_str(),
            jkt: None,
            x5t: None,
        })
    }

    /// The same claims, bound to the DPoP key `jkt` and the certificate `x5t` where given.
    pub fn bound_to(mut self, jkt: Option<&str>, x5t: Option<[u8; 32]>) -> Signed {
        self.jkt = jkt.map(Into::into);
        self.x5t = x5t;
        self
    }

    fn line(&self, n: usize) -> &str {
        self.lines.split('\n').nth(n).unwrap_or("")
    }

    pub fn client_id(&self) -> &str {
        self.line(0)
    }

    /// The scope as issued (space-separated).
    pub fn scope(&self) -> &str {
        self.line(1)
    }

    pub fn jti(&self) -> Option<&str> {
        Some(self.line(2)).filter(|j| !j.is_empty())
    }

    pub fn aud(&self) -> impl Iterator<Item = &str> {
        self.lines.split('\n').skip(3)
    }
}

/// A token as the guard needs it under one configuration generation. Kept small, since the
/// cache holds one per token: the client is shared with the registry, the audience is a bit
/// set over the client's APIs, and the scope is already the header value sent upstream.
#[derive(Debug)]
pub struct Verified {
    /// The configuration generation this was bound under; a newer one binds it again.
    pub generation: u64,
    pub signed: Signed,
    pub client: Arc<Client>,
    /// Bit i: the token is for `client.apis[i]`.
    aud_mask: u64,
    /// The granted scope (space-separated), as sent to the upstream.
    pub scope: HeaderValue,
}

impl Verified {
    /// Binds signed claims to the registry of a generation. The token's audience and scope are
    /// narrowed to what the client is registered for now: taking an API or a scope away from a
    /// client takes it away from the tokens it already holds, and a removed client loses them.
    pub fn bind(signed: Signed, clients: &Clients, generation: u64) -> Result<Verified, Refusal> {
        let client = clients
            .get_shared(signed.client_id())
            .ok_or(Refusal::InvalidToken(
                "the token's client is no longer registered",
            ))?;
        let aud_mask = client
            .apis
            .iter()
            .enumerate()
            .filter(|(_, api)| signed.aud().any(|a| a == api.as_str()))
            .fold(0u64, |m, (i, _)| m | (1 << i));
        let granted: Vec<&str> = signed
            .scope()
            .split(' ')
            .filter(|s| client.scopes.iter().any(|c| c == s))
            .collect();
        // Scope tokens are checked printable ASCII when the config is loaded, so this cannot fail.
        let scope = HeaderValue::from_str(&granted.join(" "))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        Ok(Verified {
            generation,
            signed,
            client,
            aud_mask,
            scope,
        })
    }

    pub fn grant(&self) -> Grant {
        self.signed.grant
    }

    /// How the token was presented, as the token endpoint named its type: "DPoP" for a token
    /// bound to a DPoP key (the guard passes it only with the DPoP scheme and a proof by that
    /// key), else "Bearer".
    pub fn token_type(&self) -> &'static str {
        if self.signed.jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
    }

    /// How the request authenticated, as the access line says it: `bearer`, `dpop`, `mtls`
    /// (a certificate-bound token), or `dpop+mtls`.
    pub fn auth(&self) -> &'static str {
        match (self.signed.jkt.is_some(), self.signed.x5t.is_some()) {
            (false, false) => "bearer",
            (true, false) => "dpop",
            (false, true) => "mtls",
            (true, true) => "dpop+mtls",
        }
    }

    pub fn exp(&self) -> u64 {
        self.signed.exp
    }

    pub fn is_for(&self, api: &str) -> bool {
        self.client
            .apis
            .iter()
            .position(|a| a == api)
            .is_some_and(|i| self.aud_mask & (1 << i) != 0)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .to_str()
            .is_ok_and(|v| v.split(' ').any(|s| s == scope))
    }
}

/// A token of client "c1" (APIs store and backoffice, scopes read and write) for `api`.
#[cfg(test)]
pub(crate) fn for_tests(api: &str, grant: Grant, scope: &str) -> Verified {
    let mut clients = Clients::default();
    clients.insert(Client {
        id: "c1".into(),
        id_header: HeaderValue::from_static("c1"),
        secret_digests: Vec::new(),
        apis: vec!["store".into(), "backoffice".into()],
        grants: vec![Grant::Implicit],
        scopes: vec!["read".into(), "write".into()],
        rate_limit_per_sec: None,
        revoke_issued_before: None,
        introspect: false,
        dpop_bound_access_tokens: false,
        auth: Default::default(),
    });
    let signed = Signed::new("k".into(), "c1", scope, None, [api], (grant, 0, None))
        .expect("no line breaks");
    Verified::bind(signed, &clients, 1).expect("c1 is registered")
}
