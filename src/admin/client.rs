//! The CLI's side of the admin listener: `storegate revoke ...` posts to `/revocations` on the
//! running gateway's admin address (its loopback side when it listens on all addresses), with
//! the credential from `admin.token_file`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::config::AdminConfig;

/// Where the CLI reaches the admin listener: an unspecified address is reached on loopback.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Posts a revocation (`{"client":...}` or `{"jti":...}`) and returns the gateway's answer.
pub async fn revoke(admin: &AdminConfig, body: serde_json::Value) -> anyhow::Result<String> {
    let Some(file) = &admin.token_file else {
        bail!("no admin credential: set admin.token_file or server.state_dir");
    };
    let token = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the admin credential {}", file.display()))?;
    let addr = local_address(admin.listen);
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach the admin listener at {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::post("/revocations")
        .header(header::HOST, addr.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {}", token.trim()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let text = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&text).into_owned();
    if !status.is_success() {
        bail!("the gateway answered {status}: {text}");
    }
    Ok(text)
}
