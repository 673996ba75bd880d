//! Steady state allocates nothing: decoding a message, reading its fields through the typed
//! view, and writing one into a reused buffer (a counting allocator says so).

use zero_fix::codec::{Builder, Decimal, Decoded, Decoder};
use zero_fix::messages::NewOrderSingle;

fn nos(buf: &mut Vec<u8>) {
    buf.clear();
    let mut b = Builder::new(buf, b"FIX.4.4", b"D");
    b.str(49, b"CLIENT").str(56, b"BROKER").uint(34, 215).str(52, b"20261207-09:30:00.123");
    b.str(11, b"ORD-10001").char(21, b'1').str(55, b"ZERO").char(54, b'1');
    b.str(60, b"20261207-09:30:00.123").uint(38, 100).char(40, b'2').decimal(44, Decimal::new(1025, 2));
    b.finish();
}

#[test]
fn decoding_reading_and_encoding_allocate_nothing_in_steady_state() {
    let mut decoder = Decoder::default();
    let mut buf = Vec::with_capacity(512);
    let work = |decoder: &mut Decoder, buf: &mut Vec<u8>| {
        nos(buf);
        let Decoded::Message(m) = decoder.decode(buf) else { panic!("decodes") };
        let order = NewOrderSingle::new(m).expect("35=D");
        assert_eq!(order.price(), Some(Decimal::new(1025, 2)));
        assert_eq!(order.cl_ord_id(), Some(&b"ORD-10001"[..]));
    };
    work(&mut decoder, &mut buf);
    let counts = allocation_counter::measure(|| {
        for _ in 0..1000 {
            work(&mut decoder, &mut buf);
        }
    });
    assert_eq!(counts.count_total, 0, "{counts:?}");
}
