//! Hostile DPoP proofs at the guard (RFC 9449 §4.3, §7.1), one test each. Every test gets a
//! DPoP-bound token at /connect/token, sends the guarded request with the hostile proof and
//! asserts the refusal — 401, a `DPoP` challenge with `error="invalid_dpop_proof"` and the
//! reason's description, the route's JSON body — and that the upstream saw nothing of it;
//! then it sends the same request with a good proof and asserts that it passes, so that the
//! refusal is the proof's doing and the test can fail. Each case goes over HTTP/1.1 (the
//! relay, a fresh connection per request) and HTTP/2, and over raw bytes where an HTTP client
//! will not say it (a `Host` or `:authority` naming another host, two `DPoP` fields).
//! Proofs jsonwebtoken will not write are made by hand (`signed`, `unsigned`).
//!
//! Replay, and replay across replicas, are `dpop.rs`'s and the cluster tests'.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use support::dpop::*;
use support::scripted::*;
use support::*;

/// How a request reaches the gateway.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// reqwest over HTTP/1.1, on a fresh connection each time (so the relay serves it).
    Http1,
    /// reqwest over HTTP/2.
    Http2,
    /// Raw bytes over HTTP/1.1 with this `Host`; the target in absolute form when `absolute`.
    /// Each proof is a `DPoP` field of its own.
    Raw { host: &'static str, absolute: bool },
    /// A raw HTTP/2 stream whose `:authority` is this.
    H2 { authority: &'static str },
}

const BOTH: [Via; 2] = [Via::Http1, Via::Http2];
/// The upstream's answer; its mixed-case field shows whether the relay passed it on.
const UPSTREAM_ANSWER: &str = "HTTP/1.1 200 OK\r\nX-Served-By: up\r\ncontent-length: 2\r\n\r\n{}";
const GATEWAY_HOST: &str = "gateway.test";

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// `WWW-Authenticate` ("" without one).
    challenge: String,
    /// The body as JSON (as a JSON string when it is not JSON).
    body: Value,
    /// For raw HTTP/1.1: whether the relay served it (it keeps the upstream's header case,
    /// hyper lowers it).
    relayed: Option<bool>,
}

fn answer(status: u16, challenge: Option<&str>, body: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(body).into_owned();
    Answer {
        status,
        challenge: challenge.unwrap_or_default().to_owned(),
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        relayed: None,
    }
}

/// A gateway in front of a scripted upstream, a client's key, and a token bound to that key
/// for the route `path` is on.
struct Bench {
    gw: Gateway,
    seen: Arc<Seen>,
    key: Key,
    token: String,
    /// The guarded request's path.
    path: &'static str,
    /// The route's documented error shape is `{"errors"}` (seed 004), not OAuth's.
    errors_shape: bool,
    h2: reqwest::Client,
    jtis: AtomicUsize,
}

impl Bench {
    /// `GET /admin/orders` with a backoffice-app token (the OAuth error shape).
    async fn new() -> Bench {
        Bench::on("/admin/orders", "backoffice-app", SECRET, false).await
    }

    async fn on(path: &'static str, client: &str, secret: &str, errors_shape: bool) -> Bench {
        let (up, seen) = scripted(false, |_| (UPSTREAM_ANSWER.as_bytes().to_vec(), false)).await;
        let gw = spawn_gateway(up, "").await;
        let key = Key::new();
        let h2 = gw.http2_client();
        let mut b = Bench {
            gw,
            seen,
            key,
            token: String::new(),
            path,
            errors_shape,
            h2,
            jtis: AtomicUsize::new(0),
        };
        b.token = b.bound_token(client, secret).await;
        b
    }

    /// A fresh token for `client`, bound to the bench's key.
    async fn bound_token(&self, client: &str, secret: &str) -> String {
        let proof = self
            .key
            .proof("POST", &format!("{ISSUER}/connect/token"), &self.jti(), 0);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
        ];
        let resp = client_for(&self.gw.ca_pem, false)
            .post(self.gw.url("/connect/token"))
            .form(&form)
            .header("DPoP", proof)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP", "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A jti no other proof of this gateway has.
    fn jti(&self) -> String {
        format!("jti-{}", self.jtis.fetch_add(1, Ordering::Relaxed))
    }

    /// The `htu` of the guarded request.
    fn htu(&self) -> String {
        format!("{ISSUER}{}", self.path)
    }

    /// The claims of a good proof for `GET` on the guarded path, for a test to edit.
    fn claims(&self) -> Value {
        proof_claims("GET", &self.htu(), &self.jti(), 0, Some(&self.token))
    }

