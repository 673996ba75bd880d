//! The ops socket's command lines: whatever a local peer writes, the answer is `ok` or `error`,
//! and nothing panics. (A valid signature cannot be forged by the fuzzer; signed commands are
//! covered by the unit and CLI tests.)
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use zero_core::admin::{Collector, OpsSocket};
use zero_core::Stopper;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let mut ops = OpsSocket::new(Collector::new(Vec::new()), Stopper::new(Vec::new()), Duration::ZERO)
        .with_key(b"a fixed key for fuzzing")
        .expect("a long enough key");
    for line in line.lines() {
        let answer = ops.answer_line(line.trim());
        assert!(answer.starts_with("ok") || answer.starts_with("error"), "{answer}");
    }
});
