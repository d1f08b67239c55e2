//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the inputs of crashes found before
//! (`fuzz/regressions/<target>/`) through the same functions the fuzz targets call, so that an
//! ordinary `cargo test` (no nightly, no libFuzzer) catches a change that breaks one of them.
//! It never fuzzes. A unit test, so that the entry points need not ship in the library.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::TARGETS;

/// The files of `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("reading a corpus folder").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_passes() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let seeds = inputs(&fuzz.join("corpus").join(name));
        assert!(
            !seeds.is_empty(),
            "fuzz/corpus/{name}/ holds no seed: the corpus was emptied"
        );
        let regressions = inputs(&fuzz.join("regressions").join(name));
        println!(
            "{name}: {} corpus inputs, {} regression inputs",
            seeds.len(),
            regressions.len()
        );
        for file in seeds.iter().chain(&regressions) {
            let data = std::fs::read(file).expect("reading a corpus file");
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, _) in TARGETS {
        let file = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&file).expect("a fuzz target file");
        assert!(
            text.contains(&format!("storegate::fuzzing::{name}(")),
            "{} does not call storegate::fuzzing::{name}",
            file.display()
        );
    }
}

/// Writes the `verify` seeds that need the fuzz key (tokens as the token endpoint issues them).
/// Run by hand: `cargo test --lib fuzzing::replay -- --ignored write_token_seeds`.
#[test]
#[ignore = "writes files; run by hand to make the token seeds again"]
fn write_token_seeds() {
    use super::seed_token;
    use crate::clients::Grant;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/verify");
    std::fs::create_dir_all(&dir).unwrap();
    for (file, scope, grant) in [
        (
            "token-cc-read-write",
            "read write",
            Grant::ClientCredentials,
        ),
        ("token-cc-no-scope", "", Grant::ClientCredentials),
        ("token-implicit-read", "read", Grant::Implicit),
    ] {
        std::fs::write(dir.join(file), seed_token(scope, grant)).unwrap();
    }
}
