//! One request, three transports: the relay (HTTP/1.1), hyper's HTTP/1.1 (a connection the
//! relay handed over) and HTTP/2 — against the same upstream answers, well-formed and not.
//! What the upstream receives (header set, order and case aside) and what the caller receives
//! (status, headers but `date` and the framing ones, the decoded body) must be the same on
//! every path, and a request after it on the same connection must get its own answer or a
//! closed connection, never another's.

mod support;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use support::scripted::*;
use support::*;

/// Names and values, lower-cased names, sorted: a header set with order and case aside.
type Fields = Vec<(String, String)>;

/// A request to send down every path.
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: &'static str,
}

/// How the scripted upstream answers, chosen by the path's second segment.
fn answer(head: &str) -> Reply {
    let kind = path_of(head).split('/').nth(2).unwrap_or("");
    let head_request = head.starts_with("HEAD ");
    let with_body = |h: &str, body: &str| {
        let body = if head_request { "" } else { body };
        format!("{h}{body}").into_bytes()
    };
    let bytes = match kind {
        "chunked" => with_body(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n",
            "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n",
        ),
        "close" => {
            return (
                with_body("HTTP/1.1 200 OK\r\nX-Up: 1\r\n\r\n", "to the end"),
                true,
            )
                .into();
        }
        "interim" => with_body(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\n",
            "final",
        ),
        "coding" => with_body(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged",
        ),
        "garbage" => b"SMTP ready\r\n\r\n".to_vec(),
        "stray" => with_body(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
            "okHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged",
        ),
        "nobody" => b"HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n".to_vec(),
        _ => {
            let body = path_of(head);
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nKeep-Alive: timeout=5\r\nConnection: x-hop-up\r\nX-Hop-Up: 1\r\nX-Request-Id: theirs\r\nX-Up: 1\r\nX-Up: 2\r\n\r\n",
                body.len()
            );
            with_body(&h, body)
        }
    };
    (bytes, kind == "garbage" || kind == "coding").into()
}

/// The requests: hostile headers in odd case and spelling, `Connection`-named headers,
/// duplicates, long values, with and without a body, HEAD.
fn cases(token: &str) -> Vec<Case> {
    let auth = ("Authorization".to_owned(), format!("Bearer {token}"));
    let base = |extra: &[(&str, &str)]| {
        let mut h = vec![
            ("Host".to_owned(), "shop.example".to_owned()),
            auth.clone(),
            ("X-Request-Id".to_owned(), "case-id-1".to_owned()),
        ];
        h.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        h
    };
    let long = "v".repeat(6000);
    let hostile: Vec<(&str, &str)> = vec![
        ("X-STOREGATE-CLIENT-ID", "evil"),
        ("x_storegate_scope", "evil"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("x_forwarded_host", "evil.example"),
        ("X-Forwarded-Port", "1"),
        ("Forwarded", "for=6.6.6.6"),
        ("Proxy-Authorization", "Basic x"),
        ("api_key", "k"),
        ("DPoP", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln"),
        ("Client-Cert", ":MIIB:"),
        ("client-cert-chain", ":MIIC:"),
        ("Accept", "a/b"),
        ("accept", "c/d"),
        ("X-Long", &long),
    ];
    let mut all = Vec::new();
    for kind in [
        "ok", "chunked", "close", "interim", "coding", "garbage", "stray", "nobody",
    ] {
        let path = format!("/admin/{kind}/x?q=1");
        all.push(Case {
            method: "GET",
            path: path.clone(),
            headers: base(&hostile),
            body: "",
        });
        all.push(Case {
            method: "POST",
            path: path.clone(),
            headers: base(&[("Content-Type", "text/plain"), ("Content-Length", "5")]),
            body: "hello",
        });
        all.push(Case {
            method: "HEAD",
            path,
            headers: base(&[]),
            body: "",
        });
    }
    // The gateway's own answers and refusals.
    for path in [
        "/healthz",
        "/.well-known/jwks.json",
        "/nowhere",
        "/admin/a/../b",
        "/admin/x",
    ] {
        let mut headers = base(&[]);
        if path == "/admin/x" {
            headers[1].1 = "Bearer not-a-token".into();
        }
        all.push(Case {
            method: "GET",
            path: path.to_owned(),
            headers,
            body: "",
        });
    }
    all
}

/// A response as a caller reads it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    headers: Fields,
    body: Bytes,
}

/// Headers that differ by transport or by time, not by rule.
fn compared(name: &str) -> bool {
    !matches!(
        name,
        "date" | "transfer-encoding" | "connection" | "keep-alive"
    )
}

fn fields<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> Fields {
    let mut f: Fields = pairs
        .map(|(k, v)| (k.to_ascii_lowercase(), shown(v)))
        .filter(|(k, _)| compared(k))
        .collect();
    f.sort();
    f
}

/// A value as compared and shown: a long one by its start, length and byte sum.
fn shown(v: &[u8]) -> String {
    let text = String::from_utf8_lossy(v);
    if v.len() <= 64 {
        return text.into_owned();
    }
    let sum: u64 = v.iter().map(|&b| u64::from(b)).sum();
    format!("{}... ({} bytes, sum {sum})", &text[..16], v.len())
}

/// The request's bytes on HTTP/1.1.
fn wire(c: &Case) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", c.method, c.path);
    for (k, v) in &c.headers {
        out += &format!("{k}: {v}\r\n");
    }
    out += "\r\n";
    out += c.body;
    out.into_bytes()
}

