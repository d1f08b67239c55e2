//! The revocation file: `state_dir/revocations.jsonl`, one JSON object a line, appended and
//! synced before a revocation is answered, and rewritten (to a temporary file, then renamed)
//! with only the entries in force when it has grown well past them.
//!
//! A line that cannot be read — a write cut short by a crash, a disk error, a hand edit — is
//! reported with its number; every other line is kept, those before the damage and those
//! after. The damaged file is kept beside as `revocations.jsonl.damaged` before it is rewritten.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Revocation;

/// The file in `state_dir` that holds the revocations.
pub const FILE_NAME: &str = "revocations.jsonl";

/// The open file, or nothing when revocations are kept in memory only.
pub struct Log {
    file: Option<(PathBuf, File)>,
    /// Lines the file holds.
    lines: usize,
}

impl Log {
    /// Opens (creating) the file in `state_dir`: the log, its readable entries, and how many
    /// lines could not be read.
    pub fn open(state_dir: Option<&Path>) -> anyhow::Result<(Log, Vec<Revocation>, u64)> {
        let Some(dir) = state_dir else {
            let log = Log {
                file: None,
                lines: 0,
            };
            return Ok((log, Vec::new(), 0));
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the state folder {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let (entries, damaged) = read_lines(&bytes, &path);
        if !damaged.is_empty() {
            let aside = path.with_extension("jsonl.damaged");
            std::fs::write(&aside, &bytes)
                .with_context(|| format!("cannot keep a copy at {}", aside.display()))?;
            tracing::error!(
                file = %path.display(),
                lines = ?damaged,
                kept = entries.len(),
                copy = %aside.display(),
                "the revocation file has damaged lines; every readable entry is kept and the file is rewritten without them"
            );
        }
        let mut file = open_append(&path)?;
        // A last line cut short must not run into the next one appended.
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            file.write_all(b"\n")
                .with_context(|| format!("cannot append to {}", path.display()))?;
        }
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let log = Log {
            file: Some((path, file)),
            lines,
        };
        Ok((log, entries, damaged.len() as u64))
    }

    /// Lines in the file.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Appends entries and syncs them to disk.
    pub fn append(&mut self, entries: &[&Revocation]) -> anyhow::Result<()> {
        let Some((path, file)) = &mut self.file else {
            return Ok(());
        };
        let mut buf = Vec::new();
        for r in entries {
            serde_json::to_writer(&mut buf, r).context("serializing a revocation")?;
            buf.push(b'\n');
        }
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot append to {}", path.display()))?;
        self.lines += entries.len();
        Ok(())
    }

    /// Replaces the file with `entries`: written and synced beside it, then renamed over it.
    pub fn compact(&mut self, entries: &[Revocation]) -> anyhow::Result<()> {
        let Some((path, _)) = &self.file else {
            return Ok(());
        };
        let path = path.clone();
        let tmp = path.with_extension("jsonl.tmp");
        let mut buf = Vec::new();
        for r in entries {
            serde_json::to_writer(&mut buf, r).context("serializing a revocation")?;
            buf.push(b'\n');
        }
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().with_context(|| format!("cannot rewrite {}", path.display()))?;
        self.file = Some((path.clone(), open_append(&path)?));
        self.lines = entries.len();
        Ok(())
    }
}

fn open_append(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))
}

/// The entries of the file's lines, and the numbers (from 1) of the lines that are not one.
fn read_lines(bytes: &[u8], path: &Path) -> (Vec<Revocation>, Vec<usize>) {
    let mut entries = Vec::new();
    let mut damaged = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Revocation>(line) {
            Ok(r) => entries.push(r),
            Err(e) => {
                // The error names a position and a kind, never the line's content.
                tracing::debug!(file = %path.display(), line = i + 1, error = %e, "unreadable revocation line");
                damaged.push(i + 1);
            }
        }
    }
    (entries, damaged)
}
