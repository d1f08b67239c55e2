//! Micro benches for DPoP proof verification (issue 20), per algorithm, each beside its peer
//! measured in the same run:
//!
//! * `dpop/proof_check/*` — `dpop::proof::check` of one proof (header, `jwk` → key, signature,
//!   claims, `htu` normalization, `ath`, the key's thumbprint), as the guard calls it for a
//!   request carrying a DPoP-bound token; the replay store (`dpop::replay`) is not in it;
//! * `dpop/raw_verify/*` — the bare aws-lc-rs signature verification of the same proof's
//!   signing input, the public key parsed on each call as `check` must (the key comes in the
//!   proof); `dpop/raw_verify_parsed/*` the same with the key parsed once.
//!
//! So "proof check = signature + X µs", X = `proof_check` − `raw_verify`. Keys are generated
//! with aws-lc-rs: P-256 (ES256), Ed25519 (EdDSA), RSA 2048 (RS256 and PS256); proofs are made
//! as a client library makes them (`typ` dpop+jwt, the public `jwk` in the header; `jti`,
//! `htm`, `htu`, `iat`, `ath` in the claims) with jsonwebtoken.
//!
//! Run: `cargo bench --bench dpop`. Figures are kept in BENCHMARKS.md.

use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use storegate::dpop::proof::{self, For, Rules};

const ALGS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];
const HTU: &str = "https://api.shop.example/api/products";
/// An access token of a real token's length (its content does not matter to `check`).
const TOKEN: &str = concat!(
    "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImJlbmNoIn0.",
    "eyJpc3MiOiJodHRwczovL2JlbmNoLmxvY2FsIiwic3ViIjoiYmVuY2giLCJhdWQiOiJzdG9yZSIsImNsaWVudF9pZCI6ImJl",
    "bmNoIiwic2NvcGUiOiJyZWFkIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDAsImp0aSI6IjAxMjM0NTY3ODkw",
    "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMiIsImNuZiI6eyJqa3QiOiIwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIz",
    "NDU2Nzg5MCJ9fQ.",
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl"
);

/// A client's key: what signs its proofs, its public JWK, and the raw public key and
/// verification algorithm for the `raw_verify` peer.
struct ClientKey {
    encoding: EncodingKey,
    jwk: Jwk,
    public: Vec<u8>,
    verify: &'static dyn signature::VerificationAlgorithm,
}

fn client_key(alg: Algorithm) -> ClientKey {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let (encoding, public, verify): (_, _, &'static dyn signature::VerificationAlgorithm) =
        match alg {
            Algorithm::ES256 => {
                let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &rng,
                )
                .unwrap();
                let pair = signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8.as_ref(),
                )
                .unwrap();
                (
                    EncodingKey::from_ec_der(pkcs8.as_ref()),
                    pair.public_key().as_ref().to_vec(),
                    &signature::ECDSA_P256_SHA256_FIXED,
                )
            }
            Algorithm::EdDSA => {
                // PKCS#8 v1 (the private key alone): what `Jwk::from_encoding_key` reads.
                let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8v1(&rng).unwrap();
                let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                (
                    EncodingKey::from_ed_der(pkcs8.as_ref()),
                    pair.public_key().as_ref().to_vec(),
                    &signature::ED25519,
                )
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = signature::RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                // aws-lc-rs writes PKCS#8; jsonwebtoken's RSA signer takes PKCS#1, which its
                // PEM reader takes out of a PKCS#8 document.
                let pkcs8: Pkcs8V1Der = pair.as_der().unwrap();
                let pem = pem_private_key(pkcs8.as_ref());
                let verify: &'static dyn signature::VerificationAlgorithm =
                    if alg == Algorithm::RS256 {
                        &signature::RSA_PKCS1_2048_8192_SHA256
                    } else {
                        &signature::RSA_PSS_2048_8192_SHA256
                    };
                (
                    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
                    // PKCS#1 RSAPublicKey, what `UnparsedPublicKey` takes for RSA.
                    pair.public_key().as_ref().to_vec(),
                    verify,
                )
            }
            _ => unreachable!("not benched"),
        };
    let jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
    ClientKey {
        encoding,
        jwk,
        public,
        verify,
    }
}

fn pem_private_key(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// A proof for `GET HTU` with `TOKEN`, issued at `now`.
fn proof(alg: Algorithm, key: &ClientKey, now: u64) -> String {
    let mut header = Header::new(alg);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(key.jwk.clone());
    let claims = serde_json::json!({
        "jti": "2bkDR0cQoQ7yVmnPx1AHvA",
        "htm": "GET",
        "htu": HTU,
        "iat": now,
        "ath": proof::ath(TOKEN),
    });
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn benches(c: &mut Criterion) {
    let rules = Rules {
        algs: ALGS.to_vec(),
        iat_window: 60,
    };
    for alg in ALGS {
        let name = format!("{alg:?}");
        let key = client_key(alg);
        let now = storegate::token::now_unix();
        let proof = proof(alg, &key, now);
        let asked = For {
            method: "GET",
            htu: HTU,
            access_token: Some(TOKEN),
            now,
        };
        // What is benched must pass.
        proof::check(&proof, &rules, &asked).unwrap();
        c.bench_function(&format!("dpop/proof_check/{name}"), |b| {
            b.iter(|| proof::check(&proof, &rules, &asked).unwrap())
        });

        let (signing_input, sig) = proof.rsplit_once('.').unwrap();
        let sig = B64.decode(sig).unwrap();
        let pk = signature::UnparsedPublicKey::new(key.verify, key.public.as_slice());
        pk.verify(signing_input.as_bytes(), &sig).unwrap();
        c.bench_function(&format!("dpop/raw_verify/{name}"), |b| {
            b.iter(|| pk.verify(signing_input.as_bytes(), &sig).unwrap())
        });
        let parsed = signature::ParsedPublicKey::new(key.verify, &key.public).unwrap();
        c.bench_function(&format!("dpop/raw_verify_parsed/{name}"), |b| {
            b.iter(|| parsed.verify_sig(signing_input.as_bytes(), &sig).unwrap())
        });
    }
}

/// `dpop/replay_record/<held>`: recording one new proof in a replay store already holding
/// `held` live proofs (a replica taking 10,000 DPoP requests a second holds ~1.2 million with
/// the default ±60 s window).
fn replay(c: &mut Criterion) {
    use storegate::dpop::replay::{Bounds, ReplayStore};
    for held in [10_000usize, 1_000_000] {
        // Bounds no run reaches: every recorded proof stays for the whole bench.
        let store = ReplayStore::new(Bounds {
            total: usize::MAX,
            per_key: usize::MAX,
            keep: Duration::from_secs(121),
        });
        let key = "x".repeat(43);
        for i in 0..held {
            store
                .record(&key, (&key, &i.to_string(), "GET", HTU))
                .unwrap();
        }
        let mut n = held;
        let mut group = c.benchmark_group("dpop/replay_record");
        // Short: each iteration leaves a proof behind (~100 bytes).
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(20);
        group.bench_function(format!("{held}"), |b| {
            b.iter(|| {
                n += 1;
                store
                    .record(&key, (&key, &n.to_string(), "GET", HTU))
                    .unwrap()
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = dpop;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches, replay
}
criterion_main!(dpop);
