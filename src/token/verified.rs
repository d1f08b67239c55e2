//! What a verified token means: `Signed`, the claims its signature vouches for (checked once,
//! reusable under any configuration), and `Verified`, those claims bound to one generation's
//! client registry (what the guard and the upstream use).

use std::sync::Arc;

use http::HeaderValue;

use crate::clients::{Client, Clients, Grant};
use crate::errors::Refusal;

/// The claims of a token whose signature, `typ`, `iss`, `exp` and `nbf` were checked.
#[derive(Debug)]
pub struct Signed {
    /// The key that signed it.
    pub kid: String,
    pub client_id: String,
    pub aud: Vec<String>,
    /// The scope as issued (space-separated).
    pub scope: String,
    pub grant: Grant,
    pub exp: u64,
    pub iat: Option<u64>,
    pub jti: Option<String>,
}

/// A token as the guard needs it under one configuration generation. Kept small, since the
/// cache holds one per token: the client is shared with the registry, the audience is a bit
/// set over the client's APIs, and the scope is already the header value sent upstream.
#[derive(Debug)]
pub struct Verified {
    /// The configuration generation this was bound under; a newer one binds it again.
    pub generation: u64,
    pub signed: Arc<Signed>,
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
    pub fn bind(
        signed: Arc<Signed>,
        clients: &Clients,
        generation: u64,
    ) -> Result<Verified, Refusal> {
        let client = clients
            .get_shared(&signed.client_id)
            .ok_or(Refusal::InvalidToken(
                "the token's client is no longer registered",
            ))?;
        let aud_mask = client
            .apis
            .iter()
            .enumerate()
            .filter(|(_, api)| signed.aud.contains(api))
            .fold(0u64, |m, (i, _)| m | (1 << i));
        let granted: Vec<&str> = signed
            .scope
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
    });
    let signed = Signed {
        kid: "k".into(),
        client_id: "c1".into(),
        aud: vec![api.into()],
        scope: scope.into(),
        grant,
        exp: 0,
        iat: None,
        jti: None,
    };
    Verified::bind(Arc::new(signed), &clients, 1).expect("c1 is registered")
}
