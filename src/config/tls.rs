//! `[tls]`: the listener's certificate, and whether and how it asks callers for theirs
//! (RFC 8705), checked against the clients that authenticate with one.

use std::path::Path;

use super::raw::RawTls;
use super::{Config, ConfigError, bad};
use crate::clients::AuthMethod;
use crate::tls::{AskForCerts, ClientCerts, TlsFiles};

/// The section's files and client-certificate settings; `strangers` is set by `fit_clients`.
pub(super) fn files(t: &RawTls, base: &Path) -> Result<TlsFiles, ConfigError> {
    let ask = match t.client_auth.as_deref() {
        None if t.client_ca.is_some() => AskForCerts::Optional,
        None | Some("off") => AskForCerts::Off,
        Some("optional") => AskForCerts::Optional,
        Some("required") => AskForCerts::Required,
        Some(other) => {
            return Err(bad(
                "tls.client_auth",
                format!("unknown value {other:?} (expected \"off\", \"optional\" or \"required\")"),
            ));
        }
    };
    if t.client_crl.is_some() && t.client_ca.is_none() {
        return Err(bad("tls.client_crl", "is given without tls.client_ca"));
    }
    Ok(TlsFiles {
        cert: base.join(&t.cert),
        key: base.join(&t.key),
        generate_dev_files: t.generate_dev_files,
        client: ClientCerts {
            ca: t.client_ca.as_ref().map(|p| base.join(p)),
            crl: t.client_crl.as_ref().map(|p| base.join(p)),
            ask,
            strangers: true,
        },
    })
}

/// Checks that every client's certificate method can be served by the listener, and lets
/// certificates no CA signed into the handshake unless nothing can use them.
pub(super) fn fit_clients(cfg: &mut Config) -> Result<(), ConfigError> {
    let methods = || cfg.clients.iter().map(|c| (c, c.auth.method));
    let needs = |m: AuthMethod| methods().find(|(_, method)| *method == m).map(|(c, _)| c);
    let self_signed = needs(AuthMethod::SelfSignedTlsClientAuth).is_some();
    let client = cfg.tls.as_ref().map(|t| &t.client);
    let asks = client.is_some_and(|c| c.ask != AskForCerts::Off);
    let bound = cfg.clients.iter().find(|c| c.auth.certificate_bound);
    let uses_certs = needs(AuthMethod::TlsClientAuth)
        .or(needs(AuthMethod::SelfSignedTlsClientAuth))
        .or(bound);
    if let Some(c) = uses_certs
        && !asks
    {
        return Err(bad(
            "tls.client_auth",
            format!(
                "is off, but client {:?} needs a client certificate: set it to \"optional\" \
                 or \"required\"",
                c.id
            ),
        ));
    }
    if let Some(c) = needs(AuthMethod::TlsClientAuth)
        && client.is_none_or(|c| c.ca.is_none())
    {
        return Err(bad(
            "tls.client_ca",
            format!(
                "is missing: client {:?} uses tls_client_auth, whose certificates a \
                 configured CA must have issued",
                c.id
            ),
        ));
    }
    if let Some(t) = cfg.tls.as_mut() {
        let c = &mut t.client;
        if c.ask == AskForCerts::Required && c.ca.is_none() && !self_signed {
            return Err(bad(
                "tls.client_auth",
                "is \"required\" but there is no tls.client_ca, and no client registers a \
                 self-signed certificate: no certificate could be accepted",
            ));
        }
        c.strangers = c.ask != AskForCerts::Required || self_signed;
    }
    Ok(())
}
