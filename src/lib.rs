//! storegate: a TLS reverse-proxy that issues OAuth2 client-credentials tokens and guards a
//! store's backend APIs with them.
//!
//! One request's path through the code: `server` (accept, TLS, HTTP) -> `service` (loads the
//! current `state::Generation`, dispatches by `routes`, renders the `outcome`) -> either
//! `endpoint` (the token endpoint, in the shape of a documented API) or `guard` (token,
//! `token::verify`, rate limit) + `proxy` (the forwarding).
//!
//! `state` splits what lives per configuration (`Generation`) from what lives per process
//! (`Shared`: upstream pool, `ratelimit` buckets, the token cache). `config` validates
//! gateway.toml into domain types (`clients`, `routes`, `tls`, `token::keys`) and is imported by
//! none of them. `errors` is the one table of refusals and their bodies, `conn` what is known of
//! a connection, `devfiles` the rule for generated development files, `demo` the built-in demo
//! store API.
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod affinity;
pub mod body;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod demo;
pub mod devfiles;
pub mod discovery;
pub mod dispatch;
pub mod endpoint;
pub mod errors;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod headers;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod outcome;
pub mod own;
pub mod proxy;
pub mod ratelimit;
pub mod relay;
pub mod reload;
pub mod request_id;
pub mod revocation;
pub mod routes;
pub mod server;
pub mod service;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod token;

/// The response body type: a small body the gateway wrote, or the upstream's body, streamed
/// under an idle timeout.
pub type Body = http_body_util::Either<http_body_util::Full<bytes::Bytes>, body::Guarded>;
