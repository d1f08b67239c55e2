//! The `client_auth` target: what a caller (or a proxy in front, or a config file) controls of
//! mutual TLS and `private_key_jwt`. The first byte picks what the rest is:
//!
//! * 0: an RFC 4514 DN string for `mtls::dn::Dn::parse` (read twice: the same name both times);
//! * 1: header values for `mtls::forwarded::Forwarded::presented`, tried in every `Format`:
//!   the values of the format's header up to a 0xFF byte, one per line; after it, those of
//!   `client-cert-chain`. A certificate read is then matched against the fixed subjects;
//! * 2: a client assertion as it is, for `assertion::named_client` and `assertion::check`
//!   against one registered ES256 key;
//! * 3: the parts of an assertion: `claims`, signed by the registered key under a valid
//!   header; `header 0xFF claims`, both from the input, signed by the key; `header 0xFF claims
//!   0xFF signature`, with the input's signature bytes;
//! * 4: a certificate (DER) for `mtls::subject::Subject::named_by`, for each kind of subject.
//!
//! Besides "does not panic": an assertion passes only if it is a JWS the registered key
//! signed (checked here with the public key, apart from `jsonwebtoken`), and what passed says
//! what a caller relies on: its header names the key's alg (and kid, if any) and an accepted
//! `typ`, `named_client` reads the client id from it, `sub` is the client id, `aud` the issuer
//! (or the endpoint, when allowed), `iat` not ahead, the lifetime within bounds, a `jti`.

use std::net::IpAddr;
use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::assertion::{self, ClientKey, Expected, LEEWAY_SECS, Settings};
use crate::mtls::dn::Dn;
use crate::mtls::forwarded::{Format, Forwarded};
use crate::mtls::subject::Subject;

/// The client the registered key belongs to.
const CLIENT: &str = "fuzz-client";
/// The key's `kid` in the client's JWKS.
const KID: &str = "fuzz-es256";
const ISSUER: &str = "https://fuzz.storegate.test";
const ENDPOINT: &str = "https://fuzz.storegate.test/oauth2/token";
/// The time assertions are checked at: far ahead, so that the seeds (issued at it) mean the
/// same in every run. (`jsonwebtoken` checks `exp` and `nbf` against the real clock, `check`
/// the rest against this.)
const NOW: u64 = super::SEED_TOKEN_IAT;
/// `[private_key_jwt] max_lifetime_secs`.
const MAX_LIFETIME: u64 = 300;
/// The header of the claims-only inputs of mode 3.
const HEADER: &[u8] = br#"{"alg":"ES256","typ":"client-authentication+jwt","kid":"fuzz-es256"}"#;

/// The registered key (and its private half, to sign with) and the subjects certificates are
/// matched against.
struct Fixture {
    signer: EcdsaKeyPair,
    /// The public point, uncompressed.
    public: Vec<u8>,
    keys: Vec<ClientKey>,
    subjects: Vec<Subject>,
}

/// Built once per process. The P-256 key is fixed (an RFC 5915 ECPrivateKey of a constant
/// scalar, as `verify_fixture` makes its Ed25519 key from a constant seed), so that the
/// assertions signed for the corpus verify in every run.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // SEQUENCE { INTEGER 1, OCTET STRING d, [0] { OID prime256v1 } }, d = 01 02 .. 20.
        let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
        der.extend(1..=32u8);
        der.extend([
            0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
        ]);
        let signer = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .expect("the fuzz P-256 key");
        let public = signer.public_key().as_ref().to_vec();
        assert_eq!((public.len(), public[0]), (65, 4), "an uncompressed point");
        let jwks = json!({"keys": [{
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&public[33..]),
            "kid": KID,
            "alg": "ES256",
            "use": "sig",
        }]});
        let keys = assertion::keys::keys_of(&jwks).expect("the fuzz JWKS");
        let subjects = vec![
            Subject::Dn(Dn::parse("CN=erp,O=Example Store,C=DE").expect("the fuzz DN")),
            Subject::Dns("erp.shop.example".into()),
            Subject::Uri("spiffe://shop/erp".into()),
            Subject::Ip(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 7])),
            Subject::Email("ops@shop.example".into()),
        ];
        Fixture {
            signer,
            public,
            keys,
            subjects,
        }
    })
}

pub fn client_auth(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => dn(&String::from_utf8_lossy(rest)),
        1 => forwarded(rest),
        2 => check_assertion(&String::from_utf8_lossy(rest)),
        3 => assertion_parts(rest),
        _ => {
            for s in &fixture().subjects {
                let _ = s.named_by(rest);
            }
        }
    }
}

fn dn(text: &str) {
    if let Ok(dn) = Dn::parse(text) {
        assert_eq!(Dn::parse(text), Ok(dn), "{text:?} read twice");
    }
}

