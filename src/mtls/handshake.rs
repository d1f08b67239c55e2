//! The listener's side of the TLS handshake when it asks for client certificates
//! (`tls.client_auth`).
//!
//! The handshake always proves possession: the caller signs the handshake with the key of the
//! certificate it sends, checked here with the provider's algorithms. It checks the chain only
//! where the listener turns strangers away: `client_auth = "required"` with no client
//! registered for `self_signed_tls_client_auth`. Everywhere else a certificate no CA signed is
//! let in as what it is — a key the caller holds, good for binding a token or for matching a
//! registered self-signed certificate — and `ClientCas::verify` is asked before it counts as
//! CA-signed.

use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::ClientCas;

/// How the listener asks for client certificates.
#[derive(Debug)]
pub struct Handshake {
    /// The CAs, whose names are sent as hints, and which judge the chain where strangers are
    /// turned away.
    cas: Option<Arc<ClientCas>>,
    hints: Vec<DistinguishedName>,
    /// A handshake without a certificate fails.
    mandatory: bool,
    /// A certificate no configured CA signed is let in (its key still proven).
    strangers: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Handshake {
    /// `None` CAs with `strangers` false would let no certificate in: the config refuses it.
    pub fn new(cas: Option<Arc<ClientCas>>, mandatory: bool, strangers: bool) -> Handshake {
        let hints = cas
            .as_ref()
            .map(|c| c.verifier().root_hint_subjects().to_vec())
            .unwrap_or_default();
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        Handshake {
            cas,
            hints,
            mandatory,
            strangers,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for Handshake {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.strangers {
            // Only possession is established here; see the module's note.
            return Ok(ClientCertVerified::assertion());
        }
        match &self.cas {
            Some(cas) => cas
                .verifier()
                .verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
