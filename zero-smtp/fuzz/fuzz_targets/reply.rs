//! The reply parser fed arbitrary bytes: it returns a reply, asks for more, or refuses;
//! a reply it returns encodes and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zero_smtp::codec::reply::Reply;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((reply, used))) = Reply::parse(data) {
        assert!(used <= data.len());
        let mut wire = Vec::new();
        reply.encode(&mut wire);
        let again = Reply::parse(&wire).expect("our own encoding parses").expect("whole");
        assert_eq!(again.0.code, reply.code);
    }
});
