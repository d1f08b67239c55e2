#![no_main]

// The body is storegate::fuzzing::relay, which tests/fuzz_corpus.rs also replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| storegate::fuzzing::relay(data));
