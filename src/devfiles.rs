//! Development files: the one rule for when they are generated, and writing them with the
//! right permissions. Production configs leave `generate_dev_files` off, so a missing
//! certificate or key fails loading instead.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Whether development files are to be generated: the config allows it and one is missing.
pub fn to_generate(allowed: bool, files: &[&Path]) -> bool {
    allowed && files.iter().any(|f| !f.exists())
}

/// Writes a file with `mode` permissions, creating its folder.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes key material readable by its owner only.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file(path, bytes, 0o600)
}
