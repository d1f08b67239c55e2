//! `[[clients]]` entries (inline and from `clients_file`) -> the validated client registry.

use std::path::{Path, PathBuf};

use super::raw::{RawClient, RawClientsFile};
use super::{ConfigError, bad, toml_error};
use crate::clients::{Client, Clients, Grant, is_scope_token, parse_secret_hash};

/// Most APIs one client may be registered for (its tokens' audience is a 64-bit set).
const MAX_APIS_PER_CLIENT: usize = 64;

/// Validates every entry (its files relative to `base`); errors name the entry's key
/// (`clients[i].field`). Also returns the JWKS files the entries read.
pub fn validate(
    entries: Vec<RawClient>,
    base: &Path,
) -> Result<(Clients, Vec<PathBuf>), ConfigError> {
    let mut clients = Clients::default();
    let mut files = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let id = e.id.clone();
        let (client, file) = validate_one(i, e, base)?;
        files.extend(file);
        if !clients.insert(client) {
            return Err(bad(
                &format!("clients[{i}].id"),
                format!("{id:?} is registered twice"),
            ));
        }
    }
    Ok((clients, files))
}

fn validate_one(
    i: usize,
    e: RawClient,
    base: &Path,
) -> Result<(Client, Option<PathBuf>), ConfigError> {
    let k = |field: &str| format!("clients[{i}].{field}");
    let (auth, jwks_file) = super::client_auth::validate(&k, &e, base)?;
    if e.id.is_empty() || e.id.contains(':') || e.id.chars().any(char::is_control) {
        return Err(bad(
            &k("id"),
            format!(
                "{:?} must be non-empty, without ':' or control characters",
                e.id
            ),
        ));
    }
    let id_header = http::HeaderValue::from_str(&e.id).map_err(|_| {
        bad(
            &k("id"),
            format!(
                "{:?} must be printable ASCII (it is sent in a header)",
                e.id
            ),
        )
    })?;
    let grants = match &e.grants {
        None => vec![Grant::ClientCredentials],
        Some(g) if g.is_empty() => return Err(bad(&k("grants"), "may not be empty")),
        Some(g) => g
            .iter()
            .map(|s| {
                Grant::parse(s).ok_or_else(|| {
                    bad(
                        &k("grants"),
                        format!(
                            "unknown grant {s:?} (expected \"client_credentials\" or \"implicit\")"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let hashes = e.secret_hash.iter().map(|h| (k("secret_hash"), h));
    let more = e.secret_hashes.iter().enumerate();
    let secret_digests = hashes
        .chain(more.map(|(j, h)| (k(&format!("secret_hashes[{j}]")), h)))
        .map(|(key, h)| {
            // A hash is secret material: the error names the key, not the value.
            parse_secret_hash(h).ok_or_else(|| {
                bad(
                    &key,
                    "must be \"sha256:\" and 64 hex digits (see `storegate client new`)",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !auth.method.uses_secret() && !secret_digests.is_empty() {
        return Err(bad(
            &k("secret_hash"),
            format!(
                "is given, but client {:?} authenticates with {}: it would never be accepted",
                e.id,
                auth.method.name()
            ),
        ));
    }
    if auth.method.uses_secret()
        && secret_digests.is_empty()
        && grants.contains(&Grant::ClientCredentials)
    {
        return Err(bad(
            &k("secret_hash"),
            format!(
                "is missing (or secret_hashes is empty); client {:?} may use client_credentials",
                e.id
            ),
        ));
    }
    if e.apis.is_empty()
        || e.apis
            .iter()
            .any(|a| a.is_empty() || a.contains(char::is_control))
    {
        return Err(bad(
            &k("apis"),
            format!(
                "{:?} must name at least one API, without control characters",
                e.apis
            ),
        ));
    }
    if e.apis.len() > MAX_APIS_PER_CLIENT {
        return Err(bad(
            &k("apis"),
            format!("names {} APIs; {MAX_APIS_PER_CLIENT} at most", e.apis.len()),
        ));
    }
    if e.rate_limit_per_sec == Some(0) {
        return Err(bad(&k("rate_limit_per_sec"), "must be at least 1, got 0"));
    }
    if let Some(s) = e.scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(bad(
            &k("scopes"),
            format!("{s:?} is not a valid scope token (RFC 6749 §3.3)"),
        ));
    }
    if e.introspect && auth.method.uses_secret() && secret_digests.is_empty() {
        return Err(bad(
            &k("introspect"),
            "is true but the client has no secret_hash to authenticate with",
        ));
    }
    let revoke_issued_before = match &e.revoke_issued_before {
        None => None,
        Some(s) => Some(
            crate::token::past_instant(s)
                .map_err(|why| bad(&k("revoke_issued_before"), format!("{s:?} {why}")))?,
        ),
    };
    let client = Client {
        id: e.id,
        id_header,
        secret_digests,
        apis: e.apis,
        grants,
        scopes: e.scopes,
        rate_limit_per_sec: e.rate_limit_per_sec,
        revoke_issued_before,
        introspect: e.introspect,
        dpop_bound_access_tokens: e.dpop_bound_access_tokens,
        auth,
    };
    Ok((client, jwks_file))
}

/// The entries of a `clients_file`, their `jwks_file` paths made relative to its folder.
pub fn read_file(path: &Path) -> Result<Vec<RawClient>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(
            "clients_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let file: RawClientsFile = toml::from_str(&text).map_err(|e| {
        bad(
            "clients_file",
            format!("{} is invalid{}", path.display(), toml_error(&text, &e)),
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut entries = file.clients;
    for e in &mut entries {
        e.jwks_file = e.jwks_file.as_ref().map(|f| dir.join(f));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::hash_secret;

    fn entry(id: &str, secret: &str) -> RawClient {
        RawClient {
            id: id.into(),
            secret_hash: Some(hash_secret(secret)),
            secret_hashes: Vec::new(),
            apis: vec!["store".into()],
            grants: None,
            scopes: vec!["read".into()],
            rate_limit_per_sec: None,
            revoke_issued_before: None,
            ..RawClient::default()
        }
    }

    fn validate_at(entries: Vec<RawClient>) -> Result<Clients, ConfigError> {
        validate(entries, Path::new(".")).map(|(c, _)| c)
    }

    #[test]
    fn bad_entries_name_their_key() {
        let mut e = entry("a", "x");
        e.secret_hash = Some("md5:abc".into());
        let err = validate_at(vec![e]).unwrap_err().to_string();
        assert!(err.contains("clients[0].secret_hash"), "{err}");
        let mut e = entry("a", "x");
        e.grants = Some(vec!["password".into()]);
        assert!(
            validate_at(vec![e])
                .unwrap_err()
                .to_string()
                .contains("clients[0].grants")
        );
        let err = validate_at(vec![entry("a", "x"), entry("a", "y")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[1].id"), "{err}");
    }

    #[test]
    fn every_listed_secret_is_accepted() {
        let mut e = entry("a", "old");
        e.secret_hashes = vec![hash_secret("new")];
        let clients = validate_at(vec![e.clone()]).unwrap();
        let c = clients.get("a").unwrap();
        assert!(c.secret_matches("old") && c.secret_matches("new"));
        assert!(!c.secret_matches("other"));
        e.secret_hash = None;
        let clients = validate_at(vec![e.clone()]).unwrap();
        assert!(clients.get("a").unwrap().secret_matches("new"));
        e.secret_hashes.push("sha256:nothex".into());
        let err = validate_at(vec![e]).unwrap_err().to_string();
        assert!(
            err.contains("clients[0].secret_hashes[1]") && !err.contains("nothex"),
            "{err}"
        );
    }

    #[test]
    fn implicit_only_clients_need_no_secret() {
        let mut e = entry("pub", "x");
        e.secret_hash = None;
        e.grants = Some(vec!["implicit".into()]);
        let clients = validate_at(vec![e]).unwrap();
        assert!(!clients.get("pub").unwrap().secret_matches(""));
    }

    #[test]
    fn revoke_issued_before_is_an_instant_not_ahead() {
        let mut e = entry("a", "x");
        e.revoke_issued_before = Some("2026-11-23T10:00:00Z".into());
        let clients = validate_at(vec![e.clone()]).unwrap();
        assert_eq!(
            clients.get("a").unwrap().revoke_issued_before,
            Some(1_795_428_000)
        );
        for bad_value in ["yesterday", "2026-11-23", "2999-01-01T00:00:00Z"] {
            e.revoke_issued_before = Some(bad_value.into());
            let err = validate_at(vec![e.clone()]).unwrap_err().to_string();
            assert!(err.contains("clients[0].revoke_issued_before"), "{err}");
        }
    }

    #[test]
    fn only_a_client_with_a_secret_may_introspect() {
        let mut e = entry("a", "x");
        e.introspect = true;
        assert!(
            validate_at(vec![e.clone()])
                .unwrap()
                .get("a")
                .unwrap()
                .introspect
        );
        e.secret_hash = None;
        e.grants = Some(vec!["implicit".into()]);
        let err = validate_at(vec![e]).unwrap_err().to_string();
        assert!(err.contains("clients[0].introspect"), "{err}");
    }
}
