#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| viva_fuzz::checks::client_message(data));
