//! A small demo store API that `gateway.toml` starts in-process on loopback, so a newcomer can
//! run the whole flow (token, API call, refusal) with nothing else installed. It trusts the
//! `x-storegate-*` identity headers because only the gateway can reach it. It also serves a
//! storefront page (`GET /storefront`, `storefront.html`) on its own origin, whose JavaScript
//! calls the gateway across origins (CORS) with an implicit token.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::headers;

/// The storefront page: no build step, no dependency, one file.
const STOREFRONT: &str = include_str!("storefront.html");

fn products() -> serde_json::Value {
    json!([
        {"id": 1, "sku": "TEE-BLK-M", "name": "Black T-shirt (M)", "price": {"amount": 1900, "currency": "EUR"}, "status": "live"},
        {"id": 2, "sku": "MUG-WHT", "name": "White mug", "price": {"amount": 900, "currency": "EUR"}, "status": "live"},
        {"id": 3, "sku": "CAP-RED", "name": "Red cap", "price": {"amount": 1500, "currency": "EUR"}, "status": "draft"}
    ])
}

/// Serves the demo API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            let svc = service_fn(|req| async move { Ok::<_, Infallible>(answer(req).await) });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let who = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let client = who(headers::CLIENT_ID);
    let grant = who(headers::GRANT);
    let path = req.uri().path().trim_end_matches('/').to_owned();
    if req.method() == Method::GET && path == "/storefront" {
        let mut resp = Response::new(Full::new(Bytes::from_static(STOREFRONT.as_bytes())));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return resp;
    }
    let (status, body) = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/api/products") => {
            // An implicit (public, read-only) token sees live products only, as seed 004 describes.
            let all = products();
            let items: Vec<_> = all
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| grant != "implicit" || p["status"] == "live")
                .cloned()
                .collect();
            (StatusCode::OK, json!({ "data": items }))
        }
        (Method::GET, p) if p.starts_with("/api/products/") => {
            let id: Option<u64> = p.trim_start_matches("/api/products/").parse().ok();
            match products()
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["id"].as_u64() == id)
            {
                Some(p) => (StatusCode::OK, json!({ "data": p })),
                None => (
                    StatusCode::NOT_FOUND,
                    json!({"errors": [{"title": "Not Found", "status": "404"}]}),
                ),
            }
        }
        (Method::GET, "/api/whoami") => (
            StatusCode::OK,
            json!({ "client_id": client, "grant": grant, "scope": who(headers::SCOPE) }),
        ),
        (Method::POST, "/api/orders") => {
            let body = Limited::new(req.into_body(), 64 * 1024).collect().await;
            let order: serde_json::Value = body
                .ok()
                .and_then(|b| serde_json::from_slice(&b.to_bytes()).ok())
                .unwrap_or(json!({}));
            (
                StatusCode::CREATED,
                json!({ "data": { "id": 1001, "placed_by": client, "order": order } }),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"errors": [{"title": "Not Found", "status": "404"}]}),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}
