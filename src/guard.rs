//! The guard: whether a request may pass to its route's upstream. It reads the Bearer token
//! (RFC 6750 §2.1), verifies it (through the cache) with the generation's keys and clients,
//! checks the route's API, the grant's and the route's write rules, and the client's rate limit.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method, header};

use crate::clients::Grant;
use crate::dpop;
use crate::errors::{Challenge, Refusal};
use crate::mtls::Presented;
use crate::routes::Route;
use crate::state::{Generation, Shared};
use crate::token::cache::Recent;
use crate::token::verified::Verified;

/// `check` for a request whose head is in a header map (hyper's path, the decision endpoint):
/// its method, path (origin form, for a DPoP `htu`) and headers, on connection `conn`.
pub async fn check_request(
    (method, path, headers): (&Method, &str, &HeaderMap),
    route: &Route,
    g: &Generation,
    shared: &Shared,
    conn: &crate::conn::ConnInfo,
) -> Result<Arc<Verified>, Refusal> {
    let proofs = headers.get_all(dpop::DPOP);
    let dpop = dpop::Asked {
        proof: proofs.iter().next().map(HeaderValue::as_bytes),
        proofs: proofs.iter().count(),
        path,
    };
    let forwarded = g.config.forwarded_client_cert.as_ref();
    let cert = crate::mtls::of_request(
        (conn.peer.ip(), conn.client_cert.as_ref()),
        forwarded.map(|f| &f.forwarded),
        |name| headers.get_all(name).iter().map(HeaderValue::as_bytes),
    );
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let asked = (method, authorization, &dpop, cert.as_deref());
    check(asked, route, g, shared, Some(&conn.recent)).await
}

/// Lets a request through to `route`, or says why not. `authorization` is the request's
/// `Authorization` value, if it has one; `dpop`, its DPoP proof; `cert`, the client
/// certificate its connection presented; `recent`, the last token its connection presented,
/// when the connection keeps one.
pub async fn check(
    (method, authorization, dpop, cert): (
        &Method,
        Option<&[u8]>,
        &dpop::Asked<'_>,
        Option<&Presented>,
    ),
    route: &Route,
    g: &Generation,
    shared: &Shared,
    recent: Option<&Recent>,
) -> Result<Arc<Verified>, Refusal> {
    let checked = async {
        let (scheme, token) = credentials(authorization)?;
        let who = verified(token, g, shared, recent)?;
        certificate_bound(&who, cert)?;
        bound(scheme, token, &who, route, (method, dpop), (g, shared)).await?;
        authorize(method, route, &who)?;
        Ok(who)
    };
    let who = (checked.await).inspect_err(|r| shared.metrics.verification_refused(r))?;
    if let Some(per_sec) = who.client.rate_limit_per_sec
        && !shared
            .rate_limits
            .try_take(&who.client.id, per_sec, Instant::now())
    {
        return Err(Refusal::TooManyRequests);
    }
    Ok(who)
}

/// What a refusal on `route` (`None`: at none) challenges the caller with: the schemes
/// accepted there (DPoP wherever proofs can be checked; Bearer unless the route requires
/// DPoP), the realm, and the route's RFC 9728 metadata.
pub fn challenge<'a>(
    g: &'a Generation,
    (resource_metadata, dpop_required): (Option<&'a str>, bool),
) -> Challenge<'a> {
    let dpop = &g.config.dpop;
    Challenge {
        realm: &g.config.realm,
        resource_metadata,
        dpop_algs: (dpop.public_origin.is_some()).then_some(dpop.algs_names.as_str()),
        bearer: !dpop_required,
    }
}

/// The binding of a token to its scheme: a DPoP-bound token only with the DPoP scheme and a
/// proof by its key (never downgraded to Bearer, RFC 9449 §7.2), an unbound one only as Bearer
/// and only where the route does not require DPoP.
async fn bound(
    scheme: Scheme,
    token: &str,
    who: &Verified,
    route: &Route,
    (method, asked): (&Method, &dpop::Asked<'_>),
    (g, shared): (&Generation, &Shared),
) -> Result<(), Refusal> {
    match (scheme, who.signed.jkt.as_deref()) {
        (Scheme::Bearer, None) if route.dpop_required => Err(Refusal::InvalidToken(
            "this API takes DPoP-bound tokens only",
        )),
        (Scheme::Bearer, None) => Ok(()),
        (Scheme::Bearer, Some(_)) => Err(Refusal::InvalidToken(
            "the token is bound to a DPoP key: present it with the DPoP scheme and a proof",
        )),
        (Scheme::Dpop, None) => Err(Refusal::InvalidToken(
            "the token is not bound to a DPoP key",
        )),
        (Scheme::Dpop, Some(jkt)) => {
            let (settings, stores) = (&g.config.dpop, &shared.dpop);
            dpop::request_proof(asked, (method.as_str(), token, jkt), settings, stores).await
        }
    }
}

/// RFC 8705 §3: a token bound to a certificate passes only on a connection that presented it.
fn certificate_bound(who: &Verified, cert: Option<&Presented>) -> Result<(), Refusal> {
    match (&who.signed.x5t, cert) {
        (None, _) => Ok(()),
        (Some(want), Some(cert)) if cert.thumbprint() == want => Ok(()),
        (Some(_), Some(_)) => Err(Refusal::InvalidToken(
            "the token is bound to another TLS client certificate",
        )),
        (Some(_), None) => Err(Refusal::InvalidToken(
            "the token is bound to a TLS client certificate; present it",
        )),
    }
}

/// How a token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    /// RFC 9449 §7.1.
    Dpop,
}

