//! Arbitrary datagrams into a QUIC server endpoint on a real shard (quinn-proto behind
//! zero-core's glue): no panic, and the shard keeps serving.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zero_core::quic::fuzzing::feed(data);
});
