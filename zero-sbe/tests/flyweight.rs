//! The generated flyweights of the test schema (`tests/generated/orders.rs`, kept equal to
//! what the generator makes now) against the schema-driven decoder: the same values from the
//! same bytes, for any Order; absent fields in older versions; errors, never panics, on
//! truncated buffers.

use proptest::prelude::*;
use serde_json::{json, Value};
use zero_sbe::Schema;

#[allow(dead_code)]
mod orders {
    include!("generated/orders.rs");
}

fn schema() -> Schema {
    Schema::parse(include_str!("schemas/orders.xml")).unwrap()
}

#[test]
fn the_mdp3_templates_are_current() {
    let schema = Schema::parse(include_str!("../schemas/mdp3.xml")).unwrap();
    assert!(
        zero_sbe::generate::rust(&schema) == include_str!("../src/mdp3/templates.generated.rs"),
        "regenerate: zero sbe generate --schema zero-sbe/schemas/mdp3.xml --out zero-sbe/src/mdp3/templates.generated.rs"
    );
}

#[test]
fn the_generated_file_is_current() {
    let now = zero_sbe::generate::rust(&schema());
    assert!(
        now == include_str!("generated/orders.rs"),
        "regenerate: zero sbe generate --schema zero-sbe/tests/schemas/orders.xml --out zero-sbe/tests/generated/orders.rs"
    );
}

/// The generated decoder's view of a message, as the JSON the schema-driven one gives.
fn view(bytes: &[u8]) -> Result<Value, zero_sbe::flyweight::Error> {
    let orders::Message::Order(o) = orders::decode(bytes)? else { panic!("not an Order") };
    let mut fills = Vec::new();
    for f in o.fills()? {
        let f = f?;
        let legs: Result<Vec<Value>, _> =
            f.legs()?.map(|l| l.map(|l| json!({ "legId": l.leg_id() }))).collect();
        fills.push(json!({ "fillPx": f.fill_px(), "fillQty": f.fill_qty(), "legs": legs? }));
    }
    let notes: Result<Vec<Value>, _> =
        o.notes()?.map(|n| n.map(|n| json!({ "noteId": n.note_id() }))).collect();
    let flags = o.flags();
    let flag_names: Vec<&str> =
        [("Aggressor", flags.aggressor()), ("Hidden", flags.hidden()), ("EndOfEvent", flags.end_of_event())]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect();
    let mut v = json!({
        "$message": "Order", "$templateId": orders::order::TEMPLATE_ID, "$version": o.version(),
        "orderId": o.order_id(),
        "price": { "mantissa": o.price().mantissa(), "exponent": o.price().exponent() },
        "qty": o.qty(),
        "side": o.side().name(),
        "flags": flag_names,
        "symbol": String::from_utf8_lossy(o.symbol()),
        "kind": o.kind().name(),
        "fills": fills,
        "notes": notes?,
        "text": String::from_utf8_lossy(o.text()?),
    });
    if let Some(venue) = o.venue() {
        v["venue"] = json!(venue);
    }
    Ok(v)
}

fn order(version: u16) -> Value {
    let mut v = json!({
        "$message": "Order", "$templateId": 1, "$version": version,
        "orderId": 1001,
        "price": { "mantissa": 123_450_000_000i64, "exponent": -9 },
        "qty": null,
        "side": "Buy",
        "flags": ["Hidden"],
        "symbol": "ESZ6",
        "kind": "Limit",
        "fills": [
            { "fillPx": 5, "fillQty": 3, "legs": [{ "legId": 11 }, { "legId": 12 }] },
            { "fillPx": 6, "fillQty": 4, "legs": [] }
        ],
        "notes": [{ "noteId": 42 }],
        "text": "hello",
    });
    if version >= 1 {
        v["venue"] = json!(7);
    }
    v
}

#[test]
fn the_flyweights_read_what_was_written() {
    let s = schema();
    let bytes = zero_sbe::from_json(&s, &order(1)).unwrap();
    assert_eq!(view(&bytes).unwrap(), order(1));
    assert_eq!(view(&bytes).unwrap(), zero_sbe::to_json(&s, &bytes).unwrap().0);
}

#[test]
fn an_older_message_lacks_the_newer_field() {
    // The same bytes, the header saying version 0 and the block ending before `venue`.
    let s = schema();
    let mut bytes = zero_sbe::from_json(&s, &order(1)).unwrap();
    bytes[6..8].copy_from_slice(&0u16.to_le_bytes());
    let orders::Message::Order(o) = orders::decode(&bytes).unwrap() else { panic!() };
    assert_eq!(o.venue(), None);
    assert_eq!(o.order_id(), 1001);
}

