//! The revocation set: tokens refused before their `exp`, from every source at once —
//! RFC 7009 revocation by `jti`, a client's "tokens issued before" instant (from the config's
//! `revoke_issued_before`, later also from the admin CLI) — checked on every request, cached
//! verification or not.
//!
//! Revocations only add up: an entry is never taken back, a later instant replaces an earlier
//! one and an earlier one changes nothing. Each entry expires when the last token it can
//! refuse would have (`until`), and is then forgotten. Every entry is persisted (`log`) before
//! the caller is told it is done, so a restarted gateway refuses what it refused before.
//!
//! The check is a lock-free snapshot load (`ArcSwap`) and at most two hash lookups; changes
//! copy the set, which is small and rarely written.

mod log;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::clients::Clients;
use crate::token::verified::Signed;
pub use log::FILE_NAME;

/// One revocation, as it is kept and persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// One token, by its `jti`.
    Token {
        jti: String,
        client: String,
        /// Epoch seconds: the token's `exp` plus the leeway.
        until: u64,
    },
    /// Every token of `client` with `iat` before `issued_before` (epoch seconds).
    Client {
        client: String,
        issued_before: u64,
        /// Epoch seconds: `issued_before` plus the longest token age and the leeway.
        until: u64,
    },
}

impl Revocation {
    /// Epoch seconds after which it can refuse nothing.
    pub fn until(&self) -> u64 {
        match self {
            Revocation::Token { until, .. } | Revocation::Client { until, .. } => *until,
        }
    }
}

/// What is revoked now.
#[derive(Debug, Clone, Default)]
struct Set {
    /// jti -> (client, until).
    tokens: HashMap<Box<str>, (Box<str>, u64)>,
    /// client id -> (issued_before, until).
    clients: HashMap<Box<str>, (u64, u64)>,
}

impl Set {
    fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.clients.is_empty()
    }

    fn len(&self) -> usize {
        self.tokens.len() + self.clients.len()
    }

    /// Adds `r` unless it is expired at `now` or already covered; says whether it changed.
    fn add(&mut self, r: &Revocation, now: u64) -> bool {
        if r.until() < now {
            return false;
        }
        match r {
            Revocation::Token { jti, client, until } => {
                if self.tokens.contains_key(jti.as_str()) {
                    return false;
                }
                self.tokens
                    .insert(jti.as_str().into(), (client.as_str().into(), *until));
            }
            Revocation::Client {
                client,
                issued_before,
                until,
            } => {
                let slot = self.clients.entry(client.as_str().into()).or_insert((0, 0));
                if slot.0 >= *issued_before {
                    return false;
                }
                *slot = (*issued_before, (*until).max(slot.1));
            }
        }
        true
    }

    fn purge(&mut self, now: u64) {
        self.tokens.retain(|_, (_, until)| *until >= now);
        self.clients.retain(|_, (_, until)| *until >= now);
    }

    fn entries(&self) -> Vec<Revocation> {
        let tokens = self
            .tokens
            .iter()
            .map(|(jti, (client, until))| Revocation::Token {
                jti: jti.to_string(),
                client: client.to_string(),
                until: *until,
            });
        let clients = (self.clients.iter()).map(|(client, (before, until))| Revocation::Client {
            client: client.to_string(),
            issued_before: *before,
            until: *until,
        });
        tokens.chain(clients).collect()
    }
}

/// The revocation set of the process (see the module doc).
pub struct Revocations {
    set: ArcSwap<Set>,
    /// Serializes changes: one writer copies and stores the set, and appends to the log.
    log: Mutex<log::Log>,
    /// Lines found damaged in the file at start-up (reported; the rest was kept).
    pub damaged_lines: AtomicU64,
    /// Where revocations made here go to be shared (the cluster store), once one follows.
    outbox: OnceLock<tokio::sync::mpsc::UnboundedSender<Revocation>>,
}

