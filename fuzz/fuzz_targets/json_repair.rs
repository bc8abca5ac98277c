#![no_main]
// The harness and its properties live in ledger_core::fuzzing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger_core::fuzzing::Target::JsonRepair.run(data));
