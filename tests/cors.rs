//! CORS on the wire, over the three ways a request comes in (the relay, hyper's HTTP/1.1 after
//! a hand-off, HTTP/2): preflights answered by the gateway without a token and never
//! forwarded, refused for an origin, method or header not allowed; every answer to an allowed
//! origin readable by the page (a 401's `WWW-Authenticate` too), an upstream's own CORS
//! headers replaced; a route that allows none, and one whose upstream answers CORS itself.

mod support;

use tokio::io::AsyncWriteExt;

use support::scripted::*;
use support::*;

const SHOP: &str = "https://shop.example";

#[derive(Clone, Copy, Debug)]
enum Via {
    Relay,
    Hyper,
    Http2,
}

const ALL: [Via; 3] = [Via::Relay, Via::Hyper, Via::Http2];

/// An answer: status, headers (names lowercase), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn get(&self, name: &str) -> Vec<&str> {
        (self.headers.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Option<&str> {
        let all = self.get(name);
        assert!(all.len() <= 1, "{name} twice: {:?}", self.headers);
        all.first().copied()
    }

    fn has_cors(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.starts_with("access-control-allow-"))
    }
}

async fn send(
    gw: &Gateway,
    via: Via,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    if let Via::Http2 = via {
        let client = gw.http2_client();
        let mut req = client.request(method.parse().unwrap(), gw.url(path));
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = (resp.headers().iter())
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let body = resp.text().await.unwrap();
        return Answer {
            status,
            headers,
            body,
        };
    }
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Via::Hyper = via {
        // A header named in Connection: the relay hands the connection to hyper.
        head.push_str("connection: x-hop\r\nx-hop: 1\r\n");
    }
    head.push_str("\r\n");
    let mut tls = tls_stream(gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    tls.write_all(head.as_bytes()).await.unwrap();
    let text = read_responses(&mut tls, 1).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = format!("{head}\r\n\r\n");
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut slots);
    r.parse(head.as_bytes()).unwrap();
    Answer {
        status: r.code.unwrap(),
        headers: (r.headers.iter())
            .map(|h| {
                let value = String::from_utf8(h.value.to_vec()).unwrap();
                (h.name.to_ascii_lowercase(), value)
            })
            .collect(),
        body: body.to_owned(),
    }
}

/// A gateway allowing `SHOP`, with a route allowing no origin (`/closed/`) and one whose
/// upstream answers CORS itself (`/self/`); the upstream adds its own CORS headers.
async fn gateway() -> (Gateway, std::sync::Arc<Seen>) {
    let (up, seen) = scripted(false, |_| {
        let body = "{\"products\":[]}";
        let answer = format!(
            "HTTP/1.1 200 OK\r\naccess-control-allow-origin: *\r\naccess-control-allow-credentials: true\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        (answer.into_bytes(), false)
    })
    .await;
    let extra = format!(
        r#"
[[routes]]
prefix = "/closed/"
upstream = "http://{up}"
api = "storefront"
cors_allowed_origins = []

[[routes]]
prefix = "/self/"
upstream = "http://{up}"
api = "storefront"
cors_by_upstream = true

[cors]
allowed_origins = ["{SHOP}", "http://127.0.0.1:8081"]
max_age_secs = 120
"#
    );
    (spawn_gateway(up, &extra).await, seen)
}

fn preflight(origin: &'static str, method: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("origin", origin),
        ("access-control-request-method", method),
        // A page with a DPoP-bound token sends its proof too.
        ("access-control-request-headers", "authorization, dpop"),
    ]
}

