//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay (`replay`, a unit
//! test); compiled only for those (`--cfg fuzzing`, tests): each takes arbitrary bytes and must never panic.
//!
//! Besides "does not panic", each checks a few properties the callers rely on (an empty
//! parameter counts as omitted, a Bearer token is never empty, a `..` segment is always refused,
//! a signature the key did not make never verifies, ...), so a wrong answer fails as loudly as a
//! crash. The fixtures (key, verifier, routing table) are built once per process.

mod client_auth;
mod config;
mod decision;
mod dpop;
mod h2_stream;
mod relay;
#[cfg(test)]
mod replay;
mod two_paths;

pub use client_auth::client_auth;
pub use config::config;
pub use decision::decision;
pub use dpop::dpop;
pub use h2_stream::h2_stream;
pub use relay::relay;
pub use two_paths::two_paths;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, Method, header};

use crate::clients::{Client, Clients};

use crate::endpoint::request::{basic_credentials, parse_body};
use crate::errors::ErrorShape;
use crate::guard::bearer_token;
use crate::routes::{
    EndpointShape, HEALTH_PATH, JWKS_PATH, Own, Route, Target, TokenEndpoint, path_refusal, resolve,
};
use crate::token::cache::TokenCache;
use crate::token::issue::TokenIssuer;
use crate::token::keys::{KeySet, SigningAlgorithm};
use crate::token::verify::{Rules, Verifier};

/// The token request parser: the body under each Content-Type (chosen by the first byte) and
/// the `Authorization: Basic` header.
///
/// First byte `f`: form body; `j`: JSON; `v`: `application/vnd.api+json`; `c`: the
/// Content-Type value up to the first newline, then the body; anything else: no Content-Type
/// and the whole input is the body (so a plain form or JSON body is a seed as it is).
pub fn token_request(data: &[u8]) {
    let (content_type, body) = split_content_type(data);
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_bytes(ct).ok()) {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    let parsed = parse_body(&headers, body);
    if let Ok(p) = &parsed {
        for v in [&p.grant_type, &p.client_id, &p.client_secret, &p.scope] {
            assert_ne!(
                v.as_deref(),
                Some(""),
                "an empty parameter counts as omitted"
            );
        }
    }
    if content_type.is_none() {
        // Without a Content-Type the first non-blank byte decides, and the body reads exactly
        // as it would under the Content-Type it was taken for.
        let json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let ct = if json {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        assert_eq!(parsed, parse_body(&declared, body), "sniffed as {ct}");
    }

    // The input as the whole Authorization header value.
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let _ = basic_credentials(&authorization(v));
    }
    // The input as the base64 payload of a Basic header: it reads iff it is UTF-8 with a ':'.
    let encoded = format!("Basic {}", STANDARD.encode(data));
    let got = basic_credentials(&authorization(header_value(&encoded)));
    let readable = std::str::from_utf8(data).is_ok_and(|s| s.contains(':'));
    assert!(
        matches!(got, Some(Ok(_))) == readable,
        "Basic payload read as {got:?}"
    );
    // Any id and secret survive RFC 6749 §2.3.1's form-encoding and base64 unchanged.
    let text = String::from_utf8_lossy(data);
    let (id, secret) = text.split_once('\n').unwrap_or((&text, ""));
    let form = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let payload = STANDARD.encode(format!("{}:{}", form(id), form(secret)));
    let got = basic_credentials(&authorization(header_value(&format!("basic  {payload} "))));
    assert_eq!(
        got,
        Some(Ok((id.to_owned(), secret.to_owned()))),
        "Basic credentials round trip"
    );
}

fn split_content_type(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match data.split_first() {
        Some((b'f', body)) => (Some(b"application/x-www-form-urlencoded"), body),
        Some((b'j', body)) => (Some(b"application/json; charset=utf-8"), body),
        Some((b'v', body)) => (Some(b"application/vnd.api+json"), body),
        Some((b'c', rest)) => match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (Some(rest), b""),
        },
        _ => (None, data),
    }
}

fn authorization(value: HeaderValue) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, value);
    h
}

/// A header value built from printable ASCII (base64 and form-encoded text).
fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("base64 is a valid header value")
}

