//! `[cors]` and the `cors_*` keys of routes and token endpoints -> `cors::Cors`.

use std::sync::Arc;

use http::{HeaderName, Method};

use super::raw::RawCors;
use super::{ConfigError, bad};
use crate::cors::{Cors, Origins, Policy};

/// How long a browser may keep a preflight's answer by default (Chromium caps it at 2 h).
pub const DEFAULT_CORS_MAX_AGE_SECS: u64 = 600;
const DEFAULT_METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const DEFAULT_HEADERS: [&str; 4] = ["authorization", "content-type", "dpop", "x-request-id"];
/// A page reads a challenge, a DPoP nonce (RFC 9449 §8) and the request id.
const DEFAULT_EXPOSED: [&str; 3] = ["www-authenticate", "dpop-nonce", "x-request-id"];

/// The gateway's CORS settings, from which each route's and endpoint's policy is made.
pub(super) struct CorsBase {
    /// The settings, with no origin.
    template: Policy,
    /// `[cors] allowed_origins`, when the section is there.
    origins: Option<Origins>,
    credentials: bool,
}

impl CorsBase {
    pub(super) fn new(raw: Option<&RawCors>) -> Result<CorsBase, ConfigError> {
        let strings = |v: Option<&Vec<String>>, default: &[&str]| {
            v.cloned()
                .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect())
        };
        let methods = strings(
            raw.and_then(|r| r.allowed_methods.as_ref()),
            &DEFAULT_METHODS,
        );
        let methods = (methods.iter())
            .map(|m| match Method::from_bytes(m.as_bytes()) {
                Ok(method) if method != Method::CONNECT => Ok(method),
                _ => Err(bad(
                    "cors.allowed_methods",
                    format!("{m:?} is not a method"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let names = |key: &str, v: Option<&Vec<String>>, default: &[&str]| {
            let list = strings(v, default);
            match list
                .iter()
                .find(|n| HeaderName::from_bytes(n.as_bytes()).is_err())
            {
                Some(n) => Err(bad(key, format!("{n:?} is not a header name"))),
                None => Ok(list),
            }
        };
        let headers = names(
            "cors.allowed_headers",
            raw.and_then(|r| r.allowed_headers.as_ref()),
            &DEFAULT_HEADERS,
        )?;
        let exposed = names(
            "cors.exposed_headers",
            raw.and_then(|r| r.exposed_headers.as_ref()),
            &DEFAULT_EXPOSED,
        )?;
        let credentials = raw.is_some_and(|r| r.allow_credentials);
        let max_age = raw.and_then(|r| r.max_age_secs);
        let template = Policy::new(
            Origins::Listed(Vec::new()),
            credentials,
            methods,
            headers,
            &exposed,
            max_age.unwrap_or(DEFAULT_CORS_MAX_AGE_SECS),
        );
        let mut base = CorsBase {
            template,
            origins: None,
            credentials,
        };
        if let Some(r) = raw {
            base.origins = Some(base.origins("cors.allowed_origins", &r.allowed_origins)?);
        }
        Ok(base)
    }

    /// The policy of what has no CORS keys of its own: the gateway's.
    pub(super) fn gateway(&self) -> Cors {
        match &self.origins {
            Some(o) => self.policy(o.clone()),
            None => Cors::Off,
        }
    }

    /// The policy of a route or token endpoint: its own origins, or the gateway's;
    /// `by_upstream` when its upstream answers CORS itself.
    pub(super) fn target(
        &self,
        key: &str,
        own: Option<&[String]>,
        by_upstream: bool,
    ) -> Result<Cors, ConfigError> {
        match (own, by_upstream) {
            (Some(_), true) => Err(bad(
                &format!("{key}cors_allowed_origins"),
                "is not used when cors_by_upstream = true (the upstream decides)",
            )),
            (None, true) => Ok(Cors::Upstream),
            (Some(list), false) => {
                let origins = self.origins(&format!("{key}cors_allowed_origins"), list)?;
                Ok(self.policy(origins))
            }
            (None, false) => Ok(self.gateway()),
        }
    }

    fn policy(&self, origins: Origins) -> Cors {
        match &origins {
            Origins::Listed(list) if list.is_empty() => Cors::Off,
            _ => Cors::Gateway(Arc::new(self.template.with_origins(origins))),
        }
    }

    fn origins(&self, key: &str, list: &[String]) -> Result<Origins, ConfigError> {
        if list.iter().any(|o| o == "*") {
            if list.len() > 1 {
                return Err(bad(key, "\"*\" allows every origin: list it alone"));
            }
            if self.credentials {
                return Err(bad(
                    key,
                    "\"*\" cannot go with cors.allow_credentials = true (the Fetch standard forbids it); list the origins",
                ));
            }
            return Ok(Origins::Any);
        }
        let list = list
            .iter()
            .map(|o| origin(key, o))
            .collect::<Result<_, _>>()?;
        Ok(Origins::Listed(list))
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, lowercase, no default port, no path.
fn origin(key: &str, text: &str) -> Result<String, ConfigError> {
    let refused = |why: &str| bad(key, format!("{text:?} {why}"));
    let uri: http::Uri = text.parse().map_err(|_| refused("is not an origin"))?;
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http") => {
            s.to_ascii_lowercase()
        }
        _ => return Err(refused("needs http:// or https://")),
    };
    let authority = uri.authority().ok_or_else(|| refused("needs a host"))?;
    if authority.as_str().contains('@') {
        return Err(refused("must not carry user information"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") || text.ends_with('/') {
        return Err(refused(
            "must be an origin (scheme://host[:port]) without a path or a trailing slash",
        ));
    }
    let host = authority.host().to_ascii_lowercase();
    let default_port = if scheme == "https" { 443 } else { 80 };
    Ok(match authority.port_u16() {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_as_browsers_send_them() {
        for (given, read) in [
            ("https://Shop.Example", "https://shop.example"),
            ("https://shop.example:443", "https://shop.example"),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            ("http://[::1]:8081", "http://[::1]:8081"),
        ] {
            assert_eq!(origin("k", given).unwrap(), read);
        }
        for bad in [
            "shop.example",
            "https://shop.example/",
            "https://shop.example/app",
            "ftp://shop.example",
            "https://u:p@shop.example",
            "null",
        ] {
            assert!(origin("k", bad).is_err(), "{bad}");
        }
    }
}
