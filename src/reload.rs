//! Live configuration. A reload reads the config file and every file it names, builds a whole
//! new `Generation` off the async workers and stores it only if every part of it loaded: a bad
//! file keeps the running generation serving, logs one error line naming the file and the
//! config key, and is counted. Settings that need a new listener or runtime keep their running
//! values and are logged "needs a restart" (`config::RestartOnly`).
//!
//! Triggers: SIGHUP (`Reloader::request`, wired up by `main`), a change seen by a file watcher
//! on the *folders* of those files (so that the atomic `..data` symlink swap of a mounted
//! ConfigMap or Secret is seen), debounced, the expiry of a signing key remembered after a
//! rotation (so that it leaves the JWKS), and a key learned from another replica (so that it
//! is trusted). A watcher event whose files hold the same bytes as
//! before is no reload.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher, event::AccessKind, event::AccessMode};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::state::{Generation, State};

/// Quiet time after the last file event before reloading: one `kubectl apply` touches several
/// files, and an editor writes in steps.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// Longest a stream of file events delays a reload.
pub const DEBOUNCE_MAX: Duration = Duration::from_secs(2);

/// After a failed rebuild for an expired remembered key, the wait before the next try.
pub const EXPIRY_RETRY_SECS: u64 = 60;

/// Why a reload happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A watched folder changed.
    Files,
    /// SIGHUP or an explicit request: reload even if no file changed.
    Request,
    /// A remembered signing key expired: rebuild so that it leaves the JWKS.
    KeyExpiry,
    /// A key another replica remembers was learned (`cluster`): rebuild to trust it.
    KeysLearned,
}

/// A stored reload.
#[derive(Debug, Clone, Copy)]
pub struct Reloaded {
    /// The new generation's number.
    pub generation: u64,
    /// The digest of the files it was built from (read just before building it).
    fingerprint: [u8; 32],
}

/// Reloads the configuration now and stores the new generation. A failure is logged (one line
/// naming the file and key) and counted before it is returned.
pub async fn reload(
    state: &Arc<State>,
    config_path: &Path,
    why: Trigger,
) -> anyhow::Result<Reloaded> {
    let (st, path) = (state.clone(), config_path.to_owned());
    let result = tokio::task::spawn_blocking(move || reload_blocking(&st, &path))
        .await
        .context("the reload task failed")
        .and_then(|r| r);
    let reloads = &state.shared.reloads;
    match result {
        Ok(done) => {
            reloads.success();
            tracing::info!(generation = done.generation, trigger = ?why, "configuration reloaded");
            Ok(done)
        }
        Err(e) => {
            let message = format!("{e:#}");
            tracing::error!(
                file = %config_path.display(),
                trigger = ?why,
                "configuration reload failed; the running configuration stays: {message}"
            );
            reloads.failure(message);
            Err(e)
        }
    }
}

fn reload_blocking(state: &State, path: &Path) -> anyhow::Result<Reloaded> {
    // One reload at a time, so that generation numbers follow the order of stores.
    let _one = state.shared.reloads.lock();
    let mut config = Config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let fingerprint = fingerprint(path, &config);
    let running = state.load();
    let kept = (state.shared.fixed).keep_in(&mut config, running.config.tls.as_ref());
    for key in kept {
        tracing::warn!(key, "this setting needs a restart; the running value stays");
    }
    let next = Generation::build(config, running.number + 1, &state.shared.key_memory)?;
    let generation = next.number;
    state.store(next);
    Ok(Reloaded {
        generation,
        fingerprint,
    })
}

/// The handle of a running reloader; dropping it stops the reloader.
pub struct Reloader {
    tx: mpsc::Sender<Trigger>,
    task: tokio::task::JoinHandle<()>,
}

impl Reloader {
    /// Asks for a reload even if no file changed (what SIGHUP does).
    pub fn request(&self) {
        // A full queue already holds a pending reload.
        let _ = self.tx.try_send(Trigger::Request);
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching the files of the running configuration (read from `config_path`).
pub fn spawn(state: Arc<State>, config_path: PathBuf) -> anyhow::Result<Reloader> {
    let (tx, rx) = mpsc::channel(64);
    let events = tx.clone();
    let mut watched = Watched::default();
    let names = watched.names.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|e| is_change(&e.kind) && names.concern(&e.paths)) {
            let _ = events.try_send(Trigger::Files);
        }
    })
    .context("starting the file watcher")?;
    // Watch before returning, so that no change made after start-up is missed. (Start-up
    // work: reading a few small files here is fine.)
    let config = &state.load().config;
    rewatch(&mut watcher, &mut watched, &config_path, config);
    let seen = fingerprint(&config_path, config);
    let task = tokio::spawn(run(state, config_path, watcher, watched, seen, rx));
    Ok(Reloader { tx, task })
}

/// The watched folders, and the names of the configuration's files in them.
#[derive(Default)]
struct Watched {
    folders: HashSet<PathBuf>,
    names: Arc<Names>,
}

/// The file names a change in a watched folder must touch to be worth a look: the
/// configuration's files, and the `..data` entries a mounted ConfigMap or Secret is swapped
/// through. Anything else written there (a log file beside the config, an editor's swap file)
/// is no trigger.
#[derive(Default)]
struct Names(arc_swap::ArcSwap<HashSet<std::ffi::OsString>>);

