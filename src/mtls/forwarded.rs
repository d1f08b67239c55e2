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
        // Every element must be a certificate: bytes that are none (an empty header value)
        // would otherwise bind a token to the digest of nothing.
        let certificates = chain.iter().all(|der| {
            x509_parser::parse_x509_certificate(der.as_ref()).is_ok_and(|(rest, _)| rest.is_empty())
        });
        if !certificates {
            return None;
        }
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
///
/// The value is read strictly, for it mixes what Envoy writes with what callers' certificates
/// say (Envoy writes a URI SAN unquoted, so one may hold `;Cert=…`): quoted values with their
/// `\` escapes; a quote left open anywhere makes the whole value unreadable; an element that
/// names `Cert` or `Chain` twice is refused; and the certificate must be the one whose SHA-256
/// Envoy wrote in `Hash` (which Envoy always sends), so no text a certificate carries can
/// stand in for another certificate.
fn envoy(xfcc: &str) -> Option<Vec<CertificateDer<'static>>> {
    let elements = split_xfcc(xfcc, ',')?;
    let last = elements.last()?;
    let (mut cert, mut chain, mut hash) = (None, None, None);
    for pair in split_xfcc(last, ';')? {
        let (key, value) = pair.split_once('=')?;
        let value = unquoted(value.trim())?;
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "cert" => &mut cert,
            "chain" => &mut chain,
            "hash" => &mut hash,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let leaf = pem_chain(&url_decoded(&cert.clone().or(chain.clone())?)?)?;
    let full = match chain {
        Some(c) => pem_chain(&url_decoded(&c)?)?,
        None => leaf.clone(),
    };
    // `Chain` starts with the leaf `Cert` names, when both are given.
    if leaf.first()? != full.first()? {
        return None;
    }
    let seen: String = super::thumbprint(full.first()?.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hash?.eq_ignore_ascii_case(&seen).then_some(full)
}

/// `text` split at each `sep` outside double quotes (a `\` inside them escapes the next
/// character); `None` when a quote is left open.
fn split_xfcc(text: &str, sep: char) -> Option<Vec<&str>> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted || escaped {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// A value as written: bare, or quoted with `\` escapes (a quote inside a bare value is not
/// Envoy's writing).
fn unquoted(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
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
                        "By=spiffe://a;Cert=\"junk\",By=spiffe://gw;Hash={};Cert=\"{escaped}\";Subject=\"CN=x,O=y\"",
                        hex_hash(&der)
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

    fn hex_hash(der: &[u8]) -> String {
        crate::mtls::thumbprint(der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn escaped(pem: &str) -> String {
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    /// Found by reading the parser while fuzzing it: each of these made it read a certificate
    /// other than the one Envoy saw.
    #[test]
    fn text_in_an_xfcc_element_cannot_stand_in_for_the_certificate() {
        let ((mine, my_pem), (_, victim_pem)) = (cert(), cert());
        let (hash, mine_esc, victim) = (hex_hash(&mine), escaped(&my_pem), escaped(&victim_pem));
        let xfcc = |v: String| read(Format::Envoy, &[("x-forwarded-client-cert", v)]);
        // The genuine element reads as the caller's own certificate.
        let genuine = xfcc(format!(
            "By=spiffe://gw;Hash={hash};Cert=\"{mine_esc}\";URI=https://x/"
        ));
        assert_eq!(genuine.unwrap().leaf().as_ref(), mine.as_slice());
        for (case, value) in [
            (
                "a URI SAN holding ;Cert=",
                format!(
                    "By=spiffe://gw;Hash={hash};Cert=\"{mine_esc}\";URI=https://x/;Cert={victim}"
                ),
            ),
            (
                "a URI SAN holding ;Cert= where Envoy sends no Cert",
                format!("By=spiffe://gw;Hash={hash};URI=https://x/;Cert={victim}"),
            ),
            (
                "an escaped quote",
                format!(
                    "By=spiffe://gw;Hash={hash};Subject=\"CN=a\\\",Cert={victim}\";Cert=\"{mine_esc}\""
                ),
            ),
            (
                "a quote left open by the caller's element",
                format!("By=x;X=\",By=spiffe://gw;Hash={hash};Cert=\"{mine_esc}\""),
            ),
            ("no Hash", format!("By=spiffe://gw;Cert=\"{victim}\"")),
        ] {
            let got = xfcc(value);
            assert!(
                got.as_ref()
                    .is_none_or(|p| p.leaf().as_ref() == mine.as_slice()),
                "{case}: read another certificate"
            );
        }
    }

    #[test]
    fn empty_or_junk_values_are_no_certificate() {
        assert!(
            read(
                Format::Traefik,
                &[("x-forwarded-tls-client-cert", String::new())]
            )
            .is_none()
        );
        assert!(
            read(
                Format::Traefik,
                &[("x-forwarded-tls-client-cert", ",".into())]
            )
            .is_none()
        );
        assert!(read(Format::ClientCert, &[("client-cert", "::".into())]).is_none());
        assert!(read(Format::ClientCert, &[("client-cert", ":AAAA:".into())]).is_none());
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
