//! The decision endpoint (issue 22): Debian's nginx with `auth_request`, configured with the
//! shipped `deploy/decision/nginx/` files, in front of a real upstream, asking storegate; and
//! the Traefik and Envoy forms asked directly, over the relay (HTTP/1.1) and HTTP/2.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use std::sync::atomic::Ordering;
use support::dpop::Key;
use support::nginx::Nginx;
use support::*;

const DECISION: &str = "/_storegate";

fn decisions(gw: &Gateway, outcome: &'static str) -> u64 {
    let label = storegate::metrics::OutcomeLabel { outcome };
    gw.state
        .shared
        .metrics
        .decisions
        .get_or_create(&label)
        .get()
}

fn challenge(resp: &reqwest::Response) -> String {
    let c = resp.headers().get("www-authenticate");
    c.map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The default test config, plain HTTP (nginx and storegate side by side), with a decision
/// endpoint `trusted_peers` may ask, and a client limited to one request a second.
fn plain_with_decision(up: std::net::SocketAddr, trusted: &str) -> String {
    config_with(up, |t| {
        t.remove("tls");
        let server = t["server"].as_table_mut().unwrap();
        server.insert("plaintext".into(), true.into());
        let decision: toml::Table =
            format!("path = \"{DECISION}\"\ntrusted_peers = [\"{trusted}\"]")
                .parse()
                .unwrap();
        t.insert("decision".into(), decision.into());
        let mut limited = client_entry("limited-app", SECRET, &["backoffice"], &["read"]);
        let entry = limited.as_table_mut().unwrap();
        entry.insert("rate_limit_per_sec".into(), 1.into());
        clients_of(t).push(limited);
    })
}

async fn token(http: &reqwest::Client, gw: &Gateway, id: &str, scope: Option<&str>) -> String {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", SECRET),
    ];
    form.extend(scope.map(|s| ("scope", s)));
    let url = format!("http://{}/connect/token", gw.addr);
    let body = send_json(http.post(url).form(&form)).await;
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_passes_and_refuses_as_storegate_decides() {
    let (up, log) = spawn_upstream().await;
    // nginx asks from 127.0.0.2 (`proxy_bind`); the test's own requests come from 127.0.0.1.
    let gw = spawn_gateway_toml(&plain_with_decision(up, "127.0.0.2")).await;
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/decision/nginx");
    let nginx = Nginx::start(&format!(
        "upstream storegate {{ server {gw}; keepalive 4; }}\n\
         server {{\n listen 127.0.0.1:{{port}};\n proxy_bind 127.0.0.2;\n\
         include {shipped}/storegate-decision.conf;\n\
         location /admin/ {{ include {shipped}/storegate-guard.conf; proxy_pass http://{up}; }}\n\
         location /shop/ {{ include {shipped}/storegate-guard.conf; proxy_pass http://{up}; }}\n}}",
        gw = gw.addr,
    ));
    let http = reqwest::Client::new();
    let full = token(&http, &gw, "backoffice-app", None).await;
    let read_only = token(&http, &gw, "backoffice-app", Some("read")).await;
    let through = |method: reqwest::Method, path: &str, token: Option<&str>| {
        let mut req = http.request(method, nginx.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req
    };

    // A valid token passes, with the identity nginx took from storegate's answer: the
    // caller's own copy of an identity header and its token never reach the upstream.
    let resp = through(reqwest::Method::GET, "/admin/echo", Some(&full))
        .header("x-storegate-client-id", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", nginx.error_log());
    let seen = log.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(seen["x-storegate-client-id"], "backoffice-app");
    assert_eq!(seen["x-storegate-scope"], "read write");
    assert_eq!(seen["x-storegate-grant"], "client_credentials");
    assert_eq!(seen["x-storegate-token-type"], "Bearer");
    assert!(!seen.contains_key("authorization"), "{seen:?}");
    assert_eq!(decisions(&gw, "allowed"), 1);

    let upstream_requests = log.requests.load(Ordering::SeqCst);
    // No token, a bad one: 401 with storegate's challenge (nginx passes it on itself).
    let resp = through(reqwest::Method::GET, "/admin/echo", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&resp).starts_with("Bearer realm="),
        "{}",
        challenge(&resp)
    );
    let resp = through(reqwest::Method::GET, "/admin/echo", Some("not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains(r#"error="invalid_token""#));
    // A token for another API, and a write with a read-only token (nginx's subrequest is a
    // GET: the method comes from X-Original-Method): 403, the challenge kept by error_page.
    let resp = through(reqwest::Method::GET, "/shop/echo", Some(&full))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        challenge(&resp).contains(r#"error="insufficient_scope""#),
        "{}",
        challenge(&resp)
    );
    let resp = through(reqwest::Method::POST, "/admin/echo", Some(&read_only))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        challenge(&resp).contains(r#"scope="write""#),
        "{}",
        challenge(&resp)
    );
    // A path storegate refuses (Tomcat and Spring read `..;` as `..`): 400, kept.
    let resp = through(reqwest::Method::GET, "/admin/..;/shop/echo", Some(&full))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "{}",
        challenge(&resp)
    );
    // A caller naming another request in another proxy's headers (which nginx passes on):
    // refused, never judged in place of the request nginx forwards.
    let resp = through(reqwest::Method::DELETE, "/admin/echo", Some(&read_only))
        .header("x-forwarded-uri", "/admin/echo")
        .header("x-forwarded-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A revoked token.
    let revoke = http
        .post(format!("http://{}/connect/revocation", gw.addr))
        .basic_auth("backoffice-app", Some(SECRET))
        .form(&[("token", full.as_str())]);
    assert_eq!(revoke.send().await.unwrap().status(), StatusCode::OK);
    let resp = through(reqwest::Method::GET, "/admin/echo", Some(&full))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains("revoked"), "{}", challenge(&resp));
    assert_eq!(
        log.requests.load(Ordering::SeqCst),
        upstream_requests,
        "no refused request reached the upstream"
    );
    // A client over its rate: 429 through nginx (it would have been a 500), not forwarded.
    let limited = token(&http, &gw, "limited-app", None).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let resp = through(reqwest::Method::GET, "/admin/echo", Some(&limited));
        statuses.push(resp.send().await.unwrap().status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(
        !statuses.contains(&StatusCode::INTERNAL_SERVER_ERROR),
        "{statuses:?}"
    );
    assert!(decisions(&gw, "refused") >= 8);

    // Storegate's data path is unchanged, and a peer not trusted to ask (127.0.0.1 here)
    // cannot pick the route with a spoofed X-Original-URI.
    let direct = format!("http://{}{DECISION}", gw.addr);
    let spoofed = http
        .get(&direct)
        .bearer_auth(&read_only)
        .header("x-original-uri", "/admin/echo")
        .header("x-original-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::FORBIDDEN);
    let body: Value = spoofed.json().await.unwrap();
    assert_eq!(body["error"], "access_denied", "{body}");
    assert!(spoofed_has_no_identity(&body));
    assert_eq!(decisions(&gw, "untrusted_peer"), 1);
    let data = http
        .get(format!("http://{}/admin/echo", gw.addr))
        .bearer_auth(&read_only);
    assert_eq!(data.send().await.unwrap().status(), StatusCode::OK);
}

fn spoofed_has_no_identity(body: &Value) -> bool {
    !body.to_string().contains("backoffice-app")
}

/// Traefik's and Envoy's forms, over the relay and HTTP/2: the same answer as nginx's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_and_envoy_forms_on_both_transports() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(
        up,
        &format!("\n[decision]\npath = \"{DECISION}\"\ntrusted_peers = [\"127.0.0.1/32\"]\n"),
    )
    .await;
    let full = gw.token("backoffice-app", SECRET).await;
    let read_only = gw.scoped_token("backoffice-app", SECRET, "read").await;
    let read_only = read_only["access_token"].as_str().unwrap().to_owned();
    for client in [client_for(&gw.ca_pem, false), gw.http2_client()] {
        // Traefik forwardAuth.
        let resp = client
            .get(gw.url(DECISION))
            .bearer_auth(&full)
            .header("x-forwarded-method", "DELETE")
            .header("x-forwarded-uri", "/admin/orders/7?force=1")
            .header("x-forwarded-host", "shop.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-storegate-client-id"], "backoffice-app");
        assert_eq!(resp.headers()["x-storegate-scope"], "read write");
        assert!(resp.headers().contains_key("x-request-id"));
        // The same request with a read-only token.
        let resp = client
            .get(gw.url(DECISION))
            .bearer_auth(&read_only)
            .header("x-forwarded-method", "DELETE")
            .header("x-forwarded-uri", "/admin/orders/7")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(challenge(&resp).contains("insufficient_scope"));
        assert!(!resp.headers().contains_key("x-storegate-client-id"));
        // A caller's nginx-form headers passed on by Traefik: refused, whichever would win.
        let resp = client
            .get(gw.url(DECISION))
            .bearer_auth(&read_only)
            .header("x-forwarded-method", "DELETE")
            .header("x-forwarded-uri", "/admin/orders/7")
            .header("x-original-method", "GET")
            .header("x-original-uri", "/admin/orders/7")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        // A URI without its method is refused, never judged as the request's own GET.
        let resp = client
            .get(gw.url(DECISION))
            .bearer_auth(&read_only)
            .header("x-forwarded-uri", "/admin/orders/7")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("method"),
            "{body}"
        );
        // Envoy ext_authz: the original method and path under the decision path.
        let envoy = |method: reqwest::Method, token: &str| {
            client
                .request(method, gw.url(&format!("{DECISION}/admin/orders?page=2")))
                .bearer_auth(token)
        };
        let resp = envoy(reqwest::Method::PUT, &read_only)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = envoy(reqwest::Method::PUT, &full).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-storegate-grant"], "client_credentials");
        // Another API's path, and no route at all, in the route's and the gateway's shape.
        let shop = client
            .get(gw.url(&format!("{DECISION}/shop/items")))
            .bearer_auth(&full)
            .send()
            .await
            .unwrap();
        assert_eq!(shop.status(), StatusCode::FORBIDDEN);
        let none = client
            .get(gw.url(&format!("{DECISION}/nothing/here")))
            .bearer_auth(&full)
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        log.requests.load(Ordering::SeqCst),
        0,
        "a decision forwards nothing"
    );
}

/// DPoP through a decision: the proof's `htu` is the public origin and the original URI,
/// `htm` the original method; a proof for the decision path itself is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_bound_token_is_judged_on_the_original_request() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(
        up,
        &format!("\n[decision]\npath = \"{DECISION}\"\ntrusted_peers = [\"127.0.0.1\"]\n"),
    )
    .await;
    let key = Key::new();
    let proof = key.proof("POST", &format!("{ISSUER}/connect/token"), "t", 0);
    let body = send_json(
        client_for(&gw.ca_pem, false)
            .post(gw.url("/connect/token"))
            .header("DPoP", proof)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "backoffice-app"),
                ("client_secret", SECRET),
            ]),
    )
    .await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    for (n, client) in [client_for(&gw.ca_pem, false), gw.http2_client()]
        .into_iter()
        .enumerate()
    {
        let ask = |htu: &str, jti: &str| {
            let proof = key.proof_with("PATCH", htu, &format!("{n}-{jti}"), 0, Some(&token));
            client
                .get(gw.url(DECISION))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .header("x-original-method", "PATCH")
                .header("x-original-uri", "/admin/orders/7?x=1")
        };
        let resp = ask(&format!("{ISSUER}/admin/orders/7"), "a")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{}", challenge(&resp));
        assert_eq!(resp.headers()["x-storegate-token-type"], "DPoP");
        let resp = ask(&format!("{ISSUER}{DECISION}"), "b")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(
            challenge(&resp).contains("invalid_dpop_proof"),
            "{}",
            challenge(&resp)
        );
    }
}

