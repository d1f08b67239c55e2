//! Reading a token request: form-urlencoded or JSON body, and HTTP Basic client credentials
//! (RFC 6749 §2.3.1). Unknown parameters are ignored and empty ones count as omitted (§3.1);
//! a known parameter given twice is an error (§3.1).

use base64::Engine;
use http::{HeaderMap, header};

use crate::errors::Refusal;

/// The parameters storegate reads from a token, revocation or introspection request body.
#[derive(Default, PartialEq, Eq)]
pub struct Params {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    /// The token to revoke or introspect (RFC 7009 §2.1, RFC 7662 §2.1).
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    /// `private_key_jwt` (RFC 7523 §2.2): the assertion and its type.
    pub client_assertion: Option<String>,
    pub client_assertion_type: Option<String>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the token are credentials: never in a log line.
        let given = |v: &Option<String>| v.as_ref().map(|_| "<given>");
        f.debug_struct("Params")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("client_secret", &given(&self.client_secret))
            .field("scope", &self.scope)
            .field("token", &given(&self.token))
            .field("token_type_hint", &self.token_type_hint)
            .field("client_assertion", &given(&self.client_assertion))
            .field("client_assertion_type", &self.client_assertion_type)
            .finish()
    }
}

impl Params {
    fn set(&mut self, name: &str, value: String) -> Result<(), Refusal> {
        let slot = match name {
            "grant_type" => &mut self.grant_type,
            "client_id" => &mut self.client_id,
            "client_secret" => &mut self.client_secret,
            "scope" => &mut self.scope,
            "token" => &mut self.token,
            "token_type_hint" => &mut self.token_type_hint,
            "client_assertion" => &mut self.client_assertion,
            "client_assertion_type" => &mut self.client_assertion_type,
            _ => return Ok(()),
        };
        if slot.is_some() {
            return Err(Refusal::InvalidRequest(
                "a parameter was given more than once",
            ));
        }
        if !value.is_empty() {
            *slot = Some(value);
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Encoding {
    Form,
    Json,
}

fn encoding(headers: &HeaderMap, body: &[u8]) -> Result<Encoding, Refusal> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        // No Content-Type: seed 000's sample object is JSON while its header table says form,
        // so tell them apart by the first byte rather than refuse either.
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        return Ok(if first == Some(&b'{') {
            Encoding::Json
        } else {
            Encoding::Form
        });
    };
    let ct = ct.to_str().unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(Encoding::Form)
    } else if mime.eq_ignore_ascii_case("application/json")
        || mime.eq_ignore_ascii_case("application/vnd.api+json")
    {
        Ok(Encoding::Json)
    } else {
        Err(Refusal::InvalidRequest(
            "the body must be application/x-www-form-urlencoded or application/json",
        ))
    }
}

/// Reads the parameters of a token request body.
pub fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, Refusal> {
    let mut params = Params::default();
    match encoding(headers, body)? {
        Encoding::Form => {
            if std::str::from_utf8(body).is_err() {
                return Err(Refusal::InvalidRequest(
                    "the request body is not valid UTF-8",
                ));
            }
            for (k, v) in form_urlencoded::parse(body) {
                params.set(&k, v.into_owned())?;
            }
        }
        Encoding::Json => {
            let JsonObject(members) = serde_json::from_slice(body).map_err(|e| {
                Refusal::InvalidRequest(if e.to_string().starts_with(DUPLICATE) {
                    "a parameter was given more than once"
                } else {
                    "the request body is not a JSON object"
                })
            })?;
            for (k, v) in members {
                match v {
                    serde_json::Value::String(s) => params.set(&k, s)?,
                    serde_json::Value::Null => {}
                    _ if matches!(
                        k.as_str(),
                        "grant_type"
                            | "client_id"
                            | "client_secret"
                            | "scope"
                            | "token"
                            | "token_type_hint"
                            | "client_assertion"
                            | "client_assertion_type"
                    ) =>
                    {
                        return Err(Refusal::InvalidRequest(
                            "request parameters must be strings",
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(params)
}

/// The error a duplicate member raises while a JSON object is read.
const DUPLICATE: &str = "duplicate member";

/// A JSON object's members in order, refusing a member name given twice: serde_json's own
/// maps keep the last, so `{"client_secret":"x","client_secret":"<right>"}` would pass a
/// check the first one failed (RFC 8259 §4 leaves duplicates to the reader).
struct JsonObject(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonObject, A::Error> {
                let mut members: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    if members.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom(DUPLICATE));
                    }
                    members.push((k, v));
                }
                Ok(JsonObject(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Client credentials from an `Authorization: Basic` header, if one is present.
/// Per RFC 6749 §2.3.1 the id and secret are form-urlencoded before base64.
pub fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), Refusal>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let malformed = Refusal::InvalidClient { basic: true };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
        return Some(Err(malformed));
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Some(Err(malformed));
    };
    let Some((id, secret)) = text.split_once(':') else {
        return Some(Err(malformed));
    };
    Some(Ok((form_decode(id), form_decode(secret))))
}

fn form_decode(s: &str) -> String {
    // Parsing "s" as a lone form key decodes it exactly as application/x-www-form-urlencoded.
    form_urlencoded::parse(s.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(ct: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        h
    }

    #[test]
    fn form_and_json_read_alike() {
        let form = parse_body(
            &headers(Some("application/x-www-form-urlencoded")),
            b"grant_type=client_credentials&client_id=a%2Bb&client_secret=s&extra=1",
        )
        .unwrap();
        let json = parse_body(&headers(Some("application/json; charset=utf-8")), br#"{"grant_type":"client_credentials","client_id":"a+b","client_secret":"s","extra":1}"#).unwrap();
        assert_eq!(form, json);
        assert_eq!(form.client_id.as_deref(), Some("a+b"));
        let sniffed =
            parse_body(&headers(None), br#" {"grant_type":"client_credentials"}"#).unwrap();
        assert_eq!(sniffed.grant_type.as_deref(), Some("client_credentials"));
    }

    #[test]
    fn bad_bodies_are_invalid_requests() {
        let form = headers(Some("application/x-www-form-urlencoded"));
        assert!(matches!(
            parse_body(&form, b"client_id=a&client_id=b"),
            Err(Refusal::InvalidRequest(_))
        ));
        let json = headers(Some("application/json"));
        assert!(matches!(
            parse_body(&json, b"[1]"),
            Err(Refusal::InvalidRequest(_))
        ));
        for dup in [
            &br#"{"client_secret":"wrong","client_secret":"right"}"#[..],
            br#"{"grant_type":"client_credentials","extra":1,"extra":2}"#,
        ] {
            assert_eq!(
                parse_body(&json, dup),
                Err(Refusal::InvalidRequest(
                    "a parameter was given more than once"
                ))
            );
        }
        assert!(matches!(
            parse_body(&json, br#"{"client_id":5}"#),
            Err(Refusal::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_body(&headers(Some("text/plain")), b"x"),
            Err(Refusal::InvalidRequest(_))
        ));
        assert_eq!(
            parse_body(&form, b"scope=&client_id=a").unwrap().scope,
            None,
            "empty means omitted"
        );
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("my%20id:p%3Ass");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&h).unwrap().unwrap(),
            ("my id".to_owned(), "p:ss".to_owned())
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&h).unwrap().is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&h).is_none());
    }
}
