//! Micro benches for the token hot paths, each beside a peer measured in the same run:
//!
//! * `issue/*` — a whole token (claims, JWS, signature) vs `raw_sign/*`, the bare signature;
//! * `verify_uncached/*` — header, key, signature and claims vs `raw_verify/*`;
//! * `verify_cached` — digest + cache lookup vs `sha256_token`, the digest alone;
//! * `verify_cached+revocation_check/*` — the same and the revocation check, as the guard does
//!   it, with an empty set and with 11,000 entries; `revocation_check/*` the check alone.
//!
//! Run: `cargo bench --bench tokens`. Figures and ratios are kept in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{self, KeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use storegate::clients::{Client, Clients, Grant};
use storegate::revocation::{Revocation, Revocations};
use storegate::token::cache::TokenCache;
use storegate::token::issue::TokenIssuer;
use storegate::token::keys::{KeySet, SigningAlgorithm};
use storegate::token::verify::{Rules, Verifier};

const ALGS: [(SigningAlgorithm, &rcgen::SignatureAlgorithm); 3] = [
    (SigningAlgorithm::EdDSA, &rcgen::PKCS_ED25519),
    (SigningAlgorithm::ES256, &rcgen::PKCS_ECDSA_P256_SHA256),
    (SigningAlgorithm::RS256, &rcgen::PKCS_RSA_SHA256),
];

struct Setup {
    keys: Arc<KeySet>,
    issuer: TokenIssuer,
    clients: Clients,
    der: Vec<u8>,
}

fn setup(alg: SigningAlgorithm, rc: &'static rcgen::SignatureAlgorithm) -> Setup {
    let key = rcgen::KeyPair::generate_for(rc).unwrap();
    let der = key.serialize_der();
    let keys = Arc::new(KeySet::from_pkcs8(alg, &der, None, &[]).unwrap());
    let issuer = TokenIssuer::new(keys.clone(), "https://bench".into(), 3600);
    let mut clients = Clients::default();
    clients
        .insert(Client::with_secret("bench-client", "s", &["store"], &["read", "write"]).unwrap());
    Setup {
        keys,
        issuer,
        clients,
        der,
    }
}

fn benches(c: &mut Criterion) {
    for (alg, rc) in ALGS {
        let s = setup(alg, rc);
        let client = s.clients.get("bench-client").unwrap();
        let name = alg.jwt_name();
        let now = storegate::token::now_unix();
        let token = s
            .issuer
            .issue(client, Grant::ClientCredentials, "read write", now)
            .unwrap()
            .access_token;
        let signing_input = token.rsplit_once('.').unwrap().0.to_owned();

        c.bench_function(&format!("issue/{name}"), |b| {
            b.iter(|| {
                s.issuer
                    .issue(client, Grant::ClientCredentials, "read write", now)
            })
        });
        c.bench_function(&format!("raw_sign/{name}"), |b| {
            b.iter(|| s.keys.signer.sign(signing_input.as_bytes()))
        });

        let rules = Rules {
            issuer: "https://bench",
            leeway_secs: 30,
            max_age_secs: 86_400,
        };
        let verifier = Verifier::new(s.keys.clone(), rules, 1);
        let no_cache = TokenCache::new(0, Duration::from_secs(300));
        c.bench_function(&format!("verify_uncached/{name}"), |b| {
            b.iter(|| verifier.verify_uncached(&token, &no_cache).unwrap())
        });
        let sig = s.keys.signer.sign(signing_input.as_bytes()).unwrap();
        let (public, algo): (Vec<u8>, &dyn signature::VerificationAlgorithm) = match alg {
            SigningAlgorithm::EdDSA => {
                let k = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&s.der).unwrap();
                (k.public_key().as_ref().to_vec(), &signature::ED25519)
            }
            SigningAlgorithm::ES256 => {
                let k = signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &s.der,
                )
                .unwrap();
                (
                    k.public_key().as_ref().to_vec(),
                    &signature::ECDSA_P256_SHA256_FIXED,
                )
            }
            SigningAlgorithm::RS256 => {
                let k = signature::RsaKeyPair::from_pkcs8(&s.der).unwrap();
                (
                    k.public_key().as_ref().to_vec(),
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                )
            }
        };
        let parsed = signature::ParsedPublicKey::new(algo, &public).unwrap();
        c.bench_function(&format!("raw_verify_parsed/{name}"), |b| {
            b.iter(|| parsed.verify_sig(signing_input.as_bytes(), &sig).unwrap())
        });
        let pk = signature::UnparsedPublicKey::new(algo, public);
        c.bench_function(&format!("raw_verify/{name}"), |b| {
            b.iter(|| pk.verify(signing_input.as_bytes(), &sig).unwrap())
        });

        if alg == SigningAlgorithm::EdDSA {
            let cache = TokenCache::new(100_000, Duration::from_secs(300));
            verifier.verify(&token, &s.clients, &cache).unwrap();
            c.bench_function("verify_cached", |b| {
                b.iter(|| verifier.verify(&token, &s.clients, &cache).unwrap())
            });
            c.bench_function("sha256_token", |b| {
                b.iter(|| storegate::token::cache::digest(&token))
            });
            // What the guard does per cached request since the revocation issue: the cached
            // verification, then the revocation check (`guard::verified`).
            let now = storegate::token::now_unix();
            let empty = Revocations::open(None, now).unwrap();
            c.bench_function("verify_cached+revocation_check/empty", |b| {
                b.iter(|| {
                    let v = verifier.verify(&token, &s.clients, &cache).unwrap();
                    assert!(!empty.is_revoked(&v.signed));
                })
            });
            let full = populated_revocations(now);
            c.bench_function("verify_cached+revocation_check/11k_entries", |b| {
                b.iter(|| {
                    let v = verifier.verify(&token, &s.clients, &cache).unwrap();
                    assert!(!full.is_revoked(&v.signed));
                })
            });
            let v = verifier.verify(&token, &s.clients, &cache).unwrap();
            c.bench_function("revocation_check/11k_entries", |b| {
                b.iter(|| full.is_revoked(&v.signed))
            });
        }
    }
}

/// 10,000 revoked jtis and 1,000 clients' "issued before" instants, none of them the benched
/// token's (its client, "bench-client", has none).
fn populated_revocations(now: u64) -> Revocations {
    let r = Revocations::open(None, now).unwrap();
    let mut entries: Vec<Revocation> = (0..10_000)
        .map(|i| Revocation::Token {
            jti: format!("revoked-jti-{i:05}-aaaaaaaaaa"),
            client: "bench-client".into(),
            until: now + 3600,
        })
        .collect();
    entries.extend((0..1_000).map(|i| Revocation::Client {
        client: format!("client-{i}"),
        issued_before: now,
        until: now + 3600,
    }));
    r.add(&entries, now).unwrap();
    r
}

criterion_group! {
    name = tokens;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(tokens);
