//! DPoP (RFC 9449): sender-constrained tokens. `proof` checks one proof, `htu` builds and
//! normalizes the URL a proof names, `replay` accepts each proof once.

pub mod htu;
pub mod proof;
pub mod replay;

/// How DPoP is checked (`[dpop]`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules: proof::Rules,
    /// The origin clients address, for `htu`; `None` when neither `[dpop] public_origin` nor
    /// an http(s) issuer gives one (DPoP proofs cannot be checked then).
    pub public_origin: Option<String>,
    /// The path an ingress strips before a request reaches the gateway.
    pub path_prefix: String,
    pub replay: replay::Bounds,
}
