//! The soak driver (issue 8): a mixed load against a running gateway for a fixed time, run by
//! `benches/soak/soak.sh`, which samples the gateway's memory, descriptors and connections
//! meanwhile. Every loop stops at the deadline and the program exits by itself.
//!
//! Kinds of traffic, each in its own tasks (a fixed number, so concurrency is bounded), on
//! HTTP/2 and HTTP/1.1 (two clients) alike:
//!
//! * `valid_cached`: one token reused, `GET /api/products` (200);
//! * `valid_fresh`: a new token for every request, from the three token endpoints in turn,
//!   then `GET /api/products` with it (and every 4th time `POST /api/orders`, 201);
//! * `invalid`: garbage, expired-looking, tampered or no token (401), an implicit token
//!   writing (403), an expired or foreign-API token signed with the gateway's own key (401,
//!   403; with `--signing-key`), a path with no route (404); a third of them on a client that
//!   opens a new connection for every request;
//! * `wrong_secret`: token requests with wrong secrets or unknown client ids (400 or 401 by
//!   the endpoint's shape, and 429 once the failure throttle refuses the source);
//! * `slow`: raw connections that stay silent (before or after the TLS handshake, HTTP/1.1 or
//!   HTTP/2), send a request head or the HTTP/2 preface a byte at a time, send a token request
//!   body a byte at a time, or stall in the middle of a body to a route. The gateway's
//!   timeouts must cut each of them off; how and after how long is counted.
//!
//! Anything else is `unexpected`: a 5xx, a status other than the ones expected, a connection
//! error on a well-behaved request, a slow connection still open after `--cut-within-secs`.
//! At the end a JSON summary goes to stdout; the exit code is 2 when anything was unexpected.
//!
//! `soak_driver --url https://127.0.0.1:PORT --ca ca.pem --secs N [--signing-key key.pem
//! --issuer ISS]`. Loopback targets only.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use storegate::clients::{Client, Grant};
use storegate::token::issue::TokenIssuer;
use storegate::token::keys::{KeySet, SigningAlgorithm};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Mixed soak load against a running storegate (loopback only)")]
struct Args {
    /// The gateway, e.g. https://127.0.0.1:8443 (loopback hosts only).
    #[arg(long)]
    url: String,
    /// PEM CA certificate to trust for the gateway's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 1800)]
    secs: u64,
    /// The gateway's signing key (PKCS#8 PEM): with it, expired and foreign-API tokens are
    /// properly signed (else expired-looking ones are made up).
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// Algorithm of --signing-key: EdDSA, ES256 or RS256.
    #[arg(long, default_value = "EdDSA")]
    alg: String,
    /// The gateway's token issuer (`tokens.issuer`), for --signing-key.
    #[arg(long, default_value = "storegate")]
    issuer: String,
    /// A client_credentials client with read and write scopes for the `store` API.
    #[arg(long, default_value = "demo-client")]
    client_id: String,
    #[arg(long, default_value = "demo-secret-do-not-use-in-production")]
    client_secret: String,
    /// A client allowed the implicit grant (read-only tokens).
    #[arg(long, default_value = "demo-storefront")]
    implicit_client: String,
    /// The client id wrong secrets are sent for. Keep it apart from --client-id: the failure
    /// throttle refuses a source for a client id whatever it sends, the right secret included.
    #[arg(long, default_value = "soak-guess")]
    guess_client: String,
    /// Tasks per well-behaved kind and protocol (valid_cached, valid_fresh, invalid).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Tasks per protocol sending wrong secrets.
    #[arg(long, default_value_t = 1)]
    guess_workers: usize,
    /// Concurrent connections per slow-client case.
    #[arg(long, default_value_t = 2)]
    slow_conns: usize,
    /// Pause of each well-behaved task between two requests, in milliseconds (keeps the load
    /// below saturation on a shared machine; 0: as fast as it goes).
    #[arg(long, default_value_t = 10)]
    pause_ms: u64,
    /// Pause between two bytes of a slow client, in milliseconds.
    #[arg(long, default_value_t = 250)]
    slow_byte_ms: u64,
    /// A slow connection the gateway has not cut off after this long is unexpected.
    #[arg(long, default_value_t = 20)]
    cut_within_secs: u64,
}

