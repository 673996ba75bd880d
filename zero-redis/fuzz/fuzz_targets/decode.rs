//! The RESP decoder on arbitrary bytes, with small limits: it must never panic or allocate
//! beyond them, and whatever decodes must encode to bytes that decode to a frame encoding the
//! same way (bytes, not frames, are compared: a NaN double is not equal to itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zero_redis::codec::{decode, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bulk: 1 << 16, max_line: 1 << 10, max_aggregate: 1 << 10, max_depth: 16 };
    let mut rest = data;
    while let Ok(Some((frame, len))) = decode(rest, &limits) {
        assert!(len > 0 && len <= rest.len());
        let mut once = Vec::new();
        frame.encode(&mut once);
        let (again, used) =
            decode(&once, &Limits::default()).expect("re-encoded frame decodes").expect("whole");
        assert_eq!(used, once.len());
        let mut twice = Vec::new();
        again.encode(&mut twice);
        assert_eq!(once, twice);
        rest = &rest[len..];
    }
});
