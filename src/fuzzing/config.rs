//! The `config` target: gateway.toml parsing and validation under arbitrary text.

use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use crate::config::Config;
use crate::config::RawConfig;

/// Config parsing and validation: the input as gateway.toml, with relative paths taken from
/// a folder that does not exist, so that no file it names can be read (a `clients_file` must
/// fail to load, not panic). Inputs whose `clients_file` is absolute or climbs out with `..`
/// are skipped: they could name a device (`/dev/zero`) or a pipe, which would hang the
/// fuzzer without telling anything about the parser.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(raw) = toml::from_str::<RawConfig>(text)
        && raw.clients_file.as_deref().is_some_and(|f| {
            f.components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        })
    {
        return;
    }
    if let Ok(cfg) = Config::from_toml_str(text, config_base()) {
        let _ = cfg.files();
        assert!(
            cfg.routes
                .windows(2)
                .all(|w| w[0].prefix.len() >= w[1].prefix.len()),
            "routes are sorted longest prefix first"
        );
    }
}

fn config_base() -> &'static std::path::Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        std::env::temp_dir()
            .join("storegate-fuzz-absent")
            .join(std::process::id().to_string())
    })
}
