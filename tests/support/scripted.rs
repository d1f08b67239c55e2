//! An upstream that answers with scripted bytes, for what a well-behaved HTTP server never
//! sends: odd framing, bytes after the end of an answer, interim responses while the body is
//! still coming, closes of idle keep-alive connections on its own timer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// What the scripted upstream does with one request.
#[derive(Default)]
pub struct Reply {
    /// Written once the request (head and, when read, body) is in.
    pub bytes: Vec<u8>,
    /// Close the connection after `bytes`.
    pub close: bool,
    /// Written after the head and before the body is read (an interim `100 Continue`).
    pub interim: Option<Vec<u8>>,
    /// Written in a later segment, when the test says so (`Seen::release`).
    pub later: Option<Vec<u8>>,
    /// Close the connection once it has been idle this long (gunicorn, Node).
    pub idle_close: Option<Duration>,
}

impl From<(Vec<u8>, bool)> for Reply {
    fn from((bytes, close): (Vec<u8>, bool)) -> Reply {
        Reply {
            bytes,
            close,
            ..Reply::default()
        }
    }
}

/// Things the upstream did that a test waits for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Events {
    pub interims_sent: usize,
    pub later_sent: usize,
    pub idle_closes: usize,
}

/// What the scripted upstream saw and did.
pub struct Seen {
    pub connections: AtomicUsize,
    pub heads: Mutex<Vec<String>>,
    events: watch::Sender<Events>,
    release: Notify,
}

impl Seen {
    /// Lets the next `later` write go (now, or when it comes to it).
    pub fn release(&self) {
        self.release.notify_one();
    }

    /// Waits (10 s at most) until the upstream's events satisfy `done`.
    pub async fn until(&self, done: impl Fn(&Events) -> bool) {
        let mut rx = self.events.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|e| done(e)))
            .await
            .is_ok();
        assert!(waited, "upstream events: {:?}", *self.events.borrow());
    }

    pub fn paths(&self) -> Vec<String> {
        let heads = self.heads.lock().unwrap();
        heads.iter().map(|h| path_of(h).to_owned()).collect()
    }

    fn note(&self, f: impl FnOnce(&mut Events)) {
        self.events.send_modify(f);
    }
}

/// An upstream that reads each request head (and its `Content-Length` body, unless
/// `read_body` is false) and does what `answer` makes of the head.
pub async fn scripted<R: Into<Reply>>(
    read_body: bool,
    answer: impl Fn(&str) -> R + Send + Sync + 'static,
) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen {
        connections: AtomicUsize::new(0),
        heads: Mutex::default(),
        events: watch::Sender::new(Events::default()),
        release: Notify::new(),
    });
    let answer: Arc<dyn Fn(&str) -> Reply + Send + Sync> = Arc::new(move |h| answer(h).into());
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            seen2.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, read_body, seen2.clone(), answer.clone()));
        }
    });
    (addr, seen)
}

async fn serve(
    mut s: TcpStream,
    read_body: bool,
    seen: Arc<Seen>,
    answer: Arc<dyn Fn(&str) -> Reply + Send + Sync>,
) {
    let mut buf = Vec::new();
    let mut idle_close = None;
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let read = s.read(&mut chunk);
            let n = match idle_close.filter(|_| buf.is_empty()) {
                Some(idle) => match tokio::time::timeout(idle, read).await {
                    Ok(r) => r,
                    Err(_) => {
                        drop(s);
                        seen.note(|e| e.idle_closes += 1);
                        return;
                    }
                },
                None => read.await,
            };
            match n {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let reply = answer(&head);
        if let Some(interim) = &reply.interim {
            if s.write_all(interim).await.is_err() {
                return;
            }
            seen.note(|e| e.interims_sent += 1);
        }
        if read_body {
            let len = content_length(&head);
            while buf.len() < len {
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..len);
        }
        seen.heads.lock().unwrap().push(head);
        if s.write_all(&reply.bytes).await.is_err() || reply.close {
            return;
        }
        if let Some(later) = &reply.later {
            seen.release.notified().await;
            if s.write_all(later).await.is_err() {
                return;
            }
            seen.note(|e| e.later_sent += 1);
        }
        idle_close = reply.idle_close;
    }
}

/// A gateway in front of a `scripted` upstream, and a token for its `/admin/` route.
pub async fn relayed<R: Into<Reply>>(
    read_body: bool,
    answer: impl Fn(&str) -> R + Send + Sync + 'static,
) -> (super::Gateway, Arc<Seen>, String) {
    let (up, seen) = scripted(read_body, answer).await;
    let gw = super::spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", super::SECRET).await;
    (gw, seen, token)
}

/// A GET on a connection of its own (`gw.client`'s may have been handed to hyper).
pub async fn fresh_get(gw: &super::Gateway, path: &str, token: &str) -> reqwest::Response {
    let client = super::client_for(&gw.ca_pem, false);
    client
        .get(gw.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// The path of a request head.
pub fn path_of(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

/// A 200 answer with `body`.
pub fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads from `s` until `n` responses have come whole (heads with `Content-Length`).
pub async fn read_responses<S: tokio::io::AsyncRead + Unpin>(s: &mut S, n: usize) -> String {
    let mut out = Vec::new();
    let complete = |out: &[u8]| {
        let text = String::from_utf8_lossy(out);
        let mut rest: &str = &text;
        for _ in 0..n {
            let Some(i) = rest.find("\r\n\r\n") else {
                return false;
            };
            let len = content_length(&rest[..i + 4]);
            if rest.len() < i + 4 + len {
                return false;
            }
            rest = &rest[i + 4 + len..];
        }
        true
    };
    while !complete(&out) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("responses within 10 s")
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(out).unwrap()
}
