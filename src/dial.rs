//! Opening upstream connections, for every path that opens them (the relay's, a caller's own
//! connection on hyper's path, and the shared pool's connector): TCP to a route's
//! `host:port`, or a unix socket (`upstream = "unix:/run/app.sock"`, an app server in the same
//! pod: gunicorn, Puma, php-fpm's web server).
//!
//! A unix socket's route dials a name standing for the socket: `<hex of the path>.unix.invalid`
//! (`.invalid` never resolves, RFC 6761). Connections are kept and told apart by that name,
//! as TCP ones are by their authority, and the shared pool's URIs carry it; the `Host` its
//! requests carry is `localhost`, as nginx sends for `proxy_pass http://unix:…`.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::uri::Authority;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

const UNIX_SUFFIX: &str = ".unix.invalid";

/// The `Host` a unix socket's upstream is sent.
pub const UNIX_HOST: &str = "localhost";

/// The name a unix socket's connections are dialled and kept by (`None`: the path is too
/// long for a name).
pub fn unix_authority(socket: &Path) -> Option<Authority> {
    let hex: String = (socket.as_os_str().as_encoded_bytes().iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}{UNIX_SUFFIX}").parse().ok()
}

/// The socket a name from `unix_authority` stands for.
fn socket_of(authority: &Authority) -> Option<PathBuf> {
    let hex = authority.host().strip_suffix(UNIX_SUFFIX)?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

use std::os::unix::ffi::OsStringExt as _;

/// An open upstream connection.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// To an `https://` upstream (hyper's path: the relay hands such routes to it).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Opens a connection to `authority` (a route's `upstream_dial`) within `timeout`.
pub async fn open(authority: &Authority, timeout: Duration) -> io::Result<Stream> {
    let opening = async {
        if let Some(socket) = socket_of(authority) {
            return UnixStream::connect(socket).await.map(Stream::Unix);
        }
        let port = authority.port_u16().unwrap_or(80);
        // An IPv6 literal comes bracketed.
        let host = (authority.host())
            .trim_start_matches('[')
            .trim_end_matches(']');
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Stream::Tcp(stream))
    };
    tokio::time::timeout(timeout, opening)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

impl Stream {
    /// Reads what is there without waiting (`WouldBlock`: nothing).
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            Stream::Unix(s) => s.try_read(buf),
            Stream::Tls(s) => {
                let mut read = ReadBuf::new(buf);
                let mut cx = Context::from_waker(std::task::Waker::noop());
                match Pin::new(s.as_mut()).poll_read(&mut cx, &mut read) {
                    Poll::Ready(Ok(())) => Ok(read.filled().len()),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Tcp(s) => s.connected(),
            Stream::Unix(s) => s.connected(),
            Stream::Tls(s) => s.get_ref().0.connected(),
        }
    }
}

/// The shared pool's connector: hyper-util's for TCP (its connect timeout, keep-alive
/// probes, `TCP_NODELAY`), then TLS for an `https://` upstream (the current generation's
/// client config for its authority, `upstream_tls`); a unix socket for a unix socket's name.
#[derive(Clone)]
pub struct Connector {
    pub tcp: HttpConnector,
    pub timeout: Duration,
    pub tls: Arc<arc_swap::ArcSwap<crate::upstream_tls::Configs>>,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp.poll_ready(cx).map_err(io::Error::other)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let socket = uri.authority().and_then(socket_of);
        if let Some(socket) = socket {
            let timeout = self.timeout;
            return Box::pin(async move {
                let connecting = UnixStream::connect(socket);
                let stream = (tokio::time::timeout(timeout, connecting).await)
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                Ok(TokioIo::new(Stream::Unix(stream)))
            });
        }
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let tls = https.then(|| {
            let authority = uri.authority().cloned();
            let config = authority
                .as_ref()
                .and_then(|a| self.tls.load().get(a).cloned());
            (authority, config)
        });
        let connecting = self.tcp.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            let tcp = connecting.await.map_err(io::Error::other)?.into_inner();
            let Some((authority, config)) = tls else {
                return Ok(TokioIo::new(Stream::Tcp(tcp)));
            };
            let (Some(authority), Some(config)) = (authority, config) else {
                return Err(io::Error::other("no TLS settings for this upstream"));
            };
            let name = crate::upstream_tls::server_name(&authority).map_err(io::Error::other)?;
            let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
            let stream = (tokio::time::timeout(timeout, handshake).await).map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_name_stands_for_its_path() {
        let path = Path::new("/run/app/gunicorn.sock");
        let name = unix_authority(path).unwrap();
        assert!(name.host().ends_with(".unix.invalid"));
        assert_eq!(socket_of(&name).as_deref(), Some(path));
        let tcp: Authority = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(socket_of(&tcp), None);
        let odd: Authority = "abc.unix.invalid".parse().unwrap();
        assert_eq!(socket_of(&odd), None);
    }
}