// ---------------------------------------------------------------------------------------------
// Counting

#[derive(Default)]
struct Case {
    requests: u64,
    outcomes: BTreeMap<String, u64>,
    unexpected: u64,
    /// Slow connections: how long until the gateway cut them off, in ms.
    cut_ms_min: Option<u64>,
    cut_ms_max: u64,
    /// Well-behaved requests: latency.
    latency_ms_sum: f64,
    latency_ms_max: f64,
}

#[derive(Default)]
struct Kind {
    cases: BTreeMap<String, Case>,
    versions: BTreeMap<String, u64>,
    examples: Vec<String>,
}

#[derive(Default)]
struct Stats {
    kinds: Mutex<BTreeMap<&'static str, Kind>>,
    unexpected: AtomicU64,
}

const MAX_EXAMPLES: usize = 8;

struct Record<'a> {
    kind: &'static str,
    case: &'a str,
    outcome: String,
    unexpected: Option<String>,
    latency: Option<Duration>,
    cut: Option<Duration>,
    version: Option<reqwest::Version>,
}

impl Stats {
    fn record(&self, r: Record<'_>) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let kind = kinds.entry(r.kind).or_default();
        if let Some(v) = r.version {
            *kind.versions.entry(format!("{v:?}")).or_default() += 1;
        }
        let case = kind.cases.entry(r.case.to_owned()).or_default();
        case.requests += 1;
        *case.outcomes.entry(r.outcome).or_default() += 1;
        if let Some(l) = r.latency {
            let ms = l.as_secs_f64() * 1000.0;
            case.latency_ms_sum += ms;
            case.latency_ms_max = case.latency_ms_max.max(ms);
        }
        if let Some(c) = r.cut {
            let ms = c.as_millis() as u64;
            case.cut_ms_min = Some(case.cut_ms_min.map_or(ms, |m| m.min(ms)));
            case.cut_ms_max = case.cut_ms_max.max(ms);
        }
        if let Some(why) = r.unexpected {
            case.unexpected += 1;
            self.unexpected.fetch_add(1, Ordering::Relaxed);
            if kind.examples.len() < MAX_EXAMPLES {
                eprintln!("soak_driver: unexpected: {} {}: {why}", r.kind, r.case);
                kind.examples.push(format!("{}: {why}", r.case));
            }
        }
    }

