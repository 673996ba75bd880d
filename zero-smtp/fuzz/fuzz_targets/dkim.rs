//! DKIM verification fed an arbitrary message and arbitrary key records (the two things
//! that come from the network): every signature gets exactly one outcome, never a panic.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use zero_smtp::dkim::{key_names, verify};

fuzz_target!(|data: &[u8]| {
    // The first line is the key record every selector gets; the rest is the message.
    let (record, message) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => (String::new(), data),
    };
    let keys: HashMap<String, String> = key_names(message).into_iter().map(|n| (n, record.clone())).collect();
    let outcomes = verify(message, &keys, 1_700_000_000);
    let signatures = zero_smtp::dkim::canon::split(message)
        .0
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(b"DKIM-Signature"))
        .count();
    assert_eq!(outcomes.len(), signatures);
});