impl Revocations {
    /// Opens the set kept in `state_dir` (or one in memory only), dropping expired entries.
    /// A damaged file is reported and its readable entries kept (see `log::Log::open`).
    pub fn open(state_dir: Option<&Path>, now: u64) -> anyhow::Result<Revocations> {
        let (log, entries, damaged) = log::Log::open(state_dir)?;
        let mut set = Set::default();
        for r in &entries {
            set.add(r, now);
        }
        let revocations = Revocations {
            set: ArcSwap::from_pointee(set),
            log: Mutex::new(log),
            damaged_lines: AtomicU64::new(damaged),
            outbox: OnceLock::new(),
        };
        // Rewrite the file with only what is still in force (and without damaged lines).
        if damaged > 0 || entries.len() > revocations.len() {
            let mut log = revocations.lock_log();
            log.compact(&revocations.set.load().entries())?;
        }
        Ok(revocations)
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, log::Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries in force (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.set.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.load().is_empty()
    }

    /// Whether any source revoked this token. The hot path: one snapshot load when nothing is
    /// revoked, two lookups otherwise. A token with no `iat` cannot show that it was issued
    /// after a client's instant, so it is refused once the client has one.
    pub fn is_revoked(&self, t: &Signed) -> bool {
        let set = self.set.load();
        if set.is_empty() {
            return false;
        }
        if let Some(jti) = t.jti()
            && set.tokens.contains_key(jti)
        {
            return true;
        }
        set.clients
            .get(t.client_id())
            .is_some_and(|(before, _)| t.iat.is_none_or(|iat| iat < *before))
    }

    /// The instant before which `client`'s tokens are revoked, if any.
    pub fn issued_before(&self, client: &str) -> Option<u64> {
        self.set
            .load()
            .clients
            .get(client)
            .map(|(before, _)| *before)
    }

    /// Adds revocations, in force at once and persisted before this returns. Returns how many
    /// changed the set (an entry already covered, or expired, changes nothing and is not
    /// written again). On a write failure the entries stay in force in this process and the
    /// error is returned, for the caller to report.
    pub fn add(&self, revocations: &[Revocation], now: u64) -> anyhow::Result<usize> {
        self.add_from(revocations, now, true)
    }

    /// Adds revocations that came from the cluster store: like `add`, but not sent back.
    pub fn apply_shared(&self, revocations: &[Revocation], now: u64) -> anyhow::Result<usize> {
        self.add_from(revocations, now, false)
    }

    /// The revocations made here from now on, to share them (called once, by the cluster
    /// store; later calls get a receiver that never yields).
    pub fn follow(&self) -> tokio::sync::mpsc::UnboundedReceiver<Revocation> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let _ = self.outbox.set(tx);
        rx
    }

    /// Every entry in force, e.g. to share them all after the cluster store was away.
    pub fn entries(&self) -> Vec<Revocation> {
        self.set.load().entries()
    }

    fn add_from(&self, revocations: &[Revocation], now: u64, share: bool) -> anyhow::Result<usize> {
        let mut log = self.lock_log();
        let mut next = Set::clone(&self.set.load());
        let added: Vec<&Revocation> = revocations.iter().filter(|r| next.add(r, now)).collect();
        if added.is_empty() {
            return Ok(0);
        }
        let written_before = log.lines();
        next.purge(now);
        let live = next.len();
        self.set.store(next.into());
        if let Some(outbox) = self.outbox.get().filter(|_| share) {
            for r in &added {
                let _ = outbox.send((*r).clone());
            }
        }
        // Keep the file within a few times what is in force.
        if written_before + added.len() > 64 && written_before + added.len() > 4 * live {
            log.compact(&self.set.load().entries())?;
        } else {
            log.append(&added)?;
        }
        Ok(added.len())
    }

    /// Records the `revoke_issued_before` instants of `clients`. `max_age_secs` is the longest
    /// `exp - iat` a token may have (plus the leeway): after that, nothing the instant covers
    /// can still be valid, and the entry expires.
    pub fn apply_config(&self, clients: &Clients, max_age_secs: u64, now: u64) {
        let entries: Vec<Revocation> = clients
            .iter()
            .filter_map(|c| {
                let before = c.revoke_issued_before?;
                Some(Revocation::Client {
                    client: c.id.clone(),
                    issued_before: before,
                    until: before.saturating_add(max_age_secs),
                })
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        match self.add(&entries, now) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                clients = n,
                "revoked the tokens issued before the configured instant"
            ),
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                "the configured revocations are in force but could not be persisted"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
