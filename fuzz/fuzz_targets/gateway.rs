//! libFuzzer entry point of the `gateway` target (see `taglock_fuzz::gateway`).
#![no_main]
#![allow(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taglock_fuzz::gateway(data));
