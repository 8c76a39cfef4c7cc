//! See `ses_inventory::fuzzing::list_query` for what bytes become and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ses_inventory::fuzzing::list_query(data));