/// A token as it stands now: verified (through the cache) under the generation's keys and
/// clients, and revoked by no source. A client removed from the config, or a revoked token,
/// is refused here, cached or not.
pub fn verified(
    token: &str,
    g: &Generation,
    shared: &Shared,
    recent: Option<&Recent>,
) -> Result<Arc<Verified>, Refusal> {
    let (clients, cache) = (&g.config.clients, &shared.tokens);
    let who = match recent {
        Some(recent) => g.verifier.verify_recent(token, clients, cache, recent)?,
        None => g.verifier.verify(token, clients, cache)?,
    };
    if shared.revocations.is_revoked(&who.signed) {
        return Err(Refusal::InvalidToken("the token has been revoked"));
    }
    Ok(who)
}

/// The Bearer token of a request (RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
    bearer_in(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )
}

/// The Bearer token in an `Authorization` value (`None`: the request has none).
pub fn bearer_in(value: Option<&[u8]>) -> Result<&str, Refusal> {
    match credentials(value)? {
        (Scheme::Bearer, token) => Ok(token),
        // Answered with the Bearer challenge, as any other scheme (RFC 6750 §3).
        (Scheme::Dpop, _) => Err(Refusal::MissingToken),
    }
}

/// The scheme and token of an `Authorization` value: Bearer (RFC 6750 §2.1) or DPoP
/// (RFC 9449 §7.1).
pub fn credentials(value: Option<&[u8]>) -> Result<(Scheme, &str), Refusal> {
    let Some(value) = value else {
        return Err(Refusal::MissingToken);
    };
    // Visible ASCII only, as `HeaderValue::to_str` reads it. A fold without an early exit:
    // the compiler vectorizes it (a token is ~600 bytes; `all` cost ~5,000 instructions).
    let invisible = value.iter().fold(false, |bad, &b| {
        bad | ((b < 0x20 && b != b'\t') | (b >= 0x7f))
    });
    let value = (!invisible)
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
        .ok_or(Refusal::InvalidToken("the token is malformed"))?;
    let (scheme, token) = match value.split_once(' ') {
        Some((s, token)) if s.eq_ignore_ascii_case("bearer") => (Scheme::Bearer, token),
        Some((s, token)) if s.eq_ignore_ascii_case("dpop") => (Scheme::Dpop, token),
        // Another scheme is no token of ours at all: answer with the challenge.
        _ => return Err(Refusal::MissingToken),
    };
    match token.trim() {
        "" => Err(Refusal::InvalidToken("the token is malformed")),
        token => Ok((scheme, token)),
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a request may go on with this token: right API, read-only grants only read, and
/// the route's write scope for writes.
pub fn authorize(method: &Method, route: &Route, who: &Verified) -> Result<(), Refusal> {
    if !who.is_for(&route.api) {
        return Err(Refusal::InsufficientScope {
            detail: "the token is for another API",
            scope: None,
        });
    }
    if is_safe(method) {
        return Ok(());
    }
    if who.grant() == Grant::Implicit {
        return Err(Refusal::InsufficientScope {
            detail: "an implicit token is read-only",
            scope: None,
        });
    }
    if let Some(ws) = &route.write_scope
        && !who.has_scope(ws)
    {
        return Err(Refusal::InsufficientScope {
            detail: "this request needs a write scope",
            scope: Some(ws.clone()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::for_tests as route;
    use crate::token::verified::for_tests as who_for;

    fn who(grant: Grant, scope: &str) -> Verified {
        who_for("store", grant, scope)
    }

    #[test]
    fn authorization_rules() {
        let r = route();
        let cc = who(Grant::ClientCredentials, "read write");
        assert!(authorize(&Method::POST, &r, &cc).is_ok());
        let read_only = who(Grant::ClientCredentials, "read");
        assert!(authorize(&Method::GET, &r, &read_only).is_ok());
        assert!(matches!(
            authorize(&Method::POST, &r, &read_only),
            Err(Refusal::InsufficientScope { scope: Some(_), .. })
        ));
        let implicit = who(Grant::Implicit, "read write");
        assert!(authorize(&Method::HEAD, &r, &implicit).is_ok());
        assert!(authorize(&Method::DELETE, &r, &implicit).is_err());
        let other = who_for("backoffice", Grant::ClientCredentials, "read");
        assert!(authorize(&Method::GET, &r, &other).is_err());
        // A scope the client no longer has is dropped from its tokens.
        assert_eq!(
            who(Grant::ClientCredentials, "read admin write").scope,
            "read write"
        );
    }
}
