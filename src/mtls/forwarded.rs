//! Certificates a TLS-terminating proxy in front (an ingress, a mesh sidecar) says the caller
//! presented, in a header (`[forwarded_client_cert]`). Believed only from the peers listed for
//! it — a list of its own: trusting a proxy for `X-Forwarded-For` does not let it assert client
//! identities — and in the one format configured. From anyone else the header is ignored; it
//! never reaches an upstream (`headers::never_upstream`). A certificate read here is treated as
//! one the handshake presented: its key was proven to the proxy, and whether a CA signed it is
//! checked again by `ClientCas::verify` wherever that matters.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::Presented;

/// The header a proxy passes the certificate in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 9440: `Client-Cert` (an sf-binary DER) and `Client-Cert-Chain` (a list of them).
    ClientCert,
    /// Envoy's `x-forwarded-client-cert`: the last element's `Chain=` (or `Cert=`), a
    /// URL-encoded PEM.
    Envoy,
    /// ingress-nginx's `ssl-client-cert` (`auth-tls-pass-certificate-to-upstream`): a
    /// URL-encoded PEM.
    IngressNginx,
    /// Traefik's `X-Forwarded-Tls-Client-Cert` (`passTLSClientCert` with `pem`): URL-encoded,
    /// comma-separated base64 DER.
    Traefik,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "client-cert" => Format::ClientCert,
            "x-forwarded-client-cert" => Format::Envoy,
            "ssl-client-cert" => Format::IngressNginx,
            "x-forwarded-tls-client-cert" => Format::Traefik,
            _ => return None,
        })
    }
}

/// `[forwarded_client_cert]`: whose header is believed, and which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub trusted_peers: Vec<IpNet>,
    pub format: Format,
}

impl Forwarded {
    /// Whether `peer` may say which certificate the caller presented.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_peers.iter().any(|net| net.contains(&peer))
    }

    /// The certificate in the request's header, if it holds one that reads. `values(name)`
    /// gives the request's values of the header `name` (lower case).
    pub fn presented<'v, I>(&self, values: impl Fn(&str) -> I) -> Option<Presented>
    where
        I: Iterator<Item = &'v [u8]>,
    {
        let joined = |name: &str| -> Option<String> {
            let parts: Vec<&str> = values(name)
                .map(|v| std::str::from_utf8(v).ok())
                .collect::<Option<_>>()?;
            (!parts.is_empty()).then(|| parts.join(","))
        };
        let chain = match self.format {
            Format::ClientCert => {
                let leaf = sf_binary(&joined("client-cert")?)?;
                let mut chain = vec![leaf];
                if let Some(list) = joined("client-cert-chain") {
                    chain.extend(sf_binary_list(&list)?);
                }
                chain
            }
            Format::Envoy => envoy(&joined("x-forwarded-client-cert")?)?,
            Format::IngressNginx => pem_chain(&url_decoded(&joined("ssl-client-cert")?)?)?,
            Format::Traefik => {
                let decoded = url_decoded(&joined("x-forwarded-tls-client-cert")?)?;
                (decoded.split(','))
                    .map(|b64| {
                        let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
                        STANDARD.decode(clean).ok().map(CertificateDer::from)
                    })
                    .collect::<Option<Vec<_>>>()?
            }
        };
        Presented::new(chain)
    }
}

fn sf_binary(text: &str) -> Option<CertificateDer<'static>> {
    let item: sfv::Item = sfv::Parser::new(text).parse_item().ok()?;
    Some(CertificateDer::from(
        item.bare_item.as_byte_sequence()?.to_vec(),
    ))
}

fn sf_binary_list(text: &str) -> Option<Vec<CertificateDer<'static>>> {
    let list: sfv::List = sfv::Parser::new(text).parse_list().ok()?;
    list.iter()
        .map(|entry| match entry {
            sfv::ListEntry::Item(item) => Some(CertificateDer::from(
                item.bare_item.as_byte_sequence()?.to_vec(),
            )),
            sfv::ListEntry::InnerList(_) => None,
        })
        .collect()
}

fn url_decoded(text: &str) -> Option<String> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(text).collect();
    String::from_utf8(bytes).ok()
}

fn pem_chain(pem: &str) -> Option<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

/// The chain in the last element of an `x-forwarded-client-cert` value: the element Envoy
/// added for the connection it received (earlier ones are earlier hops' claims).
fn envoy(xfcc: &str) -> Option<Vec<CertificateDer<'static>>> {
    let last = split_unquoted(xfcc, ',').pop()?;
    let mut cert = None;
    let mut chain = None;
    for pair in split_unquoted(last, ';') {
        let (key, value) = pair.split_once('=')?;
        let value = value.trim();
        let value = (value.strip_prefix('"').and_then(|v| v.strip_suffix('"'))).unwrap_or(value);
        match key.trim().to_ascii_lowercase().as_str() {
            "cert" => cert = Some(value),
            "chain" => chain = Some(value),
            _ => {}
        }
    }
    pem_chain(&url_decoded(chain.or(cert)?)?)
}

/// `text` split at each `sep` outside double quotes.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> (Vec<u8>, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["erp.example".into()]).unwrap();
        let c = params.self_signed(&key).unwrap();
        (c.der().to_vec(), c.pem())
    }

    fn read(format: Format, headers: &[(&str, String)]) -> Option<Presented> {
        let f = Forwarded {
            trusted_peers: Vec::new(),
            format,
        };
        f.presented(|name| {
            headers
                .iter()
                .filter(move |(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
                .collect::<Vec<_>>()
                .into_iter()
        })
    }

    #[test]
    fn each_format_yields_the_same_certificate() {
        let (der, pem) = cert();
        let b64 = STANDARD.encode(&der);
        let escaped =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let cases = [
            (
                Format::ClientCert,
                vec![("client-cert", format!(":{b64}:"))],
            ),
            (
                Format::Envoy,
                vec![(
                    "x-forwarded-client-cert",
                    format!(
                        "By=spiffe://a;Cert=\"junk\",By=spiffe://gw;Hash=ab;Cert=\"{escaped}\";Subject=\"CN=x,O=y\""
                    ),
                )],
            ),
            (
                Format::IngressNginx,
                vec![("ssl-client-cert", escaped.clone())],
            ),
            (
                Format::Traefik,
                vec![("x-forwarded-tls-client-cert", b64.clone())],
            ),
        ];
        for (format, headers) in cases {
            let p = read(format, &headers).unwrap_or_else(|| panic!("{format:?}"));
            assert_eq!(p.leaf().as_ref(), der.as_slice(), "{format:?}");
        }
    }

    #[test]
    fn malformed_or_missing_headers_present_nothing() {
        let (der, _) = cert();
        let b64 = STANDARD.encode(&der);
        assert!(read(Format::ClientCert, &[]).is_none());
        assert!(read(Format::ClientCert, &[("client-cert", b64.clone())]).is_none());
        assert!(read(Format::ClientCert, &[("x-forwarded-client-cert", b64)]).is_none());
        assert!(read(Format::Envoy, &[("x-forwarded-client-cert", "By=x".into())]).is_none());
        assert!(read(Format::IngressNginx, &[("ssl-client-cert", "%ZZ".into())]).is_none());
    }

    #[test]
    fn only_listed_peers_are_trusted_ipv4_mapped_included() {
        let f = Forwarded {
            trusted_peers: vec!["10.0.0.0/8".parse().unwrap()],
            format: Format::ClientCert,
        };
        assert!(f.trusts("10.1.2.3".parse().unwrap()));
        assert!(f.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!f.trusts("192.0.2.1".parse().unwrap()));
    }
}
