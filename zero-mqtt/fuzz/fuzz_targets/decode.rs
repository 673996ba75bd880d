//! The codec on arbitrary bytes, in every protocol version: it must never panic, and whatever
//! decodes must encode to bytes that decode to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zero_mqtt::codec::{decode, Protocol};

fuzz_target!(|data: &[u8]| {
    for protocol in [Protocol::V31, Protocol::V311, Protocol::V5] {
        let mut rest = data;
        while let Ok(Some((packet, len))) = decode(rest, protocol, usize::MAX) {
            let mut again = Vec::new();
            packet.encode(protocol, &mut again);
            let (round, used) = decode(&again, protocol, usize::MAX).expect("re-encoded packet decodes").expect("whole");
            assert_eq!(used, again.len());
            assert_eq!(round, packet);
            rest = &rest[len..];
        }
    }
});