#[tokio::test]
async fn a_preflight_is_answered_by_the_gateway_on_every_path_and_never_forwarded() {
    let (gw, seen) = gateway().await;
    for via in ALL {
        for path in ["/shop/products", "/oauth/access_token"] {
            let a = send(&gw, via, "OPTIONS", path, &preflight(SHOP, "GET")).await;
            assert_eq!(a.status, 204, "{via:?} {path}: {}", a.body);
            assert_eq!(a.one("access-control-allow-origin"), Some(SHOP), "{via:?}");
            assert_eq!(
                a.one("access-control-allow-methods"),
                Some("GET, HEAD, POST, PUT, PATCH, DELETE")
            );
            let allowed = a.one("access-control-allow-headers").unwrap();
            assert!(allowed.contains("authorization"), "{allowed}");
            assert_eq!(a.one("access-control-max-age"), Some("120"));
            assert!(
                a.get("vary").iter().any(|v| v.contains("Origin")),
                "{via:?}"
            );
            assert!(a.one("access-control-allow-credentials").is_none());
        }
    }
    assert_eq!(
        seen.heads.lock().unwrap().len(),
        0,
        "no preflight reached the upstream"
    );
    assert_counted(&gw, &[("allowed", 6)]).await;
}

#[tokio::test]
async fn a_preflight_from_elsewhere_or_for_what_is_not_allowed_is_refused_without_cors_headers() {
    let (gw, seen) = gateway().await;
    for via in ALL {
        let cases = [
            (
                preflight("https://evil.example", "GET"),
                "this origin may not call this API",
            ),
            (preflight(SHOP, "TRACE"), "this method is not allowed"),
            (
                vec![
                    ("origin", SHOP),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization, x-secret"),
                ],
                "a request header is not allowed",
            ),
        ];
        for (headers, why) in cases {
            let a = send(&gw, via, "OPTIONS", "/shop/products", &headers).await;
            assert_eq!(a.status, 403, "{via:?}: {}", a.body);
            assert!(!a.has_cors(), "{via:?}: {:?}", a.headers);
            // The /shop/ route's documented shape (`errors`).
            assert!(
                a.body.contains("\"errors\"") && a.body.contains(why),
                "{}",
                a.body
            );
        }
    }
    assert_eq!(seen.heads.lock().unwrap().len(), 0);
    let refused = [
        ("origin_refused", 3),
        ("method_refused", 3),
        ("headers_refused", 3),
    ];
    assert_counted(&gw, &refused).await;
}

