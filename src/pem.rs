//! PEM files of certificates (rustls-pki-types' `PemObject`), read the same way wherever the
//! gateway reads one: the listener's chain, the CAs of client certificates, and an upstream's
//! CAs and client chain. Errors name the file, never its contents.

use std::path::Path;

use anyhow::{Context, bail};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The certificates of a PEM file, in order; at least one.
pub fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

/// The CA certificates of a PEM file, as trust anchors.
pub fn roots(path: &Path) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .with_context(|| format!("{} holds a certificate that is no CA", path.display()))?;
    }
    Ok(roots)
}
