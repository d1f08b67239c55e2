#![no_main]

// The body is storegate::fuzzing::client_auth, which src/fuzzing/replay.rs (a unit test) also replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| storegate::fuzzing::client_auth(data));