    /// A good proof for `GET target` (its query is no part of `htu`).
    fn good(&self, target: &str) -> String {
        let path = target.split('?').next().unwrap();
        let htu = format!("{ISSUER}{path}");
        self.key
            .proof_with("GET", &htu, &self.jti(), 0, Some(&self.token))
    }

    /// `GET target` with the bench's token and `proofs`, `via` as said.
    async fn send(&self, via: Via, target: &str, proofs: &[String]) -> Answer {
        let authorization = format!("DPoP {}", self.token);
        let client = match via {
            Via::Http1 => client_for(&self.gw.ca_pem, false),
            Via::Http2 => self.h2.clone(),
            Via::Raw { host, absolute } => {
                let target = if absolute {
                    format!("https://{host}{target}")
                } else {
                    target.to_owned()
                };
                let mut head = format!(
                    "GET {target} HTTP/1.1\r\nhost: {host}\r\nauthorization: {authorization}\r\n"
                );
                for p in proofs {
                    head.push_str(&format!("dpop: {p}\r\n"));
                }
                head.push_str("connection: close\r\n\r\n");
                return parse_raw(&raw_https(&self.gw, head.as_bytes()).await);
            }
            Via::H2 { authority } => {
                return self.h2_get(authority, target, &authorization, proofs).await;
            }
        };
        let mut req = client
            .get(self.gw.url(target))
            .header("authorization", authorization);
        for p in proofs {
            req = req.header("DPoP", p);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        answer(status, challenge.as_deref(), &resp.bytes().await.unwrap())
    }

    /// `GET target` on an HTTP/2 stream of its own, `:authority` being `authority`.
    async fn h2_get(
        &self,
        authority: &str,
        target: &str,
        authorization: &str,
        proofs: &[String],
    ) -> Answer {
        let tls = tls_stream(&self.gw, &[&self.gw.ca_pem], &[b"h2"]).await;
        let (h2, connection) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(connection);
        let mut req = http::Request::get(format!("https://{authority}{target}"))
            .header("authorization", authorization);
        for p in proofs {
            req = req.header("dpop", p.as_str());
        }
        let mut h2 = h2.ready().await.unwrap();
        let (resp, _) = h2.send_request(req.body(()).unwrap(), true).unwrap();
        let resp = resp.await.unwrap();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        answer(status, challenge.as_deref(), &bytes)
    }

    fn upstream_requests(&self) -> usize {
        self.seen.heads.lock().unwrap().len()
    }

    /// Sends `hostile` on the guarded path and asserts the guard refused it for `description`.
    async fn refuses(&self, via: Via, hostile: &[String], description: &str) {
        self.refuses_at(via, self.path, hostile, description).await;
    }

    /// `GET target` with the `hostile` proofs is refused for `description` and the upstream
    /// sees nothing of it; the same request with a good proof then passes to the upstream.
    async fn refuses_at(&self, via: Via, target: &str, hostile: &[String], description: &str) {
        let before = self.upstream_requests();
        let got = self.send(via, target, hostile).await;
        self.assert_refused(&got, description, via);
        assert_eq!(
            self.upstream_requests(),
            before,
            "{via:?}: the upstream saw a refused request"
        );
        self.passes(via, target, &[self.good(target)], "a good proof")
            .await;
    }

    /// `GET target` with `proofs` passes: 200, and the upstream saw it.
    async fn passes(&self, via: Via, target: &str, proofs: &[String], what: &str) {
        let before = self.upstream_requests();
        let got = self.send(via, target, proofs).await;
        assert_eq!(got.status, 200, "{via:?}, {what}: {got:?}");
        // A plain origin-form request with one proof is the relay's; others are hyper's.
        if let Via::Raw { absolute, .. } = via {
            let relay = !absolute && proofs.len() == 1;
            assert_eq!(
                got.relayed,
                Some(relay),
                "{via:?}, {what}: served by the relay"
            );
        }
        let heads = self.seen.heads.lock().unwrap();
        assert_eq!(heads.len(), before + 1, "{via:?}, {what}");
        assert_eq!(path_of(heads.last().unwrap()), target, "{via:?}, {what}");
    }

    /// The guard's refusal of a proof (RFC 9449 §7.1) in the route's documented shape.
    fn assert_refused(&self, got: &Answer, description: &str, via: Via) {
        assert_eq!(got.status, 401, "{via:?}: {got:?}");
        // Both schemes are accepted on this route: the Bearer challenge bare, the proof's
        // error in the DPoP one (RFC 9449 §7.1).
        let (bearer, dpop) = (got.challenge.split_once(", DPoP "))
            .unwrap_or_else(|| panic!("{via:?}: two challenges: {}", got.challenge));
        assert!(
            bearer.starts_with("Bearer ") && !bearer.contains("error="),
            "{via:?}: {bearer}"
        );
        let c = dpop;
        assert!(c.contains(r#"error="invalid_dpop_proof""#), "{via:?}: {c}");
        assert!(
            c.contains(&format!(r#"error_description="{description}""#)),
            "{via:?}: {c}"
        );
        let body = if self.errors_shape {
            json!({"errors": [{"title": "Unauthorized", "status": "401", "code": "invalid_dpop_proof", "detail": description}]})
        } else {
            json!({"error": "invalid_dpop_proof", "error_description": description})
        };
        assert_eq!(got.body, body, "{via:?}");
    }
}

/// A raw HTTP/1.1 response, read to its close.
fn parse_raw(raw: &str) -> Answer {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no whole response: {raw:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let challenge = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.trim());
    Answer {
        relayed: Some(head.contains("\r\nX-Served-By: up")),
        ..answer(status.parse().unwrap(), challenge, body.as_bytes())
    }
}

const ANOTHER_URL: &str = "the proof is for another URL";

#[tokio::test]
async fn a_proof_for_another_method_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        let post = b
            .key
            .proof_with("POST", &b.htu(), &b.jti(), 0, Some(&b.token));
        b.refuses(via, &[post], "the proof is for another method")
            .await;
        // Methods are case-sensitive (RFC 9110 §9.1).
        let lower = b
            .key
            .proof_with("get", &b.htu(), &b.jti(), 0, Some(&b.token));
        b.refuses(via, &[lower], "the proof is for another method")
            .await;
    }
}

#[tokio::test]
async fn a_proof_for_another_host_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for htu in [
            "https://evil.example/admin/orders",
            "https://gateway.test.evil.example/admin/orders",
            "https://127.0.0.1/admin/orders",
        ] {
            let p = b.key.proof_with("GET", htu, &b.jti(), 0, Some(&b.token));
            b.refuses(via, &[p], ANOTHER_URL).await;
        }
    }
}

#[tokio::test]
async fn a_proof_for_another_path_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for htu in [
            format!("{ISSUER}/admin/refunds"),
            format!("{ISSUER}/admin/orders/1"),
            format!("{ISSUER}/admin/"),
            // Normalized (RFC 3986 §6.2.2) before comparing: this is /admin/refunds.
            format!("{ISSUER}/admin/orders/../refunds"),
        ] {
            let p = b.key.proof_with("GET", &htu, &b.jti(), 0, Some(&b.token));
            b.refuses(via, &[p], ANOTHER_URL).await;
        }
    }
}

