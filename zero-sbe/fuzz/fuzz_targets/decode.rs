//! The schema-driven decoder fed arbitrary bytes under the test schema (every dimension
//! encoding, nesting, var data, constants, optional values): it decodes or refuses, never
//! panics, and never claims more bytes than it was given.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zero_sbe::Schema;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::parse(include_str!("../../tests/schemas/orders.xml")).expect("the test schema"))
}

fuzz_target!(|data: &[u8]| {
    // Always the right schema and template, so the fuzzer gets past the header.
    let mut bytes = data.to_vec();
    if bytes.len() >= 8 {
        bytes[2..4].copy_from_slice(&1u16.to_le_bytes());
        bytes[4..6].copy_from_slice(&91u16.to_le_bytes());
    }
    if let Ok((_, used)) = zero_sbe::to_json(schema(), &bytes) {
        assert!(used <= bytes.len());
    }
});
