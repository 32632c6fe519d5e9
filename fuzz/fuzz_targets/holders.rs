#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eccluster_fuzz::holders(data));