#[tokio::test]
async fn a_proof_for_another_port_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        let port = b.gw.addr.port();
        for htu in [
            format!("https://{GATEWAY_HOST}:8443/admin/orders"),
            // The port the test reaches the gateway on is not its public origin's.
            format!("https://{GATEWAY_HOST}:{port}/admin/orders"),
        ] {
            let p = b.key.proof_with("GET", &htu, &b.jti(), 0, Some(&b.token));
            b.refuses(via, &[p], ANOTHER_URL).await;
        }
        // The default port, named, is no other port (RFC 3986 §6.2.3).
        let named = format!("https://GATEWAY.test:443{}", b.path);
        let p = b.key.proof_with("GET", &named, &b.jti(), 0, Some(&b.token));
        b.passes(via, b.path, &[p], "the default port named").await;
    }
}

#[tokio::test]
async fn a_proof_for_another_scheme_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for htu in [
            format!("http://{GATEWAY_HOST}/admin/orders"),
            format!("http://{GATEWAY_HOST}:443/admin/orders"),
            format!("wss://{GATEWAY_HOST}/admin/orders"),
        ] {
            let p = b.key.proof_with("GET", &htu, &b.jti(), 0, Some(&b.token));
            b.refuses(via, &[p], ANOTHER_URL).await;
        }
    }
}

