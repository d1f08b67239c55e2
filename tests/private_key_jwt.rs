//! `private_key_jwt` (RFC 7523 §2.2, draft-ietf-oauth-rfc7523bis): clients authenticating with
//! an assertion they signed, at every token endpoint shape, revocation and introspection, and
//! the hostile assertions one test each: replay (on one replica, and across replicas through a
//! real Redis), `aud` wrong or a list, `exp` missing or too far, another `alg`, `none` and
//! HMAC, another client's key, a wrong `typ`.

mod support;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use support::dpop::{Key, now, signed, unsigned};
use support::replicas::*;
use support::*;

/// The client's JWKS entry for `key`, with `kid`.
fn jwk(key: &Key, kid: &str) -> Value {
    let mut v = serde_json::to_value(&key.jwk).unwrap();
    v["kid"] = kid.into();
    v
}

/// The config: the `erp` client registered for private_key_jwt with `keys` inline, allowed to
/// introspect, with revocation and introspection endpoints; then `edit`.
fn config(up: std::net::SocketAddr, keys: &[Value], edit: impl FnOnce(&mut toml::Table)) -> String {
    config_with(up, |t| {
        let jwks: toml::Value = serde_json::from_value(json!({ "keys": keys })).unwrap();
        let mut erp = toml::Table::new();
        erp.insert("id".into(), "erp".into());
        erp.insert("apis".into(), vec![toml::Value::from("backoffice")].into());
        erp.insert("scopes".into(), vec![toml::Value::from("read")].into());
        erp.insert(
            "token_endpoint_auth_method".into(),
            "private_key_jwt".into(),
        );
        erp.insert("introspect".into(), true.into());
        erp.insert("jwks".into(), jwks);
        clients_of(t).push(erp.into());
        for (section, path) in [
            ("revocation", "/oauth2/revoke"),
            ("introspection", "/oauth2/introspect"),
        ] {
            let mut s = toml::Table::new();
            s.insert("path".into(), path.into());
            t.insert(section.into(), s.into());
        }
        edit(t);
    })
}

/// Claims of a good assertion for `erp`.
fn claims(jti: &str) -> Value {
    json!({"iss": "erp", "sub": "erp", "aud": ISSUER, "exp": now() + 60, "iat": now(), "jti": jti})
}

fn header(kid: &str) -> Value {
    json!({"alg": "ES256", "typ": "client-authentication+jwt", "kid": kid})
}

fn assertion(key: &Key, kid: &str, claims: &Value) -> String {
    key.sign_as_given(&header(kid), claims)
}

