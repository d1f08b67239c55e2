//! The admin listener: probes, Prometheus metrics, the operator's revocations, and request
//! ids on the public side.

mod support;

use reqwest::StatusCode;
use support::*;

/// The test config with an admin section whose credential lives in the gateway's folder.
fn with_admin(up: std::net::SocketAddr) -> String {
    config_with(up, |t| {
        let mut admin = toml::Table::new();
        admin.insert("listen".into(), "127.0.0.1:0".into());
        admin.insert("token_file".into(), "admin.token".into());
        t.insert("admin".into(), admin.into());
        // A route whose upstream refuses connections, for the upstream error metrics.
        let mut dead = toml::Table::new();
        dead.insert("prefix".into(), "/dead/".into());
        dead.insert("upstream".into(), "http://127.0.0.1:9".into());
        dead.insert("api".into(), "backoffice".into());
        t["routes"].as_array_mut().unwrap().push(dead.into());
    })
}

async fn get(url: String) -> (StatusCode, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn probes_follow_readiness_and_the_drain() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&with_admin(up)).await;
    let admin = gw.spawn_admin().await;
    assert_eq!(get(format!("{admin}/livez")).await.0, StatusCode::OK);
    assert_eq!(get(format!("{admin}/readyz")).await.0, StatusCode::OK);
    gw.state.shared.health.start_drain();
    assert_eq!(
        get(format!("{admin}/readyz")).await,
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
    );
    assert_eq!(get(format!("{admin}/livez")).await.0, StatusCode::OK);
    // Nothing of the admin listener is on the public one, and the reverse.
    assert_eq!(
        gw.client
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        get(format!("{admin}/connect/token")).await.0,
        StatusCode::NOT_FOUND
    );
    // While draining, HTTP/1.1 callers are told to close their connection.
    let token = gw.token("backoffice-app", SECRET).await;
    let resp = gw.get_bearer("/admin/echo", &token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["connection"], "close");
}

