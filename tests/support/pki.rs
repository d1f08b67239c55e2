//! Client certificates for the mutual-TLS tests (RFC 8705), made by rcgen: CAs, certificates
//! they issue (by subject, SANs, validity), self-signed ones, and CRLs.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A CA for client certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

/// A certificate and its key.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    pub serial: u64,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = issuer.pem();
        Ca { issuer, pem }
    }

    /// A client certificate with `dn` (most significant first, as in `C`, `O`, `CN`) and
    /// `sans`, valid from an hour ago for a day.
    pub fn issue(&self, serial: u64, dn: &[(DnType, &str)], sans: Vec<SanType>) -> Identity {
        let now = OffsetDateTime::now_utc();
        self.issue_valid(
            serial,
            dn,
            sans,
            (now - Duration::hours(1), now + Duration::days(1)),
        )
    }

    pub fn issue_valid(
        &self,
        serial: u64,
        dn: &[(DnType, &str)],
        sans: Vec<SanType>,
        (not_before, not_after): (OffsetDateTime, OffsetDateTime),
    ) -> Identity {
        let mut params = client_params(dn, sans);
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(params, serial)
    }

    /// A certificate made of `params` with `serial`, signed by this CA with a fresh key.
    fn sign(&self, mut params: CertificateParams, serial: u64) -> Identity {
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            serial,
        }
    }

    /// A server certificate for `sans` (an upstream's), valid from an hour ago for a day.
    pub fn issue_server(&self, serial: u64, sans: Vec<SanType>) -> Identity {
        let mut params = client_params(&[(DnType::CommonName, "upstream")], sans);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = (now - Duration::hours(1), now + Duration::days(1));
        self.sign(params, serial)
    }

    /// A CRL revoking `serials`.
    pub fn crl(&self, serials: &[u64]) -> String {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from(serials.len() as u64 + 1),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - Duration::minutes(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }
}

fn client_params(dn: &[(DnType, &str)], sans: Vec<SanType>) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    for (ty, v) in dn {
        params.distinguished_name.push(ty.clone(), *v);
    }
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// A self-signed client certificate.
pub fn self_signed(cn: &str) -> Identity {
    let params = client_params(&[(DnType::CommonName, cn)], Vec::new());
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        serial: 0,
    }
}

/// The DN of the `erp` client the tests register: `CN=erp,OU=b2b,O=Example Store,C=DE`.
pub const ERP_DN: [(DnType, &str); 4] = [
    (DnType::CountryName, "DE"),
    (DnType::OrganizationName, "Example Store"),
    (DnType::OrganizationalUnitName, "b2b"),
    (DnType::CommonName, "erp"),
];

impl Identity {
    /// For reqwest: the certificate and its key in one PEM.
    pub fn reqwest(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert_pem, self.key_pem).as_bytes())
            .unwrap()
    }

    /// `cnf.x5t#S256` of this certificate.
    pub fn x5t(&self) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
    }

    /// A JWKS registering this certificate (`x5c`, RFC 7517 §4.7).
    pub fn jwks(&self) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x5c": [b64]}]})
    }
}

/// A reqwest client trusting `ca_pem` for the gateway, presenting `id` when given.
pub fn client_with(ca_pem: &str, id: Option<&Identity>, http2: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(std::time::Duration::from_secs(30));
    if let Some(id) = id {
        b = b.identity(id.reqwest());
    }
    let b = if http2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    };
    b.build().unwrap()
}

/// The test PKI: the client CA, the erp client's certificate, the kiosk's self-signed one.
pub struct Pki {
    pub ca: Ca,
    pub erp: Identity,
    pub kiosk: Identity,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = Ca::new("Example Store client CA");
        let erp = ca.issue(10, &ERP_DN, Vec::new());
        Pki {
            ca,
            erp,
            kiosk: self_signed("kiosk"),
        }
    }
}

/// The test config asking for client certificates (`client_auth`), trusting client-ca.pem
/// with client-crl.pem, with the erp client (tls_client_auth by DN, bound tokens), the kiosk
/// (self-signed from kiosk.jwks, bound, may introspect), and introspection at
/// /oauth2/introspect; then `edit`.
pub fn mtls_toml(
    up: std::net::SocketAddr,
    client_auth: &str,
    edit: impl FnOnce(&mut toml::Table),
) -> String {
    super::config_with(up, |t| {
        let tls = t["tls"].as_table_mut().unwrap();
        tls.insert("client_ca".into(), "client-ca.pem".into());
        tls.insert("client_crl".into(), "client-crl.pem".into());
        tls.insert("client_auth".into(), client_auth.into());
        let kiosk: toml::Value = toml::from_str(
            r#"
id = "kiosk"
apis = ["backoffice"]
scopes = ["read"]
token_endpoint_auth_method = "self_signed_tls_client_auth"
jwks_file = "kiosk.jwks"
tls_client_certificate_bound_access_tokens = true
introspect = true
"#,
        )
        .unwrap();
        super::clients_of(t).extend([erp_client(), kiosk]);
        let mut introspection = toml::Table::new();
        introspection.insert("path".into(), "/oauth2/introspect".into());
        t.insert("introspection".into(), introspection.into());
        edit(t);
    })
}

/// The erp client's entry: tls_client_auth by its DN (`ERP_DN`), bound tokens.
pub fn erp_client() -> toml::Value {
    toml::from_str(
        r#"
id = "erp"
apis = ["backoffice"]
scopes = ["read", "write"]
token_endpoint_auth_method = "tls_client_auth"
tls_client_auth_subject_dn = "CN=erp,OU=b2b,O=Example Store,C=DE"
tls_client_certificate_bound_access_tokens = true
"#,
    )
    .unwrap()
}

/// A gateway on `mtls_toml`, its PKI files written beside it; with its upstream's address.
pub async fn mtls_gateway(
    pki: &Pki,
    client_auth: &str,
    edit: impl FnOnce(&mut toml::Table),
) -> (super::Gateway, std::net::SocketAddr) {
    let (up, _) = super::spawn_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("client-ca.pem", &pki.ca.pem);
    write("client-crl.pem", &pki.ca.crl(&[]));
    write("kiosk.jwks", &pki.kiosk.jwks().to_string());
    let toml = mtls_toml(up, client_auth, edit);
    (super::spawn_gateway_in(dir, &toml).await, up)
}