impl Names {
    fn concern(&self, paths: &[PathBuf]) -> bool {
        let names = self.0.load();
        paths
            .iter()
            .filter_map(|p| p.file_name())
            .any(|n| names.contains(n) || n.as_encoded_bytes().starts_with(b".."))
    }
}

/// Opening and reading a file (ours included: the fingerprint reads every file) is no change.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

async fn run(
    state: Arc<State>,
    path: PathBuf,
    mut watcher: notify::RecommendedWatcher,
    mut watched: Watched,
    mut seen: [u8; 32],
    mut rx: mpsc::Receiver<Trigger>,
) {
    // After a failed rebuild for an expired key, wait before trying again (the expiry is
    // already past, so it would fire at once).
    let mut expiry_floor = 0;
    loop {
        let expiry = state.load().next_key_expiry.map(|e| e.max(expiry_floor));
        let mut trigger = tokio::select! {
            t = rx.recv() => match t {
                Some(t) => t,
                None => return,
            },
            () = until_epoch(expiry) => Trigger::KeyExpiry,
            () = state.shared.key_memory.learned.notified() => Trigger::KeysLearned,
        };
        if trigger == Trigger::Files {
            trigger = debounce(&mut rx).await;
        }
        let now = current_fingerprint(&state, &path).await;
        if trigger == Trigger::Files && now == seen {
            tracing::debug!("watched folders changed, the configuration's files did not");
            continue;
        }
        // A broken file is reported once, not again until something changes.
        seen = now;
        match reload(&state, &path, trigger).await {
            Ok(done) => {
                // What the stored generation was built from, not what the files hold by now:
                // a change made since is still to be seen.
                seen = done.fingerprint;
                rewatch(&mut watcher, &mut watched, &path, &state.load().config);
            }
            Err(_) if trigger == Trigger::KeyExpiry => {
                expiry_floor = crate::token::now_unix() + EXPIRY_RETRY_SECS;
            }
            Err(_) => {}
        }
    }
}

async fn current_fingerprint(state: &Arc<State>, path: &Path) -> [u8; 32] {
    let (st, path) = (state.clone(), path.to_owned());
    tokio::task::spawn_blocking(move || fingerprint(&path, &st.load().config))
        .await
        .unwrap_or([0; 32])
}

/// Waits for the file events to settle; a request arriving meanwhile makes it a requested
/// reload.
async fn debounce(rx: &mut mpsc::Receiver<Trigger>) -> Trigger {
    let mut trigger = Trigger::Files;
    let deadline = tokio::time::Instant::now() + DEBOUNCE_MAX;
    loop {
        let quiet = tokio::time::sleep(DEBOUNCE);
        tokio::select! {
            t = rx.recv() => match t {
                Some(Trigger::Files) => {}
                Some(other) => trigger = other,
                None => return trigger,
            },
            () = quiet => return trigger,
            () = tokio::time::sleep_until(deadline) => return trigger,
        }
    }
}

/// Sleeps until an epoch second, or forever for `None`.
async fn until_epoch(at: Option<u64>) {
    match at {
        Some(at) => {
            let secs = at.saturating_sub(crate::token::now_unix());
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
        None => std::future::pending().await,
    }
}

/// A digest of the bytes of the config file and every file it names (an unreadable file
/// counts as its error), to tell a real change from an event that changed nothing.
fn fingerprint(path: &Path, config: &Config) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for f in std::iter::once(path).chain(config.files()) {
        ctx.update(f.as_os_str().as_encoded_bytes());
        match std::fs::read(f) {
            Ok(bytes) => {
                ctx.update(&(bytes.len() as u64).to_le_bytes());
                ctx.update(&bytes);
            }
            Err(e) => ctx.update(e.to_string().as_bytes()),
        }
    }
    ctx.finish().as_ref().try_into().unwrap_or([0; 32])
}

/// Watches the folder of every file the configuration reads, and nothing else.
fn rewatch(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut Watched,
    path: &Path,
    config: &Config,
) {
    let names = std::iter::once(path).chain(config.files());
    let names = names.filter_map(|f| f.file_name()).map(|n| n.to_owned());
    watched.names.0.store(Arc::new(names.collect()));
    let watched = &mut watched.folders;
    let folder = |f: &Path| match f.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let wanted: HashSet<PathBuf> = std::iter::once(path)
        .chain(config.files())
        .map(folder)
        .collect();
    for gone in watched.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for dir in wanted.difference(watched) {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %dir.display(), error = %e, "cannot watch this folder for configuration changes; SIGHUP still reloads");
        }
    }
    *watched = wanted;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configurations_files_and_mount_swaps_are_changes_worth_a_look() {
        let names = Names::default();
        let ours = ["gateway.toml", "cert.pem", "signing.pem"];
        names
            .0
            .store(Arc::new(ours.iter().map(Into::into).collect()));
        let concern = |p: &str| names.concern(&[PathBuf::from(p)]);
        assert!(concern("/etc/storegate/gateway.toml"));
        assert!(concern("./signing.pem"));
        // A ConfigMap or Secret mount swapped through its `..data` symlink.
        assert!(concern("/etc/storegate/..data"));
        assert!(concern("/etc/storegate/..2026_11_24_05_00_00.123"));
        // A log written beside the config, an editor's leftovers: no trigger.
        assert!(!concern("/etc/storegate/gateway.log"));
        assert!(!concern("/etc/storegate/.gateway.toml.swp"));
        assert!(!concern("/etc/storegate/gateway.toml~"));
    }
}
