//! Decoding the test schema's messages from bytes laid out by hand: every kind of field,
//! the three dimension encodings, nesting, var data, schema evolution both ways, and
//! truncated or hostile buffers.

use serde_json::json;
use zero_sbe::{to_json, DecodeError, Schema};

fn schema() -> Schema {
    Schema::parse(include_str!("schemas/orders.xml")).expect("the test schema reads")
}

/// Little-endian bytes, written in order.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
}

/// An Order at `version` with a root block of `block_length` (36 in version 1; 30 in
/// version 0, before `venue`; more from a newer version), fills of `fill_block` each.
fn order(version: u16, block_length: u16, fill_block: u16, qty: Option<i32>) -> Vec<u8> {
    let mut b = Bytes::default().u16(block_length).u16(1).u16(91).u16(version);
    let root = Bytes::default()
        .u64(1001)
        .i64(123_450_000_000)
        .i32(qty.unwrap_or(i32::MIN))
        .u8(b'2')
        .u8(0b1000_0001)
        .raw(b"ESZ6\0\0\0\0")
        .u32(7)
        .raw(&[0; 64]);
    b = b.raw(&root.0[..usize::from(block_length)]);
    // fills: two entries, the first with two legs, the second with none.
    b = b.u16(fill_block).u16(2);
    for (px, qty, legs) in [(123_450_000_000i64, 3u32, &[11u16, 12][..]), (123_500_000_000, 4, &[][..])] {
        let entry = Bytes::default().i64(px).u32(qty).raw(&[0xEE; 16]);
        b = b.raw(&entry.0[..usize::from(fill_block)]);
        b = b.u16(2).u8(legs.len() as u8);
        for leg in legs {
            b = b.u16(*leg);
        }
    }
    // notes: groupSize8Byte, one entry.
    b = b.u16(1).raw(&[0; 5]).u8(1).u8(42);
    b.u16(5).raw(b"hello").0
}

