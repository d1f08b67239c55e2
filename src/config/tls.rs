//! `[tls]`: the listener's certificate, and whether and how it asks callers for theirs
//! (RFC 8705), checked against the clients that authenticate with one.

use std::path::Path;

use super::raw::{RawForwardedClientCert, RawTls};
use super::{Config, ConfigError, ForwardedClientCert, bad};
use crate::clients::AuthMethod;
use crate::mtls::forwarded::{Format, Forwarded};
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

/// `[forwarded_client_cert]`.
pub(super) fn forwarded(
    f: &RawForwardedClientCert,
    tls: Option<&TlsFiles>,
    base: &Path,
) -> Result<ForwardedClientCert, ConfigError> {
    const K: &str = "forwarded_client_cert";
    let trusted_peers = super::sections::networks(&format!("{K}.trusted_peers"), &f.trusted_peers)?;
    if trusted_peers.is_empty() {
        return Err(bad(
            &format!("{K}.trusted_peers"),
            "is empty: no proxy would be believed; list the proxies, or remove the section",
        ));
    }
    let name = f.header.as_deref().unwrap_or("client-cert");
    let format = Format::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
        bad(
            &format!("{K}.header"),
            format!(
                "unknown header {name:?} (expected \"client-cert\", \"x-forwarded-client-cert\", \
                 \"ssl-client-cert\" or \"x-forwarded-tls-client-cert\")"
            ),
        )
    })?;
    if tls.is_some() && f.client_ca.is_some() {
        return Err(bad(
            &format!("{K}.client_ca"),
            "is for a listener without [tls]; with one, set tls.client_ca",
        ));
    }
    if f.client_crl.is_some() && f.client_ca.is_none() {
        return Err(bad(
            &format!("{K}.client_crl"),
            "is given without client_ca",
        ));
    }
    Ok(ForwardedClientCert {
        forwarded: Forwarded {
            trusted_peers,
            format,
        },
        ca: f.client_ca.as_ref().map(|p| base.join(p)),
        crl: f.client_crl.as_ref().map(|p| base.join(p)),
    })
}

/// Checks that every client's certificate method can be served by the listener, and lets
/// certificates no CA signed into the handshake unless nothing can use them.
pub(super) fn fit_clients(cfg: &mut Config) -> Result<(), ConfigError> {
    let methods = || cfg.clients.iter().map(|c| (c, c.auth.method));
    let needs = |m: AuthMethod| methods().find(|(_, method)| *method == m).map(|(c, _)| c);
    let self_signed = needs(AuthMethod::SelfSignedTlsClientAuth).is_some();
    let client = cfg.tls.as_ref().map(|t| &t.client);
    let forwarded = cfg.forwarded_client_cert.as_ref();
    let asks = client.is_some_and(|c| c.ask != AskForCerts::Off) || forwarded.is_some();
    let has_ca =
        client.is_some_and(|c| c.ca.is_some()) || forwarded.is_some_and(|f| f.ca.is_some());
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
                 or \"required\" (or, behind a proxy that does the mTLS, configure \
                 [forwarded_client_cert])",
                c.id
            ),
        ));
    }
    if let Some(c) = needs(AuthMethod::TlsClientAuth)
        && !has_ca
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
