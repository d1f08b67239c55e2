//! storegate: a TLS reverse-proxy that issues OAuth2 client-credentials tokens and guards a
//! store's backend APIs with them.
//!
//! One request's path through the code: `server` (accept, TLS, HTTP) -> `service` (dispatch)
//! -> either `endpoint` (the token endpoint, in the shape of a documented API) or
//! `token::verify` + `proxy` (the guard and the forwarding). `config` validates gateway.toml,
//! `clients` holds the client registry, `errors` is the one table of refusals and their bodies,
//! `tls` loads or generates certificates, `demo` is the built-in demo store API.
#![forbid(unsafe_code)]

pub mod clients;
pub mod config;
pub mod demo;
pub mod endpoint;
pub mod errors;
pub mod headers;
pub mod proxy;
pub mod server;
pub mod service;
pub mod tls;
pub mod token;

/// The response body type: a small body the gateway wrote, or the upstream's body, streamed.
pub type Body = http_body_util::Either<http_body_util::Full<bytes::Bytes>, hyper::body::Incoming>;
