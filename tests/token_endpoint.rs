//! The token endpoint over real TLS: every documented request and its documented response,
//! and each RFC 6749 §5.2 error reached by a real request.

mod support;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(|k| k.as_str()).collect()
}

/// The field names in the order the body lists them.
fn ordered_keys(body: &str) -> Vec<String> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(body).unwrap();
    // serde_json without preserve_order sorts keys; read the order from the text instead.
    let mut found: Vec<(usize, String)> = v
        .keys()
        .map(|k| (body.find(&format!("\"{k}\":")).unwrap(), k.clone()))
        .collect();
    found.sort();
    found.into_iter().map(|(_, k)| k).collect()
}

fn assert_no_store(resp: &reqwest::Response) {
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
}

#[tokio::test]
async fn seed_000_connect_token_form_request_gets_the_documented_response() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let resp = gw
        .client
        .post(gw.url("/connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id=backoffice-app&client_secret={SECRET}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_no_store(&resp);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert_eq!(
        ordered_keys(&text),
        ["access_token", "expires_in", "token_type"]
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
}

#[tokio::test]
async fn seed_000_failed_authentication_is_400_invalid_client_exactly() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    for (id, secret) in [("backoffice-app", "wrong"), ("nobody", SECRET)] {
        let resp = gw
            .post_form(
                "/connect/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", secret),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get("www-authenticate").is_none());
        assert_no_store(&resp);
        assert_eq!(resp.text().await.unwrap(), r#"{"error":"invalid_client"}"#);
    }
}

#[tokio::test]
async fn seed_000_sample_object_as_json_is_accepted() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let resp = gw
        .client
        .post(gw.url("/connect/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": "backoffice-app", "client_secret": SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(keys(&body).len(), 3);
}

#[tokio::test]
async fn seed_003_oauth2_token_json_request_gets_the_documented_response() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let resp = gw
        .client
        .post(gw.url("/oauth2-token"))
        .header("content-type", "application/json")
        .body(json!({"grant_type": "client_credentials", "client_id": "backoffice-app", "client_secret": SECRET}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_no_store(&resp);
    let text = resp.text().await.unwrap();
    assert_eq!(
        ordered_keys(&text),
        ["token_type", "expires_in", "access_token"]
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    // "a JSON web token signed with the authorization server's private key"
    let token = body["access_token"].as_str().unwrap();
    let jwks: Value = gw.get_json("/.well-known/jwks.json").await;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&["backoffice"]);
    v.set_issuer(&[ISSUER]);
    let data = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(data.header.kid, jwk.common.key_id);
    for claim in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "iat",
        "exp",
        "jti",
        "scope",
    ] {
        assert!(data.claims.get(claim).is_some(), "claim {claim} missing");
    }
    assert_eq!(data.claims["sub"], "backoffice-app");
    assert_eq!(data.claims["scope"], "read write");
    assert_eq!(
        data.claims["exp"].as_u64().unwrap() - data.claims["iat"].as_u64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn seed_004_client_credentials_and_implicit_get_the_data_envelope() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let cases = [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "storefront-app"),
            ("client_secret", READER_SECRET),
        ],
        vec![("grant_type", "implicit"), ("client_id", "public-key")],
    ];
    for (form, identifier) in cases.iter().zip(["client_credentials", "implicit"]) {
        let resp = gw
            .client
            .post(gw.url("/oauth/access_token"))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{identifier}");
        assert_no_store(&resp);
        let text = resp.text().await.unwrap();
        assert_eq!(ordered_keys(&text), ["data"]);
        let body: Value = serde_json::from_str(&text).unwrap();
        let data = &body["data"];
        let mut fields = keys(data);
        fields.sort();
        assert_eq!(
            fields,
            [
                "access_token",
                "expires",
                "expires_in",
                "identifier",
                "token_type"
            ]
        );
        assert_eq!(data["token_type"], "Bearer");
        assert_eq!(data["identifier"], identifier);
        assert_eq!(data["expires_in"], 3600);
        let now = storegate::token::now_unix();
        let expires = data["expires"].as_u64().unwrap();
        assert!(
            expires >= now + 3590 && expires <= now + 3610,
            "expires is epoch seconds"
        );
    }
}

#[tokio::test]
async fn seed_004_errors_use_the_documented_array_shape() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let post = |form: Vec<(&'static str, &'static str)>| {
        gw.client
            .post(gw.url("/oauth/access_token"))
            .form(&form)
            .send()
    };
    let bad_request = r#"{"errors":[{"title":"Bad Request","status":"400"}]}"#;
    let unauthorized = r#"{"errors":[{"title":"Unauthorized","status":"401"}]}"#;
    type Form = Vec<(&'static str, &'static str)>;
    let cases: Vec<(Form, u16, &str)> = vec![
        (vec![("client_id", "public-key")], 400, bad_request),
        (
            vec![("grant_type", "password"), ("client_id", "public-key")],
            400,
            bad_request,
        ),
        (vec![("grant_type", "implicit")], 400, bad_request),
        (
            vec![("grant_type", "implicit"), ("client_id", "nobody")],
            401,
            unauthorized,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "storefront-app"),
                ("client_secret", "nope"),
            ],
            401,
            unauthorized,
        ),
        // public-key may not use client_credentials; backoffice-app may not use implicit.
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "public-key"),
                ("client_secret", "x"),
            ],
            401,
            unauthorized,
        ),
        (
            vec![("grant_type", "implicit"), ("client_id", "backoffice-app")],
            401,
            unauthorized,
        ),
        (
            vec![
                ("grant_type", "implicit"),
                ("client_id", "public-key"),
                ("scope", "write"),
            ],
            400,
            bad_request,
        ),
    ];
    for (form, status, body) in cases {
        let resp = post(form.clone()).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{form:?}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.text().await.unwrap(), body, "{form:?}");
    }
}

