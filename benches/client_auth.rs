//! Micro benches for client authentication (issue 21), each beside its peer in the same run:
//!
//! * `tls/handshake/*` — a whole TLS 1.3 handshake in memory (rustls on aws-lc-rs, P-256
//!   server certificate, no resumption): `no_client_auth` (the listener as before), `optional`
//!   (`client_auth = "optional"`: the caller presents a certificate; only its key is proven),
//!   `required` (`client_auth = "required"` without self-signed clients: the chain is also
//!   verified in the handshake). The client certificate is P-256, issued by a CA.
//! * `tls_client_auth/verify_chain` and `/subject_dn` — what a `tls_client_auth` token request
//!   adds: `ClientCas::verify` of the presented chain, then the subject DN match.
//! * `private_key_jwt/check/*` — `assertion::check` of one assertion (header, key by `kid`,
//!   signature, claims), beside `secret/check`, the SHA-256 and constant-time compare a
//!   `client_secret_*` request costs, and `private_key_jwt/replay_record`, its `jti` store.
//!
//! Run: `cargo bench --bench client_auth`. Figures are kept in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use storegate::assertion::{self, Expected, Settings};
use storegate::clients::Client;
use storegate::mtls::dn::Dn;
use storegate::mtls::handshake::Handshake;
use storegate::mtls::subject::Subject;
use storegate::mtls::{ClientCas, Presented};

struct Pki {
    server_ca: String,
    server: (Vec<CertificateDer<'static>>, String),
    client_ca_pem: String,
    client: (Vec<CertificateDer<'static>>, String),
}

fn pki() -> Pki {
    let dev = storegate::tls::DevPki::generate(&["localhost"]).unwrap();
    let server_chain = CertificateDer::pem_slice_iter(dev.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "client CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name = DistinguishedName::new();
    for (ty, v) in [
        (DnType::CountryName, "DE"),
        (DnType::OrganizationName, "Example Store"),
        (DnType::OrganizationalUnitName, "b2b"),
        (DnType::CommonName, "erp"),
    ] {
        leaf.distinguished_name.push(ty, v);
    }
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    Pki {
        server_ca: dev.ca_pem,
        server: (server_chain, dev.key_pem),
        client_ca_pem: ca.pem(),
        client: (vec![cert.der().clone()], key.serialize_pem()),
    }
}

fn client_cas(pki: &Pki, dir: &tempfile::TempDir) -> Arc<ClientCas> {
    let path = dir.path().join("client-ca.pem");
    std::fs::write(&path, &pki.client_ca_pem).unwrap();
    Arc::new(ClientCas::load(&path, None).unwrap())
}

fn server(pki: &Pki, verifier: Option<Handshake>) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap();
    let verifier =
        verifier.map(|v| Arc::new(v) as Arc<dyn rustls::server::danger::ClientCertVerifier>);
    storegate::tls::server_config(pki.server.0.clone(), key, verifier).unwrap()
}

fn client(pki: &Pki, with_cert: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.server_ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = if with_cert {
        let key = PrivateKeyDer::from_pem_slice(pki.client.1.as_bytes()).unwrap();
        builder
            .with_client_auth_cert(pki.client.0.clone(), key)
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// One full handshake in memory; panics if it fails.
fn handshake(server_cfg: &Arc<ServerConfig>, client_cfg: &Arc<ClientConfig>) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(client_cfg.clone(), name).unwrap();
    let mut s = ServerConnection::new(server_cfg.clone()).unwrap();
    let mut buf = Vec::with_capacity(8192);
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets().unwrap();
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets().unwrap();
    }
}

fn tls_benches(c: &mut Criterion) {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let cas = client_cas(&pki, &dir);
    let cases = [
        ("no_client_auth", server(&pki, None), client(&pki, false)),
        (
            "optional",
            server(&pki, Some(Handshake::new(Some(cas.clone()), false, true))),
            client(&pki, true),
        ),
        (
            "required",
            server(&pki, Some(Handshake::new(Some(cas.clone()), true, false))),
            client(&pki, true),
        ),
    ];
    for (name, s, cl) in &cases {
        handshake(s, cl);
        c.bench_function(&format!("tls/handshake/{name}"), |b| {
            b.iter(|| handshake(s, cl))
        });
    }
    let presented = Presented::new(pki.client.0.clone()).unwrap();
    assert!(cas.verify(&presented).is_ok());
    c.bench_function("tls_client_auth/verify_chain", |b| {
        b.iter(|| cas.verify(&presented))
    });
    let subject = Subject::Dn(Dn::parse("CN=erp,OU=b2b,O=Example Store,C=DE").unwrap());
    assert!(subject.named_by(presented.leaf()));
    c.bench_function("tls_client_auth/subject_dn", |b| {
        b.iter(|| subject.named_by(presented.leaf()))
    });
}

fn assertion_benches(c: &mut Criterion) {
    let pem = KeyPair::generate().unwrap().serialize_pem();
    let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap()).unwrap();
    jwk["kid"] = "k1".into();
    let keys = assertion::keys::keys_of(&json!({ "keys": [jwk] })).unwrap();
    let settings = Settings {
        max_lifetime: 300,
        endpoint_audience: false,
        replay_capacity: 1_000_000,
        replay_per_client: 1_000_000,
    };
    let now = storegate::token::now_unix();
    let issuer = "https://api.shop.example";
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("client-authentication+jwt".into());
    header.kid = Some("k1".into());
    let claims = json!({"iss": "erp", "sub": "erp", "aud": issuer, "exp": now + 60, "iat": now, "jti": "0123456789abcdef0123456789abcdef"});
    let a = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let expected = Expected {
        issuer,
        endpoint: None,
        now,
    };
    assert!(assertion::check(&a, "erp", &keys, &settings, &expected).is_ok());
    c.bench_function("private_key_jwt/check/ES256", |b| {
        b.iter(|| assertion::check(&a, "erp", &keys, &settings, &expected))
    });
    let cluster = storegate::dpop::cluster::ClusterReplay::new(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A store per batch, sized for it (a store fails closed when full); its making is not timed.
    c.bench_function("private_key_jwt/replay_record", |b| {
        b.iter_custom(|iters| {
            let sized = Settings {
                replay_capacity: iters as usize + 1,
                replay_per_client: iters as usize + 1,
                ..settings.clone()
            };
            let store = assertion::replay::AssertionReplay::new(&sized);
            let jtis: Vec<assertion::Checked> = (0..iters)
                .map(|n| assertion::Checked {
                    jti: format!("jti-{n:012}"),
                    exp: now + 60,
                })
                .collect();
            let start = std::time::Instant::now();
            for checked in &jtis {
                let once = store.once(
                    "erp",
                    checked,
                    &cluster,
                    (Duration::from_millis(5), false),
                    now,
                );
                rt.block_on(once).unwrap();
            }
            start.elapsed()
        })
    });
    let client = Client::with_secret(
        "erp",
        "0123456789abcdef0123456789abcdef0123456789a",
        &["store"],
        &["read"],
    )
    .unwrap();
    c.bench_function("secret/check", |b| {
        b.iter(|| client.secret_matches("0123456789abcdef0123456789abcdef0123456789a"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = tls_benches, assertion_benches
}
criterion_main!(benches);
