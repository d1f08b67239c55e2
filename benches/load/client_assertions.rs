//! Client assertions (private_key_jwt, RFC 7523) for the token endpoint's load comparison
//! (benches/load/client_auth.sh): a client's assertions pre-signed in a batch, each with its
//! own `jti`, so that wrk can send every token request with a fresh one
//! (benches/load/client_assertions.lua).
//!
//! `client_assertions jwks <pkcs8.pem> <kid>` prints the public JWKS of the (P-256) key.
//! `client_assertions sign <pkcs8.pem> <kid> <client_id> <aud> <n> <out>` writes `n` ES256
//! assertions, one a line, issued now and valid for 300 s, signed on every core.

use std::io::Write as _;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let key = |path: &str| -> anyhow::Result<EncodingKey> {
        Ok(EncodingKey::from_ec_pem(&std::fs::read(path)?)?)
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["jwks", pem, kid] => {
            let mut jwk =
                serde_json::to_value(Jwk::from_encoding_key(&key(pem)?, Algorithm::ES256)?)?;
            jwk["kid"] = (*kid).into();
            println!("{}", json!({ "keys": [jwk] }));
            Ok(())
        }
        ["sign", pem, kid, client, aud, n, out] => {
            let (key, n): (EncodingKey, usize) = (key(pem)?, n.parse()?);
            let now = storegate::token::now_unix();
            let mut header = Header::new(Algorithm::ES256);
            header.typ = Some("client-authentication+jwt".into());
            header.kid = Some((*kid).to_owned());
            let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
            let per = n.div_ceil(threads);
            let lines: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (key, header) = (&key, &header);
                        s.spawn(move || {
                            let mut out = String::new();
                            for i in (t * per)..((t + 1) * per).min(n) {
                                let claims = json!({"iss": client, "sub": client, "aud": aud,
                                    "iat": now, "exp": now + 300, "jti": format!("{now}-{i:09}")});
                                out.push_str(&jsonwebtoken::encode(header, &claims, key).unwrap());
                                out.push('\n');
                            }
                            out
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
            for chunk in lines {
                f.write_all(chunk.as_bytes())?;
            }
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: client_assertions jwks <pkcs8.pem> <kid> | sign <pkcs8.pem> <kid> <client_id> <aud> <n> <out>"
        ),
    }
}
