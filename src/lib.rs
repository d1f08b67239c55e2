//! storegate: a TLS reverse-proxy that issues OAuth2 client-credentials tokens and guards a
//! store's backend APIs with them.
//!
//! One request's path through the code: `server` (accept, TLS; ALPN picks the transport) ->
//! for HTTP/1.1, `relay` (heads parsed and written as bytes), for HTTP/2 and whatever the relay
//! hands over, `service` (hyper). Both call the same steps: `dispatch` (every check before the
//! guard), then `own` (health, documents, and `endpoint`: the token endpoint in the shape of a
//! documented API, revocation, introspection) or `guard` (token, `token::verify`, revocation,
//! rate limit) and forwarding (`relay::exchange` as bytes, `proxy` with hyper's client;
//! `headers` is the one list of header rules both apply, `forwarding` the one resend rule and
//! upstream-failure answer, `errors` the one refusal table), then `access::finish` (metrics,
//! access line). `conn` is the one home of a connection's state, lent to both.
//!
//! `state` splits what lives per configuration (`Generation`) from what lives per process
//! (`Shared`: upstream pool, `ratelimit` buckets, the token cache, `revocation`, `throttle`).
//! `config` validates gateway.toml into domain types (`clients`, `routes`, `tls`,
//! `token::keys`) and is imported by none of them; `reload` replaces the generation. `affinity`
//! is a caller's own upstream connection, `body` guarded bodies, `outcome` a request's result
//! before it becomes HTTP, `request_id` the ids, `cluster` what replicas share through Redis,
//! `admin` the admin listener, `metrics` and `health` what operators read, `discovery` the
//! metadata documents, `devfiles` the rule for generated development files, `cors` the CORS
//! rules, `demo` the built-in demo store API and storefront page, `fuzzing` the fuzz targets'
//! entry points.
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod affinity;
pub mod assertion;
pub mod body;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod cors;
pub mod decision;
pub mod demo;
pub mod devfiles;
pub mod dial;
pub mod discovery;
pub mod dispatch;
pub mod dpop;
pub mod endpoint;
pub mod errors;
pub mod forwarding;
// Compiled only for the fuzz targets (cargo-fuzz sets `--cfg fuzzing`) and the corpus replay
// (a unit test): the library a user builds carries none of it.
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod guard;
pub mod headers;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod mtls;
pub mod outcome;
pub mod own;
pub mod parking;
pub mod pem;
pub mod proxy;
pub mod ratelimit;
pub mod registration;
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
pub mod upstream_tls;

/// The response body type: a small body the gateway wrote, or the upstream's body, streamed
/// under an idle timeout.
pub type Body = http_body_util::Either<http_body_util::Full<bytes::Bytes>, body::Guarded>;