/// The Bearer token reader: the input as the Authorization value, as the token after
/// `Bearer `, and, split at newlines, as several Authorization headers.
pub fn bearer(data: &[u8]) {
    if let Ok(v) = HeaderValue::from_bytes(data) {
        check_bearer(&authorization(v));
    }
    let mut prefixed = b"Bearer ".to_vec();
    prefixed.extend_from_slice(data);
    if let Ok(v) = HeaderValue::from_bytes(&prefixed) {
        let h = authorization(v);
        check_bearer(&h);
        // The token is what follows the scheme, blanks trimmed.
        if let Ok(s) = std::str::from_utf8(data)
            && s.is_ascii()
            && !s.trim().is_empty()
        {
            assert_eq!(bearer_token(&h).ok(), Some(s.trim()));
        }
    }
    if data.contains(&b'\n') {
        let mut h = HeaderMap::new();
        for part in data.split(|&b| b == b'\n') {
            if let Ok(v) = HeaderValue::from_bytes(part) {
                h.append(header::AUTHORIZATION, v);
            }
        }
        check_bearer(&h);
    }
}

fn check_bearer(h: &HeaderMap) {
    if let Ok(token) = bearer_token(h) {
        assert!(!token.is_empty(), "an empty Bearer token");
        assert_eq!(token, token.trim(), "an untrimmed Bearer token");
        let value = h[header::AUTHORIZATION].to_str().unwrap();
        assert!(value.contains(token), "the token is part of the header");
    }
}

const ISSUER: &str = "https://fuzz.storegate.test";
const CLIENT_ID: &str = "fuzz-client";
const KID: &str = "fuzz-key";
/// `iat` of the seed tokens: far ahead, so that they stay unexpired (nothing checks `iat`
/// against the clock) and the corpus means the same in every run.
pub const SEED_TOKEN_IAT: u64 = 4_000_000_000;
/// The header the claims-only inputs of `verify` are signed under.
const HEADER: &[u8] = br#"{"alg":"EdDSA","typ":"at+jwt","kid":"fuzz-key"}"#;

/// A token verifier with one real key, one client and no cache, built once per process.
pub struct VerifyFixture {
    pub keys: Arc<KeySet>,
    pub verifier: Verifier,
    pub clients: Clients,
    pub cache: TokenCache,
}

/// The fixture of the `verify` target. The Ed25519 key is fixed (PKCS#8 v1 of a constant
/// seed) rather than random, so that tokens signed for the corpus verify in every run. Its
/// kid is short, so that the fuzzer can find it.
pub fn verify_fixture() -> &'static VerifyFixture {
    static FIXTURE: OnceLock<VerifyFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // RFC 8410 §7: SEQUENCE { version 0, AlgorithmIdentifier { id-Ed25519 }, OCTET STRING
        // { OCTET STRING seed } }.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend(1..=32u8);
        let keys = Arc::new(
            KeySet::from_pkcs8(SigningAlgorithm::EdDSA, &der, Some(KID.into()), &[])
                .expect("the fuzz key"),
        );
        let rules = Rules {
            issuer: ISSUER,
            leeway_secs: 30,
            max_age_secs: 86_400,
        };
        let verifier = Verifier::new(keys.clone(), rules, 1);
        let mut clients = Clients::default();
        clients.insert(
            Client::with_secret(
                CLIENT_ID,
                "fuzz-secret",
                &["store", "backoffice"],
                &["read", "write"],
            )
            .expect("the fuzz client"),
        );
        VerifyFixture {
            keys,
            verifier,
            clients,
            cache: TokenCache::new(0, Duration::from_secs(300)),
        }
    })
}

/// A token the fixture's key signed for its client, as the token endpoint issues them.
pub fn seed_token(scope: &str, grant: crate::clients::Grant) -> String {
    let f = verify_fixture();
    let issuer = TokenIssuer::new(f.keys.clone(), ISSUER.into(), 3600);
    let client = f.clients.get(CLIENT_ID).expect("the fuzz client");
    issuer
        .issue(client, grant, scope, SEED_TOKEN_IAT)
        .expect("signing")
        .access_token
}