/// A token request with `assertion` to `path`: status and JSON body.
async fn ask(gw: &Gateway, path: &str, assertion: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    let resp = gw
        .client
        .post(gw.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

fn description(body: &Value) -> String {
    (body["error_description"].as_str())
        .or(body["errors"][0]["detail"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_assertion_authenticates_at_every_endpoint() {
    let key = Key::new();
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up, &[jwk(&key, "k1")], |_| {})).await;
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        assertion(&key, "k1", &claims(&format!("jti-{n}")))
    };
    let mut tokens = Vec::new();
    for path in ["/connect/token", "/oauth2-token", "/oauth/access_token"] {
        let (status, body) = ask(&gw, path, &fresh(), &[("client_id", "erp")]).await;
        assert_eq!(status, 200, "{path}: {body}");
        let token = (body["access_token"].as_str())
            .or(body["data"]["access_token"].as_str())
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert_eq!(claims_of(token)["client_id"], "erp");
        tokens.push(token.to_owned());
    }
    assert_eq!(gw.get_bearer("/admin/echo", &tokens[0]).await.status(), 200);
    // Introspection and revocation authenticate it the same way.
    let (status, body) = ask(
        &gw,
        "/oauth2/introspect",
        &fresh(),
        &[("token", &tokens[0])],
    )
    .await;
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
    let (status, _) = ask(&gw, "/oauth2/revoke", &fresh(), &[("token", &tokens[0])]).await;
    assert_eq!(status, 200);
    assert_invalid_token(&gw.get_bearer("/admin/echo", &tokens[0]).await);
    let meta = gw.get_json("/.well-known/oauth-authorization-server").await;
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("private_key_jwt"), "{meta}");
    let algs = meta["token_endpoint_auth_signing_alg_values_supported"].to_string();
    assert!(
        algs.contains("ES256") && !algs.contains("HS256") && !algs.contains("none"),
        "{meta}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_assertions_are_refused_each_saying_why() {
    let (key, other) = (Key::new(), Key::new());
    let (up, _) = spawn_upstream().await;
    // Two clients: `erp`, and `pos`, whose key signs the forgery naming erp.
    let gw = spawn_gateway_toml(&config(up, &[jwk(&key, "k1")], |t| {
        let mut pos = clients_of(t).last().unwrap().as_table().unwrap().clone();
        pos.insert("id".into(), "pos".into());
        let jwks: toml::Value =
            serde_json::from_value(json!({"keys": [jwk(&other, "p1")]})).unwrap();
        pos.insert("jwks".into(), jwks);
        clients_of(t).push(pos.into());
        let mut throttle = toml::Table::new();
        throttle.insert("failures_per_source".into(), 100.into());
        throttle.insert("failures_per_client".into(), 1000.into());
        t.insert("throttle".into(), throttle.into());
    }))
    .await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims(&format!("jti-{}", rand_jti()));
        edit(&mut c);
        c
    };
    let hs_key = EncodingKey::from_secret(b"a shared secret of some length..");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "aud: the token endpoint URL",
            assertion(
                &key,
                "k1",
                &with(&|c| c["aud"] = format!("{ISSUER}/connect/token").into()),
            ),
            "aud must be the issuer",
        ),
        (
            "aud: another issuer",
            assertion(
                &key,
                "k1",
                &with(&|c| c["aud"] = "https://other.example".into()),
            ),
            "aud must be the issuer",
        ),
        (
            "aud: a list",
            assertion(&key, "k1", &with(&|c| c["aud"] = json!([ISSUER]))),
            "one string",
        ),
        (
            "no exp",
            assertion(
                &key,
                "k1",
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
            "no exp",
        ),
        (
            "exp too far",
            assertion(&key, "k1", &with(&|c| c["exp"] = (now() + 3600).into())),
            "max_lifetime_secs",
        ),
        (
            "expired",
            assertion(&key, "k1", &with(&|c| c["exp"] = (now() - 120).into())),
            "expired",
        ),
        (
            "no jti",
            assertion(
                &key,
                "k1",
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
            "no jti",
        ),
        (
            "sub is not iss",
            assertion(&key, "k1", &with(&|c| c["sub"] = "pos".into())),
            "sub must be the client id",
        ),
        (
            "another alg",
            key.sign_as_given(&json!({"alg": "ES384", "kid": "k1"}), &with(&|_| {})),
            "alg is not the algorithm",
        ),
        (
            "HMAC",
            signed(
                &json!({"alg": "HS256", "kid": "k1"}),
                &with(&|_| {}),
                &hs_key,
                Algorithm::HS256,
            ),
            "alg is not the algorithm",
        ),
        (
            "none",
            unsigned(&json!({"alg": "none"}), &with(&|_| {})),
            "signed JWT",
        ),
        (
            "another client's key",
            other.sign_as_given(&json!({"alg": "ES256"}), &with(&|_| {})),
            "does not verify",
        ),
        (
            "an unknown kid",
            assertion(&key, "k9", &with(&|_| {})),
            "kid names no key",
        ),
        (
            "typ dpop+jwt",
            key.sign_as_given(&json!({"alg": "ES256", "typ": "dpop+jwt"}), &with(&|_| {})),
            "typ must be",
        ),
    ];
    for (case, a, why) in cases {
        let (status, body) = ask(&gw, "/connect/token", &a, &[]).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client", "{case}: {body}");
        assert!(description(&body).contains(why), "{case}: {body}");
    }
    // client_id naming another client than the assertion.
    let a = assertion(&key, "k1", &claims("named"));
    let (status, body) = ask(&gw, "/connect/token", &a, &[("client_id", "pos")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client")),
        "{body}"
    );
    // A secret client's secret is no assertion, nor an assertion for a secret client.
    let (status, _) = ask(&gw, "/connect/token", &a, &[("client_secret", SECRET)]).await;
    assert_eq!(status, 400);
}

fn rand_jti() -> String {
    let mut b = [0u8; 12];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_is_accepted_once() {
    let key = Key::new();
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up, &[jwk(&key, "k1")], |_| {})).await;
    let a = assertion(&key, "k1", &claims("once"));
    assert_eq!(ask(&gw, "/connect/token", &a, &[]).await.0, 200);
    let (status, body) = ask(&gw, "/connect/token", &a, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(description(&body).contains("used before"), "{body}");
    // Concurrent copies of a fresh assertion: exactly one passes.
    let a = assertion(&key, "k1", &claims("raced"));
    let tries = (0..8).map(|_| ask(&gw, "/connect/token", &a, &[]));
    let statuses: Vec<u16> = (futures_util::future::join_all(tries).await)
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_replayed_on_another_replica_is_refused() {
    let key = Key::new();
    let redis = Redis::start();
    let (up, _) = spawn_upstream().await;
    let toml = config(up, &[jwk(&key, "k1")], |t| {
        let mut cluster = toml::Table::new();
        cluster.insert("redis_url".into(), redis.url().into());
        t.insert("cluster".into(), cluster.into());
    });
    let a_gw = spawn_gateway_toml(&toml).await;
    let b_gw = replica_like(&a_gw, &toml).await;
    for gw in [&a_gw, &b_gw] {
        await_connected(gw).await;
    }
    let a = assertion(&key, "k1", &claims("across"));
    assert_eq!(ask(&a_gw, "/connect/token", &a, &[]).await.0, 200);
    let (status, body) = ask(&b_gw, "/connect/token", &a, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(description(&body).contains("used before"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_in_the_jwks_file_is_taken_live() {
    let (old, new) = (Key::new(), Key::new());
    let (up, _) = spawn_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |keys: &[Value]| json!({ "keys": keys }).to_string();
    std::fs::write(dir.path().join("erp.jwks"), write(&[jwk(&old, "2026-11")])).unwrap();
    let toml = config(up, &[], |t| {
        let erp = clients_of(t).last_mut().unwrap().as_table_mut().unwrap();
        erp.remove("jwks");
        erp.insert("jwks_file".into(), "erp.jwks".into());
    });
    let gw = spawn_gateway_in(dir, &toml).await;
    let by_new = assertion(&new, "2026-12", &claims("new-1"));
    assert_eq!(ask(&gw, "/connect/token", &by_new, &[]).await.0, 400);
    // Both keys while the client moves over; `kid` picks one, and a key without kid is tried.
    let mut unnamed = jwk(&new, "x");
    unnamed.as_object_mut().unwrap().remove("kid");
    gw.reload_file("erp.jwks", write(&[jwk(&old, "2026-11"), unnamed]))
        .await;
    let by_new = new.sign_as_given(&json!({"alg": "ES256"}), &claims("new-2"));
    assert_eq!(ask(&gw, "/connect/token", &by_new, &[]).await.0, 200);
    let by_old = assertion(&old, "2026-11", &claims("old-1"));
    assert_eq!(ask(&gw, "/connect/token", &by_old, &[]).await.0, 200);
}

/// `iss` and `sub` must each be the client id as a string (jsonwebtoken's own issuer check
/// would take a list holding it; found while fuzzing `assertion::check`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iss_and_sub_are_the_client_id_as_a_string_not_a_list() {
    let key = Key::new();
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&config(up, &[jwk(&key, "k1")], |_| {})).await;
    for (field, value) in [("iss", json!(["erp", "pos"])), ("sub", json!(["erp"]))] {
        let mut c = claims(&format!("list-{field}"));
        c[field] = value;
        // client_id names erp: the list never picks the client.
        let (status, body) = ask(
            &gw,
            "/connect/token",
            &assertion(&key, "k1", &c),
            &[("client_id", "erp")],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_client")),
            "{field}: {body}"
        );
    }
}
