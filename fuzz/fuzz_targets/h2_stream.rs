#![no_main]

// The body is storegate::fuzzing::h2_stream, which src/fuzzing/replay.rs (a unit test) also replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| storegate::fuzzing::h2_stream(data));
