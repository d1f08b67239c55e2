//! Distinguished names compared as names, not bytes (RFC 8705 §2.1.2): the configured RFC 4514
//! string (`CN=erp,OU=b2b,O=Example Store,C=DE`) and a certificate's subject are both read into
//! a sequence of RDNs, each a set of (attribute type OID, value). Attribute types are
//! case-insensitive names or dotted OIDs; values are compared as RFC 5280 §7.1 asks of
//! conforming implementations, after RFC 4518's preparation in its common form: case folded,
//! outer spaces dropped and inner runs of spaces made one.

use x509_parser::x509::X509Name;

/// A distinguished name: its RDNs in the certificate's order (most significant first, the
/// reverse of the RFC 4514 string), each RDN's attributes sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn(Vec<Vec<(String, String)>>);

/// The attribute type names RFC 4514 §3 lists, and the ones certificates commonly use.
const NAMES: [(&str, &str); 15] = [
    ("cn", "2.5.4.3"),
    ("sn", "2.5.4.4"),
    ("serialnumber", "2.5.4.5"),
    ("c", "2.5.4.6"),
    ("l", "2.5.4.7"),
    ("st", "2.5.4.8"),
    ("street", "2.5.4.9"),
    ("o", "2.5.4.10"),
    ("ou", "2.5.4.11"),
    ("title", "2.5.4.12"),
    ("gn", "2.5.4.42"),
    ("givenname", "2.5.4.42"),
    ("dc", "0.9.2342.19200300.100.1.25"),
    ("uid", "0.9.2342.19200300.100.1.1"),
    ("emailaddress", "1.2.840.113549.1.9.1"),
];

impl Dn {
    /// Reads an RFC 4514 string. Spaces around `,`, `+` and `=` are allowed, as most tools
    /// print them; `#`-hex (BER) values are refused, since a string value says the same.
    pub fn parse(s: &str) -> Result<Dn, String> {
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            let mut ty = String::new();
            let mut equals = false;
            for c in chars.by_ref() {
                if c == '=' {
                    equals = true;
                    break;
                }
                ty.push(c);
            }
            let oid = attribute_oid(ty.trim())
                .ok_or_else(|| format!("{:?} is not an attribute type", ty.trim()))?;
            if !equals {
                return Err(format!("{:?} has no '=' and value", ty.trim()));
            }
            let (value, end) = read_value(&mut chars)?;
            if value.trim().is_empty() {
                return Err(format!("{:?} has an empty value", ty.trim()));
            }
            rdn.push((oid, prepare(&value)));
            if end != Some('+') {
                rdn.sort();
                rdns.push(std::mem::take(&mut rdn));
            }
            if end.is_none() {
                break;
            }
        }
        rdns.reverse();
        Ok(Dn(rdns))
    }

    /// A certificate's subject or issuer; `None` when a value is not a string.
    pub fn of_name(name: &X509Name<'_>) -> Option<Dn> {
        let mut rdns = Vec::new();
        for rdn in name.iter() {
            let mut set = Vec::new();
            for atv in rdn.iter() {
                let value = atv.as_str().ok()?;
                set.push((atv.attr_type().to_id_string(), prepare(value)));
            }
            set.sort();
            rdns.push(set);
        }
        Some(Dn(rdns))
    }
}

fn attribute_oid(ty: &str) -> Option<String> {
    let lower = ty.to_ascii_lowercase();
    if let Some((_, oid)) = NAMES.iter().find(|(n, _)| *n == lower) {
        return Some((*oid).to_owned());
    }
    if lower == "e" {
        return Some("1.2.840.113549.1.9.1".to_owned());
    }
    let numeric = lower.strip_prefix("oid.").unwrap_or(&lower);
    let arcs_ok = !numeric.is_empty()
        && numeric.split('.').count() >= 2
        && numeric
            .split('.')
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
    arcs_ok.then(|| numeric.to_owned())
}

/// One value up to its unescaped `,` or `+` (returned) or the end (`None`).
fn read_value(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<(String, Option<char>), String> {
    while chars.peek() == Some(&' ') {
        chars.next();
    }
    if chars.peek() == Some(&'#') {
        return Err("a #-hex value is not accepted here: give the value as a string".into());
    }
    let mut bytes = Vec::new();
    loop {
        match chars.next() {
            None => break,
            Some(c @ (',' | '+')) => return Ok((utf8(bytes)?, Some(c))),
            Some('\\') => match chars.next() {
                Some(c) if "\"+,;<>\\ #=".contains(c) => bytes.push(c as u8),
                Some(h) => {
                    let l = chars.next().ok_or("a '\\' ends the name")?;
                    let pair: String = [h, l].iter().collect();
                    let byte = u8::from_str_radix(&pair, 16)
                        .map_err(|_| format!("\\{pair} is not an escape"))?;
                    bytes.push(byte);
                }
                None => return Err("a '\\' ends the name".into()),
            },
            Some(c @ ('"' | ';' | '<' | '>')) => {
                return Err(format!("{c:?} must be escaped with '\\'"));
            }
            Some(c) => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Ok((utf8(bytes)?, None))
}

fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| "an escaped value is not UTF-8".to_owned())
}

/// RFC 4518's preparation, in its common form: case folded, spaces squeezed.
fn prepare(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_read_as_rdns_not_bytes() {
        let a = Dn::parse("CN=erp,OU=b2b,O=Example Store,C=DE").unwrap();
        let b = Dn::parse("cn=ERP, ou=B2B, o=Example  Store, c=de").unwrap();
        assert_eq!(a, b);
        let oid = Dn::parse("2.5.4.3=erp,OU=b2b,O=Example Store,C=DE").unwrap();
        assert_eq!(a, oid);
        // Order is part of the name.
        assert_ne!(a, Dn::parse("OU=b2b,CN=erp,O=Example Store,C=DE").unwrap());
        assert_eq!(a.0[0], vec![("2.5.4.6".to_owned(), "de".to_owned())]);
    }

    #[test]
    fn escapes_and_multi_valued_rdns() {
        let a = Dn::parse(r"CN=Smith\, John+UID=42,O=Shop\2C Inc.").unwrap();
        let b = Dn::parse(r"UID=42+CN=smith\, john,O=Shop\, Inc.").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0.len(), 2);
        assert_eq!(a.0[1].len(), 2);
    }

    #[test]
    fn bad_names_say_why() {
        for (s, why) in [
            ("CN", "no '='"),
            ("CN=,O=x", "empty value"),
            ("", "attribute type"),
            ("XX=1", "attribute type"),
            ("CN=#0403", "#-hex"),
            ("CN=a\\", "ends the name"),
            ("CN=a;b", "escaped"),
            ("CN=\\zz", "escape"),
        ] {
            let err = Dn::parse(s).unwrap_err();
            assert!(err.contains(why), "{s}: {err}");
        }
    }
}
