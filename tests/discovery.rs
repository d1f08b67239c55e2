//! Discovery: the RFC 8414 authorization-server metadata and each route's RFC 9728
//! protected-resource metadata, with every URL in them answering on the gateway.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

const METADATA: &str = "/.well-known/oauth-authorization-server";

/// The gateway's own path for one of its absolute URLs (the issuer is https://gateway.test;
/// the test gateway listens on 127.0.0.1:<port>).
fn path_of(url: &Value) -> String {
    let url = url.as_str().unwrap();
    url.strip_prefix(ISSUER)
        .unwrap_or_else(|| panic!("{url} is not on {ISSUER}"))
        .to_owned()
}

/// The test config plus a client that may introspect.
fn config(up: std::net::SocketAddr) -> String {
    config_with(up, |t| {
        let mut entry = client_entry("inspector", SECRET, &["backoffice"], &[]);
        let e = entry.as_table_mut().unwrap();
        e.insert("introspect".into(), true.into());
        clients_of(t).push(entry);
    })
}

#[tokio::test]
async fn the_authorization_server_metadata_is_complete_and_every_url_answers() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up)).await;
    let resp = gw.client.get(gw.url(METADATA)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.unwrap();
    let url = |p: &str| Value::from(format!("{ISSUER}{p}"));
    // No listener asks for certificates here: the secret methods and private_key_jwt.
    let basic_post = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["token_endpoint"], url("/connect/token"));
    assert_eq!(doc["jwks_uri"], url("/.well-known/jwks.json"));
    assert_eq!(doc["revocation_endpoint"], url("/connect/revocation"));
    assert_eq!(doc["introspection_endpoint"], url("/connect/introspect"));
    assert_eq!(doc["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(doc["response_types_supported"], json!([]));
    assert_eq!(doc["scopes_supported"], json!(["read", "write"]));
    assert_eq!(doc["token_endpoint_auth_methods_supported"], basic_post);
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        basic_post
    );
    // The test config has a public implicit client, which revokes naming itself.
    assert_eq!(
        doc["revocation_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        json!([
            "ES256", "ES384", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"
        ])
    );

    // The token endpoint issues tokens whose iss is the metadata's issuer (RFC 8414 §3.3).
    let token = send_json(
        gw.client
            .post(gw.url(&path_of(&doc["token_endpoint"])))
            .basic_auth("backoffice-app", Some(SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["iss"], doc["issuer"]);

    let jwks = gw.get_json(&path_of(&doc["jwks_uri"])).await;
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    let introspected = send_json(
        gw.client
            .post(gw.url(&path_of(&doc["introspection_endpoint"])))
            .basic_auth("inspector", Some(SECRET))
            .form(&[("token", access)]),
    )
    .await;
    assert_eq!(introspected["active"], true);
    let revoked = gw
        .client
        .post(gw.url(&path_of(&doc["revocation_endpoint"])))
        .basic_auth("backoffice-app", Some(SECRET))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_invalid_token(&gw.get_bearer("/admin/echo", access).await);
}

#[tokio::test]
async fn each_route_has_protected_resource_metadata_named_in_its_challenges() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    for (prefix, scopes) in [
        ("/admin/", json!(["read", "write"])),
        ("/shop/", json!(["read"])),
    ] {
        let refused = gw
            .client
            .get(gw.url(&format!("{prefix}x")))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let challenge = refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let named = challenge
            .split("resource_metadata=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no resource_metadata in {challenge}"));
        assert_eq!(
            named,
            format!("{ISSUER}/.well-known/oauth-protected-resource{prefix}")
        );
        let doc = gw.get_json(&path_of(&Value::from(named))).await;
        assert_eq!(
            doc["resource"],
            format!("{ISSUER}{prefix}"),
            "RFC 9728 §3.3"
        );
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["scopes_supported"], scopes, "{prefix}");
    }
}

#[tokio::test]
async fn metadata_follows_a_reload_and_needs_an_issuer_url() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let more_scopes = config_with(up, |t| {
        let b = clients_of(t)[0].as_table_mut().unwrap();
        b.insert(
            "scopes".into(),
            toml::Value::Array(vec!["read".into(), "orders:write".into()]),
        );
    });
    gw.reload_with(&more_scopes).await;
    let doc = gw.get_json(METADATA).await;
    assert_eq!(doc["scopes_supported"], json!(["orders:write", "read"]));

    let no_url = config_with(up, |t| {
        t["tokens"]
            .as_table_mut()
            .unwrap()
            .insert("issuer".into(), "storegate".into());
    });
    gw.reload_with(&no_url).await;
    let resp = gw.client.get(gw.url(METADATA)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let refused = gw.client.get(gw.url("/admin/x")).send().await.unwrap();
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Bearer realm="storegate""#
    );
}
