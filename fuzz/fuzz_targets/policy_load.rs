//! libFuzzer entry point of the `policy_load` target (see `taglock_fuzz::policy_load`).
#![no_main]
#![allow(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taglock_fuzz::policy_load(data));