    fn summary(&self, args: &Args, ran: Duration) -> Value {
        let kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = serde_json::Map::new();
        for (name, kind) in kinds.iter() {
            let mut statuses: BTreeMap<&str, u64> = BTreeMap::new();
            let mut cases = serde_json::Map::new();
            let (mut requests, mut unexpected) = (0, 0);
            for (cname, c) in &kind.cases {
                requests += c.requests;
                unexpected += c.unexpected;
                for (o, n) in &c.outcomes {
                    *statuses.entry(o).or_default() += n;
                }
                let mut v = json!({
                    "requests": c.requests,
                    "outcomes": c.outcomes,
                    "unexpected": c.unexpected,
                });
                if c.latency_ms_sum > 0.0 {
                    v["latency_ms_mean"] = json!(round2(c.latency_ms_sum / c.requests as f64));
                    v["latency_ms_max"] = json!(round2(c.latency_ms_max));
                }
                if let Some(min) = c.cut_ms_min {
                    v["cut_after_ms_min"] = json!(min);
                    v["cut_after_ms_max"] = json!(c.cut_ms_max);
                }
                cases.insert(cname.clone(), v);
            }
            out.insert(
                (*name).to_owned(),
                json!({
                    "requests": requests,
                    "statuses": statuses,
                    "unexpected": unexpected,
                    "http_versions": kind.versions,
                    "unexpected_examples": kind.examples,
                    "cases": cases,
                }),
            );
        }
        json!({
            "url": args.url,
            "secs": args.secs,
            "ran_secs": round2(ran.as_secs_f64()),
            "settings": {
                "workers": args.workers,
                "guess_workers": args.guess_workers,
                "slow_conns": args.slow_conns,
                "pause_ms": args.pause_ms,
                "slow_byte_ms": args.slow_byte_ms,
                "cut_within_secs": args.cut_within_secs,
            },
            "unexpected_total": self.unexpected.load(Ordering::Relaxed),
            "kinds": out,
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------------------------
// Shared context

struct Ctx {
    args: Args,
    base: reqwest::Url,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    deadline: Instant,
    stats: Stats,
    h2: reqwest::Client,
    h1: reqwest::Client,
    /// HTTP/1.1 without connection reuse: a new TLS connection for every request.
    churn: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    minted: Option<Minted>,
}

/// Tokens signed with the gateway's own key that it must still refuse.
struct Minted {
    expired: TokenIssuer,
    foreign: Client,
    store: Client,
}

impl Minted {
    fn expired(&self) -> Option<String> {
        let then = storegate::token::now_unix().saturating_sub(7200);
        let t = self
            .expired
            .issue(&self.store, Grant::ClientCredentials, "read", then);
        t.ok().map(|t| t.access_token)
    }

    fn foreign_api(&self) -> Option<String> {
        let now = storegate::token::now_unix();
        let t = self
            .expired
            .issue(&self.foreign, Grant::ClientCredentials, "read", now);
        t.ok().map(|t| t.access_token)
    }
}

impl Ctx {
    fn url(&self, path: &str) -> reqwest::Url {
        self.base.join(path).expect("a valid path")
    }

    fn over(&self) -> bool {
        Instant::now() >= self.deadline
    }

    async fn pause(&self) {
        if self.args.pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.args.pause_ms)).await;
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    H2,
    H1,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::H2 => "h2",
            Proto::H1 => "h1",
        }
    }

    fn client(self, ctx: &Ctx) -> &reqwest::Client {
        match self {
            Proto::H2 => &ctx.h2,
            Proto::H1 => &ctx.h1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Well-behaved requests

/// Sends `req`, reads the whole body, and records it: `expect` lists the statuses that are
/// fine. Returns the status and body when the exchange completed.
async fn exchange(
    ctx: &Ctx,
    kind: &'static str,
    case: &str,
    req: reqwest::RequestBuilder,
    expect: &[u16],
) -> Option<(u16, bytes::Bytes)> {
    let start = Instant::now();
    let result = async {
        let resp = req.send().await?;
        let (status, version) = (resp.status().as_u16(), resp.version());
        let body = resp.bytes().await?;
        Ok::<_, reqwest::Error>((status, version, body))
    }
    .await;
    let latency = start.elapsed();
    match result {
        Ok((status, version, body)) => {
            let unexpected = (!expect.contains(&status)).then(|| {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                format!("status {status} (expected {expect:?}): {text}")
            });
            ctx.stats.record(Record {
                kind,
                case,
                outcome: status.to_string(),
                unexpected,
                latency: Some(latency),
                cut: None,
                version: Some(version),
            });
            Some((status, body))
        }
        Err(e) => {
            let what = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect_error"
            } else if e.is_body() || e.is_decode() {
                "body_error"
            } else {
                "request_error"
            };
            ctx.stats.record(Record {
                kind,
                case,
                outcome: what.to_owned(),
                unexpected: Some(format!("{what}: {e:?}")),
                latency: Some(latency),
                cut: None,
                version: None,
            });
            None
        }
    }
}

/// The three token endpoints, each with the request shape of its documented API.
#[derive(Clone, Copy)]
enum Endpoint {
    Connect,
    Oauth2,
    OauthAccess,
}

impl Endpoint {
    const ALL: [Endpoint; 3] = [Endpoint::Connect, Endpoint::Oauth2, Endpoint::OauthAccess];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Connect => "connect_token",
            Endpoint::Oauth2 => "oauth2_token",
            Endpoint::OauthAccess => "oauth_access_token",
        }
    }

    fn request(
        self,
        ctx: &Ctx,
        http: &reqwest::Client,
        id: &str,
        secret: &str,
    ) -> reqwest::RequestBuilder {
        let fields = [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ];
        match self {
            Endpoint::Connect => http.post(ctx.url("/connect/token")).form(&fields),
            Endpoint::Oauth2 => {
                let body: BTreeMap<_, _> = fields.into_iter().collect();
                http.post(ctx.url("/oauth2-token")).json(&body)
            }
            Endpoint::OauthAccess => http.post(ctx.url("/oauth/access_token")).form(&fields),
        }
    }

    /// The status a wrong secret gets (before the throttle steps in).
    fn wrong_secret_status(self) -> u16 {
        match self {
            Endpoint::OauthAccess => 401,
            _ => 400,
        }
    }
}

fn access_token(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let t = v
        .get("access_token")
        .or_else(|| v.get("data")?.get("access_token"))?;
    t.as_str().map(str::to_owned)
}

/// A token for `--client-id` from `/connect/token` (for set-up; errors out when refused).
async fn setup_token(ctx: &Ctx) -> anyhow::Result<String> {
    let resp = Endpoint::Connect
        .request(ctx, &ctx.h2, &ctx.args.client_id, &ctx.args.client_secret)
        .send()
        .await
        .context("requesting a token")?;
    let status = resp.status();
    let body = resp.bytes().await?;
    access_token(&body)
        .with_context(|| format!("no token: {status} {}", String::from_utf8_lossy(&body)))
}

async fn implicit_token(ctx: &Ctx, http: &reqwest::Client, kind: &'static str) -> Option<String> {
    let req = http.post(ctx.url("/oauth/access_token")).form(&[
        ("grant_type", "implicit"),
        ("client_id", ctx.args.implicit_client.as_str()),
    ]);
    let (status, body) = exchange(ctx, kind, "implicit_token", req, &[200]).await?;
    if status == 200 {
        access_token(&body)
    } else {
        None
    }
}

fn products_ok(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v["data"].as_array().is_some_and(|a| !a.is_empty()))
}

