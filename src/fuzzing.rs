//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay in
//! `tests/fuzz_corpus.rs`: each takes arbitrary bytes and must never panic.
