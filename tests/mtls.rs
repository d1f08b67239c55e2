//! Mutual TLS (RFC 8705): clients authenticating with their certificate (`tls_client_auth`,
//! `self_signed_tls_client_auth`) and tokens bound to it (`cnf.x5t#S256`), over a real TLS
//! listener asking for certificates, with real clients (reqwest over HTTP/1.1, the relay, and
//! HTTP/2, hyper; curl with `--cert`).

mod support;

use rcgen::{DnType, SanType};
use reqwest::StatusCode;
use serde_json::Value;
use support::pki::{Ca, ERP_DN, Identity, Pki, client_with, erp_client, mtls_gateway, self_signed};
use support::*;

/// A gateway asking for client certificates (see `support::pki::mtls_toml`).
async fn gateway(pki: &Pki, client_auth: &str, edit: impl FnOnce(&mut toml::Table)) -> Gateway {
    mtls_gateway(pki, client_auth, edit).await.0
}

/// The token endpoint's answer to `client_id` asking with `client`'s certificate.
async fn token_response(
    gw: &Gateway,
    client: &reqwest::Client,
    client_id: &str,
) -> reqwest::Response {
    client
        .post(gw.url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap()
}

async fn token_for(gw: &Gateway, id: &Identity, client_id: &str) -> String {
    let resp = token_response(gw, &client_with(&gw.ca_pem, Some(id), false), client_id).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Asserts an `invalid_client` refusal whose description contains `why`.
async fn assert_refused(resp: reqwest::Response, why: &str) {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(why), "{body}");
}

async fn get(client: &reqwest::Client, gw: &Gateway, token: &str) -> reqwest::Response {
    client
        .get(gw.url("/admin/echo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_signed_certificate_naming_the_registered_dn_gets_a_bound_token() {
    let pki = Pki::new();
    let gw = gateway(&pki, "optional", |_| {}).await;
    let token = token_for(&gw, &pki.erp, "erp").await;
    let claims = claims_of(&token);
    assert_eq!(claims["cnf"]["x5t#S256"], pki.erp.x5t(), "{claims}");
    assert_eq!(claims["client_id"], "erp");
    // The same certificate passes the guard on HTTP/1.1 (the relay) and HTTP/2 (hyper).
    for http2 in [false, true] {
        let client = client_with(&gw.ca_pem, Some(&pki.erp), http2);
        let resp = get(&client, &gw, &token).await;
        assert_eq!(resp.status(), 200, "http2: {http2}");
    }
    // Callers without a certificate are served as before (client_auth = "optional").
    let secret = gw.token("backoffice-app", SECRET).await;
    assert_eq!(gw.get_bearer("/admin/echo", &secret).await.status(), 200);
    let admin = gw.spawn_admin().await;
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "storegate_client_authentications_total{method=\"tls_client_auth\",outcome=\"accepted\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_is_refused_without_its_certificate_on_both_paths() {
    let pki = Pki::new();
    let gw = gateway(&pki, "optional", |_| {}).await;
    let token = token_for(&gw, &pki.erp, "erp").await;
    let other = pki.ca.issue(11, &ERP_DN, Vec::new());
    for http2 in [false, true] {
        let none = client_with(&gw.ca_pem, None, http2);
        let resp = get(&none, &gw, &token).await;
        assert_invalid_token(&resp);
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("present it"), "{challenge}");
        // Another certificate with the same subject and CA is another certificate.
        let wrong = client_with(&gw.ca_pem, Some(&other), http2);
        let resp = get(&wrong, &gw, &token).await;
        assert_invalid_token(&resp);
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains("another TLS client certificate"),
            "{challenge}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_do_not_authenticate_the_client_are_refused() {
    let pki = Pki::new();
    // Each refusal counts as a failure of this source: more than the default five are made.
    let gw = gateway(&pki, "optional", |t| {
        let mut throttle = toml::Table::new();
        throttle.insert("failures_per_source".into(), 50.into());
        t.insert("throttle".into(), throttle.into());
    })
    .await;
    let stranger_ca = Ca::new("Someone else's CA");
    let now = time::OffsetDateTime::now_utc();
    let cases: [(&str, Option<Identity>, &str); 5] = [
        (
            "another CA",
            Some(stranger_ca.issue(10, &[(DnType::CommonName, "erp")], Vec::new())),
            "not issued by a CA trusted",
        ),
        (
            "the matching DN under another CA",
            Some(stranger_ca.issue(12, &ERP_DN, Vec::new())),
            "not issued by a CA trusted",
        ),
        (
            "expired",
            Some(pki.ca.issue_valid(
                13,
                &ERP_DN,
                Vec::new(),
                (now - time::Duration::days(3), now - time::Duration::days(1)),
            )),
            "expired",
        ),
        (
            "the right CA, another subject",
            Some(pki.ca.issue(
                14,
                &[
                    (DnType::CountryName, "DE"),
                    (DnType::OrganizationName, "Example Store"),
                    (DnType::OrganizationalUnitName, "b2b"),
                    (DnType::CommonName, "pos"),
                ],
                Vec::new(),
            )),
            "does not name this client's registered subject",
        ),
        (
            "no certificate",
            None,
            "authenticates with a TLS client certificate",
        ),
    ];
    for (case, id, why) in cases {
        let client = client_with(&gw.ca_pem, id.as_ref(), false);
        let resp = token_response(&gw, &client, "erp").await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_refused(resp, why).await;
    }
    // A secret is no way in for a certificate client, nor the erp certificate for another.
    let client = client_with(&gw.ca_pem, Some(&pki.erp), false);
    let resp = client
        .post(gw.url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "erp"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let resp = token_response(&gw, &client, "kiosk").await;
    assert_refused(resp, "not one registered for this client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_by_a_reloaded_crl_is_refused() {
    let pki = Pki::new();
    let gw = gateway(&pki, "optional", |_| {}).await;
    let token = token_for(&gw, &pki.erp, "erp").await;
    gw.reload_file("client-crl.pem", pki.ca.crl(&[pki.erp.serial]))
        .await;
    let client = client_with(&gw.ca_pem, Some(&pki.erp), false);
    assert_refused(token_response(&gw, &client, "erp").await, "revoked").await;
    // A bound token already issued stays bound to its certificate (revocation of tokens is
    // the revocation endpoint's): the guard checks the binding, not the chain.
    assert_eq!(get(&client, &gw, &token).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_registered_in_the_jwks_authenticates_and_rotates_live() {
    let pki = Pki::new();
    let gw = gateway(&pki, "optional", |_| {}).await;
    let token = token_for(&gw, &pki.kiosk, "kiosk").await;
    assert_eq!(claims_of(&token)["cnf"]["x5t#S256"], pki.kiosk.x5t());
    let kiosk = client_with(&gw.ca_pem, Some(&pki.kiosk), true);
    assert_eq!(get(&kiosk, &gw, &token).await.status(), 200);
    // A self-signed certificate is never taken as CA-signed: not for the erp client.
    let resp = token_response(
        &gw,
        &client_with(&gw.ca_pem, Some(&pki.kiosk), false),
        "erp",
    )
    .await;
    assert_refused(resp, "not issued by a CA trusted").await;
    // A new certificate: refused until the JWKS file lists it, then accepted.
    let next = self_signed("kiosk");
    let with_next = client_with(&gw.ca_pem, Some(&next), false);
    assert_refused(
        token_response(&gw, &with_next, "kiosk").await,
        "not one registered",
    )
    .await;
    gw.reload_file("kiosk.jwks", next.jwks().to_string()).await;
    assert_eq!(token_response(&gw, &with_next, "kiosk").await.status(), 200);
    assert_refused(
        token_response(&gw, &kiosk, "kiosk").await,
        "not one registered",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_metadata_speak_of_certificate_binding() {
    let pki = Pki::new();
    let gw = gateway(&pki, "optional", |_| {}).await;
    let token = token_for(&gw, &pki.erp, "erp").await;
    // The kiosk introspects, authenticating with its certificate.
    let kiosk = client_with(&gw.ca_pem, Some(&pki.kiosk), false);
    let body: Value = kiosk
        .post(gw.url("/oauth2/introspect"))
        .form(&[("token", token.as_str()), ("client_id", "kiosk")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["cnf"]["x5t#S256"], pki.erp.x5t(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let meta = gw.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(
        methods.contains("\"tls_client_auth\"") && methods.contains("self_signed"),
        "{meta}"
    );
    let resource = gw
        .get_json("/.well-known/oauth-protected-resource/admin/")
        .await;
    assert_eq!(
        resource["tls_client_certificate_bound_access_tokens"], true,
        "{resource}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_listener_turns_away_callers_without_a_ca_signed_certificate() {
    let pki = Pki::new();
    // No self-signed client: "required" checks the chain in the handshake.
    let gw = gateway(&pki, "required", |t| {
        clients_of(t).retain(|c| c["id"].as_str() != Some("kiosk"));
    })
    .await;
    let url = gw.url("/.well-known/jwks.json");
    let none = client_with(&gw.ca_pem, None, false);
    assert!(none.get(&url).send().await.is_err(), "no certificate");
    let stranger = client_with(&gw.ca_pem, Some(&self_signed("x")), false);
    assert!(stranger.get(&url).send().await.is_err(), "self-signed");
    let erp = client_with(&gw.ca_pem, Some(&pki.erp), false);
    assert_eq!(erp.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_cert_and_key_gets_a_token_and_calls_the_api() {
    let pki = Pki::new();
    let gw = gateway(&pki, "optional", |t| {
        let pos: toml::Value = toml::from_str(
            r#"
id = "pos"
apis = ["backoffice"]
scopes = ["read"]
token_endpoint_auth_method = "tls_client_auth"
tls_client_auth_san_dns = "pos.shop.example"
tls_client_certificate_bound_access_tokens = true
"#,
        )
        .unwrap();
        clients_of(t).push(pos);
    })
    .await;
    let pos = pki.ca.issue(
        20,
        &[(DnType::CommonName, "point of sale")],
        vec![SanType::DnsName("pos.shop.example".try_into().unwrap())],
    );
    let dir = gw.dir.path();
    for (name, text) in [
        ("gw-ca.pem", &gw.ca_pem),
        ("pos.pem", &pos.cert_pem),
        ("pos.key", &pos.key_pem),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                "gw-ca.pem",
                "--cert",
                "pos.pem",
                "--key",
                "pos.key",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("curl is installed (scripts/test installs it)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let answer = curl(&[
        "-d",
        "grant_type=client_credentials",
        "-d",
        "client_id=pos",
        &gw.url("/connect/token"),
    ]);
    let body: Value = serde_json::from_str(&answer).unwrap();
    let token = body["access_token"].as_str().expect(&answer).to_owned();
    assert_eq!(claims_of(&token)["cnf"]["x5t#S256"], pos.x5t());
    let status = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &gw.url("/admin/echo"),
    ]);
    assert_eq!(status, "200");
    // The token without the certificate: curl without --cert.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            "gw-ca.pem",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            &gw.url("/admin/echo"),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
}

#[test]
fn config_mistakes_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kiosk.jwks"), r#"{"keys":[{"kty":"EC"}]}"#).unwrap();
    let up: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let erp = |extra: &str| {
        format!(
            "id = \"erp\"\napis = [\"backoffice\"]\ntoken_endpoint_auth_method = \"tls_client_auth\"\n\
             tls_client_auth_subject_dn = \"CN=erp,C=DE\"\n{extra}"
        )
    };
    let cases: [(&str, &str, String, &str); 10] = [
        ("no CA", "optional", erp(""), "tls.client_ca"),
        ("asks for none", "off", erp(""), "tls.client_auth"),
        (
            "two subjects",
            "optional",
            erp("tls_client_auth_san_dns = \"erp.example\""),
            "one tls_client_auth_* key too many",
        ),
        (
            "a secret never accepted",
            "optional",
            erp(&format!("secret_hash = \"{}\"", storegate::clients::hash_secret("x"))),
            "clients[3].secret_hash",
        ),
        (
            "an unknown method",
            "optional",
            "id = \"x\"\napis = [\"a\"]\ntoken_endpoint_auth_method = \"client_secret_jwt\"".into(),
            "clients[3].token_endpoint_auth_method",
        ),
        (
            "a DN that is no DN",
            "optional",
            "id = \"x\"\napis = [\"a\"]\ntoken_endpoint_auth_method = \"tls_client_auth\"\n\
             tls_client_auth_subject_dn = \"erp\""
                .into(),
            "clients[3].tls_client_auth_subject_dn",
        ),
        (
            "self-signed without certificates",
            "optional",
            "id = \"x\"\napis = [\"a\"]\ntoken_endpoint_auth_method = \"self_signed_tls_client_auth\""
                .into(),
            "clients[3].jwks_file",
        ),
        (
            "a JWKS without x5c",
            "optional",
            "id = \"x\"\napis = [\"a\"]\ntoken_endpoint_auth_method = \"self_signed_tls_client_auth\"\n\
             jwks_file = \"kiosk.jwks\""
                .into(),
            "holds no key with a certificate",
        ),
        ("a misspelt key", "optional", erp("tls_client_auth_subject = \"CN=x\""), "unknown field"),
        ("a mode that is none", "sometimes", String::new(), "tls.client_auth"),
    ];
    for (case, ask, client, expect) in cases {
        let mut table: toml::Table = config_toml(up, "").parse().unwrap();
        table["tls"]
            .as_table_mut()
            .unwrap()
            .insert("client_auth".into(), ask.into());
        if !client.is_empty() {
            clients_of(&mut table).push(toml::Value::Table(client.parse().unwrap()));
        }
        let text = toml::to_string(&table).unwrap();
        let err = storegate::config::Config::from_toml_str(&text, dir.path())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{case}: {err}");
    }
    // "required" with nothing to accept.
    let mut table: toml::Table = config_toml(up, "").parse().unwrap();
    table["tls"]
        .as_table_mut()
        .unwrap()
        .insert("client_auth".into(), "required".into());
    let err =
        storegate::config::Config::from_toml_str(&toml::to_string(&table).unwrap(), dir.path())
            .map(|_| ())
            .unwrap_err()
            .to_string();
    assert!(err.contains("no certificate could be accepted"), "{err}");
}

/// A gateway behind a proxy that does the mTLS: the proxy's header (`header`) is believed from
/// `peers` only. The erp client authenticates by the certificate the proxy passes on.
async fn behind_proxy(
    pki: &Pki,
    header: &str,
    peers: &[&str],
) -> (Gateway, std::sync::Arc<UpstreamLog>) {
    let (up, log) = spawn_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-ca.pem"), &pki.ca.pem).unwrap();
    let toml = config_with(up, |t| {
        let tls = t["tls"].as_table_mut().unwrap();
        tls.insert("client_ca".into(), "client-ca.pem".into());
        tls.insert("client_auth".into(), "off".into());
        let mut f = toml::Table::new();
        let peers = peers
            .iter()
            .map(|p| toml::Value::from(*p))
            .collect::<Vec<_>>();
        f.insert("trusted_peers".into(), peers.into());
        f.insert("header".into(), header.into());
        t.insert("forwarded_client_cert".into(), f.into());
        clients_of(t).push(erp_client());
    });
    (spawn_gateway_in(dir, &toml).await, log)
}

/// The header value a proxy of each kind would send for `id`.
fn proxy_header(header: &str, id: &Identity) -> (String, String) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&id.der);
    let escaped = || {
        percent_encoding::utf8_percent_encode(&id.cert_pem, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    };
    let value = match header {
        "client-cert" => format!(":{b64}:"),
        "x-forwarded-client-cert" => {
            // Envoy's Hash: the hex SHA-256 of the certificate it saw.
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &id.der);
            let hash: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "By=spiffe://cluster.local/ns/shop/sa/gw;Hash={hash};Cert=\"{}\"",
                escaped()
            )
        }
        "ssl-client-cert" => escaped(),
        _ => b64,
    };
    (header.to_owned(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_passes_the_certificate_in_each_header_form() {
    let pki = Pki::new();
    for header in [
        "client-cert",
        "x-forwarded-client-cert",
        "ssl-client-cert",
        "x-forwarded-tls-client-cert",
    ] {
        let (gw, log) = behind_proxy(&pki, header, &["127.0.0.1/32", "::1"]).await;
        let (name, value) = proxy_header(header, &pki.erp);
        let resp = gw
            .client
            .post(gw.url("/connect/token"))
            .header(&name, &value)
            .form(&[("grant_type", "client_credentials"), ("client_id", "erp")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{header}");
        let token = resp.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            claims_of(&token)["cnf"]["x5t#S256"],
            pki.erp.x5t(),
            "{header}"
        );
        // The bound token passes with the proxy's header, on both paths, and the header
        // never reaches the upstream.
        for client in [&gw.client, &gw.http2_client()] {
            let resp = client
                .get(gw.url("/admin/echo"))
                .bearer_auth(&token)
                .header(&name, &value)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{header}");
            let seen = log.last_headers.lock().unwrap().clone().unwrap();
            assert!(
                !seen.contains_key(name.as_str()),
                "{header} reached the upstream"
            );
        }
        assert_invalid_token(&gw.get_bearer("/admin/echo", &token).await);
        gw.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_certificate_header_from_an_untrusted_peer_is_ignored() {
    let pki = Pki::new();
    // Loopback is not among the trusted peers: the test client is anyone.
    let (gw, log) = behind_proxy(&pki, "client-cert", &["10.0.0.0/8"]).await;
    let (name, value) = proxy_header("client-cert", &pki.erp);
    let resp = gw
        .client
        .post(gw.url("/connect/token"))
        .header(&name, &value)
        .form(&[("grant_type", "client_credentials"), ("client_id", "erp")])
        .send()
        .await
        .unwrap();
    assert_refused(resp, "authenticates with a TLS client certificate").await;
    // Nor does it reach the upstream on a guarded request.
    let secret = gw.token("backoffice-app", SECRET).await;
    let resp = gw
        .client
        .get(gw.url("/admin/echo"))
        .bearer_auth(&secret)
        .header(&name, &value)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = log.last_headers.lock().unwrap().clone().unwrap();
    assert!(!seen.contains_key("client-cert"));
}

/// Certificate-bound and DPoP-bound combine: a token request with both a certificate and a
/// DPoP proof gets a token bound to both, and the guard asks for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bound_to_a_certificate_and_a_dpop_key_needs_both() {
    use support::dpop::Key;
    let pki = Pki::new();
    let gw = gateway(&pki, "optional", |_| {}).await;
    let key = Key::new();
    let erp = client_with(&gw.ca_pem, Some(&pki.erp), false);
    let proof = key.proof("POST", &format!("{ISSUER}/connect/token"), "both-1", 0);
    let resp = erp
        .post(gw.url("/connect/token"))
        .header("DPoP", proof)
        .form(&[("grant_type", "client_credentials"), ("client_id", "erp")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let cnf = claims_of(&token)["cnf"].clone();
    assert_eq!(cnf["x5t#S256"], pki.erp.x5t(), "{cnf}");
    assert_eq!(cnf["jkt"], key.thumbprint(), "{cnf}");
    let url = format!("{ISSUER}/admin/echo");
    let call = |client: reqwest::Client, jti: &str| {
        let proof = key.proof_with("GET", &url, jti, 0, Some(&token));
        let req = client
            .get(gw.url("/admin/echo"))
            .header("authorization", format!("DPoP {token}"))
            .header("DPoP", proof);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(
        call(client_with(&gw.ca_pem, None, false), "both-2").await,
        401
    );
    assert_eq!(
        call(client_with(&gw.ca_pem, Some(&pki.erp), true), "both-3").await,
        200
    );
    let bearer = erp
        .get(gw.url("/admin/echo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        401,
        "a DPoP-bound token is never a Bearer token"
    );
}
