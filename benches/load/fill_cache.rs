//! Fills a running gateway's verification cache with N distinct tokens, for the memory figure
//! of the load comparison: mints N tokens with the gateway's own signing key (so no token
//! endpoint time is spent) and sends one API request with each, 32 at a time.
//!
//! `fill_cache <https://127.0.0.1:port/path> <pkcs8.pem> <EdDSA|ES256|RS256> <issuer> <api> <n>`
//! prints `fill_cache <ok> ok <failed> failed`. Loopback targets only.

use std::sync::Arc;

use futures_util::StreamExt;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use storegate::clients::{Client, Grant};
use storegate::token::issue::TokenIssuer;
use storegate::token::keys::{KeySet, SigningAlgorithm};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, path, alg, issuer, api, n] = args.as_slice() else {
        anyhow::bail!("usage: fill_cache <url> <pkcs8.pem> <alg> <issuer> <api> <n>");
    };
    let parsed: reqwest::Url = url.parse()?;
    let host = parsed.host_str().unwrap_or("");
    anyhow::ensure!(
        host.starts_with("127.") || host == "localhost" || host == "[::1]",
        "loopback targets only"
    );
    let alg = match alg.as_str() {
        "EdDSA" => SigningAlgorithm::EdDSA,
        "ES256" => SigningAlgorithm::ES256,
        _ => SigningAlgorithm::RS256,
    };
    let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_file(path)? else {
        anyhow::bail!("{path} is not PKCS#8");
    };
    let keys = Arc::new(KeySet::from_pkcs8(alg, der.secret_pkcs8_der(), None, &[])?);
    let tokens = TokenIssuer::new(keys, issuer.clone(), 3600);
    let client = &Client::with_secret("bench", "unused", &[api], &["read"]).expect("a valid id");
    let now = storegate::token::now_unix();
    let n: usize = n.parse()?;
    let http = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()?;
    let results = futures_util::stream::iter(0..n)
        .map(|_| {
            let token = tokens
                .issue(client, Grant::ClientCredentials, "read", now)
                .map(|t| t.access_token);
            let http = http.clone();
            async move {
                let token = token.ok()?;
                let resp = http.get(url).bearer_auth(token).send().await.ok()?;
                resp.status().is_success().then_some(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let ok = results.iter().filter(|r| r.is_some()).count();
    println!("fill_cache {ok} ok {} failed", n - ok);
    Ok(())
}
