//! Server nonces (RFC 9449 §8, §9), with no shared storage: a nonce is the second it was
//! made and an HMAC-SHA-256 tag over it, so any replica holding the same secret
//! (`[dpop] nonce_secret_file`) accepts any replica's nonce, for `nonce_lifetime_secs`. A
//! fresh one is handed out with every token and with every `use_dpop_nonce` refusal: nonces
//! rotate by ageing out, and a client that holds an old one is told the new one.

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Bytes of the tag kept in a nonce: 128 bits.
const TAG_BYTES: usize = 16;
/// Seconds a nonce may be dated ahead of this replica's clock (another replica's is ahead).
const SKEW_SECS: u64 = 5;

/// Makes and checks nonces.
#[derive(Clone)]
pub struct Nonces {
    key: hmac::Key,
    lifetime: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Nonces {
    /// Nonces under `secret`, or under this process's own random secret when `None` (one
    /// replica: a reload keeps it, a restart does not).
    pub fn new(secret: Option<&[u8]>, lifetime: u64) -> Nonces {
        static OWN: OnceLock<[u8; 32]> = OnceLock::new();
        let own = OWN.get_or_init(|| {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes).expect("the system's random source");
            bytes
        });
        Nonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.unwrap_or(own)),
            lifetime,
        }
    }

    /// A nonce made `now` (Unix seconds).
    pub fn make(&self, now: u64) -> String {
        let at = now.to_be_bytes();
        let tag = hmac::sign(&self.key, &at);
        let mut raw = [0u8; 8 + TAG_BYTES];
        raw[..8].copy_from_slice(&at);
        raw[8..].copy_from_slice(&tag.as_ref()[..TAG_BYTES]);
        B64.encode(raw)
    }

    /// Whether `nonce` is one of ours and still fresh `now`.
    pub fn accepts(&self, nonce: &str, now: u64) -> bool {
        let mut raw = [0u8; 8 + TAG_BYTES];
        if nonce.len() != 32 || B64.decode_slice(nonce, &mut raw) != Ok(raw.len()) {
            return false;
        }
        let at: [u8; 8] = raw[..8].try_into().expect("eight bytes");
        let made = u64::from_be_bytes(at);
        let fresh = made <= now + SKEW_SECS && now.saturating_sub(made) <= self.lifetime;
        // Constant-time: the tag is compared by `verify` over the full tag recomputed.
        let full = hmac::sign(&self.key, &at);
        let tag_ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            &full.as_ref()[..TAG_BYTES],
            &raw[8..],
        )
        .is_ok();
        fresh && tag_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_by_any_holder_of_the_secret_while_fresh() {
        let a = Nonces::new(Some(b"0123456789abcdef0123456789abcdef"), 120);
        let b = Nonces::new(Some(b"0123456789abcdef0123456789abcdef"), 120);
        let n = a.make(1_000_000);
        assert!(b.accepts(&n, 1_000_000));
        assert!(b.accepts(&n, 1_000_120));
        assert!(!b.accepts(&n, 1_000_121), "aged out");
        assert!(b.accepts(&n, 999_995), "another replica's clock ahead");
        assert!(!b.accepts(&n, 999_990), "from the future");
        let other = Nonces::new(Some(b"another secret, another cluster!"), 120);
        assert!(!other.accepts(&n, 1_000_000), "another secret");
        let own = Nonces::new(None, 120);
        assert!(!own.accepts(&n, 1_000_000));
        assert!(own.accepts(&own.make(5), 5));
    }

    #[test]
    fn forged_and_malformed_nonces_are_refused() {
        let a = Nonces::new(None, 120);
        let n = a.make(1_000_000);
        let mut raw = B64.decode(&n).unwrap();
        raw[7] ^= 1; // another second, same tag
        assert!(!a.accepts(&B64.encode(&raw), 1_000_000));
        for bad in [
            "",
            "x",
            &n[1..],
            &format!("{n}A"),
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(!a.accepts(bad, 1_000_000), "{bad:?}");
        }
    }
}