async fn valid_cached(ctx: Arc<Ctx>, proto: Proto, token: Arc<String>) {
    let http = proto.client(&ctx);
    let case = format!("get_products_{}", proto.name());
    while !ctx.over() {
        let req = http
            .get(ctx.url("/api/products"))
            .bearer_auth(token.as_str());
        if let Some((200, body)) = exchange(&ctx, "valid_cached", &case, req, &[200]).await
            && !products_ok(&body)
        {
            ctx.stats.record(Record {
                kind: "valid_cached",
                case: "body_check",
                outcome: "bad_body".into(),
                unexpected: Some(format!(
                    "200 without products: {}",
                    String::from_utf8_lossy(&body)
                )),
                latency: None,
                cut: None,
                version: None,
            });
        }
        ctx.pause().await;
    }
}

async fn valid_fresh(ctx: Arc<Ctx>, proto: Proto) {
    let http = proto.client(&ctx);
    let mut i = 0usize;
    while !ctx.over() {
        let ep = Endpoint::ALL[i % 3];
        let case = format!("token_{}_{}", ep.name(), proto.name());
        let req = ep.request(&ctx, http, &ctx.args.client_id, &ctx.args.client_secret);
        let token = match exchange(&ctx, "valid_fresh", &case, req, &[200]).await {
            Some((200, body)) => access_token(&body),
            _ => None,
        };
        if let Some(token) = token {
            let case = format!("get_products_{}", proto.name());
            let req = http.get(ctx.url("/api/products")).bearer_auth(&token);
            exchange(&ctx, "valid_fresh", &case, req, &[200]).await;
            if i % 4 == 3 {
                let case = format!("post_order_{}", proto.name());
                let req = http
                    .post(ctx.url("/api/orders"))
                    .bearer_auth(&token)
                    .json(&json!({"sku": "MUG-WHT", "quantity": 2}));
                exchange(&ctx, "valid_fresh", &case, req, &[201]).await;
            }
        }
        i += 1;
        ctx.pause().await;
    }
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT-shaped token with an expiry in the past and a made-up signature.
fn expired_looking(issuer: &str) -> String {
    let now = storegate::token::now_unix();
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": random_b64(8)});
    let claims = json!({
        "iss": issuer, "sub": "demo-client", "aud": "store", "client_id": "demo-client",
        "iat": now - 7200, "exp": now - 3600, "jti": random_b64(16), "scope": "read",
        "gty": "client_credentials",
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        random_b64(64)
    )
}

/// `token` with one character of its signature changed.
fn tampered(token: &str) -> String {
    let mut t = token.as_bytes().to_vec();
    let i = t.len() - 5;
    t[i] = if t[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(t).expect("ascii")
}

async fn invalid(ctx: Arc<Ctx>, proto: Proto, worker: usize, good: Arc<String>) {
    let kind = "invalid";
    let mut implicit: Option<String> = None;
    let mut i = worker;
    while !ctx.over() {
        // A third of the requests on a new connection each.
        let (http, pname) = if i % 3 == 2 {
            (&ctx.churn, "h1_new_conn")
        } else {
            (proto.client(&ctx), proto.name())
        };
        let products = ctx.url("/api/products");
        match i % 8 {
            0 => {
                let req = http
                    .get(products)
                    .bearer_auth(format!("garbage-{}", random_b64(12)));
                exchange(&ctx, kind, &format!("garbage_token_{pname}"), req, &[401]).await;
            }
            1 => {
                let req = http
                    .get(products)
                    .bearer_auth(expired_looking(&ctx.args.issuer));
                exchange(&ctx, kind, &format!("expired_looking_{pname}"), req, &[401]).await;
            }
            2 => {
                let req = http.get(products);
                exchange(&ctx, kind, &format!("no_token_{pname}"), req, &[401]).await;
            }
            3 => {
                let req = http.get(products).bearer_auth(tampered(&good));
                exchange(&ctx, kind, &format!("tampered_{pname}"), req, &[401]).await;
            }
            4 => {
                if implicit.is_none() || i % 64 == 4 {
                    implicit = implicit_token(&ctx, http, kind).await;
                }
                if let Some(t) = &implicit {
                    let req = http
                        .post(ctx.url("/api/orders"))
                        .bearer_auth(t)
                        .json(&json!({"sku": "CAP-RED"}));
                    exchange(&ctx, kind, &format!("implicit_writes_{pname}"), req, &[403]).await;
                }
            }
            5 => {
                let req = http.get(ctx.url("/nowhere")).bearer_auth(good.as_str());
                exchange(&ctx, kind, &format!("no_route_{pname}"), req, &[404]).await;
            }
            6 => {
                if let Some(t) = ctx.minted.as_ref().and_then(Minted::expired) {
                    let req = http.get(products).bearer_auth(t);
                    exchange(&ctx, kind, &format!("expired_signed_{pname}"), req, &[401]).await;
                }
            }
            _ => {
                if let Some(t) = ctx.minted.as_ref().and_then(Minted::foreign_api) {
                    let req = http.get(products).bearer_auth(t);
                    exchange(&ctx, kind, &format!("other_api_{pname}"), req, &[403]).await;
                }
            }
        }
        i += 1;
        ctx.pause().await;
    }
}

async fn wrong_secret(ctx: Arc<Ctx>, proto: Proto) {
    let http = proto.client(&ctx);
    let kind = "wrong_secret";
    let mut i = 0usize;
    while !ctx.over() {
        let wrong = format!("wrong-{}", random_b64(12));
        let guess = ctx.args.guess_client.as_str();
        match i % 5 {
            n @ 0..=2 => {
                let ep = Endpoint::ALL[n];
                let req = ep.request(&ctx, http, guess, &wrong);
                let case = format!("{}_{}", ep.name(), proto.name());
                exchange(&ctx, kind, &case, req, &[ep.wrong_secret_status(), 429]).await;
            }
            3 => {
                let req = http
                    .post(ctx.url("/connect/token"))
                    .basic_auth(guess, Some(&wrong))
                    .form(&[("grant_type", "client_credentials")]);
                let case = format!("connect_token_basic_{}", proto.name());
                exchange(&ctx, kind, &case, req, &[401, 429]).await;
            }
            _ => {
                // A few made-up client ids, always the same ones (the throttle keeps a
                // counter per id: an endless supply of new ids would grow it up to its bound).
                let id = format!("soak-nobody-{}", i % 8);
                let req = Endpoint::Connect.request(&ctx, http, &id, &wrong);
                let case = format!("unknown_client_{}", proto.name());
                exchange(&ctx, kind, &case, req, &[400, 429]).await;
            }
        }
        i += 1;
        ctx.pause().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Slow clients

#[derive(Clone, Copy)]
enum Slow {
    /// TCP only, no ClientHello: the handshake deadline.
    TcpSilent,
    /// TLS (ALPN http/1.1), then nothing: the first-request deadline.
    TlsSilentH1,
    /// TLS (ALPN h2), then nothing, not even the preface.
    TlsSilentH2,
    /// A request head, a byte at a time: the head deadline.
    HeadH1,
    /// The HTTP/2 connection preface, a byte at a time.
    PrefaceH2,
    /// A token request whose body comes a byte at a time: the token body deadline.
    TokenBodyH1,
    /// A request to a route whose body stops halfway: the route's body idle time.
    StalledRouteBodyH1,
}

impl Slow {
    const ALL: [Slow; 7] = [
        Slow::TcpSilent,
        Slow::TlsSilentH1,
        Slow::TlsSilentH2,
        Slow::HeadH1,
        Slow::PrefaceH2,
        Slow::TokenBodyH1,
        Slow::StalledRouteBodyH1,
    ];

    fn name(self) -> &'static str {
        match self {
            Slow::TcpSilent => "tcp_silent",
            Slow::TlsSilentH1 => "tls_silent_h1",
            Slow::TlsSilentH2 => "tls_silent_h2",
            Slow::HeadH1 => "slow_head_h1",
            Slow::PrefaceH2 => "slow_preface_h2",
            Slow::TokenBodyH1 => "slow_token_body_h1",
            Slow::StalledRouteBodyH1 => "stalled_route_body_h1",
        }
    }

    fn alpn(self) -> &'static [u8] {
        match self {
            Slow::TlsSilentH2 | Slow::PrefaceH2 => b"h2",
            _ => b"http/1.1",
        }
    }

    /// What is sent at once, then what is sent a byte at a time (then nothing more).
    fn script(self, ctx: &Ctx, token: &str) -> (Vec<u8>, Vec<u8>) {
        let host = ctx.base.host_str().unwrap_or("localhost");
        match self {
            Slow::TcpSilent | Slow::TlsSilentH1 | Slow::TlsSilentH2 => (vec![], vec![]),
            Slow::HeadH1 => (
                vec![],
                format!(
                    "GET /api/products HTTP/1.1\r\nHost: {host}\r\nUser-Agent: soak-slow-head\r\n\
                     Accept: application/json\r\nAuthorization: Bearer {token}\r\n\r\n"
                )
                .into_bytes(),
            ),
            Slow::PrefaceH2 => (vec![], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
            Slow::TokenBodyH1 => {
                let body = format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}",
                    ctx.args.client_id, ctx.args.client_secret
                );
                let head = format!(
                    "POST /connect/token HTTP/1.1\r\nHost: {host}\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                (head.into_bytes(), body.into_bytes())
            }
            Slow::StalledRouteBodyH1 => {
                let body = br#"{"sku":"TEE-BLK-M","quantity":1,"note":"stalls here"}"#;
                let head = format!(
                    "POST /api/orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len() * 2
                );
                let mut first = head.into_bytes();
                first.extend_from_slice(body);
                (first, vec![])
            }
        }
    }
}

/// How a slow connection ended.
struct Ended {
    outcome: String,
    after: Duration,
    unexpected: Option<String>,
}

async fn slow_loop(ctx: Arc<Ctx>, case: Slow, token: Arc<String>) {
    while !ctx.over() {
        let start = Instant::now();
        let ended = tokio::select! {
            e = slow_conn(&ctx, case, &token) => e,
            () = tokio::time::sleep_until(ctx.deadline) => None,
        };
        let Some(e) = ended else {
            // Still running at the deadline: neither cut off nor unexpected, just stopped.
            if start.elapsed() > Duration::from_secs(ctx.args.cut_within_secs) {
                ctx.stats.record(Record {
                    kind: "slow",
                    case: case.name(),
                    outcome: "not_cut".into(),
                    unexpected: Some("still open at the deadline".into()),
                    latency: None,
                    cut: None,
                    version: None,
                });
            }
            break;
        };
        let cut = e.unexpected.is_none().then_some(e.after);
        ctx.stats.record(Record {
            kind: "slow",
            case: case.name(),
            outcome: e.outcome,
            unexpected: e.unexpected,
            latency: None,
            cut,
            version: None,
        });
    }
}

async fn slow_conn(ctx: &Ctx, case: Slow, token: &str) -> Option<Ended> {
    let start = Instant::now();
    let failed = |what: &str, e: &dyn std::fmt::Display| Ended {
        outcome: what.to_owned(),
        after: start.elapsed(),
        unexpected: Some(format!("{what}: {e}")),
    };
    let tcp = match TcpStream::connect(ctx.addr).await {
        Ok(s) => s,
        Err(e) => return Some(failed("connect_error", &e)),
    };
    let (first, trickle) = case.script(ctx, token);
    let ended = if let Slow::TcpSilent = case {
        drive_slow(ctx, tcp, first, trickle, start).await
    } else {
        let mut cfg = (*ctx.tls).clone();
        cfg.alpn_protocols = vec![case.alpn().to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let tls = match connector.connect(ctx.server_name.clone(), tcp).await {
            Ok(t) => t,
            Err(e) => return Some(failed("tls_error", &e)),
        };
        drive_slow(ctx, tls, first, trickle, start).await
    };
    Some(ended)
}

/// Sends `first`, then `trickle` a byte at a time, while reading what the gateway answers,
/// until the gateway closes the connection or `--cut-within-secs` has passed.
async fn drive_slow<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    stream: S,
    first: Vec<u8>,
    trickle: Vec<u8>,
    start: Instant,
) -> Ended {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let gap = Duration::from_millis(ctx.args.slow_byte_ms);
    let writer = async {
        if !first.is_empty() {
            wr.write_all(&first).await?;
            wr.flush().await?;
        }
        for b in trickle {
            tokio::time::sleep(gap).await;
            wr.write_all(&[b]).await?;
            wr.flush().await?;
        }
        // Everything sent: hold the connection open, sending nothing more.
        std::future::pending::<std::io::Result<()>>().await
    };
    let reader = async {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            match rd.read(&mut buf).await {
                Ok(0) => break "closed".to_owned(),
                Ok(n) => {
                    if head.len() < 64 {
                        head.extend_from_slice(&buf[..n.min(64 - head.len())]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    break "closed_without_close_notify".to_owned();
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break "reset".to_owned();
                }
                Err(e) => break format!("read_error_{:?}", e.kind()),
            }
        };
        (head, end)
    };
    let limit = Duration::from_secs(ctx.args.cut_within_secs);
    tokio::pin!(reader);
    let (head, end, write_failed) = tokio::select! {
        (head, end) = &mut reader => (head, end, false),
        w = writer => {
            // A write failed (the gateway had closed): see what the reader got.
            let _ = w;
            match tokio::time::timeout(Duration::from_secs(2), &mut reader).await {
                Ok((head, end)) => (head, end, true),
                Err(_) => (Vec::new(), "write_failed".to_owned(), true),
            }
        }
        () = tokio::time::sleep(limit) => {
            return Ended {
                outcome: "not_cut".into(),
                after: start.elapsed(),
                unexpected: Some(format!("not cut off after {limit:?}")),
            };
        }
    };
    let after = start.elapsed();
    let answered = if head.starts_with(b"HTTP/1.1 ") && head.len() >= 12 {
        format!("http_{}+", String::from_utf8_lossy(&head[9..12]))
    } else if head.is_empty() {
        String::new()
    } else {
        "data+".to_owned()
    };
    let written = if write_failed { "+write_failed" } else { "" };
    let outcome = format!("{answered}{end}{written}");
    // A slow request the gateway served (a 2xx) was not cut off.
    let unexpected = (answered.starts_with("http_2") || end.starts_with("read_error"))
        .then(|| format!("{outcome} after {after:?}"));
    Ended {
        outcome,
        after,
        unexpected,
    }
}

// ---------------------------------------------------------------------------------------------

/// The address a loopback URL names: 127.0.0.0/8, [::1] or localhost (as 127.0.0.1).
fn loopback(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    let ip: IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
    ip.is_loopback().then_some(ip)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(run(args))?;
    // Slow connections still open at the deadline end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

async fn run(args: Args) -> anyhow::Result<i32> {
    let base: reqwest::Url = args.url.parse().context("--url")?;
    anyhow::ensure!(base.scheme() == "https", "--url must be https://");
    let ip = loopback(&base).context("loopback targets only (127.0.0.0/8, localhost, [::1])")?;
    let port = base.port_or_known_default().unwrap_or(443);
    let addr = SocketAddr::new(ip, port);
    let host = base
        .host_str()
        .unwrap_or("localhost")
        .trim_matches(['[', ']']);
    let server_name = ServerName::try_from(host.to_owned()).context("server name")?;

    let ca_pem =
        std::fs::read(&args.ca).with_context(|| format!("reading {}", args.ca.display()))?;
    let ca = reqwest::Certificate::from_pem(&ca_pem)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();

    // Pooled connections are let go before the gateway's idle timeout could close them under
    // a request being sent.
    let builder = || {
        reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(1))
    };
    let h2 = builder().build()?;
    let h1 = builder().http1_only().build()?;
    let churn = builder().http1_only().pool_max_idle_per_host(0).build()?;

    let minted = match &args.signing_key {
        None => None,
        Some(path) => {
            let alg = match args.alg.as_str() {
                "EdDSA" => SigningAlgorithm::EdDSA,
                "ES256" => SigningAlgorithm::ES256,
                "RS256" => SigningAlgorithm::RS256,
                other => anyhow::bail!("--alg {other}: EdDSA, ES256 or RS256"),
            };
            let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_file(path)? else {
                anyhow::bail!("{} is not PKCS#8", path.display());
            };
            let keys = Arc::new(KeySet::from_pkcs8(alg, der.secret_pkcs8_der(), None, &[])?);
            Some(Minted {
                expired: TokenIssuer::new(keys, args.issuer.clone(), 3600),
                foreign: Client::with_secret(
                    "demo-client",
                    "unused",
                    &["not-the-store"],
                    &["read"],
                )
                .context("client")?,
                store: Client::with_secret("demo-client", "unused", &["store"], &["read"])
                    .context("client")?,
            })
        }
    };

    let secs = args.secs;
    let ctx = Arc::new(Ctx {
        base,
        addr,
        server_name,
        deadline: Instant::now() + Duration::from_secs(secs),
        stats: Stats::default(),
        h2,
        h1,
        churn,
        tls: Arc::new(tls),
        minted,
        args,
    });
    let started = Instant::now();
    let token = Arc::new(setup_token(&ctx).await?);
    eprintln!("soak_driver: running for {secs} s against {}", ctx.base);

    let mut tasks = tokio::task::JoinSet::new();
    for proto in [Proto::H2, Proto::H1] {
        for w in 0..ctx.args.workers {
            tasks.spawn(valid_cached(ctx.clone(), proto, token.clone()));
            tasks.spawn(valid_fresh(ctx.clone(), proto));
            tasks.spawn(invalid(ctx.clone(), proto, w, token.clone()));
        }
        for _ in 0..ctx.args.guess_workers {
            tasks.spawn(wrong_secret(ctx.clone(), proto));
        }
    }
    for case in Slow::ALL {
        for _ in 0..ctx.args.slow_conns {
            tasks.spawn(slow_loop(ctx.clone(), case, token.clone()));
        }
    }
    // A progress line a minute, on stderr.
    let progress = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done: u64 = {
                    let kinds = ctx.stats.kinds.lock().unwrap_or_else(|p| p.into_inner());
                    kinds
                        .values()
                        .flat_map(|k| k.cases.values())
                        .map(|c| c.requests)
                        .sum()
                };
                eprintln!(
                    "soak_driver: {:.0} s: {done} requests/connections, {} unexpected",
                    started.elapsed().as_secs_f64(),
                    ctx.stats.unexpected.load(Ordering::Relaxed)
                );
            }
        })
    };
    // Every loop ends at the deadline; a request in flight then has its client timeout (30 s).
    let hard_stop = ctx.deadline + Duration::from_secs(45);
    loop {
        match tokio::time::timeout_at(hard_stop, tasks.join_next()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => anyhow::bail!("a load task failed: {e}"),
            Ok(None) => break,
            Err(_) => {
                eprintln!(
                    "soak_driver: {} tasks still running after the deadline; stopping them",
                    tasks.len()
                );
                tasks.abort_all();
                break;
            }
        }
    }
    progress.abort();
    let summary = ctx.stats.summary(&ctx.args, started.elapsed());
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(if ctx.stats.unexpected.load(Ordering::Relaxed) > 0 {
        2
    } else {
        0
    })
}
