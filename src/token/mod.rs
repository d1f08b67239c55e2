//! Access tokens (RFC 9068 JWT profile): keys, issuing, verifying, and the verification cache.
//! `verified` holds what a verified token means; `cache` keeps those by token digest;
//! `verify` checks a token (through the cache) with one generation's keys.

pub mod cache;
pub mod issue;
pub mod keys;
pub mod rotation;
pub mod verified;
pub mod verify;

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