#[test]
fn every_kind_of_field_decodes() {
    let s = schema();
    assert_eq!(s.message(1).unwrap().block_length, 36);
    let bytes = order(1, 36, 12, Some(5));
    let (value, used) = to_json(&s, &bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(
        value,
        json!({
            "$message": "Order", "$templateId": 1, "$version": 1,
            "orderId": 1001,
            "price": { "mantissa": 123_450_000_000i64, "exponent": -9 },
            "qty": 5,
            "side": "Sell",
            "flags": ["Aggressor", "EndOfEvent"],
            "symbol": "ESZ6",
            "kind": "Limit",
            "venue": 7,
            "fills": [
                { "fillPx": 123_450_000_000i64, "fillQty": 3, "legs": [{ "legId": 11 }, { "legId": 12 }] },
                { "fillPx": 123_500_000_000i64, "fillQty": 4, "legs": [] }
            ],
            "notes": [{ "noteId": 42 }],
            "text": "hello"
        })
    );
}

#[test]
fn optional_null_is_null() {
    let (value, _) = to_json(&schema(), &order(1, 36, 12, None)).unwrap();
    assert_eq!(value["qty"], serde_json::Value::Null);
}

#[test]
fn an_older_version_lacks_the_newer_field() {
    // Version 0: the root block ends before `venue`.
    let (value, used) = to_json(&schema(), &order(0, 30, 12, Some(5))).unwrap();
    assert!(value.get("venue").is_none(), "{value}");
    assert_eq!(value["text"], "hello");
    assert_eq!(used, order(0, 30, 12, Some(5)).len());
    // Version 0 with the version-1 block length: the bytes are there, but the field is newer
    // than the message says it is.
    let (value, _) = to_json(&schema(), &order(0, 36, 12, Some(5))).unwrap();
    assert!(value.get("venue").is_none(), "{value}");
}

#[test]
fn a_newer_version_with_longer_blocks_decodes() {
    // Version 2 (unknown here): longer root and group blocks, advanced by their lengths.
    let bytes = order(2, 48, 20, Some(5));
    let (value, used) = to_json(&schema(), &bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(value["venue"], 7);
    assert_eq!(value["fills"][1]["fillQty"], 4);
    assert_eq!(value["fills"][0]["legs"][1]["legId"], 12);
    assert_eq!(value["text"], "hello");
}

#[test]
fn every_truncation_is_an_error() {
    let s = schema();
    let bytes = order(1, 36, 12, Some(5));
    for cut in 0..bytes.len() {
        match to_json(&s, &bytes[..cut]) {
            Err(DecodeError::Short { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn hostile_counts_and_lengths_are_errors() {
    let s = schema();
    let mut bytes = order(1, 36, 12, Some(5));
    // numInGroup of the fills group: 65535.
    bytes[8 + 36 + 2..8 + 36 + 4].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(to_json(&s, &bytes), Err(DecodeError::Short { .. })));
    // A root blockLength far past the end.
    let mut bytes = order(1, 36, 12, Some(5));
    bytes[0..2].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(to_json(&s, &bytes), Err(DecodeError::Short { .. })));
    // Another schema, an unknown template.
    let mut bytes = order(1, 36, 12, Some(5));
    bytes[4] = 7;
    assert!(matches!(to_json(&s, &bytes), Err(DecodeError::OtherSchema { got: 7, want: 91 })));
    let mut bytes = order(1, 36, 12, Some(5));
    bytes[2] = 9;
    assert!(matches!(to_json(&s, &bytes), Err(DecodeError::UnknownTemplate(9))));
}

#[test]
fn big_endian_schemas_read_big_endian() {
    let xml =
        include_str!("schemas/orders.xml").replace("byteOrder=\"littleEndian\"", "byteOrder=\"bigEndian\"");
    let s = Schema::parse(&xml).unwrap();
    let mut b = vec![0, 36, 0, 1, 0, 91, 0, 1];
    b.extend_from_slice(&1001u64.to_be_bytes());
    b.extend_from_slice(&5i64.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(b"1\x02ABC\0\0\0\0\0");
    b.extend_from_slice(&9u32.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&[0, 12, 0, 0]); // no fills
    b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // no notes
    b.extend_from_slice(&[0, 0]); // empty text
    let (value, used) = to_json(&s, &b).unwrap();
    assert_eq!(used, b.len());
    assert_eq!(
        (value["orderId"].clone(), value["qty"].clone(), value["venue"].clone()),
        (json!(1001), json!(-1), json!(9))
    );
    assert_eq!((value["side"].clone(), value["flags"].clone()), (json!("Buy"), json!(["Hidden"])));
}

#[test]
fn broken_schemas_are_refused_with_a_reason() {
    let base = include_str!("schemas/orders.xml");
    for (from, to, why) in [
        ("type=\"uint64\"/>", "type=\"nosuch\"/>", "no type named nosuch"),
        ("blockLength=\"36\"", "blockLength=\"20\"", "less than its fields"),
        (
            "<field name=\"qty\" id=\"38\" type=\"QtyOpt\"/>",
            "<field name=\"qty\" id=\"38\" type=\"QtyOpt\" offset=\"4\"/>",
            "overlaps",
        ),
        ("<choice name=\"EndOfEvent\">7</choice>", "<choice name=\"EndOfEvent\">8</choice>", "does not fit"),
        ("primitiveType=\"int64\"/>", "primitiveType=\"int65\"/>", "primitiveType"),
    ] {
        assert!(base.contains(from), "{from}");
        let e = Schema::parse(&base.replacen(from, to, 1)).unwrap_err();
        assert!(e.0.contains(why), "{to}: {e}");
    }
    let cyclic = base.replace(
        "<type name=\"Symbol\" primitiveType=\"char\" length=\"8\"/>",
        "<composite name=\"A\"><ref name=\"b\" type=\"B\"/></composite><composite name=\"B\"><ref name=\"a\" type=\"A\"/></composite><type name=\"Symbol\" primitiveType=\"char\" length=\"8\"/>",
    ).replace("type=\"Symbol\"/>", "type=\"A\"/>");
    assert!(Schema::parse(&cyclic).unwrap_err().0.contains("contains itself"));
}

/// Encoding from JSON and decoding again gives the same JSON, and the same bytes as laid out
/// by hand.
#[test]
fn encode_and_decode_round_trip() {
    let s = schema();
    let bytes = order(1, 36, 12, Some(5));
    let (value, _) = to_json(&s, &bytes).unwrap();
    let again = zero_sbe::from_json(&s, &value).unwrap();
    // The hand-made buffer pads with zeros where the encoder does too, but its fill entries
    // carry 0xEE past their fields: compare through decoding, and the root block byte for byte.
    assert_eq!(to_json(&s, &again).unwrap().0, value);
    assert_eq!(again[..8 + 36], bytes[..8 + 36]);
    // Range and name checks.
    let mut bad = value.clone();
    bad["qty"] = json!(1u64 << 40);
    assert!(zero_sbe::from_json(&s, &bad).unwrap_err().0.contains("qty"));
    let mut bad = value.clone();
    bad["side"] = json!("Sideways");
    assert!(zero_sbe::from_json(&s, &bad).unwrap_err().0.contains("Sideways"));
    let mut bad = value;
    bad["symbol"] = json!("TOOLONGSYMBOL");
    assert!(zero_sbe::from_json(&s, &bad).unwrap_err().0.contains("longer"));
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn fill() -> impl Strategy<Value = serde_json::Value> {
        (any::<i64>(), any::<u32>(), proptest::collection::vec(any::<u16>(), 0..4)).prop_map(|(px, qty, legs)| {
            json!({ "fillPx": px, "fillQty": qty, "legs": legs.iter().map(|l| json!({ "legId": l })).collect::<Vec<_>>() })
        })
    }

    proptest! {
        /// Any Order made of values in range comes back from its bytes unchanged.
        #[test]
        fn any_order(
            id in any::<u64>(),
            mantissa in any::<i64>(),
            qty in proptest::option::of(any::<i32>().prop_filter("not the null value", |q| *q != i32::MIN)),
            buy in any::<bool>(),
            flags in proptest::sample::subsequence(vec!["Aggressor", "Hidden", "EndOfEvent"], 0..=3),
            symbol in "[A-Z0-9]{0,8}",
            venue in any::<u32>(),
            fills in proptest::collection::vec(fill(), 0..5),
            notes in proptest::collection::vec(any::<u8>(), 0..3),
            text in "\\PC{0,40}",
        ) {
            let value = json!({
                "$message": "Order", "$templateId": 1, "$version": 1,
                "orderId": id,
                "price": { "mantissa": mantissa, "exponent": -9 },
                "qty": qty,
                "side": if buy { "Buy" } else { "Sell" },
                "flags": flags,
                "symbol": symbol,
                "kind": "Limit",
                "venue": venue,
                "fills": fills,
                "notes": notes.iter().map(|n| json!({ "noteId": n })).collect::<Vec<_>>(),
                "text": text,
            });
            let s = schema();
            let bytes = zero_sbe::from_json(&s, &value).unwrap();
            let (decoded, used) = to_json(&s, &bytes).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(decoded, value);
        }
    }
}
