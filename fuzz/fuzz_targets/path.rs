#![no_main]

// The body is storegate::fuzzing::path, which tests/fuzz_corpus.rs also replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| storegate::fuzzing::path(data));