/// Every format over the same header values; what reads is matched against the subjects, as
/// the token endpoint does with a `tls_client_auth` client's certificate.
fn forwarded(rest: &[u8]) {
    let (main, chain) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    for (format, header) in [
        (Format::ClientCert, "client-cert"),
        (Format::Envoy, "x-forwarded-client-cert"),
        (Format::IngressNginx, "ssl-client-cert"),
        (Format::Traefik, "x-forwarded-tls-client-cert"),
    ] {
        let f = Forwarded {
            trusted_peers: Vec::new(),
            format,
        };
        let values = |name: &str| -> std::vec::IntoIter<&[u8]> {
            let part = if name == header {
                Some(main)
            } else if name == "client-cert-chain" {
                chain
            } else {
                None
            };
            part.map(|p| p.split(|&b| b == b'\n').collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
        };
        if let Some(p) = f.presented(values) {
            assert_eq!(
                p.thumbprint(),
                &crate::mtls::thumbprint(p.leaf().as_ref()),
                "{format:?}"
            );
            for s in &fixture().subjects {
                let _ = s.named_by(p.leaf().as_ref());
            }
        }
    }
}

/// Mode 3: the input's header and claims (or claims alone under `HEADER`), signed by the key
/// unless the input gives the signature bytes.
fn assertion_parts(rest: &[u8]) {
    let (input, sig) = super::jws_parts(rest, HEADER);
    let sig = match sig {
        Some(sig) => sig.to_vec(),
        None => sign(input.as_bytes()),
    };
    check_assertion(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)));
}

/// The key's signature of `message`, as a JWS carries it (r || s).
fn sign(message: &[u8]) -> Vec<u8> {
    let sig = (fixture().signer)
        .sign(&SystemRandom::new(), message)
        .expect("signing");
    sig.as_ref().to_vec()
}

