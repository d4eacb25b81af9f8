//! libFuzzer entry point of the `request_json` target (see `taglock_fuzz::request_json`).
#![no_main]
#![allow(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taglock_fuzz::request_json(data));