/// RFC 9449 §4.2 defines `htu` without query and fragment, and §4.3 step 9 has the server
/// compare it "ignoring any query and fragment parts": a client that put the request's query
/// in `htu` is not refused for it (the OpenID FAPI 2.0 DPoP conformance tests expect the
/// same). What a query or a fragment in `htu` must not do is carry another path past the
/// comparison.
#[tokio::test]
async fn a_query_in_htu_is_ignored_and_smuggles_no_other_path() {
    let b = Bench::new().await;
    let target = "/admin/orders?x=1";
    for via in BOTH {
        let with_query = format!("{ISSUER}{target}");
        let p = b
            .key
            .proof_with("GET", &with_query, &b.jti(), 0, Some(&b.token));
        b.passes(via, target, &[p], "htu with the request's query")
            .await;
        for htu in [
            format!("{ISSUER}/admin/refunds?x=1"),
            format!("{ISSUER}/admin/refunds?/admin/orders"),
            format!("{ISSUER}/admin/refunds#/admin/orders"),
            format!("https://evil.example/?{GATEWAY_HOST}/admin/orders"),
        ] {
            let p = b.key.proof_with("GET", &htu, &b.jti(), 0, Some(&b.token));
            b.refuses_at(via, target, &[p], ANOTHER_URL).await;
        }
    }
}

/// The `htu` the gateway expects is built from its configured public origin, never from the
/// request's `Host` (or HTTP/2 `:authority`, or an absolute-form target): naming the proof's
/// host in the request does not make a proof made for that host pass.
#[tokio::test]
async fn naming_the_proofs_host_in_the_request_does_not_make_it_pass() {
    let b = Bench::new().await;
    let evil = "evil.example";
    for via in [
        Via::Raw {
            host: evil,
            absolute: false,
        },
        Via::Raw {
            host: evil,
            absolute: true,
        },
        Via::H2 { authority: evil },
    ] {
        let htu = format!("https://{evil}{}", b.path);
        let p = b.key.proof_with("GET", &htu, &b.jti(), 0, Some(&b.token));
        b.refuses(via, &[p], ANOTHER_URL).await;
    }
    // reqwest's own Host field, on both versions.
    for via in BOTH {
        let htu = format!("https://{evil}{}", b.path);
        let p = b.key.proof_with("GET", &htu, &b.jti(), 0, Some(&b.token));
        let got = {
            let client = match via {
                Via::Http2 => b.h2.clone(),
                _ => client_for(&b.gw.ca_pem, false),
            };
            let resp = client
                .get(b.gw.url(b.path))
                .header("authorization", format!("DPoP {}", b.token))
                .header("host", evil)
                .header("DPoP", p)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            answer(status, challenge.as_deref(), &resp.bytes().await.unwrap())
        };
        b.assert_refused(&got, ANOTHER_URL, via);
    }
    assert_eq!(b.upstream_requests(), 3, "only the good proofs went up");
}

const IAT: &str = "the proof is too old or from the future";
// The window is ±60 s; 65 s is just past it with room for the clock to tick between making
// the proof and checking it (at 61 s ahead, a tick made the proof pass).

#[tokio::test]
async fn a_proof_issued_ten_minutes_ago_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for age in [600, 65] {
            let p = b
                .key
                .proof_with("GET", &b.htu(), &b.jti(), age, Some(&b.token));
            b.refuses(via, &[p], IAT).await;
        }
    }
}

#[tokio::test]
async fn a_proof_issued_ten_minutes_ahead_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for ahead in [600, 65] {
            let p = b
                .key
                .proof_with("GET", &b.htu(), &b.jti(), -ahead, Some(&b.token));
            b.refuses(via, &[p], IAT).await;
        }
    }
}

const ATH: &str = "the proof is for another access token";

#[tokio::test]
async fn a_proof_without_ath_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        let p = b.key.proof("GET", &b.htu(), &b.jti(), 0);
        b.refuses(via, &[p], ATH).await;
        let mut c = b.claims();
        c["ath"] = Value::Null;
        b.refuses(via, &[b.key.sign(&c)], ATH).await;
    }
}

#[tokio::test]
async fn a_proof_for_another_token_is_refused() {
    let b = Bench::new().await;
    // Another token of the same client, bound to the same key: its proof is not this one's.
    let other = b.bound_token("backoffice-app", SECRET).await;
    assert_ne!(other, b.token);
    for via in BOTH {
        for ath_of in [other.as_str(), "", &b.token[..b.token.len() - 1]] {
            let mut c = b.claims();
            c["ath"] = ath(ath_of).into();
            b.refuses(via, &[b.key.sign(&c)], ATH).await;
        }
        // The token itself, not its hash.
        let mut c = b.claims();
        c["ath"] = b.token.clone().into();
        b.refuses(via, &[b.key.sign(&c)], ATH).await;
    }
}

