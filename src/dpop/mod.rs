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

/// The default proof algorithms, as a challenge's `algs` names them.
pub const DEFAULT_ALGS_NAMES: &str = "ES256 ES384 EdDSA PS256 RS256";

/// What a request carries for DPoP.
pub struct Asked<'a> {
    /// Its first `DPoP` header.
    pub proof: Option<&'a [u8]>,
    /// How many `DPoP` headers it has.
    pub proofs: usize,
    /// Its path (origin form, the query dropped when the `htu` is built).
    pub path: &'a str,
}

/// The DPoP proof of a token request (always a POST), checked and recorded: the thumbprint
/// of its key, to bind the token to (`None`: no proof, a Bearer token). `bucket` names whose
/// replay allowance the proof counts against: at a token endpoint the client's, for the
/// client picks its key. Refusals are 400 (RFC 9449 §5).
pub fn endpoint_proof(
    asked: &Asked<'_>,
    settings: &Settings,
    replay: &replay::ReplayStore,
    bucket: &str,
) -> Result<Option<String>, crate::errors::Refusal> {
    if asked.proofs == 0 {
        return Ok(None);
    }
    let checked = check_once(asked, ("POST", None), Some(bucket), settings, replay);
    checked
        .map(Some)
        .map_err(crate::errors::Refusal::InvalidDpopProof)
}

/// The proof of a guarded request presenting `token`, bound to the key `jkt`: checked (the
/// method and URL, `ath`, the key) and recorded once, in the key's allowance. Refusals are
/// 401 (RFC 9449 §7.1).
pub fn request_proof(
    asked: &Asked<'_>,
    (method, token, jkt): (&str, &str, &str),
    settings: &Settings,
    replay: &replay::ReplayStore,
) -> Result<(), crate::errors::Refusal> {
    use crate::errors::Refusal::DpopProofRefused as Refused;
    if asked.proofs == 0 {
        return Err(Refused("a DPoP proof is required with a DPoP token"));
    }
    let key = check_once(asked, (method, Some(token)), None, settings, replay).map_err(Refused)?;
    if key != jkt {
        return Err(Refused(
            "the proof is signed by another key than the token is bound to",
        ));
    }
    Ok(())
}

/// The one proof of `asked`, checked for `method` (and for `token`, when one comes with it)
/// and recorded once in `bucket` (its key's thumbprint when `None`): that thumbprint, or what
/// to tell the caller.
fn check_once(
    asked: &Asked<'_>,
    (method, token): (&str, Option<&str>),
    bucket: Option<&str>,
    settings: &Settings,
    replay: &replay::ReplayStore,
) -> Result<String, &'static str> {
    let proof = match (asked.proofs, asked.proof) {
        (1, Some(p)) => std::str::from_utf8(p).map_err(|_| "the proof is malformed")?,
        _ => return Err("more than one DPoP header"),
    };
    let Some(origin) = settings.public_origin.as_deref() else {
        tracing::warn!(
            "a DPoP proof came, but no [dpop] public_origin or https issuer says what htu to expect"
        );
        return Err("DPoP is not configured on this gateway");
    };
    let htu =
        htu::expected(origin, &settings.path_prefix, asked.path).ok_or("the proof is malformed")?;
    let for_this = proof::For {
        method,
        htu: &htu,
        access_token: token,
        now: crate::token::now_unix(),
    };
    let checked = proof::check(proof, &settings.rules, &for_this).map_err(described)?;
    match replay.record(bucket.unwrap_or(&checked.jkt), &checked.jti, method, &htu) {
        Ok(()) => Ok(checked.jkt),
        Err(replay::Refused::Replay) => Err("the proof was used before"),
        Err(replay::Refused::Full) => Err("too many recent proofs for this key or client"),
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
