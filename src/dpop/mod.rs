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

/// The DPoP proof of a token request to the endpoint at `path`, checked and recorded: the
/// thumbprint of its key, to bind the token to (`None`: no proof, a Bearer token). `bucket`
/// names whose replay allowance the proof counts against: at a token endpoint the client's,
/// for the client picks its key.
pub fn endpoint_proof(
    headers: &http::HeaderMap,
    settings: &Settings,
    replay: &replay::ReplayStore,
    path: &str,
    bucket: &str,
) -> Result<Option<String>, crate::errors::Refusal> {
    use crate::errors::Refusal::InvalidDpopProof as Invalid;
    let mut proofs = headers.get_all(DPOP).iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() {
        return Err(Invalid("more than one DPoP header"));
    }
    let origin = settings.public_origin.as_deref().ok_or_else(|| {
        tracing::warn!(
            "a DPoP proof came, but no [dpop] public_origin or https issuer says what htu to expect"
        );
        Invalid("DPoP is not configured on this gateway")
    })?;
    let htu = htu::expected(origin, &settings.path_prefix, path).ok_or(Invalid("malformed"))?;
    let proof = proof
        .to_str()
        .map_err(|_| Invalid("the proof is malformed"))?;
    let asked = proof::For {
        method: "POST",
        htu: &htu,
        access_token: None,
        now: crate::token::now_unix(),
    };
    let checked = proof::check(proof, &settings.rules, &asked)
        .map_err(|reason| Invalid(described(reason)))?;
    match replay.record(bucket, &checked.jti, "POST", &htu) {
        Ok(()) => Ok(Some(checked.jkt)),
        Err(replay::Refused::Replay) => Err(Invalid("the proof was used before")),
        Err(replay::Refused::Full) => Err(Invalid("too many recent proofs from this client")),
    }
}

/// The default proof algorithms, as a challenge's `algs` names them.
pub const DEFAULT_ALGS_NAMES: &str = "ES256 ES384 EdDSA PS256 RS256";

/// What a guarded request carries for DPoP.
pub struct Asked<'a> {
    /// Its `DPoP` header, when it has exactly one.
    pub proof: Option<&'a [u8]>,
    /// How many `DPoP` headers it has.
    pub proofs: usize,
    /// Its path (origin form, the query dropped when the `htu` is built).
    pub path: &'a str,
}

/// The proof of a guarded request presenting `token`, bound to the key `jkt`: checked (the
/// method and URL, `ath`, the key) and recorded once.
pub fn request_proof(
    asked: &Asked<'_>,
    method: &str,
    token: &str,
    jkt: &str,
    settings: &Settings,
    replay: &replay::ReplayStore,
) -> Result<(), crate::errors::Refusal> {
    use crate::errors::Refusal::DpopProofRefused as Refused;
    let proof = match (asked.proofs, asked.proof) {
        (1, Some(p)) => p,
        (0, _) => return Err(Refused("a DPoP proof is required with a DPoP token")),
        _ => return Err(Refused("more than one DPoP header")),
    };
    let origin = settings
        .public_origin
        .as_deref()
        .ok_or(Refused("DPoP is not configured on this gateway"))?;
    let htu = htu::expected(origin, &settings.path_prefix, asked.path)
        .ok_or(Refused("the proof is malformed"))?;
    let proof = std::str::from_utf8(proof).map_err(|_| Refused("the proof is malformed"))?;
    let now = crate::token::now_unix();
    let for_this = proof::For {
        method,
        htu: &htu,
        access_token: Some(token),
        now,
    };
    let checked =
        proof::check(proof, &settings.rules, &for_this).map_err(|r| Refused(described(r)))?;
    if checked.jkt != jkt {
        return Err(Refused(
            "the proof is signed by another key than the token is bound to",
        ));
    }
    match replay.record(&checked.jkt, &checked.jti, method, &htu) {
        Ok(()) => Ok(()),
        Err(replay::Refused::Replay) => Err(Refused("the proof was used before")),
        Err(replay::Refused::Full) => Err(Refused("too many recent proofs for this key")),
    }
}

/// The `DPoP` request header.
pub const DPOP: http::HeaderName = http::HeaderName::from_static("dpop");

/// What a refusal's reason says to the caller.
fn described(reason: &'static str) -> &'static str {
    match reason {
        "too_large" => "the proof is too large",
        "typ" => "the proof's typ is not dpop+jwt",
        "alg" => "the proof's algorithm is not accepted",
        "key" => "the proof's jwk is missing or does not fit its algorithm",
        "private_key" => "the proof's jwk holds a private key",
        "signature" => "the proof's signature is invalid",
        "jti" => "the proof's jti is missing or too long",
        "htm" => "the proof is for another method",
        "htu" => "the proof is for another URL",
        "iat" => "the proof is too old or from the future",
        "ath" => "the proof is for another access token",
        _ => "the proof is malformed",
    }
}
