#![no_main]

// The body is storegate::fuzzing::relay, which src/fuzzing/replay.rs (a unit test) also replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| storegate::fuzzing::relay(data));