/// Reads one HTTP/1.1 response (`None`: the connection closed before one began).
async fn read_response<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    head_request: bool,
) -> Option<Seen> {
    let fill = async |s: &mut S, buf: &mut Vec<u8>| {
        let mut chunk = [0u8; 16384];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut chunk));
        let n = read.await.expect("an answer within 10 s").unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        n
    };
    let (status, headers, len) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(len) = r.parse(buf).unwrap() {
            let h = fields(r.headers.iter().map(|h| (h.name, h.value)));
            break (r.code.unwrap(), h, len);
        }
        if fill(s, buf).await == 0 {
            assert!(buf.is_empty(), "a partial head: {buf:?}");
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..len]).to_ascii_lowercase();
    buf.drain(..len);
    let mut body = Vec::new();
    if head_request || status == 204 || status == 304 {
    } else if head.contains("\r\ntransfer-encoding: chunked\r\n") {
        loop {
            while !buf.windows(2).any(|w| w == b"\r\n") {
                assert!(fill(s, buf).await > 0, "cut off");
            }
            let i = buf.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = String::from_utf8_lossy(&buf[..i]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
            buf.drain(..i + 2);
            if size == 0 {
                // Trailers, then the empty line.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.starts_with(b"\r\n") {
                    assert!(fill(s, buf).await > 0, "cut off");
                }
                let end = if buf.starts_with(b"\r\n") {
                    2
                } else {
                    buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4
                };
                buf.drain(..end);
                break;
            }
            while buf.len() < size + 2 {
                assert!(fill(s, buf).await > 0, "cut off");
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(n) = head
        .split("\r\ncontent-length: ")
        .nth(1)
        .and_then(|r| r.split("\r\n").next())
    {
        let n: usize = n.trim().parse().unwrap();
        while buf.len() < n {
            assert!(fill(s, buf).await > 0, "cut off");
        }
        body = buf.drain(..n).collect();
    } else {
        while fill(s, buf).await > 0 {}
        body = std::mem::take(buf);
    }
    Some(Seen {
        status,
        headers,
        body: body.into(),
    })
}

/// What the next request on the connection got.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Own,
    Closed,
}

/// Sends `c` on an HTTP/1.1 connection (handed to hyper first when `hyper`), then a request
/// after it; returns what the caller saw and what became of the next request.
async fn over_http1(gw: &Gateway, c: &Case, token: &str, hyper: bool) -> (Seen, Next) {
    let mut tls = tls_stream(gw, &[&gw.ca_pem], &[b"http/1.1"]).await;
    let mut buf = Vec::new();
    if hyper {
        // A header named in `Connection` is the relay's sign to hand the connection over.
        let handoff = b"GET /healthz HTTP/1.1\r\nhost: gw\r\nconnection: x-hop\r\nx-hop: 1\r\n\r\n";
        tls.write_all(handoff).await.unwrap();
        let seen = read_response(&mut tls, &mut buf, false).await.unwrap();
        assert_eq!(seen.status, 200);
    }
    tls.write_all(&wire(c)).await.unwrap();
    let seen = read_response(&mut tls, &mut buf, c.method == "HEAD").await;
    let seen = seen.unwrap_or_else(|| panic!("{} {}: no answer", c.method, c.path));
    let next =
        format!("GET /admin/next HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\r\n");
    if tls.write_all(next.as_bytes()).await.is_err() {
        return (seen, Next::Closed);
    }
    let next = match read_response(&mut tls, &mut buf, false).await {
        None => Next::Closed,
        Some(n) => {
            assert_eq!(
                n.body, "/admin/next",
                "{} {}: another's answer",
                c.method, c.path
            );
            Next::Own
        }
    };
    (seen, next)
}

/// Sends `c` on an HTTP/2 stream (connection-specific headers, which HTTP/2 forbids, left out).
async fn over_http2(gw: &Gateway, c: &Case) -> Seen {
    let tls = tls_stream(gw, &[&gw.ca_pem], &[b"h2"]).await;
    let (mut h2, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let host = c.headers.iter().find(|(k, _)| k == "Host").unwrap();
    let mut req = http::Request::builder()
        .method(c.method)
        .uri(format!("https://{}{}", host.1, c.path));
    for (k, v) in &c.headers {
        let lower = k.to_ascii_lowercase();
        let forbidden = ["host", "connection", "keep-alive", "proxy-connection"];
        if !forbidden.contains(&lower.as_str()) {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let (answer, mut send) = h2
        .send_request(req.body(()).unwrap(), c.body.is_empty())
        .unwrap();
    if !c.body.is_empty() {
        send.send_data(Bytes::from_static(c.body.as_bytes()), true)
            .unwrap();
    }
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), answer)
        .await
        .unwrap_or_else(|_| panic!("{} {}: no HTTP/2 answer within 10 s", c.method, c.path))
        .unwrap();
    let status = resp.status().as_u16();
    let headers = fields(
        resp.headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes())),
    );
    let mut body = resp.into_body();
    let mut all = Vec::new();
    while let Some(chunk) = body.data().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    Seen {
        status,
        headers,
        body: all.into(),
    }
}