async fn oauth_error(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn rfc6749_error_codes_are_each_reached_by_a_real_request() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let url = gw.url("/connect/token");
    let c = &gw.client;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            c.post(&url)
                .form(&[("client_id", "backoffice-app"), ("client_secret", SECRET)]),
            400,
            "invalid_request",
        ),
        (
            c.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_secret", SECRET),
            ]),
            400,
            "invalid_request",
        ),
        // A missing credential of the client's method (RFC 6749 §5.2).
        (
            c.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "backoffice-app"),
            ]),
            400,
            "invalid_client",
        ),
        (
            c.post(&url)
                .body("grant_type=client_credentials&grant_type=client_credentials")
                .header("content-type", "application/x-www-form-urlencoded"),
            400,
            "invalid_request",
        ),
        (
            c.post(&url)
                .body("{not json")
                .header("content-type", "application/json"),
            400,
            "invalid_request",
        ),
        (
            c.post(&url).body("x").header("content-type", "text/plain"),
            400,
            "invalid_request",
        ),
        (
            c.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "backoffice-app"),
                ("client_secret", "no"),
            ]),
            400,
            "invalid_client",
        ),
        (
            c.post(&url).form(&[
                ("grant_type", "password"),
                ("client_id", "backoffice-app"),
                ("client_secret", SECRET),
            ]),
            400,
            "unsupported_grant_type",
        ),
        // The implicit grant belongs to the seed-004 shape only.
        (
            c.post(&url)
                .form(&[("grant_type", "implicit"), ("client_id", "public-key")]),
            400,
            "unsupported_grant_type",
        ),
        (
            c.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "backoffice-app"),
                ("client_secret", SECRET),
                ("scope", "admin"),
            ]),
            400,
            "invalid_scope",
        ),
    ];
    for (req, status, code) in cases {
        let (got_status, body) = oauth_error(req).await;
        assert_eq!(
            (got_status, body["error"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    // unauthorized_client: public-key is an implicit-only client at an endpoint that knows implicit.
    let (status, body) = oauth_error(
        c.post(gw.url("/oauth2-token")).json(&json!({"grant_type": "client_credentials", "client_id": "public-key", "client_secret": "x"})),
    )
    .await;
    // An implicit-only client has no secret, so its client_credentials attempt fails authentication.
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_client")
    );
    let extra = format!(
        "[[clients]]\nid = \"cc-less\"\nsecret_hash = \"{}\"\napis = [\"storefront\"]\ngrants = [\"implicit\"]\n",
        storegate::clients::hash_secret("s")
    );
    let gw2 = spawn_gateway(up, &extra).await;
    let (status, body) = oauth_error(gw2.client.post(gw2.url("/connect/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "cc-less"),
        ("client_secret", "s"),
    ]))
    .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "unauthorized_client")
    );
}

#[tokio::test]
async fn requested_scope_is_granted_and_echoed() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let body = gw.scoped_token("backoffice-app", SECRET, "read").await;
    assert_eq!(body["scope"], "read");
    let who: Value = gw
        .get_bearer("/admin/echo", body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(who["headers"]["x-storegate-scope"], "read");
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[tokio::test]
async fn http_basic_client_authentication() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let url = gw.url("/connect/token");
    let ok = gw
        .client
        .post(&url)
        .header("authorization", basic("backoffice-app", SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let bad = gw
        .client
        .post(&url)
        .header("authorization", basic("backoffice-app", "wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad.headers()["www-authenticate"],
        r#"Basic realm="storegate""#
    );
    assert_eq!(bad.text().await.unwrap(), r#"{"error":"invalid_client"}"#);

    let both = gw
        .client
        .post(&url)
        .header("authorization", basic("backoffice-app", SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backoffice-app"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    let body: Value = both.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn oversized_bodies_and_wrong_methods_are_refused_cleanly() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(10_000));
    let resp = gw
        .client
        .post(gw.url("/connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let get = gw
        .client
        .get(gw.url("/connect/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers()["allow"], "POST");
    let body: Value = get.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn token_lifetime_comes_from_config() {
    let (up, _) = spawn_upstream().await;
    let toml =
        config_toml(up, "").replace("leeway_secs = 5", "leeway_secs = 5\nlifetime_secs = 600");
    let gw = spawn_gateway_toml(&toml).await;
    for path in ["/connect/token", "/oauth2-token"] {
        let body = send_json(gw.client.post(gw.url(path)).json(&json!({"grant_type": "client_credentials", "client_id": "backoffice-app", "client_secret": SECRET}))).await;
        assert_eq!(body["expires_in"], 600, "{path}");
    }
}
