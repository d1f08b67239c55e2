//! TLS to `https://` upstreams: the certificate always verified (the route's `upstream_ca`,
//! else the system's roots), SNI from the upstream's host name (none for an IP literal,
//! RFC 6066 §3), HTTP/1.1 by ALPN, and an optional client certificate for upstreams that
//! require mutual TLS. Each generation builds the client configs from the files afresh, so a
//! reload picks up a new CA, certificate or key for the connections opened after it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use http::uri::Authority;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, ServerName};

use crate::routes::Route;

/// A route's TLS settings for its upstream, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Files {
    /// The CAs the upstream's certificate must chain to; `None`: the system's roots.
    pub ca: Option<PathBuf>,
    /// The certificate (chain) and key presented to an upstream asking for one.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// The client configs of a generation, by the upstream authority they dial.
pub type Configs = HashMap<Authority, Arc<ClientConfig>>;

/// Builds the client config of every `https://` route (routes to one upstream share it).
pub fn build(routes: &[Route]) -> anyhow::Result<Configs> {
    let mut configs = Configs::new();
    let mut system: Option<Arc<rustls::RootCertStore>> = None;
    for route in routes {
        let Some(files) = &route.upstream_tls else {
            continue;
        };
        if configs.contains_key(&route.upstream_dial) {
            continue;
        }
        let what = |key: &str| format!("config key `routes.{key}` of route {}", route.prefix);
        let roots = match &files.ca {
            Some(ca) => Arc::new(crate::pem::roots(ca).with_context(|| what("upstream_ca"))?),
            None => match &system {
                Some(roots) => roots.clone(),
                None => system.insert(Arc::new(system_roots()?)).clone(),
            },
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots);
        let mut config = match &files.client {
            Some((cert, key)) => {
                let chain =
                    crate::pem::certificates(cert).with_context(|| what("upstream_client_cert"))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", key.display()))
                    .with_context(|| what("upstream_client_key"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .with_context(|| what("upstream_client_cert` and `upstream_client_key"))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        configs.insert(route.upstream_dial.clone(), Arc::new(config));
    }
    Ok(configs)
}

/// The name the upstream's certificate must carry: its host name (sent as SNI), or its IP
/// address (no SNI).
pub fn server_name(authority: &Authority) -> anyhow::Result<ServerName<'static>> {
    let host = (authority.host())
        .trim_start_matches('[')
        .trim_end_matches(']');
    Ok(ServerName::try_from(host.to_owned())?)
}

/// The operating system's trusted roots (on Debian, /etc/ssl/certs).
fn system_roots() -> anyhow::Result<rustls::RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        bail!(
            "an https:// upstream without upstream_ca needs the system's CA certificates, and \
             none were found (install ca-certificates, or set the route's upstream_ca)"
        );
    }
    Ok(roots)
}
