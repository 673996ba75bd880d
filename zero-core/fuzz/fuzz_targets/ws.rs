//! The WebSocket session (server and client side) fed arbitrary peer bytes in arbitrary
//! pieces: it must answer or fail cleanly, never panic, and never grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zero_core::ws::fuzzing::feed(data);
});
