//! Holds N idle keep-alive TLS connections open to a proxy, for the many-connections figure of
//! the load comparison (`benches/load/idle.sh`): each connection is opened (ALPN `http/1.1` or
//! `h2`), sends one GET and reads its answer, and is then left idle, as a caller's kept
//! connection between its requests. Prints `ready <ok> <failed>` once every connection has
//! answered, then holds them until its standard input closes.
//!
//! `idle_conns <127.0.0.1:port> <cert.pem> <h1|h2> <n> <path> [token]`. Loopback targets only.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A connection held open: what keeps it alive on the client's side.
enum Held {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// The load comparison's certificate is self-signed with `CA:TRUE`, which webpki refuses as a
/// server's: this holder accepts exactly that certificate (and checks the handshake's
/// signature with it), nothing else.
#[derive(Debug)]
struct Pinned(CertificateDer<'static>, Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.1.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.1.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (addr, ca, proto, n, path, token) = match args.as_slice() {
        [_, a, c, p, n, path] => (a, c, p, n, path, None),
        [_, a, c, p, n, path, t] => (a, c, p, n, path, Some(t.clone())),
        _ => anyhow::bail!(
            "usage: idle_conns <127.0.0.1:port> <cert.pem> <h1|h2> <n> <path> [token]"
        ),
    };
    let addr: SocketAddr = addr.parse()?;
    anyhow::ensure!(addr.ip().is_loopback(), "loopback targets only");
    let n: usize = n.parse()?;
    let h2 = proto == "h2";
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let pinned = CertificateDer::from_pem_file(ca)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(pinned, provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let open = |_| {
        let (connector, token, path) = (connector.clone(), token.clone(), path.clone());
        async move {
            let tcp = TcpStream::connect(addr).await?;
            let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
            let io = TokioIo::new(connector.connect(name, tcp).await?);
            // HTTP/2 names the target in `:scheme`/`:authority`; HTTP/1.1 as every client does,
            // in origin form with `Host`.
            let target = if h2 {
                format!("https://{addr}{path}")
            } else {
                path.clone()
            };
            let mut req = hyper::Request::get(target);
            if let Some(t) = &token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            if h2 {
                let (mut send, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(conn);
                let resp = send.send_request(req.body(Empty::new())?).await?;
                resp.into_body().collect().await?;
                anyhow::Ok(Held::H2(send))
            } else {
                let (mut send, conn) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(conn);
                let req = req.header("host", addr.to_string()).body(Empty::new())?;
                let resp = send.send_request(req).await?;
                anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
                resp.into_body().collect().await?;
                anyhow::Ok(Held::H1(send))
            }
        }
    };
    let results: Vec<_> = futures_util::stream::iter(0..n)
        .map(open)
        .buffer_unordered(64)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("idle_conns: first failure: {e:#}");
    }
    println!("ready {} {failed}", n - failed);
    // Held until the caller closes our standard input.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    let open = results
        .iter()
        .filter(|r| match r {
            Ok(Held::H1(s)) => !s.is_closed(),
            Ok(Held::H2(s)) => !s.is_closed(),
            Err(_) => false,
        })
        .count();
    println!("still open {open}");
    Ok(())
}
