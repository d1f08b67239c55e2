//! DPoP (RFC 9449): sender-constrained tokens. `proof` checks one proof, `htu` builds and
//! normalizes the URL a proof names, `replay` accepts each proof once on this replica and
//! `cluster` across replicas, `nonce` makes and checks server nonces; `Stores` holds what a
//! process keeps between requests.

pub mod client;
pub mod cluster;
pub mod htu;
pub mod nonce;
pub mod proof;
pub mod replay;
mod stores;

use std::time::Duration;

pub use stores::{REASONS, Stores};

use crate::errors::Refusal;

/// How DPoP is checked (`[dpop]`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules: proof::Rules,
    /// The accepted algorithms, as a challenge's `algs` and the metadata name them.
    pub algs_names: String,
    /// The origin clients address, for `htu`; `None` when neither `[dpop] public_origin` nor
    /// an http(s) issuer gives one (DPoP proofs cannot be checked then).
    pub public_origin: Option<String>,
    /// The path an ingress strips before a request reaches the gateway.
    pub path_prefix: String,
    pub replay: replay::Bounds,
    /// Server nonces, when every proof must carry one (`require_nonce`).
    pub nonces: Option<nonce::Nonces>,
    /// The longest a request waits for the cluster-wide replay check.
    pub cluster_timeout: Duration,
    /// Whether a proof that could not be checked across the cluster is refused (else it is
    /// accepted on this replica's own check).
    pub refuse_when_cluster_away: bool,
}

/// What a request carries for DPoP.
pub struct Asked<'a> {
    /// Its first `DPoP` header.
    pub proof: Option<&'a [u8]>,
    /// How many `DPoP` headers it has.
    pub proofs: usize,
    /// Its path (origin form, the query dropped when the `htu` is built).
    pub path: &'a str,
}

