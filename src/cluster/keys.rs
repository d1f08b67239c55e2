//! Signing keys remembered after a rotation, shared through the cluster store.
//!
//! A replica that rotated remembers the old public key until its tokens have expired
//! (`token::rotation`), in its own `state_dir`. A pod started after the rotation has no such
//! memory, yet the other replicas' tokens signed with the old key are still out. So every
//! replica writes what it remembers to the store, each key as a record signed by its own
//! signing key, and adopts the records of the replicas that sign with the same key as it does.
//!
//! Only a record signed by this replica's own signing key is adopted: whoever can write to
//! Redis can add revocations (refusals) but never a key storegate would trust. A record is a
//! compact JWS typed `storegate-key+jwt` (RFC 8725 §3.11: never mistaken for an access token,
//! whose `typ` the verifier requires to be `at+jwt`), with the key and `exp`, the end of its
//! trust; it expires from Redis then too.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::{Deserialize, Serialize};

use crate::state::State;
use crate::token::keys::KeySet;
use crate::token::rotation::RetiredKey;

/// The channel key records are announced on.
pub const CHANNEL: &str = "storegate:keys";
/// The prefix of the key records: `<prefix><kid>:<kid of the signing key that signed it>`.
pub const KEY_PREFIX: &str = "storegate:signing-key:";
/// The `typ` of a key record.
const TYP: &str = "storegate-key+jwt";

#[derive(Serialize, Deserialize)]
struct Record {
    jwk: Jwk,
    /// Epoch seconds: trusted until then.
    exp: u64,
}

/// A remembered key as a record signed by `keys`' signing key.
pub fn endorse(keys: &KeySet, key: &RetiredKey) -> anyhow::Result<String> {
    let header = serde_json::json!({"alg": keys.algorithm.jwt_name(), "typ": TYP, "kid": keys.kid});
    let mut jws = URL_SAFE_NO_PAD.encode(header.to_string());
    jws.push('.');
    let record = Record {
        jwk: key.jwk.clone(),
        exp: key.until,
    };
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(&record)?, &mut jws);
    (keys.signer)
        .append_signature(&mut jws)
        .map_err(|_| anyhow::anyhow!("the crypto library failed to sign a key record"))?;
    Ok(jws)
}

/// The key a record names, if `keys`' signing key signed it and its trust has not ended.
pub fn accept(keys: &KeySet, record: &str) -> Result<RetiredKey, &'static str> {
    let header = decode_header(record).map_err(|_| "malformed")?;
    if header.typ.as_deref() != Some(TYP) {
        return Err("not a key record");
    }
    if header.kid.as_deref() != Some(keys.kid.as_str()) {
        return Err("signed by another key than the one signing here");
    }
    let key = keys
        .verify
        .get(keys.kid.as_str())
        .ok_or("the signing key has no verification key")?;
    if header.alg != key.algorithm {
        return Err("its algorithm is not the signing key's");
    }
    let mut rules = Validation::new(key.algorithm);
    rules.leeway = 0;
    rules.validate_aud = false;
    rules.set_required_spec_claims(&["exp"]);
    let data = decode::<Record>(record, &key.key, &rules).map_err(|_| "invalid or expired")?;
    Ok(RetiredKey {
        jwk: data.claims.jwk,
        until: data.claims.exp,
    })
}

/// Writes every key this replica remembers, signed by its signing key, and announces them.
pub async fn share(
    conn: &mut redis::aio::MultiplexedConnection,
    state: &State,
) -> anyhow::Result<()> {
    let now = crate::token::now_unix();
    let remembered = state.shared.key_memory.remembered(now);
    if remembered.is_empty() {
        return Ok(());
    }
    let keys = state.load().keys.clone();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in &remembered {
        let record = endorse(&keys, k)?;
        let kid = k.jwk.common.key_id.as_deref().unwrap_or_default();
        pipe.cmd("SET")
            .arg(format!("{KEY_PREFIX}{kid}:{}", keys.kid))
            .arg(&record)
            .arg("EXAT")
            .arg(k.until.max(now + 1))
            .ignore();
        pipe.cmd("PUBLISH").arg(CHANNEL).arg(&record).ignore();
    }
    let () = pipe.query_async(conn).await?;
    Ok(())
}

/// Adopts the keys of the records signed by this replica's signing key (the others belong to
/// replicas that sign with another key, mid-rotation); the reloader then trusts them. On the
/// blocking pool: adopting writes `state_dir`.
pub async fn learn(state: &Arc<State>, records: Vec<String>) {
    let st = state.clone();
    let learned = tokio::task::spawn_blocking(move || {
        let keys = st.load().keys.clone();
        let accepted: Vec<RetiredKey> = records
            .iter()
            .filter_map(|r| match accept(&keys, r) {
                Ok(k) => Some(k),
                Err(why) => {
                    tracing::debug!(why, "a key record in the cluster store was not adopted");
                    None
                }
            })
            .collect();
        let now = crate::token::now_unix();
        st.shared.key_memory.adopt(&accepted, now)
    })
    .await;
    match learned {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(
            keys = n,
            "learned signing keys another replica remembers after a rotation; they verify here too"
        ),
        Ok(Err(e)) => tracing::error!(
            error = %format!("{e:#}"),
            "a signing key from the cluster store could not be remembered"
        ),
        Err(e) => tracing::error!(error = %e, "learning keys from the cluster store failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::keys::SigningAlgorithm;

    fn key_set(alg: SigningAlgorithm) -> KeySet {
        let pair = rcgen::KeyPair::generate_for(match alg {
            SigningAlgorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            _ => &rcgen::PKCS_ED25519,
        })
        .unwrap();
        KeySet::from_pkcs8(alg, &pair.serialize_der(), None, &[]).unwrap()
    }

    #[test]
    fn only_records_signed_by_the_own_signing_key_are_accepted() {
        let (ours, theirs) = (
            key_set(SigningAlgorithm::EdDSA),
            key_set(SigningAlgorithm::EdDSA),
        );
        let old = RetiredKey {
            jwk: key_set(SigningAlgorithm::ES256).current,
            until: crate::token::now_unix() + 600,
        };
        let record = endorse(&ours, &old).unwrap();
        assert_eq!(accept(&ours, &record), Ok(old.clone()));
        assert!(accept(&theirs, &record).is_err(), "another signing key");

        // The key swapped for another under the same signature: refused.
        let forged = RetiredKey {
            jwk: theirs.current.clone(),
            ..old.clone()
        };
        let (head, rest) = record.split_once('.').unwrap();
        let sig = rest.rsplit_once('.').unwrap().1;
        let body = endorse(&ours, &forged).unwrap();
        let body = body.split('.').nth(1).unwrap();
        assert_eq!(
            accept(&ours, &format!("{head}.{body}.{sig}")),
            Err("invalid or expired")
        );

        // Expired, or an access token's header: refused.
        let gone = RetiredKey {
            until: 1_000,
            ..old
        };
        assert!(accept(&ours, &endorse(&ours, &gone).unwrap()).is_err());
        let typed_as_token = record.replacen(
            head,
            &URL_SAFE_NO_PAD.encode(
                serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ours.kid}).to_string(),
            ),
            1,
        );
        assert_eq!(accept(&ours, &typed_as_token), Err("not a key record"));
    }
}