fn heads(seen: &support::scripted::Seen) -> usize {
    seen.heads.lock().unwrap().len()
}

/// What the upstream saw of the request for `path`, if it came, as the one after the
/// `before`th (the request sent after it on the same connection comes later).
fn upstream_since(
    seen: &support::scripted::Seen,
    before: usize,
    path: &str,
) -> Option<(String, Fields)> {
    upstream_saw(seen, before).filter(|(line, _)| line.split(' ').nth(1) == Some(path))
}

/// The `index`th request head the upstream saw, as a header set (order and case aside).
fn upstream_saw(seen: &support::scripted::Seen, index: usize) -> Option<(String, Fields)> {
    let heads = seen.heads.lock().unwrap();
    let head = heads.get(index)?;
    let line = head.lines().next().unwrap().to_owned();
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Request::new(&mut slots);
    r.parse(head.as_bytes()).unwrap();
    Some((line, fields(r.headers.iter().map(|h| (h.name, h.value)))))
}

#[tokio::test]
async fn every_path_forwards_and_answers_the_same() {
    let (up, seen) = scripted(true, answer).await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let mut differences = Vec::new();
    for c in cases(&token) {
        let what = format!("{} {}", c.method, c.path);
        let before = heads(&seen);
        let (relay, relay_next) = over_http1(&gw, &c, &token, false).await;
        let up_relay = upstream_since(&seen, before, &c.path);
        let before = heads(&seen);
        let (hyper, hyper_next) = over_http1(&gw, &c, &token, true).await;
        let up_hyper = upstream_since(&seen, before, &c.path);
        let before = heads(&seen);
        let h2 = over_http2(&gw, &c).await;
        let up_h2 = upstream_since(&seen, before, &c.path);
        let mut differ = |path: &str, a: String, b: String| {
            if a != b {
                differences.push(format!("{what}, {path}:\n  relay: {a}\n  other: {b}"));
            }
        };
        differ(
            "caller, hyper HTTP/1.1",
            format!("{relay:?}"),
            format!("{hyper:?}"),
        );
        differ("caller, HTTP/2", format!("{relay:?}"), format!("{h2:?}"));
        differ(
            "upstream, hyper HTTP/1.1",
            format!("{up_relay:?}"),
            format!("{up_hyper:?}"),
        );
        differ(
            "upstream, HTTP/2",
            format!("{up_relay:?}"),
            format!("{up_h2:?}"),
        );
        // The one difference allowed: an answer delimited by the upstream's close is relayed
        // as it came and closes the caller's connection; hyper re-frames it and goes on.
        let close_delimited = c.path.starts_with("/admin/close/") && c.method != "HEAD";
        if !(close_delimited && relay_next == Next::Closed) {
            differ(
                "next request, hyper HTTP/1.1",
                format!("{relay_next:?}"),
                format!("{hyper_next:?}"),
            );
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// An HTTP/2 stream's bodiless request goes the relay's way (`relay::stream`), not through
/// hyper's client: the upstream connection it used is parked once the answer has ended (a
/// chunked one decoded to its end), and a relayed caller after it takes that connection
/// rather than opening one. (Through hyper's client, the connection would stay in its pool,
/// which the relay never sees.)
#[tokio::test]
async fn http2_streams_share_the_relays_upstream_connections() {
    let (up, seen) = scripted(true, answer).await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let get = |kind: &str| {
        let path = format!("/admin/{kind}/x?q=1");
        let all = cases(&token).into_iter();
        all.filter(|c| c.method == "GET").find(|c| c.path == path)
    };
    for kind in ["ok", "chunked", "ok"] {
        let answered = over_http2(&gw, &get(kind).unwrap()).await;
        assert_eq!(answered.status, 200, "{kind}");
    }
    let (relayed, next) = over_http1(&gw, &get("ok").unwrap(), &token, false).await;
    assert_eq!((relayed.status, next), (200, Next::Own));
    let opened = seen.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        opened, 1,
        "upstream connections opened for 5 requests in turn"
    );
}