/// Whose allowance a proof counts against, and what it must be bound to.
#[derive(Clone, Copy)]
enum Whose<'a> {
    /// A token request's: the client's (`client:<id>`), whatever key it signs with.
    Client(&'a str),
    /// A guarded request's: the token's key (`cnf.jkt`), which must have signed it.
    Key(&'a str),
}

/// Why a proof did not pass `check_once`.
enum Failed {
    /// The proof's fault: the reason (`REASONS`).
    Proof(&'static str),
    /// It carried no fresh nonce of ours: here is one.
    Nonce(String),
    /// The cluster-wide replay check could not be made, and the config refuses then.
    Unchecked,
}

impl Failed {
    /// The refusal it is, at the guard (401, RFC 9449 §7.1) or at a token endpoint (400,
    /// §5), counted by reason.
    fn refusal(self, guard: bool, stores: &Stores) -> Refusal {
        match self {
            Failed::Proof(reason) => {
                stores.refused(reason);
                let why = described(reason);
                match guard {
                    true => Refusal::DpopProofRefused(why),
                    false => Refusal::InvalidDpopProof(why),
                }
            }
            Failed::Nonce(nonce) => {
                stores.refused("nonce");
                Refusal::UseDpopNonce { nonce, guard }
            }
            Failed::Unchecked => {
                stores.refused("cluster_away");
                Refusal::ReplayUnchecked
            }
        }
    }
}

/// The DPoP proof of a token request (always a POST), checked and recorded: the thumbprint
/// of its key, to bind the token to (`None`: no proof, a Bearer token). `bucket` names whose
/// replay allowance the proof counts against: at a token endpoint the client's, for the
/// client picks its key.
pub async fn endpoint_proof(
    asked: &Asked<'_>,
    settings: &Settings,
    stores: &Stores,
    bucket: &str,
) -> Result<Option<String>, Refusal> {
    if asked.proofs == 0 {
        return Ok(None);
    }
    let whose = Whose::Client(bucket);
    let checked = check_once(asked, ("POST", None), whose, settings, stores).await;
    checked.map(Some).map_err(|f| f.refusal(false, stores))
}

/// The proof of a guarded request presenting `token`, bound to the key `jkt`: checked (the
/// method and URL, `ath`, the key) and recorded once, in the key's allowance.
pub async fn request_proof(
    asked: &Asked<'_>,
    (method, token, jkt): (&str, &str, &str),
    settings: &Settings,
    stores: &Stores,
) -> Result<(), Refusal> {
    if asked.proofs == 0 {
        return Err(Failed::Proof("missing").refusal(true, stores));
    }
    let asked_for = (method, Some(token));
    let checked = check_once(asked, asked_for, Whose::Key(jkt), settings, stores).await;
    checked.map(drop).map_err(|f| f.refusal(true, stores))
}

/// A fresh nonce for a response, when nonces are required.
pub fn fresh_nonce(settings: &Settings) -> Option<String> {
    (settings.nonces.as_ref()).map(|n| n.make(crate::token::now_unix()))
}

/// The one proof of `asked`, checked for `method` (and for `token`, when one comes with it)
/// and recorded once in `whose` allowance, on this replica and then across the cluster, only
/// after every check (the binding to the token's key among them) passed: the proof key's
/// thumbprint, or why not (`Failed::refusal` counts it).
async fn check_once(
    asked: &Asked<'_>,
    (method, token): (&str, Option<&str>),
    whose: Whose<'_>,
    settings: &Settings,
    stores: &Stores,
) -> Result<String, Failed> {
    let proof = match (asked.proofs, asked.proof) {
        (1, Some(p)) => std::str::from_utf8(p).map_err(|_| Failed::Proof("malformed"))?,
        _ => return Err(Failed::Proof("count")),
    };
    let Some(origin) = settings.public_origin.as_deref() else {
        tracing::warn!(
            "a DPoP proof came, but no [dpop] public_origin or https issuer says what htu to expect"
        );
        return Err(Failed::Proof("unconfigured"));
    };
    let htu =
        htu::expected(origin, &settings.path_prefix, asked.path).ok_or(Failed::Proof("htu"))?;
    let now = crate::token::now_unix();
    let for_this = proof::For {
        method,
        htu: &htu,
        access_token: token,
        now,
    };
    let checked = proof::check(proof, &settings.rules, &for_this).map_err(Failed::Proof)?;
    if let Some(nonces) = &settings.nonces
        && !(checked.nonce.as_deref()).is_some_and(|n| nonces.accepts(n, now))
    {
        return Err(Failed::Nonce(nonces.make(now)));
    }
    let bucket = match whose {
        Whose::Client(bucket) => bucket,
        Whose::Key(jkt) if jkt == checked.jkt => jkt,
        Whose::Key(_) => return Err(Failed::Proof("key_mismatch")),
    };
    let digest = stores
        .local
        .record(bucket, (&checked.jkt, &checked.jti, method, &htu))
        .map_err(|refused| match refused {
            replay::Refused::Replay => Failed::Proof("replay"),
            replay::Refused::Full => Failed::Proof("full"),
        })?;
    let wait = settings.cluster_timeout;
    match stores
        .cluster
        .claim(&digest, settings.replay.keep, wait)
        .await
    {
        None | Some(cluster::Claim::Claimed) => Ok(checked.jkt),
        Some(cluster::Claim::Replayed) => Err(Failed::Proof("replay")),
        Some(_) if settings.refuse_when_cluster_away => Err(Failed::Unchecked),
        // Checked on this replica only: counted and logged by `cluster`.
        Some(_) => Ok(checked.jkt),
    }
}

/// The `DPoP` request header.
pub const DPOP: http::HeaderName = http::HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// What a refusal's reason says to the caller.
fn described(reason: &'static str) -> &'static str {
    match reason {
        "missing" => "a DPoP proof is required with a DPoP token",
        "count" => "more than one DPoP header",
        "unconfigured" => "DPoP is not configured on this gateway",
        "too_large" => "the proof is too large",
        "typ" => "the proof's typ is not dpop+jwt",
        "crit" => "the proof names a critical header parameter this gateway does not understand",
        "alg" => "the proof's algorithm is not accepted",
        "key" => "the proof's jwk is missing or does not fit its algorithm",
        "private_key" => "the proof's jwk holds a private key",
        "signature" => "the proof's signature is invalid",
        "jti" => "the proof's jti is missing or too long",
        "htm" => "the proof is for another method",
        "htu" => "the proof is for another URL",
        "iat" => "the proof is too old or from the future",
        "ath" => "the proof is for another access token",
        "replay" => "the proof was used before",
        "full" => "too many recent proofs for this key or client",
        "key_mismatch" => "the proof is signed by another key than the token is bound to",
        _ => "the proof is malformed",
    }
}