/// `named_client` and `check`, with and without the endpoint's URL accepted as `aud`; what
/// passes must be the key's and say what the caller relies on.
fn check_assertion(a: &str) {
    let f = fixture();
    let named = assertion::named_client(a);
    for endpoint_audience in [false, true] {
        let settings = Settings {
            max_lifetime: MAX_LIFETIME,
            endpoint_audience,
            replay_capacity: 16,
            replay_per_client: 4,
        };
        let expected = Expected {
            issuer: ISSUER,
            endpoint: Some(ENDPOINT),
            now: NOW,
        };
        let Ok(checked) = assertion::check(a, CLIENT, &f.keys, &settings, &expected) else {
            continue;
        };
        // A random input never passes: only what the registered key signed.
        let (message, sig) = a.rsplit_once('.').expect("a JWS has three parts");
        let (head, claims) = message.split_once('.').expect("a JWS has three parts");
        let sig = URL_SAFE_NO_PAD.decode(sig).expect("a base64url signature");
        assert!(
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &f.public)
                .verify(message.as_bytes(), &sig)
                .is_ok(),
            "an assertion the key did not sign passed: {a:?}"
        );
        let json = |part: &str| -> Value {
            let bytes = URL_SAFE_NO_PAD.decode(part).expect("a base64url part");
            serde_json::from_slice(&bytes).expect("a JSON part")
        };
        let (head, claims) = (json(head), json(claims));
        assert_eq!(head["alg"], "ES256", "{head}");
        assert!(
            head.get("kid").is_none_or(|k| k == KID),
            "another key's kid: {head}"
        );
        let typ_ok = head.get("typ").is_none_or(|t| {
            let t = t.as_str().expect("a string typ").to_ascii_lowercase();
            let t = t.strip_prefix("application/").unwrap_or(&t);
            t == "client-authentication+jwt" || t == "jwt"
        });
        assert!(typ_ok, "typ: {head}");
        // The token endpoint finds the client by `iss` (read before the check): it must be
        // the client the assertion passed for.
        assert_eq!(named.as_deref(), Some(CLIENT), "iss: {claims}");
        assert_eq!(claims["iss"], CLIENT, "iss: {claims}");
        assert_eq!(claims["sub"], CLIENT, "sub: {claims}");
        let aud = claims["aud"].as_str().expect("one string aud");
        assert!(
            aud == ISSUER || (endpoint_audience && aud == ENDPOINT),
            "aud: {claims}"
        );
        assert_eq!(claims["exp"].as_u64(), Some(checked.exp), "exp: {claims}");
        let iat = claims.get("iat").map(|i| i.as_u64().expect("a number iat"));
        assert!(
            iat.is_none_or(|iat| iat <= NOW + LEEWAY_SECS),
            "iat: {claims}"
        );
        let from = iat.unwrap_or(NOW).min(NOW);
        assert!(
            checked.exp.saturating_sub(from) <= MAX_LIFETIME,
            "lifetime: {claims}"
        );
        assert!(!checked.jti.is_empty(), "jti: {claims}");
        assert_eq!(claims["jti"], checked.jti.as_str(), "jti: {claims}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims a check at `NOW` accepts.
    fn good_claims(jti: &str) -> Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "iat": NOW, "exp": NOW + 60, "jti": jti})
    }

    fn signed(header: &[u8], claims: &Value) -> String {
        let mut input = URL_SAFE_NO_PAD.encode(header);
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut input);
        let sig = sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn an_assertion_the_key_signed_passes_and_a_forged_one_does_not() {
        let f = fixture();
        let settings = Settings {
            max_lifetime: MAX_LIFETIME,
            endpoint_audience: false,
            replay_capacity: 16,
            replay_per_client: 4,
        };
        let expected = Expected {
            issuer: ISSUER,
            endpoint: Some(ENDPOINT),
            now: NOW,
        };
        let a = signed(HEADER, &good_claims("j-1"));
        let checked = assertion::check(&a, CLIENT, &f.keys, &settings, &expected).unwrap();
        assert_eq!((checked.jti.as_str(), checked.exp), ("j-1", NOW + 60));
        assert_eq!(assertion::named_client(&a).as_deref(), Some(CLIENT));
        client_auth(format!("\x02{a}").as_bytes());

        let mut forged = a.clone();
        forged.truncate(a.rfind('.').unwrap() + 1);
        forged.push_str(&URL_SAFE_NO_PAD.encode([7u8; 64]));
        assert!(assertion::check(&forged, CLIENT, &f.keys, &settings, &expected).is_err());
        client_auth(format!("\x02{forged}").as_bytes());

        let mut parts = vec![3u8];
        parts.extend_from_slice(good_claims("j-2").to_string().as_bytes());
        client_auth(&parts);
    }

    /// Writes the seeds of `fuzz/corpus/client_auth/` that need the key or a certificate.
    /// Run by hand: `cargo test --lib fuzzing::client_auth -- --ignored write_seeds`.
    #[test]
    #[ignore = "writes files; run by hand to make the seeds again"]
    fn write_seeds() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/client_auth");
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, mode: u8, body: &[u8]| {
            let mut data = vec![mode];
            data.extend_from_slice(body);
            std::fs::write(dir.join(name), data).unwrap();
        };

        // A certificate naming every fixed subject.
        let mut p = CertificateParams::new(vec!["erp.shop.example".to_owned()]).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "DE");
        p.distinguished_name
            .push(DnType::OrganizationName, "Example Store");
        p.distinguished_name.push(DnType::CommonName, "erp");
        p.subject_alt_names
            .push(SanType::IpAddress("2001:db8::7".parse().unwrap()));
        p.subject_alt_names
            .push(SanType::Rfc822Name("ops@shop.example".try_into().unwrap()));
        p.subject_alt_names
            .push(SanType::URI("spiffe://shop/erp".try_into().unwrap()));
        let cert = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let (der, pem) = (cert.der().to_vec(), cert.pem());
        for s in &fixture().subjects {
            assert!(s.named_by(&der), "{s:?}");
        }
        write("subject_cert_der", 4, &der);

        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let escaped =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let hash: String = crate::mtls::thumbprint(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        write(
            "forwarded_xfcc",
            1,
            format!(
                "By=spiffe://edge;Hash=00;Cert=\"junk\",By=spiffe://gw;Hash={hash};Cert=\"{escaped}\";Subject=\"CN=erp,O=Example Store,C=DE\";URI=spiffe://shop/erp;DNS=erp.shop.example"
            )
            .as_bytes(),
        );
        // RFC 9440: the leaf, then (after 0xFF) a Client-Cert-Chain of two, on two lines.
        let mut client_cert = format!(":{b64}:").into_bytes();
        client_cert.push(0xFF);
        client_cert.extend_from_slice(format!(":{b64}:\n:{b64}:").as_bytes());
        write("forwarded_client_cert_sf_binary", 1, &client_cert);
        write("forwarded_nginx_pem", 1, escaped.as_bytes());
        write("forwarded_traefik", 1, format!("{b64},{b64}").as_bytes());

        write(
            "assertion_signed",
            2,
            signed(HEADER, &good_claims("seed-1")).as_bytes(),
        );
        let mut parts = HEADER.to_vec();
        parts.push(0xFF);
        parts.extend_from_slice(good_claims("seed-2").to_string().as_bytes());
        write("assertion_header_claims", 3, &parts);
        let mut claims = json!({"iss": CLIENT, "sub": CLIENT, "aud": [ISSUER], "exp": NOW + 600, "nbf": 1, "jti": ""});
        write("assertion_claims_refused", 3, claims.to_string().as_bytes());
        claims["aud"] = ENDPOINT.into();
        claims["jti"] = "seed-3".into();
        claims.as_object_mut().unwrap().remove("iat");
        claims["exp"] = (NOW + 30).into();
        write(
            "assertion_claims_endpoint_aud",
            3,
            claims.to_string().as_bytes(),
        );
    }
}
