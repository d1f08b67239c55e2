//! Request ids: an incoming `x-request-id` is kept when it is well-formed and short, otherwise
//! one is made; it is forwarded upstream, returned to the caller and logged. (W3C
//! `traceparent` is not touched: the proxy passes it through like any end-to-end header.)

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::rand::SecureRandom;
use http::{HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id that is kept.
pub const MAX_LEN: usize = 128;

/// Makes request ids: a random prefix per process and a counter, 32 hex digits in all.
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut bytes = [0u8; 8];
        // A fixed prefix only makes ids of two processes collide; nothing depends on secrecy.
        let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
        RequestIds {
            prefix: u64::from_le_bytes(bytes),
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// The request's id: its own `x-request-id` if well-formed, else a new one, which is then
    /// set in `headers` (so that the upstream gets it).
    pub fn of(&self, headers: &mut HeaderMap) -> HeaderValue {
        if let Some(v) = headers.get(X_REQUEST_ID)
            && is_well_formed(v.as_bytes())
        {
            return v.clone();
        }
        let id =
            HeaderValue::from_bytes(&self.make()).expect("hex digits are a valid header value");
        headers.insert(X_REQUEST_ID, id.clone());
        id
    }

    /// The id of a request whose `x-request-id` value is `incoming`: that value if it is
    /// well-formed, else a new one; held inline, with no allocation.
    pub fn keep_or_make(&self, incoming: Option<&[u8]>) -> Id {
        let mut id = Id {
            len: 32,
            bytes: [0; MAX_LEN],
        };
        match incoming {
            Some(v) if is_well_formed(v) => {
                id.bytes[..v.len()].copy_from_slice(v);
                id.len = v.len() as u8;
            }
            _ => id.bytes[..32].copy_from_slice(&self.make()),
        }
        id
    }

    /// A new id: 32 hex digits.
    fn make(&self) -> [u8; 32] {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Written by hand: `format!` cost ~2,000 instructions per request here.
        let mut hex = [0u8; 32];
        for (i, byte) in self
            .prefix
            .to_be_bytes()
            .iter()
            .chain(&n.to_be_bytes())
            .enumerate()
        {
            hex[2 * i] = HEX[usize::from(byte >> 4)];
            hex[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        hex
    }
}

/// A request id, inline: a well-formed one (at most `MAX_LEN` bytes).
#[derive(Clone, Copy)]
pub struct Id {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl Id {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 1 to `MAX_LEN` characters of letters, digits and `-_.:+/=`, so that it is safe in a log
/// line and a header alike.
fn is_well_formed(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= MAX_LEN
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_id_is_kept_and_others_are_replaced() {
        let ids = RequestIds::default();
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(ids.of(&mut h), "abc-123");
        for bad in ["a b", "x\"y", "", &"z".repeat(129)] {
            h.insert(X_REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let id = ids.of(&mut h);
            assert_eq!(id.len(), 32, "{bad:?}");
            assert_eq!(h[X_REQUEST_ID], id, "replaced for the upstream");
        }
        let (a, b) = (ids.of(&mut HeaderMap::new()), ids.of(&mut HeaderMap::new()));
        assert_ne!(a, b);
        // Four made for the bad ids, then a and b: the counter starts at 1.
        let expected = format!("{:016x}{:016x}", ids.prefix, 6);
        assert_eq!(b, expected.as_str(), "the prefix, then the counter, in hex");
    }
}