/// The token verifier. The input is tried as a token as it is (if UTF-8), and as the parts
/// of one, so that the JSON of header and claims is reached and not only the base64:
///
/// * no 0xFF byte: the input is the claims, under a valid header, signed with the key;
/// * `header 0xFF claims`: both from the input, signed with the key;
/// * `header 0xFF claims 0xFF sig`: also with the input's signature bytes, which must not
///   verify unless they are the key's signature.
pub fn verify(data: &[u8]) {
    let f = verify_fixture();
    if let Ok(token) = std::str::from_utf8(data) {
        check_token(f, token);
    }
    let (input, sig) = jws_parts(data, HEADER);
    let real = f.keys.signer.sign(input.as_bytes()).expect("signing");
    check_token(f, &format!("{input}.{}", URL_SAFE_NO_PAD.encode(&real)));
    if let Some(sig) = sig {
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        let ok = check_token(f, &forged);
        assert!(
            !ok || sig == real,
            "a signature the key did not make verified"
        );
    }
}

/// A fuzz input read as JWS parts: `claims` alone (under `header`), `header 0xFF claims`, or
/// `header 0xFF claims 0xFF signature`. Returns the signing input and the signature bytes, if
/// the input gives them.
pub(crate) fn jws_parts<'a>(data: &'a [u8], header: &'a [u8]) -> (String, Option<&'a [u8]>) {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let (head, claims, sig) = match (parts.next(), parts.next(), parts.next()) {
        (Some(claims), None, _) => (header, claims, None),
        (Some(head), Some(claims), sig) => (head, claims, sig),
        (None, ..) => unreachable!("splitn yields at least one part"),
    };
    let mut input = URL_SAFE_NO_PAD.encode(head);
    input.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut input);
    (input, sig)
}

/// Verifies through the (disabled) cache and directly; the two must agree. True if it verified.
fn check_token(f: &VerifyFixture, token: &str) -> bool {
    let through = f.verifier.verify(token, &f.clients, &f.cache);
    let direct = f.verifier.verify_uncached(token, &f.cache);
    match (&through, &direct) {
        (Ok(v), Ok(s)) => {
            assert_eq!(v.signed.client_id(), s.client_id());
            assert_eq!(v.client.id, s.client_id());
            for api in ["store", "backoffice", "other"] {
                assert_eq!(
                    v.is_for(api),
                    v.client.apis.iter().any(|a| a == api) && s.aud().any(|a| a == api)
                );
            }
        }
        (Err(e), Ok(s)) => assert!(
            f.clients.get(s.client_id()).is_none(),
            "a token of a registered client verified directly but not through the cache: {e:?}"
        ),
        (Ok(_), Err(e)) => panic!("verified through the cache but not directly: {e:?}"),
        (Err(_), Err(_)) => {}
    }
    through.is_ok()
}

/// The fixed routing table of the `path` target: the shipped token endpoints and routes that
/// nest and share prefixes, longest prefix first (as config sorts them).
fn routing_table() -> &'static (Vec<TokenEndpoint>, Vec<Route>) {
    static TABLE: OnceLock<(Vec<TokenEndpoint>, Vec<Route>)> = OnceLock::new();
    TABLE.get_or_init(|| {
        let endpoints = [
            ("/connect/token", EndpointShape::ConnectToken),
            ("/oauth2-token", EndpointShape::Oauth2Token),
            ("/oauth/access_token", EndpointShape::OauthAccessToken),
        ]
        .map(|(path, shape)| TokenEndpoint {
            path: path.into(),
            label: path.into(),
            shape,
            cors: crate::cors::Cors::Off,
        })
        .to_vec();
        let route = |prefix: &str, api: &str, port: u16| Route {
            prefix: prefix.into(),
            label: prefix.into(),
            upstream_scheme: http::uri::Scheme::HTTP,
            upstream_authority: format!("127.0.0.1:{port}").parse().expect("authority"),
            upstream_dial: format!("127.0.0.1:{port}").parse().expect("authority"),
            upstream_tls: None,
            api: api.into(),
            error_shape: ErrorShape::OAuth,
            timeout: Duration::from_secs(1),
            body_idle_timeout: Duration::from_secs(1),
            forward_authorization: false,
            write_scope: Some("write".into()),
            max_body_bytes: None,
            resource_metadata: None,
            cors: crate::cors::Cors::Off,
            dpop_required: false,
        };
        let mut routes = vec![
            route("/api/", "store", 9001),
            route("/api/admin/", "backoffice", 9002),
            route("/shop", "store", 9003),
            route("/", "fallback", 9004),
        ];
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        (endpoints, routes)
    })
}

