//! TLS: PEM files -> `rustls::ServerConfig` on the aws-lc-rs provider, ALPN h2 and http/1.1.
//! For development, a throwaway CA and a localhost certificate it signed can be generated.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use rustls::server::danger::ClientCertVerifier;

use crate::devfiles::{self, write_file, write_private_file};
use crate::mtls::ClientCas;
use crate::mtls::handshake::Handshake;

/// The certificate chain and key files of the TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Development files: generate a localhost certificate when they are missing.
    pub generate_dev_files: bool,
    /// Whether and how callers are asked for certificates (RFC 8705).
    pub client: ClientCerts,
}

/// `tls.client_ca`, `tls.client_crl` and `tls.client_auth`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientCerts {
    pub ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    pub ask: AskForCerts,
    /// A certificate no configured CA signed is let into the handshake (see `mtls::handshake`):
    /// always unless `Required` and no client registers a self-signed certificate.
    pub strangers: bool,
}

/// `tls.client_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AskForCerts {
    #[default]
    Off,
    /// Callers without a certificate are served as before.
    Optional,
    /// A handshake without a certificate fails.
    Required,
}

/// What a generation's TLS files give: the listener's config, its certificate's expiry (epoch
/// seconds, when its DER can be read for it), and the client CAs.
pub struct Loaded {
    pub server: Arc<rustls::ServerConfig>,
    pub expiry: Option<i64>,
    pub client_cas: Option<Arc<ClientCas>>,
}

/// The names the development certificate is valid for.
pub const DEV_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Loads the configured certificate and key (generating development files when allowed) and
/// the client CAs and CRL.
pub fn load(files: &TlsFiles) -> anyhow::Result<Loaded> {
    if devfiles::to_generate(files.generate_dev_files, &[&files.cert, &files.key]) {
        let pki = DevPki::generate(&DEV_NAMES)?;
        let ca_path = files.cert.with_file_name("dev-ca.pem");
        write_file(&ca_path, pki.ca_pem.as_bytes(), 0o644)?;
        write_file(&files.cert, pki.cert_pem.as_bytes(), 0o644)?;
        write_private_file(&files.key, pki.key_pem.as_bytes())?;
        tracing::warn!(
            cert = %files.cert.display(),
            ca = %ca_path.display(),
            "generated a development TLS certificate for localhost; trust the CA file to call the gateway, never use it in production"
        );
    }
    let certs = crate::pem::certificates(&files.cert).context("the TLS certificate")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("cannot read TLS key {}", files.key.display()))?;
    let expiry = not_after(&certs[0]);
    let c = &files.client;
    let client_cas = match &c.ca {
        Some(ca) => Some(Arc::new(
            ClientCas::load(ca, c.crl.as_deref())
                .context("config keys `tls.client_ca` and `tls.client_crl`")?,
        )),
        None => None,
    };
    let handshake = match c.ask {
        AskForCerts::Off => None,
        ask => Some(Arc::new(Handshake::new(
            client_cas.clone(),
            ask == AskForCerts::Required,
            c.strangers,
        )) as Arc<dyn ClientCertVerifier>),
    };
    let server = server_config(certs, key, handshake).with_context(|| {
        format!(
            "TLS certificate {} and key {}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Loaded {
        server,
        expiry,
        client_cas,
    })
}

/// The `notAfter` of a certificate, in epoch seconds.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// A rustls server config for a chain and key, with ALPN for HTTP/2 and HTTP/1.1, asking for
/// client certificates when `clients` says how.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?;
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("the key does not fit the certificate")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A throwaway CA and a server certificate it signed; the CA's key is never kept.
pub struct DevPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl DevPki {
    pub fn generate(names: &[&str]) -> anyhow::Result<DevPki> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "storegate development CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        Ok(DevPki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
