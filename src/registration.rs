//! `storegate client new`: the config entry of a new client, for the method it authenticates
//! with (RFC 7591's names): a fresh secret (shown once, only its hash in the entry), or a
//! certificate (`tls_client_auth` with its one subject, `self_signed_tls_client_auth`), or
//! signed assertions (`private_key_jwt`), whose keys or certificates are in a JWKS file.

use crate::clients::{AuthMethod, generate_secret, hash_secret};

/// What the command was asked for.
#[derive(Debug, Default)]
pub struct NewClient {
    pub id: String,
    pub apis: Vec<String>,
    /// `token_endpoint_auth_method`; `None`: a secret.
    pub method: Option<String>,
    /// For tls_client_auth: the one `tls_client_auth_*` key and its value.
    pub subject: Option<(&'static str, String)>,
    /// For self_signed_tls_client_auth and private_key_jwt.
    pub jwks_file: Option<String>,
    /// `tls_client_certificate_bound_access_tokens`.
    pub certificate_bound: bool,
}

/// The lines to print: comments first (a secret, shown once), then the `[[clients]]` entry.
pub fn entry(new: &NewClient) -> Result<String, String> {
    let method = match new.method.as_deref() {
        None => None,
        Some(m) => Some(AuthMethod::parse(m).ok_or_else(|| {
            format!(
                "unknown --auth-method {m:?} (expected client_secret_basic, client_secret_post, \
                 tls_client_auth, self_signed_tls_client_auth or private_key_jwt)"
            )
        })?),
    };
    let uses_secret = method.is_none_or(AuthMethod::uses_secret);
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let secret = uses_secret.then(generate_secret);
    if let Some(secret) = &secret {
        line(format!(
            "# client secret for {:?} (shown once; give it to the client, store it nowhere else):",
            new.id
        ));
        line(format!("# {secret}"));
    }
    line("[[clients]]".into());
    line(format!("id = {}", toml_string(&new.id)));
    if let Some(secret) = &secret {
        line(format!("secret_hash = \"{}\"", hash_secret(secret)));
    }
    let apis: Vec<String> = new.apis.iter().map(|a| toml_string(a)).collect();
    line(format!("apis = [{}]", apis.join(", ")));
    line("grants = [\"client_credentials\"]".into());
    line("scopes = [\"read\", \"write\"]".into());
    if let Some(m) = method {
        line(format!("token_endpoint_auth_method = \"{}\"", m.name()));
    }
    match (method, &new.subject) {
        (Some(AuthMethod::TlsClientAuth), Some((key, value))) => {
            line(format!("{key} = {}", toml_string(value)));
        }
        (Some(AuthMethod::TlsClientAuth), None) => {
            return Err(
                "tls_client_auth needs one of --subject-dn, --san-dns, --san-uri, \
                        --san-ip, --san-email"
                    .into(),
            );
        }
        (_, Some(_)) => return Err("a subject is for --auth-method tls_client_auth only".into()),
        _ => {}
    }
    let needs_jwks = matches!(
        method,
        Some(AuthMethod::SelfSignedTlsClientAuth | AuthMethod::PrivateKeyJwt)
    );
    match (&new.jwks_file, needs_jwks) {
        (Some(f), true) => line(format!("jwks_file = {}", toml_string(f))),
        (None, true) => {
            return Err(format!(
                "{} needs --jwks-file, the client's JWKS",
                method.map_or("", AuthMethod::name)
            ));
        }
        (Some(_), false) => {
            return Err(
                "--jwks-file is for self_signed_tls_client_auth and private_key_jwt".into(),
            );
        }
        (None, false) => {}
    }
    if new.certificate_bound {
        line("tls_client_certificate_bound_access_tokens = true".into());
    }
    Ok(out)
}

/// A TOML basic string (the id and API names may hold quotes or backslashes).
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
