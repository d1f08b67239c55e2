//! A client entry's authentication keys (RFC 7591's names): `token_endpoint_auth_method`, the
//! `tls_client_auth_*` subject, the `jwks` of its self-signed certificates, and the binding of
//! its tokens to its certificate.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::raw::RawClient;
use super::{ConfigError, bad};
use crate::clients::{AuthMethod, ClientAuth};
use crate::mtls::dn::Dn;
use crate::mtls::subject::Subject;

/// The entry's authentication, and the JWKS file it reads (watched for reloads).
pub(super) fn validate(
    k: &dyn Fn(&str) -> String,
    e: &RawClient,
    base: &Path,
) -> Result<(ClientAuth, Option<PathBuf>), ConfigError> {
    let method = match e.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::Secret,
        Some(name) => AuthMethod::parse(name).ok_or_else(|| {
            bad(
                &k("token_endpoint_auth_method"),
                format!(
                    "unknown method {name:?} (expected \"client_secret_basic\", \
                     \"client_secret_post\", \"tls_client_auth\", \
                     \"self_signed_tls_client_auth\" or \"private_key_jwt\")"
                ),
            )
        })?,
    };
    let subject = subject(k, e)?;
    match (method, &subject) {
        (AuthMethod::TlsClientAuth, None) => {
            return Err(bad(
                &k("tls_client_auth_subject_dn"),
                "is missing: a tls_client_auth client needs exactly one of \
                 tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip, _san_email",
            ));
        }
        (AuthMethod::TlsClientAuth, Some(_)) | (_, None) => {}
        (_, Some((key, _))) => {
            return Err(bad(
                &k(key),
                "is only for token_endpoint_auth_method = \"tls_client_auth\"",
            ));
        }
    }
    let (jwks, file) = match (&e.jwks, &e.jwks_file) {
        (Some(_), Some(_)) => {
            return Err(bad(&k("jwks"), "and jwks_file are both given; keep one"));
        }
        (Some(doc), None) => (Some(doc.clone()), None),
        (None, Some(f)) => {
            let path = base.join(f);
            (Some(read_jwks(&k("jwks_file"), &path)?), Some(path))
        }
        (None, None) => (None, None),
    };
    let key = if file.is_some() { "jwks_file" } else { "jwks" };
    let (mut certificates, mut keys) = (Vec::new(), Vec::new());
    match (method, jwks) {
        (AuthMethod::SelfSignedTlsClientAuth | AuthMethod::PrivateKeyJwt, None) => {
            return Err(bad(
                &k("jwks_file"),
                format!(
                    "is missing: a {} client registers its {} in a JWKS (jwks_file or jwks)",
                    method.name(),
                    if method == AuthMethod::PrivateKeyJwt {
                        "public keys"
                    } else {
                        "certificates (x5c)"
                    }
                ),
            ));
        }
        (AuthMethod::SelfSignedTlsClientAuth, Some(doc)) => {
            certificates = self::certificates(&k(key), &doc)?;
        }
        (AuthMethod::PrivateKeyJwt, Some(doc)) => {
            keys = crate::assertion::keys::keys_of(&doc).map_err(|why| bad(&k(key), why))?;
        }
        (_, Some(_)) => {
            return Err(bad(
                &k(key),
                "is only for token_endpoint_auth_method = \"private_key_jwt\" or \
                 \"self_signed_tls_client_auth\"",
            ));
        }
        (_, None) => {}
    }
    Ok((
        ClientAuth {
            method,
            subject: subject.map(|(_, s)| s),
            certificates,
            keys: keys.into(),
            certificate_bound: e.tls_client_certificate_bound_access_tokens,
        },
        file,
    ))
}

/// The one `tls_client_auth_*` key given, if any, read.
fn subject(
    k: &dyn Fn(&str) -> String,
    e: &RawClient,
) -> Result<Option<(&'static str, Subject)>, ConfigError> {
    let given: Vec<(&'static str, &String)> = [
        ("tls_client_auth_subject_dn", &e.tls_client_auth_subject_dn),
        ("tls_client_auth_san_dns", &e.tls_client_auth_san_dns),
        ("tls_client_auth_san_uri", &e.tls_client_auth_san_uri),
        ("tls_client_auth_san_ip", &e.tls_client_auth_san_ip),
        ("tls_client_auth_san_email", &e.tls_client_auth_san_email),
    ]
    .into_iter()
    .filter_map(|(key, v)| v.as_ref().map(|v| (key, v)))
    .collect();
    let (key, value) = match given.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        [_, second, ..] => {
            return Err(bad(
                &k(second.0),
                "is one tls_client_auth_* key too many: RFC 8705 §2.1.2 allows exactly one",
            ));
        }
    };
    let empty = || bad(&k(key), "may not be empty");
    let subject = match key {
        "tls_client_auth_subject_dn" => {
            Subject::Dn(Dn::parse(value).map_err(|why| bad(&k(key), format!("{value:?}: {why}")))?)
        }
        "tls_client_auth_san_ip" => Subject::Ip(
            value
                .parse()
                .map_err(|_| bad(&k(key), format!("{value:?} is not an IP address")))?,
        ),
        _ if value.trim().is_empty() => return Err(empty()),
        "tls_client_auth_san_dns" => Subject::Dns(value.clone()),
        "tls_client_auth_san_uri" => Subject::Uri(value.clone()),
        _ => Subject::Email(value.clone()),
    };
    Ok(Some((key, subject)))
}

fn read_jwks(key: &str, path: &Path) -> Result<serde_json::Value, ConfigError> {
    let text = std::fs::read(path)
        .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| bad(key, format!("{} is not JSON: {e}", path.display())))
}

/// The thumbprints of the first certificate of each key's `x5c` (RFC 7517 §4.7: standard
/// base64 DER, the key's own certificate first).
fn certificates(key: &str, jwks: &serde_json::Value) -> Result<Vec<[u8; 32]>, ConfigError> {
    let keys = (jwks.get("keys").and_then(|k| k.as_array()))
        .ok_or_else(|| bad(key, "is not a JWKS: it has no \"keys\" array"))?;
    let mut out = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        let Some(first) = jwk.get("x5c").and_then(|c| c.get(0)) else {
            continue;
        };
        let der = (first.as_str())
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|der| x509_parser::parse_x509_certificate(der).is_ok())
            .ok_or_else(|| {
                bad(
                    key,
                    format!("keys[{i}].x5c[0] is not a base64 DER certificate"),
                )
            })?;
        out.push(crate::mtls::thumbprint(&der));
    }
    if out.is_empty() {
        return Err(bad(key, "holds no key with a certificate (x5c)"));
    }
    Ok(out)
}
