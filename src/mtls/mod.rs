//! Mutual TLS (RFC 8705): the certificate a caller presented, what it proves, and the checks
//! made of it where it is used.
//!
//! The handshake (`handshake`) proves only that the caller holds the key of the certificate it
//! sent. Whether that certificate was issued by a CA the gateway trusts is concluded in one
//! place, `ClientCas::verify`, each time it matters (a `tls_client_auth` client at the token,
//! revocation or introspection endpoint, a certificate a trusted proxy passed on), under the
//! generation's CAs and CRL. Nothing else treats a certificate as CA-signed, so a certificate
//! the handshake let in for `self_signed_tls_client_auth` or for binding a token can never pass
//! as one.

pub mod dn;
pub mod forwarded;
pub mod handshake;
pub mod subject;

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::CertificateError;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

use forwarded::Forwarded;

/// A certificate chain a caller presented (leaf first), with the leaf's SHA-256 thumbprint:
/// the `x5t#S256` a certificate-bound token carries (RFC 8705 §3.1).
#[derive(Clone)]
pub struct Presented {
    chain: Arc<[CertificateDer<'static>]>,
    thumbprint: [u8; 32],
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("x5t#S256", &self.x5t())
            .finish_non_exhaustive()
    }
}

impl Presented {
    /// `None` for an empty chain.
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Option<Presented> {
        let leaf = chain.first()?;
        let thumbprint = thumbprint(leaf.as_ref());
        Some(Presented {
            chain: chain.into(),
            thumbprint,
        })
    }

    /// What a finished TLS handshake presented, if anything.
    pub fn of_tls(conn: &rustls::ServerConnection) -> Option<Presented> {
        Presented::new(conn.peer_certificates()?.to_vec())
    }

    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        &self.chain[1..]
    }

    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.thumbprint
    }

    /// The thumbprint as a token's `cnf` carries it: base64url, unpadded.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }
}

/// The certificate a request's caller presented: from a proxy trusted for it, its header (and
/// not the proxy's own certificate); from anyone else, the one its TLS handshake presented.
/// `values(name)` gives the request's values of the header `name`.
pub fn of_request<'c, 'v, I>(
    (peer, handshake): (IpAddr, Option<&'c Presented>),
    forwarded: Option<&Forwarded>,
    values: impl Fn(&str) -> I,
) -> Option<Cow<'c, Presented>>
where
    I: Iterator<Item = &'v [u8]>,
{
    match forwarded {
        Some(f) if f.trusts(peer) => f.presented(values).map(Cow::Owned),
        _ => handshake.map(Cow::Borrowed),
    }
}

/// The SHA-256 of a certificate's DER.
pub fn thumbprint(der: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A `cnf.x5t#S256` value read back into bytes (`None`: not 32 base64url bytes).
pub fn parse_x5t(value: &str) -> Option<[u8; 32]> {
    let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
    bytes.try_into().ok()
}

/// The CAs trusted to issue client certificates (`tls.client_ca`) and their revocations
/// (`tls.client_crl`): the one judge of whether a presented chain is CA-signed.
#[derive(Debug)]
pub struct ClientCas {
    verifier: Arc<dyn ClientCertVerifier>,
}

/// Why a presented chain is not accepted as CA-signed, in words a caller may read.
pub type Unverified = &'static str;

impl ClientCas {
    /// Reads the CA file (PEM, one or more certificates) and the CRL file (PEM, one or more
    /// lists) when given.
    pub fn load(ca: &Path, crl: Option<&Path>) -> anyhow::Result<ClientCas> {
        let roots = crate::pem::roots(ca)?;
        let crls = match crl {
            None => Vec::new(),
            Some(path) => {
                let crls = CertificateRevocationListDer::pem_file_iter(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("{} is not valid PEM", path.display()))?;
                if crls.is_empty() {
                    bail!("{} holds no certificate revocation list", path.display());
                }
                crls
            }
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .with_crls(crls)
                // A CA that publishes no list here is trusted as the CA file says.
                .allow_unknown_revocation_status()
                // Whether a certificate is required is the listener's `client_auth`.
                .allow_unauthenticated()
                .build()
                .context("building the client certificate verifier")?;
        Ok(ClientCas { verifier })
    }

    /// Whether `presented` chains to one of the CAs, is valid now, unrevoked, and fit for
    /// TLS client authentication.
    pub fn verify(&self, presented: &Presented) -> Result<(), Unverified> {
        let now = UnixTime::now();
        let verified =
            (self.verifier).verify_client_cert(presented.leaf(), presented.intermediates(), now);
        verified.map(|_| ()).map_err(|e| match e {
            rustls::Error::InvalidCertificate(e) => why(&e),
            _ => "the client certificate could not be verified",
        })
    }

    pub(crate) fn verifier(&self) -> &Arc<dyn ClientCertVerifier> {
        &self.verifier
    }
}

fn why(e: &CertificateError) -> Unverified {
    match e {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the client certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the client certificate is not valid yet"
        }
        CertificateError::Revoked => "the client certificate has been revoked",
        CertificateError::UnknownIssuer => {
            "the client certificate is not issued by a CA trusted for client authentication"
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the client certificate is not meant for TLS client authentication"
        }
        _ => "the client certificate is not valid",
    }
}
