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

/// An RFC 3339 instant no later than now, in epoch seconds (a fraction is cut off); the error
/// completes a sentence that starts with the value.
pub fn past_instant(s: &str) -> Result<u64, &'static str> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| "is not an RFC 3339 instant such as \"2026-11-23T10:00:00Z\"")?;
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| "is before 1970")?;
    // An instant ahead would refuse the tokens issued from now until then as well.
    if secs > now_unix() {
        return Err("is in the future");
    }
    Ok(secs)
}