#[test]
fn truncations_and_short_blocks_are_errors() {
    let s = schema();
    let bytes = zero_sbe::from_json(&s, &order(1)).unwrap();
    for cut in 0..bytes.len() {
        assert!(view(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut short = bytes.clone();
    short[0..2].copy_from_slice(&10u16.to_le_bytes());
    assert!(matches!(orders::decode(&short), Err(zero_sbe::flyweight::Error::Block("Order"))));
    let mut other = bytes;
    other[4] = 1;
    assert!(matches!(orders::decode(&other), Err(zero_sbe::flyweight::Error::OtherSchema(1))));
}

fn fill() -> impl Strategy<Value = Value> {
    (any::<i64>(), any::<u32>(), proptest::collection::vec(any::<u16>(), 0..4)).prop_map(|(px, qty, legs)| {
        json!({ "fillPx": px, "fillQty": qty, "legs": legs.iter().map(|l| json!({ "legId": l })).collect::<Vec<_>>() })
    })
}

proptest! {
    /// For any Order, the generated decoder and the schema-driven one agree.
    #[test]
    fn generated_and_schema_driven_decoders_agree(
        id in any::<u64>(),
        mantissa in any::<i64>(),
        qty in proptest::option::of(any::<i32>().prop_filter("not null", |q| *q != i32::MIN)),
        flags in proptest::sample::subsequence(vec!["Aggressor", "Hidden", "EndOfEvent"], 0..=3),
        symbol in "[A-Z0-9]{0,8}",
        fills in proptest::collection::vec(fill(), 0..5),
        notes in proptest::collection::vec(any::<u8>(), 0..3),
        text in "[ -~]{0,40}",
    ) {
        let value = json!({
            "$message": "Order", "$templateId": 1, "$version": 1,
            "orderId": id, "price": { "mantissa": mantissa, "exponent": -9 }, "qty": qty, "side": "Sell",
            "flags": flags, "symbol": symbol, "kind": "Limit", "venue": 9, "fills": fills,
            "notes": notes.iter().map(|n| json!({ "noteId": n })).collect::<Vec<_>>(), "text": text,
        });
        let s = schema();
        let bytes = zero_sbe::from_json(&s, &value).unwrap();
        prop_assert_eq!(view(&bytes).unwrap(), value);
    }
}

/// Writes an Order with the generated encoder from the JSON test values.
fn encode(v: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut o = orders::order::Encoder::new(&mut buf);
    o.set_order_id(v["orderId"].as_u64().unwrap())
        .set_qty(v["qty"].as_i64().map(|q| q as i32))
        .set_side(if v["side"] == "Buy" { orders::Side::BUY } else { orders::Side::SELL })
        .set_symbol(v["symbol"].as_str().unwrap().as_bytes());
    o.price().set_mantissa(v["price"]["mantissa"].as_i64().unwrap());
    let mut flags = orders::Flags::default();
    for f in v["flags"].as_array().unwrap() {
        flags = match f.as_str().unwrap() {
            "Aggressor" => flags.with_aggressor(true),
            "Hidden" => flags.with_hidden(true),
            _ => flags.with_end_of_event(true),
        };
    }
    o.set_flags(flags);
    if let Some(venue) = v.get("venue") {
        o.set_venue(venue.as_u64().unwrap() as u32);
    }
    let fills = v["fills"].as_array().unwrap();
    let mut g = o.fills(fills.len());
    for f in fills {
        let mut e = g.entry();
        e.set_fill_px(f["fillPx"].as_i64().unwrap()).set_fill_qty(f["fillQty"].as_u64().unwrap() as u32);
        let legs = f["legs"].as_array().unwrap();
        let mut lg = e.legs(legs.len());
        for l in legs {
            lg.entry().set_leg_id(l["legId"].as_u64().unwrap() as u16);
        }
    }
    let notes = v["notes"].as_array().unwrap();
    let mut ng = o.notes(notes.len());
    for n in notes {
        ng.entry().set_note_id(n["noteId"].as_u64().unwrap() as u8);
    }
    o.set_text(v["text"].as_str().unwrap().as_bytes());
    buf
}

#[test]
fn the_generated_encoder_writes_what_the_schema_says() {
    let s = schema();
    for value in [order(1), {
        let mut v = order(1);
        v["qty"] = json!(-12);
        v
    }] {
        assert_eq!(encode(&value), zero_sbe::from_json(&s, &value).unwrap());
        assert_eq!(view(&encode(&value)).unwrap(), value);
    }
}

proptest! {
    /// For any Order, the generated encoder writes the same bytes as the schema-driven one.
    #[test]
    fn generated_and_schema_driven_encoders_agree(
        id in any::<u64>(),
        qty in proptest::option::of(any::<i32>().prop_filter("not null", |q| *q != i32::MIN)),
        flags in proptest::sample::subsequence(vec!["Aggressor", "Hidden", "EndOfEvent"], 0..=3),
        symbol in "[A-Z0-9]{0,8}",
        fills in proptest::collection::vec(fill(), 0..5),
        notes in proptest::collection::vec(any::<u8>(), 0..3),
        text in "[ -~]{0,40}",
    ) {
        let value = json!({
            "$message": "Order", "$templateId": 1, "$version": 1,
            "orderId": id, "price": { "mantissa": 42, "exponent": -9 }, "qty": qty, "side": "Buy",
            "flags": flags, "symbol": symbol, "kind": "Limit", "venue": 3, "fills": fills,
            "notes": notes.iter().map(|n| json!({ "noteId": n })).collect::<Vec<_>>(), "text": text,
        });
        prop_assert_eq!(encode(&value), zero_sbe::from_json(&schema(), &value).unwrap());
    }
}