#[test]
fn config_mistakes_name_their_key() {
    let up = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    for (decision, key, says) in [
        (
            "path = \"authz\"\ntrusted_peers = [\"10.0.0.1\"]",
            "decision.path",
            "leading",
        ),
        (
            "path = \"/authz/\"\ntrusted_peers = [\"10.0.0.1\"]",
            "decision.path",
            "trailing",
        ),
        (
            "path = \"/admin\"\ntrusted_peers = [\"10.0.0.1\"]",
            "decision.path",
            "/admin/",
        ),
        (
            "path = \"/connect\"\ntrusted_peers = [\"10.0.0.1\"]",
            "decision.path",
            "endpoint",
        ),
        (
            "path = \"/a/../b\"\ntrusted_peers = [\"10.0.0.1\"]",
            "decision.path",
            "dot",
        ),
        (
            "path = \"/authz\"\ntrusted_peers = []",
            "decision.trusted_peers",
            "empty",
        ),
        (
            "path = \"/authz\"\ntrusted_peers = [\"nginx\"]",
            "decision.trusted_peers[0]",
            "CIDR",
        ),
        (
            "path = \"/authz\"\ntrusted_peer = [\"10.0.0.1\"]",
            "trusted_peer",
            "unknown field",
        ),
    ] {
        let toml = config_toml(up, &format!("\n[decision]\n{decision}\n"));
        let dir = tempfile::tempdir().unwrap();
        let err = storegate::config::Config::from_toml_str(&toml, dir.path())
            .err()
            .unwrap_or_else(|| panic!("{decision} was accepted"))
            .to_string();
        assert!(err.contains(key) && err.contains(says), "{decision}: {err}");
    }
}

