//! CORS (the Fetch standard's CORS protocol) for browser storefronts: a page on the shop's
//! origin calling the gateway on another. The rules, written once for both transports: which
//! requests are preflights, how a preflight is answered, and which headers every answer to an
//! allowed origin carries (refusals too, so a page can read a 401's `WWW-Authenticate`). The
//! relay writes them as bytes, hyper's path into header maps; `dispatch` says which policy a
//! request is under.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::errors::Refusal;

/// What a route or endpoint does about CORS.
#[derive(Debug, Clone, Default)]
pub enum Cors {
    /// Nothing: no preflight is answered, no header added (a preflight meets the guard).
    #[default]
    Off,
    /// The gateway answers preflights and adds the headers, replacing an upstream's own.
    Gateway(Arc<Policy>),
    /// The route's upstream answers CORS itself: preflights are forwarded without a token
    /// (they never carry one) and its headers are left as they are.
    Upstream,
}

/// Which origins may read the answers, and what they may send.
#[derive(Debug)]
pub struct Policy {
    origins: Origins,
    credentials: bool,
    methods: Vec<Method>,
    allow_methods: HeaderValue,
    /// Lowercase.
    headers: Vec<String>,
    allow_headers: HeaderValue,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
}

/// The origins a policy allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// `"*"`: any origin, never with credentials.
    Any,
    /// Exact serialized origins (`https://shop.example`, `http://127.0.0.1:8081`), lowercase.
    Listed(Vec<String>),
}

impl Policy {
    /// A policy; `methods`, `headers` and `expose` as configured (validated by `config`).
    pub fn new(
        origins: Origins,
        credentials: bool,
        methods: Vec<Method>,
        headers: Vec<String>,
        expose: &[String],
        max_age_secs: u64,
    ) -> Policy {
        let join = |items: &mut dyn Iterator<Item = &str>| {
            let text = items.collect::<Vec<_>>().join(", ");
            HeaderValue::try_from(text).expect("names and methods are valid header text")
        };
        let headers: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
        Policy {
            allow_methods: join(&mut methods.iter().map(Method::as_str)),
            allow_headers: join(&mut headers.iter().map(String::as_str)),
            expose_headers: (!expose.is_empty())
                .then(|| join(&mut expose.iter().map(|h| h.as_str()))),
            max_age: HeaderValue::from(max_age_secs),
            origins,
            credentials,
            methods,
            headers,
        }
    }

    /// The same policy for other origins (a route's or endpoint's own list).
    pub fn with_origins(&self, origins: Origins) -> Policy {
        Policy {
            origins,
            credentials: self.credentials,
            methods: self.methods.clone(),
            allow_methods: self.allow_methods.clone(),
            headers: self.headers.clone(),
            allow_headers: self.allow_headers.clone(),
            expose_headers: self.expose_headers.clone(),
            max_age: self.max_age.clone(),
        }
    }

    fn allows(&self, origin: &[u8]) -> bool {
        match &self.origins {
            Origins::Any => true,
            Origins::Listed(list) => list.iter().any(|o| o.as_bytes() == origin),
        }
    }

    /// The headers of an actual answer (not a preflight) to a request from `origin`.
    pub fn answer(&self, origin: Option<&[u8]>) -> Answer<'_> {
        let allowed = origin
            .filter(|o| self.allows(o))
            .map(|o| match self.origins {
                Origins::Any if !self.credentials => HeaderValue::from_static("*"),
                // Checked against the list, so valid header text.
                _ => HeaderValue::from_bytes(o).expect("an allowed origin is valid header text"),
            });
        Answer {
            policy: self,
            allow_origin: allowed,
        }
    }

    /// Answers a preflight: the headers of its 204, or why it is refused (with the outcome
    /// label of `storegate_cors_preflights_total`). The request's `Origin`,
    /// `Access-Control-Request-Method` and `-Headers` are read from `asked`.
    pub fn preflight(&self, asked: &HeaderMap) -> Result<Answer<'_>, (Refusal, &'static str)> {
        let origin = asked.get(http::header::ORIGIN).map(HeaderValue::as_bytes);
        let answer = self.answer(origin);
        if answer.allow_origin.is_none() {
            return Err((ORIGIN_REFUSED, "origin_refused"));
        }
        let method = asked
            .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        if !method.is_some_and(|m| self.methods.contains(&m)) {
            return Err((METHOD_REFUSED, "method_refused"));
        }
        let mut names = asked
            .get_all(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|n| !n.is_empty());
        if !names.all(|n| {
            self.headers
                .iter()
                .any(|h| h.as_bytes().eq_ignore_ascii_case(n))
        }) {
            return Err((HEADERS_REFUSED, "headers_refused"));
        }
        Ok(Answer {
            policy: self,
            ..answer
        })
    }
}