/// RFC 9449 §7.1's example answers a failed key binding with `invalid_token`; the gateway
/// answers `invalid_dpop_proof` (§4.3 step 12 makes the binding part of checking the proof).
#[tokio::test]
async fn a_proof_by_another_key_than_the_tokens_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        let thief = Key::new();
        let p = thief.proof_with("GET", &b.htu(), &b.jti(), 0, Some(&b.token));
        b.refuses(
            via,
            &[p],
            "the proof is signed by another key than the token is bound to",
        )
        .await;
    }
}

#[tokio::test]
async fn a_private_key_in_jwk_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for member in ["d", "p", "k"] {
            let mut h = b.key.header();
            h["jwk"][member] = B64.encode([7u8; 32]).into();
            let p = b.key.sign_as_given(&h, &b.claims());
            b.refuses(via, &[p], "the proof's jwk holds a private key")
                .await;
        }
    }
}

/// HMAC proofs (RFC 9449 §4.2: `alg` "MUST NOT be none or an identifier for a symmetric
/// algorithm"): without a key, with the secret as an `oct` key, and keyed with the client's
/// public key under its own `jwk` (the algorithm-confusion attack).
#[tokio::test]
async fn hmac_proofs_are_refused() {
    let b = Bench::new().await;
    let secret = b"a shared secret of thirty-two b";
    let hs256 = |header: Value, key: &[u8]| {
        signed(
            &header,
            &b.claims(),
            &EncodingKey::from_secret(key),
            Algorithm::HS256,
        )
    };
    for via in BOTH {
        let bare = hs256(json!({"typ": "dpop+jwt", "alg": "HS256"}), secret);
        b.refuses(via, &[bare], "the proof's algorithm is not accepted")
            .await;
        let oct = json!({"kty": "oct", "k": B64.encode(secret)});
        let with_oct = hs256(
            json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": oct}),
            secret,
        );
        b.refuses(via, &[with_oct], "the proof's jwk holds a private key")
            .await;
        let public = serde_json::to_vec(&b.key.jwk).unwrap();
        let mut h = b.key.header();
        h["alg"] = "HS256".into();
        let confused = hs256(h, &public);
        b.refuses(via, &[confused], "the proof's algorithm is not accepted")
            .await;
    }
}

#[tokio::test]
async fn an_unsigned_proof_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for alg in ["none", "None", "NONE"] {
            let mut h = b.key.header();
            h["alg"] = alg.into();
            let p = unsigned(&h, &b.claims());
            b.refuses(via, &[p], "the proof is malformed").await;
        }
        // A good proof's signature under a header changed to `none`.
        let good = b.good(b.path);
        let (_, rest) = good.split_once('.').unwrap();
        let mut h = b.key.header();
        h["alg"] = "none".into();
        let p = format!("{}.{rest}", B64.encode(h.to_string()));
        b.refuses(via, &[p], "the proof is malformed").await;
    }
}

#[tokio::test]
async fn a_proof_not_typed_dpop_jwt_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for typ in [None, Some("JWT"), Some("at+jwt"), Some("dpop"), Some("")] {
            let mut h = b.key.header();
            match typ {
                None => {
                    h.as_object_mut().unwrap().remove("typ");
                }
                Some(t) => h["typ"] = t.into(),
            }
            let p = b.key.sign_as_given(&h, &b.claims());
            b.refuses(via, &[p], "the proof's typ is not dpop+jwt")
                .await;
        }
    }
}

/// `jwk` must be a key of `alg`'s type and curve: an ES256 header naming a P-384 key (signed
/// by it), an RSA key, an Ed25519 key, or none at all.
#[tokio::test]
async fn a_jwk_that_does_not_fit_the_alg_is_refused() {
    let b = Bench::new().await;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let p384 = EncodingKey::from_ec_der(der.as_ref());
    let p384_jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&p384, Algorithm::ES384).unwrap();
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = rsa.public_key();
    let rsa_jwk = json!({
        "kty": "RSA",
        "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
        "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
    });
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode([9u8; 32])});
    let described = "the proof's jwk is missing or does not fit its algorithm";
    for via in BOTH {
        let mut h = b.key.header();
        h["jwk"] = serde_json::to_value(&p384_jwk).unwrap();
        let p = signed(&h, &b.claims(), &p384, Algorithm::ES384);
        b.refuses(via, &[p], described).await;
        for jwk in [rsa_jwk.clone(), ed_jwk.clone()] {
            let mut h = b.key.header();
            h["jwk"] = jwk;
            b.refuses(via, &[b.key.sign_as_given(&h, &b.claims())], described)
                .await;
        }
        // The client's own key, its curve named P-384.
        let mut h = b.key.header();
        h["jwk"]["crv"] = "P-384".into();
        b.refuses(via, &[b.key.sign_as_given(&h, &b.claims())], described)
            .await;
        let mut h = b.key.header();
        h.as_object_mut().unwrap().remove("jwk");
        b.refuses(via, &[b.key.sign_as_given(&h, &b.claims())], described)
            .await;
    }
}

