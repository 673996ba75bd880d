//! Parse and serialize a NewOrderSingle and an ExecutionReport with zero-fix or
//! hotfix-message, the same messages and loop for both. Prints `RESULT` lines for
//! bench/fix.sh.
//!
//! Usage: fix-codecs-bench <zero|hotfix> ITERATIONS
//!
//! - parse: bytes to a message whose fields can be read (framing, BodyLength and CheckSum
//!   checked), then two fields read (ClOrdID and the price or quantity), as an application
//!   would.
//! - serialize: a message of the same fields built from values and encoded to bytes with
//!   BodyLength and CheckSum.

use std::hint::black_box;
use std::time::Instant;

/// The messages, `|` for SOH (checksums filled in at start).
const NOS: &str = "8=FIX.4.4|9=000|35=D|49=CLIENT|56=BROKER|34=215|52=20261207-09:30:00.123|11=ORD-10001|\
                   1=ACCT-7|21=1|55=ZERO|54=1|60=20261207-09:30:00.123|38=100|40=2|44=10.25|59=0|10=000|";
const ER: &str = "8=FIX.4.4|9=000|35=8|49=BROKER|56=CLIENT|34=311|52=20261207-09:30:00.125|37=OID-55|11=ORD-10001|\
                  17=EXEC-991|150=0|39=0|55=ZERO|54=1|38=100|44=10.25|32=0|31=0|151=100|14=0|6=0|\
                  60=20261207-09:30:00.124|10=000|";

/// `text` with SOH, a correct BodyLength and CheckSum.
fn wire(text: &str) -> Vec<u8> {
    let soh = text.replace('|', "\x01");
    let start = soh.find("35=").unwrap();
    let end = soh.rfind("10=").unwrap();
    let body = &soh[start..end];
    let head = format!("8=FIX.4.4\x019={}\x01", body.len());
    let mut m = format!("{head}{body}").into_bytes();
    let sum = m.iter().fold(0u32, |s, &b| s + u32::from(b)) % 256;
    m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    m
}

fn fields(text: &str) -> Vec<(u32, String)> {
    text.split('|')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (t, v) = f.split_once('=').unwrap();
            (t.parse().unwrap(), v.to_string())
        })
        .filter(|(t, _)| ![8, 9, 10, 35].contains(t))
        .collect()
}

fn time(iterations: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / iterations as f64
}

mod zero {
    use super::*;
    use zero_fix::codec::{Builder, Decoded, Decoder};

    pub fn parse(bytes: &[u8], price_tag: u32) -> impl FnMut() + '_ {
        let mut decoder = Decoder::default();
        move || {
            let Decoded::Message(m) = decoder.decode(black_box(bytes)) else { panic!("zero-fix refused the message") };
            black_box((m.get(11), m.get(price_tag)));
        }
    }

    pub fn serialize<'a>(msg_type: &'static [u8], fields: &'a [(u32, String)]) -> impl FnMut() + 'a {
        let mut buf = Vec::with_capacity(512);
        move || {
            buf.clear();
            let mut b = Builder::new(&mut buf, b"FIX.4.4", msg_type);
            for (tag, value) in fields {
                b.str(*tag, value.as_bytes());
            }
            black_box(b.finish());
        }
    }
}

mod hotfix {
    use super::*;
    use hotfix_message::message::{Config, Message};
    use hotfix_message::parsed_message::ParsedMessage;
    use hotfix_message::{dict::Dictionary, fix44, MessageBuilder, Part};

    pub fn parse(bytes: &[u8], price: bool) -> impl FnMut() + '_ {
        let builder = MessageBuilder::new(Dictionary::fix44(), Config::default()).unwrap();
        move || {
            let ParsedMessage::Valid(m) = builder.build(black_box(bytes)) else { panic!("hotfix refused the message") };
            let id = m.get_raw(fix44::CL_ORD_ID).map(<[u8]>::len);
            let other = if price { m.get_raw(fix44::PRICE) } else { m.get_raw(fix44::LEAVES_QTY) };
            black_box((id, other));
        }
    }

    /// The definitions of the fields the messages use.
    fn definition(tag: u32) -> &'static hotfix_message::HardCodedFixFieldDefinition {
        match tag {
            1 => fix44::ACCOUNT,
            6 => fix44::AVG_PX,
            11 => fix44::CL_ORD_ID,
            14 => fix44::CUM_QTY,
            17 => fix44::EXEC_ID,
            21 => fix44::HANDL_INST,
            31 => fix44::LAST_PX,
            32 => fix44::LAST_QTY,
            34 => fix44::MSG_SEQ_NUM,
            37 => fix44::ORDER_ID,
            38 => fix44::ORDER_QTY,
            39 => fix44::ORD_STATUS,
            40 => fix44::ORD_TYPE,
            44 => fix44::PRICE,
            49 => fix44::SENDER_COMP_ID,
            52 => fix44::SENDING_TIME,
            54 => fix44::SIDE,
            55 => fix44::SYMBOL,
            56 => fix44::TARGET_COMP_ID,
            59 => fix44::TIME_IN_FORCE,
            60 => fix44::TRANSACT_TIME,
            150 => fix44::EXEC_TYPE,
            151 => fix44::LEAVES_QTY,
            other => panic!("no definition for tag {other}"),
        }
    }

    pub fn serialize<'a>(msg_type: &'static str, fields: &'a [(u32, String)]) -> impl FnMut() + 'a {
        let config = Config::default();
        let defs: Vec<_> = fields.iter().map(|(tag, value)| (definition(*tag), value.clone())).collect();
        move || {
            let mut m = Message::new("FIX.4.4", msg_type);
            for (def, value) in &defs {
                m.set(def, value.as_str());
            }
            black_box(m.encode(&config).unwrap());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(args.len(), 2, "usage: fix-codecs-bench <zero|hotfix> ITERATIONS");
    let iterations: u64 = args[1].parse().unwrap();
    let (nos, er) = (wire(NOS), wire(ER));
    let (nos_fields, er_fields) = (fields(NOS), fields(ER));
    let results = match args[0].as_str() {
        "zero" => [
            ("NewOrderSingle", "parse", time(iterations, zero::parse(&nos, 44))),
            ("ExecutionReport", "parse", time(iterations, zero::parse(&er, 151))),
            ("NewOrderSingle", "serialize", time(iterations, zero::serialize(b"D", &nos_fields))),
            ("ExecutionReport", "serialize", time(iterations, zero::serialize(b"8", &er_fields))),
        ],
        "hotfix" => [
            ("NewOrderSingle", "parse", time(iterations, hotfix::parse(&nos, true))),
            ("ExecutionReport", "parse", time(iterations, hotfix::parse(&er, false))),
            ("NewOrderSingle", "serialize", time(iterations, hotfix::serialize("D", &nos_fields))),
            ("ExecutionReport", "serialize", time(iterations, hotfix::serialize("8", &er_fields))),
        ],
        other => panic!("unknown codec {other}"),
    };
    for (message, op, ns) in results {
        println!("RESULT impl={} message={message} op={op} ns={ns:.1}", args[0]);
    }
}