const ORIGIN_REFUSED: Refusal = Refusal::CorsRefused("this origin may not call this API");
const METHOD_REFUSED: Refusal =
    Refusal::CorsRefused("this method is not allowed for cross-origin requests");
const HEADERS_REFUSED: Refusal =
    Refusal::CorsRefused("a request header is not allowed for cross-origin requests");

/// Whether a request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method` (a plain `OPTIONS` is an ordinary request).
pub fn is_preflight(method: &Method, origin: bool, request_method: bool) -> bool {
    method == Method::OPTIONS && origin && request_method
}

/// Whether an upstream's response header is one the gateway replaces on a route it answers
/// CORS for.
pub fn is_cors_header(name: &str) -> bool {
    name.len() > 15 && name.as_bytes()[..15].eq_ignore_ascii_case(b"access-control-")
}

/// The CORS headers of one answer.
#[derive(Debug)]
pub struct Answer<'p> {
    policy: &'p Policy,
    /// `Access-Control-Allow-Origin`, when the origin is allowed.
    allow_origin: Option<HeaderValue>,
}

impl Answer<'_> {
    /// The fields of an actual answer, in order: none but `Vary: Origin` for an origin not
    /// allowed (when the answer depends on the origin at all).
    pub fn fields(&self) -> impl Iterator<Item = (HeaderName, &HeaderValue)> {
        use http::header as h;
        let p = self.policy;
        let allowed = self.allow_origin.as_ref();
        let vary = matches!(p.origins, Origins::Listed(_)) || p.credentials;
        [
            allowed.map(|o| (h::ACCESS_CONTROL_ALLOW_ORIGIN, o)),
            allowed
                .filter(|_| p.credentials)
                .map(|_| (h::ACCESS_CONTROL_ALLOW_CREDENTIALS, &TRUE)),
            allowed
                .and(p.expose_headers.as_ref())
                .map(|e| (h::ACCESS_CONTROL_EXPOSE_HEADERS, e)),
            vary.then_some((h::VARY, &ORIGIN)),
        ]
        .into_iter()
        .flatten()
    }

    /// The fields of a preflight's 204 (`preflight` allowed it).
    pub fn preflight_fields(&self) -> impl Iterator<Item = (HeaderName, &HeaderValue)> {
        use http::header as h;
        let p = self.policy;
        let allowed = self.allow_origin.as_ref();
        [
            allowed.map(|o| (h::ACCESS_CONTROL_ALLOW_ORIGIN, o)),
            allowed
                .filter(|_| p.credentials)
                .map(|_| (h::ACCESS_CONTROL_ALLOW_CREDENTIALS, &TRUE)),
            Some((h::ACCESS_CONTROL_ALLOW_METHODS, &p.allow_methods)),
            Some((h::ACCESS_CONTROL_ALLOW_HEADERS, &p.allow_headers)),
            Some((h::ACCESS_CONTROL_MAX_AGE, &p.max_age)),
            Some((h::VARY, &PREFLIGHT_VARY)),
        ]
        .into_iter()
        .flatten()
    }

    /// Writes the fields of an actual answer into `headers`, replacing the upstream's own
    /// `Access-Control-*` fields (hyper's path; the relay writes `fields` as bytes).
    pub fn apply(&self, headers: &mut HeaderMap) {
        let theirs: Vec<HeaderName> = (headers.keys())
            .filter(|k| is_cors_header(k.as_str()))
            .cloned()
            .collect();
        for name in theirs {
            headers.remove(name);
        }
        for (name, value) in self.fields() {
            headers.append(name, value.clone());
        }
    }
}

static TRUE: HeaderValue = HeaderValue::from_static("true");
static ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
static PREFLIGHT_VARY: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);

#[cfg(test)]
#[path = "cors_tests.rs"]
mod tests;