/// The shipped proxy examples ask the same path and pass on every identity header the
/// decision answers with.
#[test]
fn the_shipped_examples_agree_with_the_gateway() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/decision");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let identity = [
        storegate::headers::CLIENT_ID,
        storegate::headers::SCOPE,
        storegate::headers::GRANT,
        storegate::headers::TOKEN_TYPE,
    ];
    let yaml = |f: &str| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&read(f)).unwrap();
    let ingress = yaml("ingress-nginx.yaml");
    let notes = &ingress["metadata"]["annotations"];
    let url = notes["nginx.ingress.kubernetes.io/auth-url"]
        .as_str()
        .unwrap();
    assert!(url.ends_with(DECISION), "{url}");
    let passed = notes["nginx.ingress.kubernetes.io/auth-response-headers"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    let traefik = yaml("traefik.yml");
    let forward = &traefik["http"]["middlewares"]["storegate"]["forwardAuth"];
    assert!(forward["address"].as_str().unwrap().ends_with(DECISION));
    let traefik_passes: Vec<String> = (forward["authResponseHeaders"].as_sequence().unwrap())
        .iter()
        .map(|h| h.as_str().unwrap().to_ascii_lowercase())
        .collect();
    let nginx = read("nginx/storegate-guard.conf").to_ascii_lowercase();
    for name in identity {
        let name = name.as_str();
        assert!(
            passed.split(',').any(|h| h == name),
            "ingress-nginx: {name}"
        );
        assert!(traefik_passes.iter().any(|h| h == name), "traefik: {name}");
        assert!(
            nginx.contains(&format!("proxy_set_header {name} ")),
            "nginx: {name}"
        );
        let variable = name.replace('-', "_");
        assert!(
            nginx.contains(&format!("$upstream_http_{variable};")),
            "nginx: {name}"
        );
    }
    let envoy = yaml("envoy-ext-authz.yaml");
    let authz = &envoy["http_filters"][0]["typed_config"]["http_service"];
    assert_eq!(authz["path_prefix"], DECISION);
    let asked: Vec<&str> = (authz["authorization_request"]["allowed_headers"]["patterns"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["exact"].as_str().unwrap())
        .collect();
    for header in ["authorization", "dpop", "x-forwarded-client-cert"] {
        assert!(asked.contains(&header), "envoy asks without {header}");
    }
}
