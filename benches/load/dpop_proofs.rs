//! DPoP proofs (RFC 9449) for the load comparison's DPoP row (benches/load/compare.sh): a
//! client's proofs pre-signed in a batch, each with its own `jti`, so that wrk can send every
//! request with a fresh one (benches/load/dpop_proofs.lua); and the rate of a proof check and
//! of its bare signature verification on one core, the peers the row's extra cost per request
//! is quoted against.
//!
//! `dpop_proofs sign <pkcs8.pem> <ES256|EdDSA> <htm> <htu> <token|-> <n> <out|->` writes `n`
//! proofs, one a line, issued now (`iat`), with `ath` of `token` unless it is `-`, signed on
//! every core. `htu` is written as given: the public origin and the path, no query.
//!
//! `dpop_proofs rate <pkcs8.pem> <ES256|EdDSA> <seconds>` prints
//! `dpop_rate check <n>/s verify <m>/s`: `storegate::dpop::proof::check` of one proof for a
//! GET with a token, then the aws-lc-rs verification of its signature alone (the public key
//! parsed on each call, as a check must: the key comes in the proof), on one thread, half the
//! time each.

use std::io::Write as _;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::Algorithm;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use storegate::dpop::proof;

enum Key {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Key {
    fn load(path: &str, alg: &str) -> anyhow::Result<Key> {
        let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_file(path)? else {
            anyhow::bail!("{path} is not PKCS#8");
        };
        let der = der.secret_pkcs8_der();
        let bad = |_| anyhow::anyhow!("{path} is not an {alg} key");
        Ok(match alg {
            "ES256" => Key::Es256(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(bad)?,
            ),
            "EdDSA" => Key::EdDsa(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(bad)?),
            other => anyhow::bail!("unknown algorithm {other} (ES256 or EdDSA)"),
        })
    }

    fn alg(&self) -> Algorithm {
        match self {
            Key::Es256(_) => Algorithm::ES256,
            Key::EdDsa(_) => Algorithm::EdDSA,
        }
    }

    /// The proof header, base64url: `typ`, `alg` and the public key as a JWK.
    fn header(&self) -> String {
        let jwk = match self {
            Key::Es256(k) => {
                // The uncompressed point: 0x04, x, y.
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
            }
            Key::EdDsa(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.public_key().as_ref())})
            }
        };
        let alg = format!("{:?}", self.alg());
        B64.encode(json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk}).to_string())
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Key::Es256(k) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                k.sign(&rng, input)
                    .expect("ES256 signing")
                    .as_ref()
                    .to_vec()
            }
            Key::EdDsa(k) => k.sign(input).as_ref().to_vec(),
        }
    }

    /// The public key and algorithm a verifier uses.
    fn public(&self) -> (Vec<u8>, &'static dyn signature::VerificationAlgorithm) {
        match self {
            Key::Es256(k) => (
                k.public_key().as_ref().to_vec(),
                &signature::ECDSA_P256_SHA256_FIXED,
            ),
            Key::EdDsa(k) => (k.public_key().as_ref().to_vec(), &signature::ED25519),
        }
    }
}

/// What every proof of a batch names.
struct Request<'a> {
    htm: &'a str,
    htu: &'a str,
    /// `ath`, when a token comes with the proofs.
    ath: Option<String>,
    iat: u64,
}

/// One proof with `jti`.
fn proof_for(key: &Key, header: &str, req: &Request<'_>, jti: &str) -> String {
    let mut claims = json!({"jti": jti, "htm": req.htm, "htu": req.htu, "iat": req.iat});
    if let Some(ath) = &req.ath {
        claims["ath"] = ath.as_str().into();
    }
    let input = format!("{header}.{}", B64.encode(claims.to_string()));
    let sig = B64.encode(key.sign(input.as_bytes()));
    format!("{input}.{sig}")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("sign") => {
            let [_, _, path, alg, htm, htu, token, n, out] = args.as_slice() else {
                anyhow::bail!(
                    "usage: dpop_proofs sign <pkcs8.pem> <ES256|EdDSA> <htm> <htu> <token|-> <n> <out|->"
                );
            };
            let key = Key::load(path, alg)?;
            let req = Request {
                htm,
                htu,
                ath: (token != "-").then(|| proof::ath(token)),
                iat: storegate::token::now_unix(),
            };
            sign(&key, &req, n.parse()?, out)
        }
        Some("rate") => {
            let [_, _, path, alg, secs] = args.as_slice() else {
                anyhow::bail!("usage: dpop_proofs rate <pkcs8.pem> <ES256|EdDSA> <seconds>");
            };
            rate(
                &Key::load(path, alg)?,
                Duration::from_secs_f64(secs.parse()?),
            )
        }
        _ => anyhow::bail!("usage: dpop_proofs sign … | dpop_proofs rate … (see the source)"),
    }
}

/// `n` proofs, one a line, signed on every core; `jti`s unique across runs (a random prefix
/// per run, and the proof's number).
fn sign(key: &Key, req: &Request<'_>, n: usize, out: &str) -> anyhow::Result<()> {
    let header = key.header();
    let mut run = [0u8; 9];
    aws_lc_rs::rand::fill(&mut run).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let run = B64.encode(run);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = n.div_ceil(threads);
    let chunks: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (header, run) = (&header, &run);
                s.spawn(move || {
                    let mut text = String::new();
                    for i in (t * per)..((t + 1) * per).min(n) {
                        text.push_str(&proof_for(key, header, req, &format!("{run}-{i}")));
                        text.push('\n');
                    }
                    text
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a signing thread"))
            .collect()
    });
    let mut w: Box<dyn std::io::Write> = if out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(std::fs::File::create(out)?))
    };
    for chunk in &chunks {
        w.write_all(chunk.as_bytes())?;
    }
    w.flush()?;
    Ok(())
}

/// Proof checks and bare signature verifications per second, on this thread.
fn rate(key: &Key, time: Duration) -> anyhow::Result<()> {
    let htu = "https://127.0.0.1:19450/api/products";
    let token = "a-token";
    let now = storegate::token::now_unix();
    let req = Request {
        htm: "GET",
        htu,
        ath: Some(proof::ath(token)),
        iat: now,
    };
    let p = proof_for(key, &key.header(), &req, "rate-1");
    let rules = proof::Rules {
        algs: vec![key.alg()],
        iat_window: 60,
    };
    let asked = proof::For {
        method: "GET",
        htu,
        access_token: Some(token),
        now,
    };
    proof::check(&p, &rules, &asked).map_err(|e| anyhow::anyhow!("the proof fails: {e}"))?;
    let check = per_sec(time / 2, || {
        std::hint::black_box(proof::check(&p, &rules, &asked).is_ok());
    });
    let (input, sig) = p.rsplit_once('.').expect("a JWS");
    let sig = B64.decode(sig)?;
    let (public, alg) = key.public();
    let verify = per_sec(time / 2, || {
        let pk = signature::UnparsedPublicKey::new(alg, &public);
        std::hint::black_box(pk.verify(input.as_bytes(), &sig).is_ok());
    });
    println!("dpop_rate check {check:.0}/s verify {verify:.0}/s");
    Ok(())
}

fn per_sec(time: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}
