//! The gateway's metadata documents, made once per generation: the authorization server's
//! (RFC 8414) and each guarded route's (RFC 9728). Served as precomputed bytes by path.
//!
//! URLs are the issuer's origin with the endpoint's path: the gateway serves every endpoint
//! at its own origin. With an issuer that is no http(s) URL there is nothing to build them
//! from, and no document is served (a warning says so when the config is loaded).

use std::collections::HashMap;

use bytes::Bytes;
use serde::Serialize;

use crate::config::Config;
use crate::routes::{
    self, AUTHORIZATION_SERVER_METADATA, EndpointShape, JWKS_PATH, OAuthKind, Route, url_for,
};

/// Metadata documents by path.
#[derive(Debug, Default)]
pub struct Documents {
    by_path: HashMap<String, Bytes>,
}

impl Documents {
    pub fn get(&self, path: &str) -> Option<&Bytes> {
        self.by_path.get(path)
    }

    /// Every path a document is served at.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().map(String::as_str)
    }

    pub fn build(cfg: &Config) -> Documents {
        let Ok(issuer) = cfg.issuer.parse::<http::Uri>() else {
            return Documents::default();
        };
        if url_for(&cfg.issuer, "").is_none() || issuer.query().is_some() {
            tracing::warn!(
                "tokens.issuer is not an https URL: no discovery metadata is served (RFC 8414 builds its URLs from the issuer)"
            );
            return Documents::default();
        }
        let mut by_path = HashMap::new();
        // RFC 8414 §3.1: the issuer's path goes after the well-known name.
        let issuer_path = issuer.path().trim_end_matches('/');
        by_path.insert(
            format!("{AUTHORIZATION_SERVER_METADATA}{issuer_path}"),
            json(&authorization_server(cfg)),
        );
        for r in &cfg.routes {
            by_path.insert(
                routes::resource_metadata_path(&r.prefix),
                json(&protected_resource(cfg, r)),
            );
        }
        Documents { by_path }
    }
}

fn json(v: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("metadata serializes"))
}

/// RFC 8414 §2, in its order.
#[derive(Serialize)]
struct AuthorizationServer<'a> {
    issuer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_endpoint: Option<String>,
    jwks_uri: String,
    scopes_supported: Vec<&'a str>,
    response_types_supported: [&'a str; 0],
    grant_types_supported: [&'a str; 1],
    token_endpoint_auth_methods_supported: Vec<&'a str>,
    /// RFC 8414 §2: the algorithms a `private_key_jwt` assertion may be signed with.
    token_endpoint_auth_signing_alg_values_supported: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_endpoint: Option<String>,
    revocation_endpoint_auth_methods_supported: Vec<&'a str>,
    revocation_endpoint_auth_signing_alg_values_supported: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
    introspection_endpoint_auth_methods_supported: Vec<&'a str>,
    introspection_endpoint_auth_signing_alg_values_supported: Vec<&'a str>,
    /// RFC 9449 §5.1; absent where no proof can be checked (no public origin).
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_signing_alg_values_supported: Option<Vec<&'a str>>,
    /// RFC 8705 §3.3: certificate-bound tokens are issued (the listener asks for certificates).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_client_certificate_bound_access_tokens: bool,
}

const SECRET_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

/// Whether callers' certificates reach the gateway: the listener asks for them, or a proxy
/// in front passes them on.
fn asks_for_certificates(cfg: &Config) -> bool {
    (cfg.tls.as_ref()).is_some_and(|t| t.client.ask != crate::tls::AskForCerts::Off)
        || cfg.forwarded_client_cert.is_some()
}

/// The client authentication methods the config offers: the secret ones, `private_key_jwt`,
/// and the certificate ones where certificates reach the gateway (`tls_client_auth` where a
/// CA is configured).
fn auth_methods(cfg: &Config) -> Vec<&'static str> {
    let mut methods = SECRET_METHODS.to_vec();
    methods.push("private_key_jwt");
    if asks_for_certificates(cfg) {
        let forwarded_ca = (cfg.forwarded_client_cert.as_ref()).is_some_and(|f| f.ca.is_some());
        if (cfg.tls.as_ref()).is_some_and(|t| t.client.ca.is_some()) || forwarded_ca {
            methods.push("tls_client_auth");
        }
        methods.push("self_signed_tls_client_auth");
    }
    methods
}

