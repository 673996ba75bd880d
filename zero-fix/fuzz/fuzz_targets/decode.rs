//! The FIX decoder and validator on arbitrary bytes, arriving in arbitrary pieces: nothing
//! panics, every step makes progress, a garbled message costs at most itself, and what the
//! builder writes from a decoded message decodes to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zero_fix::codec::{Builder, Decoded, Decoder};
use zero_fix::dict::{Dictionary, Validation};

fuzz_target!(|data: &[u8]| {
    // With the first byte's top bit set, the rest is a body wrapped in a correct frame, so
    // that the field parser, the groups and the validator see more than checksum failures.
    let framed;
    let data = match data.split_first() {
        Some((&mode, body)) if mode & 0x80 != 0 => {
            let mut m = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
            m.extend_from_slice(body);
            let sum = zero_fix::codec::checksum(&m);
            m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
            framed = [&[mode & 0x7f][..], &m].concat();
            &framed[..]
        }
        _ => data,
    };
    let mut decoder = Decoder::default();
    let mut held: Vec<u8> = Vec::new();
    // The first byte picks the piece size, as a socket would cut the stream.
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for chunk in data.chunks(piece) {
        held.extend_from_slice(chunk);
        loop {
            let used = match decoder.decode(&held) {
                Decoded::Partial => break,
                Decoded::Garbled { skip, .. } => {
                    assert!(skip > 0 || held.is_empty(), "a garbled start must be skipped");
                    skip
                }
                Decoded::Malformed { len, .. } => len,
                Decoded::Message(m) => {
                    let _ = Validation::default().check(Dictionary::fix44(), &m);
                    // Re-encode and decode again: the same fields, in the same order.
                    let fields: Vec<(u32, Vec<u8>)> = m.fields().iter().map(|f| (f.tag, m.value(f).to_vec())).collect();
                    let begin = m.begin_string().to_vec();
                    let len = m.bytes().len();
                    let mut out = Vec::new();
                    let mut b = Builder::new(&mut out, &begin, &fields[0].1);
                    for (tag, value) in &fields[1..] {
                        b.str(*tag, value);
                    }
                    b.finish();
                    let mut again = Decoder::default();
                    if let Decoded::Message(m2) = again.decode(&out) {
                        let got: Vec<(u32, Vec<u8>)> =
                            m2.fields().iter().map(|f| (f.tag, m2.value(f).to_vec())).collect();
                        assert_eq!(got, fields);
                    } else {
                        panic!("a rebuilt message does not decode");
                    }
                    len
                }
            };
            if used == 0 {
                break;
            }
            held.drain(..used.min(held.len()));
        }
    }
});
