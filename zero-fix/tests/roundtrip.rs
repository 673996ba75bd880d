//! Property: whatever fields the builder writes, the decoder reads back in the same order,
//! and every prefix of the message is only "not yet whole".

use proptest::prelude::*;
use zero_fix::codec::{Builder, Decoded, Decoder};

fn field() -> impl Strategy<Value = (u32, Vec<u8>)> {
    let tag = (1u32..20_000).prop_filter("not framing, not a data field's length", |t| {
        ![8, 9, 10, 35, 90, 93, 95, 212, 348, 350, 352, 354, 356, 358, 360, 362, 364, 445, 618, 621]
            .contains(t)
    });
    let value = proptest::collection::vec((2u8..=255).prop_filter("no SOH", |b| *b != 1), 1..40);
    (tag, value)
}

proptest! {
    #[test]
    fn built_messages_decode_to_the_same_fields(fields in proptest::collection::vec(field(), 0..30)) {
        let mut buf = Vec::new();
        let mut b = Builder::new(&mut buf, b"FIX.4.4", b"D");
        for (tag, value) in &fields {
            b.str(*tag, value);
        }
        b.finish();
        let mut decoder = Decoder::default();
        for cut in 0..buf.len() {
            prop_assert!(matches!(decoder.decode(&buf[..cut]), Decoded::Partial), "cut at {}", cut);
        }
        let Decoded::Message(m) = decoder.decode(&buf) else { panic!("decodes") };
        prop_assert_eq!(m.bytes().len(), buf.len());
        let got: Vec<(u32, Vec<u8>)> = m.fields()[1..].iter().map(|f| (f.tag, m.value(f).to_vec())).collect();
        prop_assert_eq!(got, fields);
    }
}
