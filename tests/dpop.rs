//! DPoP at the token endpoints (RFC 9449 §5): a request with one valid proof gets a token
//! bound to the proof's key (`cnf.jkt`, `token_type: "DPoP"`) in each of the three shapes; a
//! proof that does not pass, a replayed one, or none where the client must send one, is
//! refused 400 `invalid_dpop_proof` in the endpoint's shape. Proofs are made here by hand
//! with a fresh P-256 key, as a client library makes them.

mod support;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use support::scripted::*;
use support::*;

/// A client's DPoP key.
struct Key {
    encoding: EncodingKey,
    jwk: Jwk,
}

impl Key {
    fn new() -> Key {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let encoding = EncodingKey::from_ec_der(der.as_ref());
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        Key { encoding, jwk }
    }

    fn thumbprint(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// A proof for `htm` `htu`, with `jti`, issued now (shifted by `age` seconds).
    fn proof(&self, htm: &str, htu: &str, jti: &str, age: i64) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": now - age});
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

const SECRET_FORM: [(&str, &str); 3] = [
    ("grant_type", "client_credentials"),
    ("client_id", "backoffice-app"),
    ("client_secret", SECRET),
];

async fn ask(gw: &Gateway, path: &str, form: &[(&str, &str)], proofs: &[String]) -> (u16, Value) {
    let mut req = client_for(&gw.ca_pem, false).post(gw.url(path)).form(form);
    for p in proofs {
        req = req.header("DPoP", p);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_valid_proof_gets_a_bound_token_in_every_shape() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway(up, "").await;
    let key = Key::new();
    for (path, form, token_of) in [
        ("/connect/token", &SECRET_FORM[..], "/access_token"),
        ("/oauth2-token", &SECRET_FORM[..], "/access_token"),
        (
            "/oauth/access_token",
            &[("grant_type", "implicit"), ("client_id", "public-key")][..],
            "/data/access_token",
        ),
    ] {
        let proof = key.proof("POST", &format!("{ISSUER}{path}"), &format!("j-{path}"), 0);
        let (status, body) = ask(&gw, path, form, &[proof]).await;
        assert_eq!(status, 200, "{path}: {body}");
        let envelope = token_of.trim_end_matches("/access_token");
        let fields = body.pointer(envelope).unwrap_or(&body);
        assert_eq!(fields["token_type"], "DPoP", "{path}: {body}");
        let token = body.pointer(token_of).unwrap().as_str().unwrap();
        assert_eq!(claims_of(token)["cnf"]["jkt"], key.thumbprint(), "{path}");
    }
    // Without a proof: Bearer, unbound, as before.
    let (status, body) = ask(&gw, "/connect/token", &SECRET_FORM, &[]).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")));
    assert!(
        claims_of(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn a_proof_that_does_not_pass_is_refused_in_the_endpoints_shape() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let gw = spawn_gateway(up, "").await;
    let key = Key::new();
    let htu = format!("{ISSUER}/connect/token");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![key.proof("GET", &htu, "a", 0)], "another method"),
        (
            vec![key.proof("POST", "https://evil.example/connect/token", "b", 0)],
            "another URL",
        ),
        (
            vec![key.proof("POST", &format!("{ISSUER}/oauth2-token"), "c", 0)],
            "another URL",
        ),
        (vec![key.proof("POST", &htu, "d", 600)], "too old"),
        (
            vec![key.proof("POST", &htu, "e", -600)],
            "too old or from the future",
        ),
        (
            vec![
                key.proof("POST", &htu, "f", 0),
                key.proof("POST", &htu, "g", 0),
            ],
            "more than one",
        ),
        (vec!["not.a.proof".into()], "malformed"),
    ];
    for (proofs, why) in cases {
        let (status, body) = ask(&gw, "/connect/token", &SECRET_FORM, &proofs).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{why}: {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(why), "{why}: {body}");
    }
    // Replay: the same proof a second time.
    let proof = key.proof("POST", &htu, "once", 0);
    let (status, _) = ask(
        &gw,
        "/connect/token",
        &SECRET_FORM,
        std::slice::from_ref(&proof),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = ask(&gw, "/connect/token", &SECRET_FORM, &[proof]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    // The `{"errors"}` shape of seed 004.
    let bad = key.proof("GET", &format!("{ISSUER}/oauth/access_token"), "h", 0);
    let form = [("grant_type", "implicit"), ("client_id", "public-key")];
    let (status, body) = ask(&gw, "/oauth/access_token", &form, &[bad]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0]["title"].is_string(), "{body}");
}

#[tokio::test]
async fn a_client_registered_for_dpop_must_send_a_proof() {
    let (up, _) = scripted(false, |_| (ok("{}"), false)).await;
    let toml = config_with(up, |t| {
        let clients = clients_of(t);
        let mut entry = client_entry("bound-app", SECRET, &["backoffice"], &["read"]);
        entry
            .as_table_mut()
            .unwrap()
            .insert("dpop_bound_access_tokens".into(), true.into());
        clients.push(entry);
    });
    let gw = spawn_gateway_toml(&toml).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "bound-app"),
        ("client_secret", SECRET),
    ];
    let (status, body) = ask(&gw, "/connect/token", &form, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let proof = Key::new().proof("POST", &format!("{ISSUER}/connect/token"), "x", 0);
    let (status, body) = ask(&gw, "/connect/token", &form, &[proof]).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
}
