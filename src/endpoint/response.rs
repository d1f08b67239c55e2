//! Successful token responses, one per documented API, with their fields in the order each
//! seed shows them (values differ, shapes do not).

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::{Either, Full};
use serde::Serialize;

use crate::Body;
use crate::clients::Grant;
use crate::routes::EndpointShape;
use crate::token::issue::Issued;

/// Seeds 000–002 (`/connect/token`), RFC 6749 §5.1.
#[derive(Serialize)]
struct ConnectToken<'a> {
    access_token: &'a str,
    expires_in: u64,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// Seed 003 (`/oauth2-token`).
#[derive(Serialize)]
struct Oauth2Token<'a> {
    token_type: &'static str,
    expires_in: u64,
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// Seed 004 (`/oauth/access_token`), as its client_credentials and implicit examples.
#[derive(Serialize)]
struct AccessTokenData<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    expires: u64,
    identifier: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

#[derive(Serialize)]
struct Envelope<T> {
    data: T,
}

/// The 200 response. `scope` is echoed only when the client asked for one, so a request
/// shaped like a seed's sample gets exactly the sample's fields.
pub fn success(
    shape: EndpointShape,
    t: &Issued,
    (grant, token_type): (Grant, &'static str),
    scope: Option<&str>,
) -> Response<Body> {
    let token = t.access_token.as_str();
    let json = match shape {
        EndpointShape::ConnectToken => serde_json::to_vec(&ConnectToken {
            access_token: token,
            expires_in: t.expires_in,
            token_type,
            scope,
        }),
        EndpointShape::Oauth2Token => serde_json::to_vec(&Oauth2Token {
            token_type,
            expires_in: t.expires_in,
            access_token: token,
            scope,
        }),
        EndpointShape::OauthAccessToken => serde_json::to_vec(&Envelope {
            data: AccessTokenData {
                access_token: token,
                token_type,
                expires_in: t.expires_in,
                expires: t.expires,
                identifier: grant.as_str(),
                scope,
            },
        }),
    }
    .expect("token responses serialize");
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(json))));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
