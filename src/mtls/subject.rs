//! Who a `tls_client_auth` client's certificate must name (RFC 8705 §2.1.2): exactly one of
//! `tls_client_auth_subject_dn`, `_san_dns`, `_san_uri`, `_san_ip` and `_san_email`.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;

use super::dn::Dn;

/// The registered subject of a `tls_client_auth` client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Dn(Dn),
    /// A dNSName SAN; compared case-insensitively.
    Dns(String),
    /// A uniformResourceIdentifier SAN; compared exactly.
    Uri(String),
    /// An iPAddress SAN; compared as addresses.
    Ip(IpAddr),
    /// An rfc822Name SAN; the domain compared case-insensitively, the local part exactly.
    Email(String),
}

impl Subject {
    /// Whether the certificate (DER) names this subject. A certificate that cannot be read
    /// names nobody.
    pub fn named_by(&self, der: &[u8]) -> bool {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return false;
        };
        if let Subject::Dn(dn) = self {
            return Dn::of_name(cert.subject()).is_some_and(|d| d == *dn);
        }
        let Ok(Some(san)) = cert.subject_alternative_name() else {
            return false;
        };
        san.value
            .general_names
            .iter()
            .any(|name| match (self, name) {
                (Subject::Dns(want), GeneralName::DNSName(got)) => want.eq_ignore_ascii_case(got),
                (Subject::Uri(want), GeneralName::URI(got)) => want == got,
                (Subject::Ip(want), GeneralName::IPAddress(got)) => ip_of(got) == Some(*want),
                (Subject::Email(want), GeneralName::RFC822Name(got)) => same_email(want, got),
                _ => false,
            })
    }
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

fn same_email(want: &str, got: &str) -> bool {
    match (want.rsplit_once('@'), got.rsplit_once('@')) {
        (Some((wl, wd)), Some((gl, gd))) => wl == gl && wd.eq_ignore_ascii_case(gd),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn cert(params: CertificateParams) -> Vec<u8> {
        params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn each_kind_of_subject_matches_only_its_own_name() {
        let mut p = CertificateParams::new(vec!["erp.shop.example".to_owned()]).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "DE");
        p.distinguished_name
            .push(DnType::OrganizationName, "Example Store");
        p.distinguished_name.push(DnType::CommonName, "erp");
        p.subject_alt_names
            .push(SanType::IpAddress("2001:db8::7".parse().unwrap()));
        p.subject_alt_names
            .push(SanType::Rfc822Name("Ops@Shop.Example".try_into().unwrap()));
        p.subject_alt_names
            .push(SanType::URI("spiffe://shop/erp".try_into().unwrap()));
        let der = cert(p);
        let yes = [
            Subject::Dn(Dn::parse("CN=ERP,O=example store,C=DE").unwrap()),
            Subject::Dns("ERP.shop.example".into()),
            Subject::Ip("2001:db8:0::7".parse().unwrap()),
            Subject::Email("Ops@shop.example".into()),
            Subject::Uri("spiffe://shop/erp".into()),
        ];
        for s in &yes {
            assert!(s.named_by(&der), "{s:?}");
        }
        let no = [
            Subject::Dn(Dn::parse("CN=erp,O=Example Store,C=FR").unwrap()),
            Subject::Dn(Dn::parse("CN=erp,O=Example Store").unwrap()),
            Subject::Dns("shop.example".into()),
            Subject::Ip("2001:db8::8".parse().unwrap()),
            Subject::Email("ops@shop.example".into()),
            Subject::Uri("spiffe://shop/ERP".into()),
        ];
        for s in &no {
            assert!(!s.named_by(&der), "{s:?}");
        }
        assert!(!yes[0].named_by(b"not a certificate"));
    }
}
