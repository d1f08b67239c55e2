//! Issuing access tokens: RFC 9068 claims, signed with the gateway's key.
//!
//! The compact JWS is assembled here rather than by `jsonwebtoken::encode`, which parses the
//! PKCS#8 key again for every token (for Ed25519 that costs as much as the signature itself).
//! Verification, where mistakes are costly, stays with `jsonwebtoken::decode`.

use std::sync::Arc;

use aws_lc_rs::rand::SecureRandom;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::keys::KeySet;
use crate::clients::{Client, Grant};

/// One string or several, as RFC 7519 allows for `aud`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Audience<'a>,
    client_id: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    /// The grant the token came from; `implicit` tokens are read-only.
    gty: &'a str,
    /// What the token is bound to: a DPoP key, a TLS client certificate, or both.
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Cnf<'a>>,
}

/// `cnf` (RFC 7800): the DPoP key's RFC 7638 thumbprint (`jkt`, RFC 9449 §6.1) and the TLS
/// client certificate's SHA-256 thumbprint (`x5t#S256`, RFC 8705 §3.1), base64url.
#[derive(Serialize, Default, Clone, Copy)]
pub struct Cnf<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jkt: Option<&'a str>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t: Option<&'a str>,
}

/// A token just issued.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    /// Epoch seconds.
    pub expires: u64,
}

/// Signs access tokens for clients.
pub struct TokenIssuer {
    keys: Arc<KeySet>,
    issuer: String,
    lifetime_secs: u64,
    /// base64url of the fixed JOSE header.
    header_b64: String,
}

impl TokenIssuer {
    pub fn new(keys: Arc<KeySet>, issuer: String, lifetime_secs: u64) -> TokenIssuer {
        let header =
            serde_json::json!({"alg": keys.algorithm.jwt_name(), "typ": "at+jwt", "kid": keys.kid});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        TokenIssuer {
            keys,
            issuer,
            lifetime_secs,
            header_b64,
        }
    }

    /// A token for `client` with `scope` (space-separated, already checked), issued at `now`.
    /// Fails only when the crypto library does (the caller answers 500).
    pub fn issue(
        &self,
        client: &Client,
        grant: Grant,
        scope: &str,
        now: u64,
    ) -> Result<Issued, aws_lc_rs::error::Unspecified> {
        self.issue_bound(client, grant, scope, now, Cnf::default())
    }

    /// `issue`, bound to what `cnf` names (nothing when it names nothing).
    pub fn issue_bound(
        &self,
        client: &Client,
        grant: Grant,
        scope: &str,
        now: u64,
        cnf: Cnf<'_>,
    ) -> Result<Issued, aws_lc_rs::error::Unspecified> {
        let mut jti_bytes = [0u8; 16];
        aws_lc_rs::rand::SystemRandom::new().fill(&mut jti_bytes)?;
        let jti = URL_SAFE_NO_PAD.encode(jti_bytes);
        let aud = match client.apis.as_slice() {
            [one] => Audience::One(one),
            many => Audience::Many(many),
        };
        let exp = now + self.lifetime_secs;
        let claims = Claims {
            iss: &self.issuer,
            sub: &client.id,
            aud,
            client_id: &client.id,
            iat: now,
            exp,
            jti: &jti,
            scope,
            gty: grant.as_str(),
            cnf: (cnf.jkt.is_some() || cnf.x5t.is_some()).then_some(cnf),
        };
        let payload = serde_json::to_vec(&claims).expect("claims serialize");
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        self.keys.signer.append_signature(&mut token)?;
        Ok(Issued {
            access_token: token,
            expires_in: self.lifetime_secs,
            expires: exp,
        })
    }
}
