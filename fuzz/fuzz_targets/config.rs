#![no_main]

// The body is storegate::fuzzing::config, which src/fuzzing/replay.rs (a unit test) also replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| storegate::fuzzing::config(data));
