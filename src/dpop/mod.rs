//! DPoP (RFC 9449): sender-constrained tokens. `proof` checks one proof, `htu` builds and
//! normalizes the URL a proof names, `replay` accepts each proof once.

pub mod htu;
pub mod proof;
pub mod replay;
