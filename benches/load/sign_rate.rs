//! The raw in-process signing rate of a key, on one thread, for the load comparison: the peer
//! the token endpoint's tokens/s is quoted against.
//!
//! `sign_rate <pkcs8.pem> <EdDSA|ES256|RS256> <seconds>` prints `sign_rate <n>/s (<count>
//! signatures)`.

use std::time::{Duration, Instant};

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use storegate::token::keys::{KeySet, SigningAlgorithm};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, alg, secs] = args.as_slice() else {
        anyhow::bail!("usage: sign_rate <pkcs8.pem> <EdDSA|ES256|RS256> <seconds>");
    };
    let alg = match alg.as_str() {
        "EdDSA" => SigningAlgorithm::EdDSA,
        "ES256" => SigningAlgorithm::ES256,
        "RS256" => SigningAlgorithm::RS256,
        other => anyhow::bail!("unknown algorithm {other}"),
    };
    let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_file(path)? else {
        anyhow::bail!("{path} is not PKCS#8");
    };
    let keys = KeySet::from_pkcs8(alg, der.secret_pkcs8_der(), None, &[])?;
    // A signing input the size of a real token's header and claims.
    let input = "e".repeat(330);
    let deadline = Duration::from_secs(secs.parse()?);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < deadline {
        for _ in 0..16 {
            std::hint::black_box(
                keys.signer
                    .sign(input.as_bytes())
                    .map_err(|_| anyhow::anyhow!("signing failed"))?,
            );
        }
        n += 16;
    }
    println!(
        "sign_rate {:.0}/s ({n} signatures)",
        n as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
