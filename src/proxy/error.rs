//! Why an upstream exchange failed, and what the caller is answered: the caller's own fault
//! (its body) is a 4xx, the upstream's a 502 or 504, counted by kind.

use crate::body::Track;
use crate::errors::Refusal;
use crate::forwarding::{self, Failed};
use crate::routes::Route;

use super::Upstream;

/// Why an upstream exchange failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// Through the shared pool.
    Pool(hyper_util::client::legacy::Error),
    /// Opening a connection of the caller's own.
    Connect(std::io::Error),
    /// On a connection of the caller's own.
    Exchange(hyper::Error),
    /// A response in a transfer coding that is not relayed (`headers::relayed_coding`).
    Coding,
}

impl UpstreamError {
    fn is_connect(&self) -> bool {
        match self {
            UpstreamError::Pool(e) => e.is_connect(),
            UpstreamError::Connect(_) => true,
            UpstreamError::Exchange(_) | UpstreamError::Coding => false,
        }
    }

    fn hyper(&self) -> Option<&hyper::Error> {
        match self {
            UpstreamError::Pool(e) => {
                std::error::Error::source(e).and_then(|s| s.downcast_ref::<hyper::Error>())
            }
            UpstreamError::Connect(_) | UpstreamError::Coding => None,
            UpstreamError::Exchange(e) => Some(e),
        }
    }

    /// Whether the upstream closed the connection before a byte of its answer came.
    pub(super) fn closed_before_answering(&self) -> bool {
        !self.is_connect()
            && self
                .hyper()
                .is_some_and(|h| h.is_incomplete_message() || h.is_canceled())
    }

    /// The `kind` label of the failure's metric.
    pub fn kind(&self) -> &'static str {
        if self.is_connect() {
            return "connect";
        }
        if matches!(self, UpstreamError::Coding) {
            return "protocol";
        }
        match self.hyper() {
            Some(h) if h.is_incomplete_message() || h.is_canceled() || h.is_closed() => "reset",
            Some(h) if h.is_parse() || h.is_parse_status() => "protocol",
            _ => "other",
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Pool(e) => chain(f, e),
            UpstreamError::Connect(e) => {
                f.write_str("cannot connect: ")?;
                chain(f, e)
            }
            UpstreamError::Exchange(e) => chain(f, e),
            UpstreamError::Coding => f.write_str(crate::headers::CODING_REFUSED),
        }
    }
}

/// An error and its sources, `: `-joined (hyper's own message names only the outermost:
/// "client error (Connect)").
fn chain(f: &mut std::fmt::Formatter<'_>, e: &dyn std::error::Error) -> std::fmt::Result {
    write!(f, "{e}")?;
    let mut source = e.source();
    while let Some(s) = source {
        write!(f, ": {s}")?;
        source = s.source();
    }
    Ok(())
}

impl Upstream {
    /// A failed upstream request (`None`: no head in time), answered by the one rule
    /// (`forwarding::refusal`): the caller's fault when its own body failed, else the
    /// upstream's.
    pub(super) fn failure(
        &self,
        route: &Route,
        sent: &Track,
        error: Option<&UpstreamError>,
    ) -> Refusal {
        let failed = match (sent.fault(), error) {
            (Some(fault), _) => Failed::Caller(fault),
            (None, Some(e)) => Failed::Upstream {
                kind: e.kind(),
                error: e,
            },
            (None, None) => Failed::Timeout,
        };
        forwarding::refusal(&self.metrics, route, failed)
    }
}
