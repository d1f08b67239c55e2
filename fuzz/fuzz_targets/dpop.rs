#![no_main]

// The body is storegate::fuzzing::dpop, which src/fuzzing/replay.rs (a unit test) also replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| storegate::fuzzing::dpop(data));