fn authorization_server(cfg: &Config) -> AuthorizationServer<'_> {
    let url = |path: &str| url_for(&cfg.issuer, path);
    // The endpoint an RFC 6749 client posts its form to: the first connect-token one, else
    // the first oauth2-token one (both take forms). The seed-004 envelope is no RFC 6749 shape.
    let token = [EndpointShape::ConnectToken, EndpointShape::Oauth2Token]
        .iter()
        .find_map(|shape| cfg.token_endpoints.iter().find(|e| e.shape == *shape));
    let oauth = |kind| {
        (cfg.oauth_endpoints.iter())
            .find(|e| e.kind == kind)
            .and_then(|e| url(&e.path))
    };
    // A public (implicit) client revokes its own tokens naming only its id.
    let mut revocation_methods = auth_methods(cfg);
    if cfg.clients.iter().any(|c| c.is_public()) {
        revocation_methods.push("none");
    }
    AuthorizationServer {
        issuer: &cfg.issuer,
        token_endpoint: token.and_then(|e| url(&e.path)),
        jwks_uri: url(JWKS_PATH).unwrap_or_default(),
        scopes_supported: scopes(cfg, None),
        response_types_supported: [],
        grant_types_supported: ["client_credentials"],
        token_endpoint_auth_methods_supported: auth_methods(cfg),
        token_endpoint_auth_signing_alg_values_supported: assertion_algs(),
        revocation_endpoint_auth_signing_alg_values_supported: assertion_algs(),
        introspection_endpoint_auth_signing_alg_values_supported: assertion_algs(),
        revocation_endpoint: oauth(OAuthKind::Revocation),
        revocation_endpoint_auth_methods_supported: revocation_methods,
        introspection_endpoint: oauth(OAuthKind::Introspection),
        introspection_endpoint_auth_methods_supported: auth_methods(cfg),
        dpop_signing_alg_values_supported: dpop_algs(cfg),
        tls_client_certificate_bound_access_tokens: asks_for_certificates(cfg),
    }
}

/// Every algorithm a client assertion may be signed with (its key's, `assertion::keys`).
fn assertion_algs() -> Vec<&'static str> {
    let names = crate::assertion::ALGORITHMS.map(|a| match a {
        jsonwebtoken::Algorithm::ES256 => "ES256",
        jsonwebtoken::Algorithm::ES384 => "ES384",
        jsonwebtoken::Algorithm::EdDSA => "EdDSA",
        jsonwebtoken::Algorithm::PS256 => "PS256",
        jsonwebtoken::Algorithm::PS384 => "PS384",
        jsonwebtoken::Algorithm::PS512 => "PS512",
        jsonwebtoken::Algorithm::RS256 => "RS256",
        jsonwebtoken::Algorithm::RS384 => "RS384",
        _ => "RS512",
    });
    names.to_vec()
}

/// The DPoP proof algorithms, where proofs can be checked.
fn dpop_algs(cfg: &Config) -> Option<Vec<&str>> {
    let dpop = &cfg.dpop;
    (dpop.public_origin.is_some()).then(|| dpop.algs_names.split(' ').collect())
}

/// RFC 9728 §2.
#[derive(Serialize)]
struct ProtectedResource<'a> {
    resource: String,
    authorization_servers: [&'a str; 1],
    bearer_methods_supported: [&'a str; 1],
    scopes_supported: Vec<&'a str>,
    /// RFC 9728 §2 (from RFC 9449): the proof algorithms, where proofs can be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_signing_alg_values_supported: Option<Vec<&'a str>>,
    /// RFC 9728 §2: whether only DPoP-bound tokens are taken (`false` is left out, the default).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dpop_bound_access_tokens_required: bool,
    /// RFC 9728 §2 (from RFC 8705): certificate-bound tokens are checked here.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_client_certificate_bound_access_tokens: bool,
}

fn protected_resource<'a>(cfg: &'a Config, r: &Route) -> ProtectedResource<'a> {
    let (prefix, api) = (&r.prefix, &r.api);
    ProtectedResource {
        dpop_signing_alg_values_supported: dpop_algs(cfg),
        dpop_bound_access_tokens_required: r.dpop_required,
        tls_client_certificate_bound_access_tokens: asks_for_certificates(cfg),
        // §3.3: exactly the identifier the well-known URL was made from.
        resource: url_for(&cfg.issuer, prefix).unwrap_or_default(),
        authorization_servers: [&cfg.issuer],
        bearer_methods_supported: ["header"],
        scopes_supported: scopes(cfg, Some(api)),
    }
}

/// The scopes registered clients may be granted (of those for `api`, if given), sorted.
fn scopes<'a>(cfg: &'a Config, api: Option<&str>) -> Vec<&'a str> {
    let mut all: Vec<&str> = (cfg.clients.iter())
        .filter(|c| api.is_none_or(|api| c.apis.iter().any(|a| a == api)))
        .flat_map(|c| c.scopes.iter().map(String::as_str))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}
