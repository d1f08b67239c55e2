//! The matrix grant × API × method × route shape, and the remaining refusals a route can
//! make (413, 429, a deregistered client), each in the route's documented error shape.

mod support;

use std::sync::atomic::Ordering;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::*;

struct Token {
    name: &'static str,
    api: &'static str,
    implicit: bool,
    value: String,
}

#[tokio::test]
async fn grant_by_api_by_method_by_route_shape() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let tokens = [
        Token {
            name: "backoffice cc",
            api: "backoffice",
            implicit: false,
            value: gw.token("backoffice-app", SECRET).await,
        },
        Token {
            name: "storefront cc",
            api: "storefront",
            implicit: false,
            value: gw.token("storefront-app", READER_SECRET).await,
        },
        Token {
            name: "storefront implicit",
            api: "storefront",
            implicit: true,
            value: gw.implicit_token("storefront-app").await,
        },
        Token {
            name: "public-key implicit",
            api: "storefront",
            implicit: true,
            value: gw.implicit_token("public-key").await,
        },
    ];
    // (route prefix, its API, its error shape is `errors`)
    let routes = [
        ("/admin/", "backoffice", false),
        ("/shop/", "storefront", true),
    ];
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut cells = 0;
    for t in &tokens {
        for (prefix, api, errors_shape) in routes {
            for m in &methods {
                let before = log.requests.load(Ordering::SeqCst);
                let resp = gw
                    .client
                    .request(m.clone(), gw.url(&format!("{prefix}echo")))
                    .bearer_auth(&t.value)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let read = matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS);
                let allowed = t.api == api && (read || !t.implicit);
                let case = format!("{} {m} {prefix}", t.name);
                let reached = log.requests.load(Ordering::SeqCst) - before;
                if allowed {
                    assert_eq!(status, StatusCode::OK, "{case}");
                    assert_eq!(reached, 1, "{case}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{case}");
                    assert_eq!(reached, 0, "{case} reached the upstream");
                    let challenge = resp.headers()["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    assert!(challenge.contains("insufficient_scope"), "{case}");
                    if *m != Method::HEAD {
                        let body: Value = resp.json().await.unwrap();
                        if errors_shape {
                            assert_eq!(body["errors"][0]["status"], "403", "{case}");
                            assert_eq!(body["errors"][0]["title"], "Forbidden", "{case}");
                        } else {
                            assert_eq!(body["error"], "insufficient_scope", "{case}");
                        }
                    }
                }
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 4 * 2 * 7);
}

#[tokio::test]
async fn every_refusal_speaks_the_routes_shape() {
    let dead = dead_address().await;
    let gw = spawn_gateway(dead, "").await;
    let shop = gw.token("storefront-app", READER_SECRET).await;
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (gw.client.get(gw.url("/shop/echo")), 401),
        (
            gw.client.get(gw.url("/shop/echo")).bearer_auth("x.y.z"),
            401,
        ),
        (
            gw.client
                .get(gw.url("/shop/echo"))
                .bearer_auth(gw.token("backoffice-app", SECRET).await),
            403,
        ),
        (gw.client.get(gw.url("/shop/echo")).bearer_auth(&shop), 502),
    ];
    for (req, status) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["status"], status.to_string(), "{body}");
        assert!(body["errors"][0]["detail"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn bodies_over_the_routes_limit_are_413_in_its_shape() {
    let (up, log) = spawn_upstream().await;
    let toml = config_toml(up, "max_body_bytes = 1000\n");
    let gw = spawn_gateway_toml(&toml).await;
    let token = gw.token("storefront-app", READER_SECRET).await;
    let big = vec![b'a'; 5000];
    // With a Content-Length: refused before anything is sent on.
    let resp = gw
        .client
        .post(gw.url("/shop/upload"))
        .bearer_auth(&token)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"title":"Payload Too Large","status":"413","detail":"the request body is too large"}]}"#
    );
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
    // Chunked, no length: cut off as it streams.
    let stream = futures_util::stream::iter(
        (0..5).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 1000]))),
    );
    let resp = gw
        .client
        .post(gw.url("/shop/upload"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Within the limit it passes.
    let resp = gw
        .client
        .post(gw.url("/shop/upload"))
        .bearer_auth(&token)
        .body(vec![b'a'; 999])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() {
    let (up, log) = spawn_upstream().await;
    let extra = format!(
        "[[clients]]\nid = \"limited\"\nsecret_hash = \"{}\"\napis = [\"backoffice\"]\nscopes = [\"read\"]\nrate_limit_per_sec = 3\n",
        storegate::clients::hash_secret("s")
    );
    let gw = spawn_gateway(up, &extra).await;
    let token = gw.token("limited", "s").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = gw.get_bearer("/admin/echo", &token).await;
        let status = r.status().as_u16();
        if status == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "too_many_requests");
        }
        statuses.push(status);
    }
    // A burst of 3 passes; the requests right after are refused (the bucket refills at 3/s,
    // and five local requests take far less than the 1/3 s one more token needs).
    assert_eq!(&statuses[..3], [200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert_eq!(
        log.requests.load(Ordering::SeqCst),
        statuses.iter().filter(|s| **s == 200).count()
    );
    // Other clients are not affected.
    let other = gw.token("backoffice-app", SECRET).await;
    let r = gw.get_bearer("/admin/echo", &other).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_of_a_client_removed_from_the_config_are_refused() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let mut c = claims(600);
    c["sub"] = "gone-app".into();
    c["client_id"] = "gone-app".into();
    let token = mint_eddsa(&gw.signing_key_pem(), &gw.generation().keys.kid, &c);
    let r = gw.get_bearer("/admin/echo", &token).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn dot_segments_cannot_cross_from_one_api_to_another() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let shop = gw.token("storefront-app", READER_SECRET).await;
    // HTTP clients normalize such paths themselves, so send the request as written.
    for path in [
        "/shop/../admin/echo",
        "/shop/%2e%2e/admin/echo",
        "/shop/.%2E/admin/echo",
    ] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {shop}\r\nConnection: close\r\n\r\n"
        );
        let resp = raw_https(&gw, req.as_bytes()).await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{path}: {resp}");
        assert!(
            resp.ends_with(r#"{"errors":[{"title":"Bad Request","status":"400"}]}"#),
            "{path}: {resp}"
        );
    }
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn malformed_requests_get_a_clear_4xx_and_the_gateway_keeps_serving() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    // A header value that is not text: refused as a bad token, in the route's shape.
    let mut req = b"GET /admin/echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer \xff\xfe\r\n\r\n".to_vec();
    let resp = raw_https(&gw, &req).await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    assert!(resp.contains("invalid_token"), "{resp}");
    // Not HTTP at all: hyper answers 400 and closes; nothing reaches the upstream.
    req = b"\x16\x03garbage that is not a request\r\n\r\n".to_vec();
    let resp = raw_https(&gw, &req).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp:?}");
    // A token endpoint body that is not UTF-8.
    let resp = gw
        .client
        .post(gw.url("/connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(log.requests.load(Ordering::SeqCst), 0);
    // And the gateway still serves.
    let token = gw.token("backoffice-app", SECRET).await;
    assert_eq!(
        gw.get_bearer("/admin/echo", &token).await.status(),
        StatusCode::OK
    );
}