/// The value of the series `name` (labels included, as rendered) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_tokens_verifications_and_upstream_errors() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&with_admin(up)).await;
    let admin = gw.spawn_admin().await;
    let token = gw.token("backoffice-app", SECRET).await;
    for _ in 0..2 {
        assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
    }
    assert_eq!(
        gw.get_bearer("/admin/random-9f3c1e", "garbage")
            .await
            .status(),
        401
    );
    let kid = gw.generation().keys.kid.clone();
    let expired = mint_eddsa(&gw.signing_key_pem(), &kid, &claims(-60));
    assert_eq!(gw.get_bearer("/admin/echo", &expired).await.status(), 401);
    assert_eq!(gw.get_bearer("/dead/x", &token).await.status(), 502);
    let refused = gw
        .post_form(
            "/connect/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);

    let resp = reqwest::get(format!("{admin}/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.text().await.unwrap();
    let expect = [
        (
            r#"storegate_requests_total{route="/admin/",status="200"}"#,
            2.0,
        ),
        (
            r#"storegate_requests_total{route="/admin/",status="401"}"#,
            2.0,
        ),
        (
            r#"storegate_requests_total{route="/dead/",status="502"}"#,
            1.0,
        ),
        (
            r#"storegate_request_duration_seconds_count{route="/admin/"}"#,
            4.0,
        ),
        (
            r#"storegate_tokens_issued_total{endpoint="/connect/token",grant="client_credentials"}"#,
            1.0,
        ),
        (
            r#"storegate_token_requests_refused_total{endpoint="/connect/token",error="invalid_client"}"#,
            1.0,
        ),
        (r#"storegate_verifications_total{result="verified"}"#, 1.0),
        (r#"storegate_verifications_total{result="cache_hit"}"#, 2.0),
        (r#"storegate_verifications_total{result="malformed"}"#, 1.0),
        (r#"storegate_verifications_total{result="expired"}"#, 1.0),
        (
            r#"storegate_upstream_errors_total{route="/dead/",kind="connect"}"#,
            1.0,
        ),
        ("storegate_config_generation", 1.0),
        (r#"storegate_config_reloads_total{result="success"}"#, 0.0),
        ("storegate_revoked_tokens", 0.0),
    ];
    for (series, v) in expect {
        assert_eq!(value(&text, series), Some(v), "{series} in\n{text}");
    }
    assert!(value(&text, r#"storegate_open_connections{protocol="http1"}"#).unwrap() >= 1.0);
    let expiry = value(&text, "storegate_certificate_expiry_timestamp_seconds").unwrap();
    assert!(expiry > storegate::token::now_unix() as f64, "{expiry}");
    assert!(text.contains(r#"storegate_build_info{version=""#));
    // Label values come from the config, never from the request.
    assert!(!text.contains("random-9f3c1e"), "{text}");
}

#[tokio::test]
async fn operator_revocations_need_the_admin_credential() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&with_admin(up)).await;
    let admin = gw.spawn_admin().await;
    let credential = std::fs::read_to_string(gw.dir.path().join("admin.token")).unwrap();
    let credential = credential.trim();
    assert!(credential.len() >= 32);
    let token = gw.token("backoffice-app", SECRET).await;
    let other = gw.token("storefront-app", READER_SECRET).await;
    assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);

    let http = reqwest::Client::new();
    let post = |auth: Option<String>, body: serde_json::Value| {
        let mut req = http.post(format!("{admin}/revocations")).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    let body = serde_json::json!({"client": "backoffice-app"});
    let none = post(None, body.clone()).await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let wrong = post(Some("Bearer wrong".into()), body.clone())
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(!wrong.text().await.unwrap().contains(credential));
    assert_eq!(
        gw.get_bearer("/admin/echo", &token).await.status(),
        200,
        "nothing revoked"
    );
    let unknown = post(
        Some(format!("Bearer {credential}")),
        serde_json::json!({"client": "nobody"}),
    );
    assert_eq!(unknown.await.unwrap().status(), StatusCode::BAD_REQUEST);

    let done = post(Some(format!("Bearer {credential}")), body)
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(done.json::<serde_json::Value>().await.unwrap()["added"], 1);
    assert_invalid_token(&gw.get_bearer("/admin/echo", &token).await);
    assert_eq!(
        gw.get_bearer("/shop/echo", &other).await.status(),
        200,
        "another client's"
    );
    let metrics = get(format!("{admin}/metrics")).await.1;
    assert_eq!(value(&metrics, "storegate_revoked_tokens"), Some(1.0));
}

#[tokio::test]
async fn state_changing_admin_endpoints_are_off_without_a_credential() {
    let (up, _) = spawn_upstream().await;
    let toml = config_with(up, |t| {
        let mut admin = toml::Table::new();
        admin.insert("listen".into(), "127.0.0.1:0".into());
        t.insert("admin".into(), admin.into());
    });
    let gw = spawn_gateway_toml(&toml).await;
    let admin = gw.spawn_admin().await;
    let resp = reqwest::Client::new()
        .post(format!("{admin}/revocations"))
        .header("authorization", "Bearer anything")
        .json(&serde_json::json!({"client": "backoffice-app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(get(format!("{admin}/readyz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_go_both_ways() {
    let (up, log) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let send = |id: &'static str| {
        gw.client
            .get(gw.url("/admin/echo"))
            .bearer_auth(&token)
            .header("x-request-id", id)
            .header("traceparent", traceparent)
            .send()
    };
    let kept = send("order-7f3a.retry-1").await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "order-7f3a.retry-1");
    let upstream_saw = log.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(upstream_saw["x-request-id"], "order-7f3a.retry-1");
    assert_eq!(
        upstream_saw["traceparent"], traceparent,
        "passed through untouched"
    );

    let replaced = send("bad id with spaces").await.unwrap();
    let made = replaced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(made.len(), 32);
    let upstream_saw = log.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(upstream_saw["x-request-id"], made.as_str());
    // Refusals carry one too.
    let refused = gw.client.get(gw.url("/admin/echo")).send().await.unwrap();
    assert_eq!(refused.headers()["x-request-id"].len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revoke_command_revokes_through_the_admin_listener() {
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway_toml(&with_admin(up)).await;
    let admin = gw.spawn_admin().await;
    let token = gw.token("backoffice-app", SECRET).await;
    // The CLI reads the same config, with the admin address the gateway really bound.
    let port = admin.rsplit(':').next().unwrap();
    let cli_config = std::fs::read_to_string(gw.dir.path().join("gateway.toml"))
        .unwrap()
        .replace(
            "127.0.0.1:0\"\ntoken_file",
            &format!("127.0.0.1:{port}\"\ntoken_file"),
        );
    assert!(
        cli_config.contains(&format!("127.0.0.1:{port}")),
        "{cli_config}"
    );
    let path = gw.dir.path().join("cli.toml");
    std::fs::write(&path, cli_config).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_storegate"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = run(&["revoke", "client", "nobody"]);
    assert!(!ok && text.contains("no client"), "{text}");
    assert_eq!(gw.get_bearer("/admin/echo", &token).await.status(), 200);
    let (ok, text) = run(&["revoke", "client", "backoffice-app"]);
    assert!(ok, "{text}");
    assert_invalid_token(&gw.get_bearer("/admin/echo", &token).await);
    let fresh = gw.token("backoffice-app", SECRET).await;
    let jti = claims_of(&fresh)["jti"].as_str().unwrap().to_owned();
    assert_eq!(
        gw.get_bearer("/admin/echo", &fresh).await.status(),
        200,
        "issued after"
    );
    let (ok, text) = run(&["revoke", "token", &jti, "--client", "backoffice-app"]);
    assert!(ok, "{text}");
    assert_invalid_token(&gw.get_bearer("/admin/echo", &fresh).await);
}
