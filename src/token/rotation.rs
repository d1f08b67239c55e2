//! Signing-key rotation with overlap: when the signing key changes, the previous public key
//! stays trusted and published until every token it signed has expired (the lifetime those
//! tokens were issued with, plus the leeway), then drops out — without the operator pasting a
//! retired JWK. The memory is kept in `state_dir/signing-keys.json` (written atomically), so a
//! replica restarted mid-rotation still verifies the old tokens. With a cluster store, replicas
//! that sign with the same key also share what they remember (`adopt`), so that a replica
//! started after the rotation, with no memory of its own, verifies the old tokens too.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use jsonwebtoken::jwk::Jwk;
use serde::{Deserialize, Serialize};

use crate::devfiles;

/// The file in `state_dir` that holds the memory.
pub const FILE_NAME: &str = "signing-keys.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Memory {
    /// The key signing now, with the longest token lifetime it has signed with.
    signing: Option<SigningRecord>,
    /// Keys that signed before, trusted until `until` (epoch seconds).
    #[serde(default)]
    retired: Vec<RetiredKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SigningRecord {
    jwk: Jwk,
    lifetime_secs: u64,
}

/// A public key that signed before and is trusted until its tokens have expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetiredKey {
    pub jwk: Jwk,
    /// Epoch seconds.
    pub until: u64,
}

/// The remembered signing keys of the process.
pub struct KeyMemory {
    file: Option<PathBuf>,
    memory: Mutex<Memory>,
    /// Woken when `adopt` learned a key: the running generation does not trust it yet.
    pub learned: tokio::sync::Notify,
}

