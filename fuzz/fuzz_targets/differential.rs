//! libFuzzer entry point of the `differential` target (see `taglock_fuzz::differential`).
#![no_main]
#![allow(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taglock_fuzz::differential(data));