/// Path checks and routing: `path_refusal` and `resolve` over a fixed table, for the input
/// as a path (lossy UTF-8).
pub fn path(data: &[u8]) {
    let p = String::from_utf8_lossy(data);
    let refusal = path_refusal(&p);
    // Every path the service checks is origin-form, so starts with '/'.
    let dot_segment = p.starts_with('/')
        && p.split('/').any(|seg| {
            let name = seg.split(';').next().unwrap_or("");
            name == "." || name == ".."
        });
    let lower = p.to_ascii_lowercase();
    let must_refuse = dot_segment
        || p.contains('\\')
        || ["%2f", "%5c", "%00", "%252e", "%252f", "%255c"]
            .iter()
            .any(|e| lower.contains(e));
    assert!(refusal.is_some() || !must_refuse, "{p:?} was not refused");

    let (endpoints, routes) = routing_table();
    for method in [Method::GET, Method::HEAD, Method::POST, Method::DELETE] {
        let read = method == Method::GET || method == Method::HEAD;
        let endpoint = endpoints.iter().find(|e| e.path == p);
        let route = routes
            .iter()
            .filter(|r| p.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len());
        match resolve(endpoints, &[], routes, &method, &p) {
            Target::Own(Own::Token(e)) => assert_eq!(e.path, p),
            Target::Own(
                Own::OAuth(_) | Own::Document(_) | Own::Preflight(..) | Own::Decision(_),
            ) => {
                unreachable!("the table has none, and resolve finds no documents or preflights")
            }
            Target::Own(Own::Health) => assert!(read && p == HEALTH_PATH && endpoint.is_none()),
            Target::Own(Own::Jwks) => assert!(read && p == JWKS_PATH && endpoint.is_none()),
            Target::Route(r) => {
                assert!(endpoint.is_none(), "{p:?} is a token endpoint");
                assert_eq!(Some(r.prefix.as_str()), route.map(|r| r.prefix.as_str()));
            }
            Target::NotFound => assert!(endpoint.is_none() && route.is_none(), "{p:?}"),
        }
    }
}

/// One fuzz target's entry point.
pub type FuzzTarget = fn(&[u8]);

/// The fuzzed entry points by target name, for the corpus replay.
pub const TARGETS: &[(&str, FuzzTarget)] = &[
    ("token_request", token_request),
    ("bearer", bearer),
    ("verify", verify),
    ("path", path),
    ("config", config),
    ("relay", relay),
    ("two_paths", two_paths),
    ("dpop", dpop),
    ("client_auth", client_auth),
    ("decision", decision),
    ("h2_stream", h2_stream),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_token_verifies() {
        let f = verify_fixture();
        let t = seed_token("read write", crate::clients::Grant::ClientCredentials);
        let v = f.verifier.verify(&t, &f.clients, &f.cache).unwrap();
        assert!(v.is_for("store") && v.has_scope("write"));
        verify(t.as_bytes());
    }

    #[test]
    fn claims_alone_are_signed_under_a_valid_header() {
        let claims = format!(
            r#"{{"iss":"{ISSUER}","sub":"{CLIENT_ID}","aud":"store","exp":{},"iat":{SEED_TOKEN_IAT},"jti":"j1","gty":"implicit"}}"#,
            SEED_TOKEN_IAT + 60
        );
        verify(claims.as_bytes());
        let f = verify_fixture();
        let mut input = URL_SAFE_NO_PAD.encode(HEADER);
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut input);
        let sig = f.keys.signer.sign(input.as_bytes()).unwrap();
        let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert!(f.verifier.verify(&t, &f.clients, &f.cache).is_ok());
    }
}