#[tokio::test]
async fn every_answer_to_an_allowed_origin_is_readable_and_the_upstreams_headers_replaced() {
    let (gw, seen) = gateway().await;
    let token = gw.implicit_token("storefront-app").await;
    let bearer = format!("Bearer {token}");
    for via in ALL {
        let a = send(
            &gw,
            via,
            "GET",
            "/shop/products",
            &[("origin", SHOP), ("authorization", &bearer)],
        )
        .await;
        assert_eq!(a.status, 200, "{via:?}: {}", a.body);
        assert_eq!(
            a.one("access-control-allow-origin"),
            Some(SHOP),
            "{via:?}: {:?}",
            a.headers
        );
        assert!(
            a.one("access-control-allow-credentials").is_none(),
            "the upstream's is gone"
        );
        assert_eq!(
            a.one("access-control-expose-headers"),
            Some("www-authenticate, dpop-nonce, x-request-id")
        );
        assert!(
            a.get("vary").contains(&"Origin"),
            "{via:?}: {:?}",
            a.headers
        );

        // A 401: the page can read WWW-Authenticate, so it can tell an expired token.
        let a = send(&gw, via, "GET", "/shop/products", &[("origin", SHOP)]).await;
        assert_eq!(a.status, 401, "{via:?}");
        assert_eq!(a.one("access-control-allow-origin"), Some(SHOP), "{via:?}");
        assert!(a.one("www-authenticate").is_some());

        // Another origin: nothing it may read, and Vary says the answer depends on it.
        let a = send(
            &gw,
            via,
            "GET",
            "/shop/products",
            &[
                ("origin", "https://evil.example"),
                ("authorization", &bearer),
            ],
        )
        .await;
        assert_eq!(a.status, 200);
        assert!(
            a.one("access-control-allow-origin").is_none(),
            "{via:?}: {:?}",
            a.headers
        );
        assert!(a.get("vary").contains(&"Origin"));
    }
    // The token endpoint's answer too (a form POST needs no preflight).
    let client = client_for(&gw.ca_pem, false);
    let resp = client
        .post(gw.url("/oauth/access_token"))
        .header("origin", "http://127.0.0.1:8081")
        .form(&[("grant_type", "implicit"), ("client_id", "storefront-app")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://127.0.0.1:8081"
    );
    assert!(seen.heads.lock().unwrap().len() >= 6);
}

#[tokio::test]
async fn a_route_allowing_no_origin_and_one_whose_upstream_answers_cors() {
    let (gw, seen) = gateway().await;
    for via in ALL {
        // No CORS: the preflight meets the guard, like any request without a token.
        let a = send(&gw, via, "OPTIONS", "/closed/x", &preflight(SHOP, "GET")).await;
        assert_eq!(a.status, 401, "{via:?}");
        assert!(
            !a.has_cors() && a.get("vary").is_empty(),
            "{via:?}: {:?}",
            a.headers
        );

        // The upstream's own answer, unguarded and with its own headers, no identity sent.
        let before = seen.heads.lock().unwrap().len();
        let a = send(&gw, via, "OPTIONS", "/self/x", &preflight(SHOP, "GET")).await;
        assert_eq!(a.status, 200, "{via:?}: {}", a.body);
        assert_eq!(a.one("access-control-allow-origin"), Some("*"), "{via:?}");
        let heads = seen.heads.lock().unwrap();
        let head = heads.get(before).expect("forwarded").to_ascii_lowercase();
        assert!(head.starts_with("options /self/x "), "{head}");
        assert!(!head.contains("x-storegate-client-id"), "{head}");
    }
    assert_counted(&gw, &[("forwarded", 3)]).await;
}

/// Asserts the admin listener's `storegate_cors_preflights_total` by outcome.
async fn assert_counted(gw: &Gateway, want: &[(&str, u32)]) {
    let admin = gw.spawn_admin().await;
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (outcome, n) in want {
        let line = format!("storegate_cors_preflights_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

/// The policy is live: a reload that allows another origin takes effect on the next preflight;
/// a misspelt key is refused (and the running policy kept).
#[tokio::test]
async fn cors_is_live_on_reload_and_a_misspelt_key_is_refused() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let config = |cors: &str| config_toml(up, &format!("\n[cors]\n{cors}\n"));
    let gw = spawn_gateway_toml(&config(&format!("allowed_origins = [\"{SHOP}\"]"))).await;
    let other = "https://other.example";
    let asks = async |via| send(&gw, via, "OPTIONS", "/shop/x", &preflight(other, "GET")).await;
    assert_eq!(asks(Via::Relay).await.status, 403);

    gw.reload_with(&config(&format!("allowed_origins = [\"{other}\"]")))
        .await;
    for via in ALL {
        let a = asks(via).await;
        assert_eq!(
            (a.status, a.one("access-control-allow-origin")),
            (204, Some(other))
        );
        let a = send(&gw, via, "OPTIONS", "/shop/x", &preflight(SHOP, "GET")).await;
        assert_eq!(
            a.status, 403,
            "{via:?}: the old origin is no longer allowed"
        );
    }

    for (broken, key) in [
        (format!("allowed_origin = [\"{SHOP}\"]"), "allowed_origin"),
        (
            "allowed_origins = [\"https://shop.example/\"]".to_owned(),
            "cors.allowed_origins",
        ),
        (
            "allowed_origins = [\"*\"]\nallow_credentials = true".to_owned(),
            "cors.allowed_origins",
        ),
    ] {
        let error = gw.reload_fails_with("gateway.toml", config(&broken)).await;
        assert!(error.contains(key), "{key} named in: {error}");
    }
    assert_eq!(
        asks(Via::Http2).await.status,
        204,
        "the running policy is kept"
    );
}