/// A proof without `jti` (RFC 9449 §4.2), or with a null one, is named as such.
#[tokio::test]
async fn a_proof_without_jti_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        let mut c = b.claims();
        c.as_object_mut().unwrap().remove("jti");
        let why = "the proof's jti is missing or too long";
        b.refuses(via, &[b.key.sign(&c)], why).await;
        c["jti"] = Value::Null;
        b.refuses(via, &[b.key.sign(&c)], why).await;
    }
}

/// `jti` is bounded (128 bytes) so that the replay store is not fed megabytes. A 10 KiB one
/// makes the proof itself too large (`a_proof_over_8_kib_is_refused`).
#[tokio::test]
async fn an_empty_or_overlong_jti_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        for jti in [String::new(), "j".repeat(129), "j".repeat(4 * 1024)] {
            let mut c = b.claims();
            c["jti"] = jti.into();
            b.refuses(
                via,
                &[b.key.sign(&c)],
                "the proof's jti is missing or too long",
            )
            .await;
        }
    }
}

/// RFC 9449 §4.3 step 1: not more than one `DPoP` field. Two good proofs as two fields are
/// refused over both versions and as raw HTTP/1.1 bytes (which the relay hands to hyper); two
/// proofs folded into one field value (RFC 9110 §5.3) are not one well-formed JWT (step 2).
#[tokio::test]
async fn two_dpop_fields_are_refused() {
    let b = Bench::new().await;
    let raw = Via::Raw {
        host: GATEWAY_HOST,
        absolute: false,
    };
    for via in [Via::Http1, Via::Http2, raw] {
        let two = [b.good(b.path), b.good(b.path)];
        b.refuses(via, &two, "more than one DPoP header").await;
        let same = b.good(b.path);
        b.refuses(via, &[same.clone(), same], "more than one DPoP header")
            .await;
        let folded = format!("{}, {}", b.good(b.path), b.good(b.path));
        b.refuses(via, &[folded], "the proof is malformed").await;
    }
    // HTTP/2 on a stream of its own, as the raw HTTP/1.1 case.
    let h2 = Via::H2 {
        authority: GATEWAY_HOST,
    };
    let two = [b.good(b.path), b.good(b.path)];
    b.refuses(h2, &two, "more than one DPoP header").await;
}

/// A proof over 8 KiB (`MAX_PROOF_BYTES`) is refused before it is parsed: one padded with a
/// claim no check reads, and one whose `jti` is 10 KiB.
#[tokio::test]
async fn a_proof_over_8_kib_is_refused() {
    let b = Bench::new().await;
    for via in BOTH {
        let mut c = b.claims();
        c["pad"] = "x".repeat(6 * 1024).into();
        let p = b.key.sign(&c);
        assert!(p.len() > 8 * 1024, "{}", p.len());
        b.refuses(via, &[p], "the proof is too large").await;
        let mut c = b.claims();
        c["jti"] = "j".repeat(10 * 1024).into();
        b.refuses(via, &[b.key.sign(&c)], "the proof is too large")
            .await;
        // Under the bound, the same padding passes.
        let mut c = b.claims();
        c["pad"] = "x".repeat(5 * 1024).into();
        let p = b.key.sign(&c);
        assert!(p.len() < 8 * 1024, "{}", p.len());
        b.passes(via, b.path, &[p], "a padded proof under 8 KiB")
            .await;
    }
}

/// A route answering in seed 004's `{"errors"}` shape refuses a proof in that shape, with
/// the same `DPoP` challenge.
#[tokio::test]
async fn a_refusal_speaks_the_routes_error_shape() {
    let b = Bench::on("/shop/items", "storefront-app", READER_SECRET, true).await;
    for via in BOTH {
        let post = b
            .key
            .proof_with("POST", &b.htu(), &b.jti(), 0, Some(&b.token));
        b.refuses(via, &[post], "the proof is for another method")
            .await;
    }
}