impl KeyMemory {
    /// Opens the memory kept in `state_dir` (creating the folder), or one kept in memory only.
    pub fn open(state_dir: Option<&Path>) -> anyhow::Result<KeyMemory> {
        let Some(dir) = state_dir else {
            return Ok(KeyMemory {
                file: None,
                memory: Mutex::default(),
                learned: tokio::sync::Notify::new(),
            });
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the state folder {}", dir.display()))?;
        let file = dir.join(FILE_NAME);
        let memory = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice::<Memory>(&bytes)
                .with_context(|| format!("state file {} is not valid", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Memory::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        for r in &memory.retired {
            super::keys::check_retired_jwk(&r.jwk)
                .map_err(|e| anyhow::anyhow!("state file {}: {e}", file.display()))?;
        }
        Ok(KeyMemory {
            file: Some(file),
            memory: Mutex::new(memory),
            learned: tokio::sync::Notify::new(),
        })
    }

    /// The remembered keys still trusted at `now`.
    pub fn remembered(&self, now: u64) -> Vec<RetiredKey> {
        let guard = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .retired
            .iter()
            .filter(|r| r.until >= now)
            .cloned()
            .collect()
    }

    /// Remembers keys another replica remembers, until their `until` (a later one extends a
    /// key known here). Never the key signing here, and never other material under a kid
    /// known here. Returns how many were new or extended; when any was, wakes `learned`.
    pub fn adopt(&self, keys: &[RetiredKey], now: u64) -> anyhow::Result<usize> {
        let mut guard = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        let kid = |j: &Jwk| j.common.key_id.clone();
        let signing = next.signing.as_ref().and_then(|s| kid(&s.jwk));
        let mut changed = 0;
        for k in keys.iter().filter(|k| k.until >= now) {
            if signing.is_some() && signing == kid(&k.jwk) {
                continue;
            }
            match next.retired.iter_mut().find(|r| kid(&r.jwk) == kid(&k.jwk)) {
                Some(known) if known.jwk != k.jwk => tracing::warn!(
                    kid = kid(&k.jwk).unwrap_or_default(),
                    "another replica remembers other key material under a kid known here; ignored"
                ),
                Some(known) if known.until < k.until => {
                    known.until = k.until;
                    changed += 1;
                }
                Some(_) => {}
                None => {
                    super::keys::check_retired_jwk(&k.jwk).map_err(|e| anyhow::anyhow!(e))?;
                    next.retired.push(k.clone());
                    changed += 1;
                }
            }
        }
        if changed > 0 {
            self.store(&next)?;
            *guard = next;
            self.learned.notify_one();
        }
        Ok(changed)
    }

    /// Writes `memory` to the state file, if there is one (atomically: aside, then renamed).
    fn store(&self, memory: &Memory) -> anyhow::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(memory).context("serializing the key memory")?;
        let tmp = file.with_extension("json.tmp");
        devfiles::write_file(&tmp, &bytes, 0o644)?;
        std::fs::rename(&tmp, file).with_context(|| format!("cannot replace {}", file.display()))
    }

    /// Records `current` as the key signing from `now` on, with tokens of `lifetime_secs`.
    /// A different key that signed before is remembered until `now + its lifetime + leeway`.
    /// Returns the remembered keys still to be trusted at `now`. The memory is written before
    /// it changes here, so a failure leaves both as they were.
    pub fn rotate_to(
        &self,
        current: &Jwk,
        lifetime_secs: u64,
        leeway_secs: u64,
        now: u64,
    ) -> anyhow::Result<Vec<RetiredKey>> {
        let mut guard = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        let kid = |j: &Jwk| j.common.key_id.clone();
        match next.signing.take() {
            Some(prev) if prev.jwk == *current => {
                // Tokens already out may have the longer of the two lifetimes.
                next.signing = Some(SigningRecord {
                    lifetime_secs: prev.lifetime_secs.max(lifetime_secs),
                    ..prev
                });
            }
            Some(prev) if kid(&prev.jwk) == kid(current) => {
                tracing::warn!(
                    kid = kid(current).unwrap_or_default(),
                    "the signing key changed but kept its kid: tokens the old key signed are refused from now on"
                );
            }
            Some(prev) => next.retired.push(RetiredKey {
                until: now + prev.lifetime_secs + leeway_secs,
                jwk: prev.jwk,
            }),
            None => {}
        }
        next.signing.get_or_insert_with(|| SigningRecord {
            jwk: current.clone(),
            lifetime_secs,
        });
        // A key promoted back to signing is no longer retired; expired ones are forgotten.
        next.retired
            .retain(|r| r.until >= now && kid(&r.jwk) != kid(current));
        if next != *guard {
            self.store(&next)?;
        }
        *guard = next;
        Ok(guard.retired.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::keys::{KeySet, SigningAlgorithm};

    fn jwk() -> Jwk {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        KeySet::from_pkcs8(SigningAlgorithm::EdDSA, &key.serialize_der(), None, &[])
            .unwrap()
            .current
    }

    #[test]
    fn a_replaced_key_is_trusted_until_its_tokens_expire_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (jwk(), jwk());
        let m = KeyMemory::open(Some(dir.path())).unwrap();
        assert!(m.rotate_to(&a, 600, 30, 1_000).unwrap().is_empty());
        assert!(m.rotate_to(&a, 300, 30, 1_100).unwrap().is_empty());
        let kept = m.rotate_to(&b, 300, 30, 1_200).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].jwk, a);
        assert_eq!(
            kept[0].until,
            1_200 + 600 + 30,
            "the longest lifetime a signed with"
        );

        let restarted = KeyMemory::open(Some(dir.path())).unwrap();
        let kept = restarted.rotate_to(&b, 300, 30, 1_500).unwrap();
        assert_eq!(kept.len(), 1, "remembered across a restart");
        assert!(restarted.rotate_to(&b, 300, 30, 1_831).unwrap().is_empty());
    }

    #[test]
    fn adopted_keys_extend_but_never_replace_and_never_the_signing_key() {
        let (a, b, c) = (jwk(), jwk(), jwk());
        let m = KeyMemory::open(None).unwrap();
        m.rotate_to(&b, 60, 0, 100).unwrap();
        let retired = |jwk: &Jwk, until| RetiredKey {
            jwk: jwk.clone(),
            until,
        };
        // The key signing here, and one already expired, are not adopted.
        assert_eq!(
            m.adopt(&[retired(&b, 500), retired(&a, 99)], 100).unwrap(),
            0
        );
        let woken = || futures_util::FutureExt::now_or_never(m.learned.notified()).is_some();
        assert!(!woken());
        assert_eq!(m.adopt(&[retired(&a, 400)], 100).unwrap(), 1);
        assert!(woken(), "the reloader is woken");
        assert_eq!(
            m.adopt(&[retired(&a, 300)], 100).unwrap(),
            0,
            "not shortened"
        );
        assert_eq!(m.adopt(&[retired(&a, 450)], 100).unwrap(), 1, "extended");
        // Other material under a's kid is refused.
        let mut forged = c.clone();
        forged.common.key_id = a.common.key_id.clone();
        assert_eq!(m.adopt(&[retired(&forged, 900)], 100).unwrap(), 0);
        let kept = m.remembered(100);
        assert_eq!(kept, vec![retired(&a, 450)]);
        // A rotation keeps what was adopted.
        assert_eq!(m.rotate_to(&b, 60, 0, 200).unwrap(), kept);
    }

    #[test]
    fn a_key_promoted_again_is_not_also_retired() {
        let (a, b) = (jwk(), jwk());
        let m = KeyMemory::open(None).unwrap();
        m.rotate_to(&a, 60, 0, 0).unwrap();
        m.rotate_to(&b, 60, 0, 10).unwrap();
        let kept = m.rotate_to(&a, 60, 0, 20).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].jwk, b);
    }
}
