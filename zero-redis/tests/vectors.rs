//! The exact bytes redis-server 7.0 sends for each RESP type, captured with
//! `redis-server --enable-debug-command local` and `DEBUG PROTOCOL <type>` (after `HELLO 3`
//! for RESP3, without it for RESP2's forms), decoded whole and at every cut point.

use std::borrow::Cow;

use zero_redis::codec::{decode, Frame, Limits};

fn bulk(b: &[u8]) -> Frame<'_> {
    Frame::Bulk(Cow::Borrowed(b))
}

/// Every frame in `input`, checking that each cut short reads as incomplete.
fn frames(input: &[u8]) -> Vec<Frame<'_>> {
    let limits = Limits::default();
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let (frame, used) = decode(&input[at..], &limits).unwrap().expect("complete");
        for cut in at..at + used {
            assert_eq!(decode(&input[at..cut], &limits), Ok(None), "cut at {cut}");
        }
        out.push(frame);
        at += used;
    }
    out
}

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}.resp", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
#[allow(clippy::approx_constant)] // 3.141 is what the server sends
fn resp3_types_from_redis_server() {
    let ints = |n: i64| (0..n).map(Frame::Integer).collect::<Vec<_>>();
    let cases: Vec<(&str, Vec<Frame<'static>>)> = vec![
        ("string", vec![bulk(b"Hello World")]),
        ("integer", vec![Frame::Integer(12345)]),
        ("double", vec![Frame::Double(3.141)]),
        ("bignum", vec![Frame::BigNumber(Cow::Borrowed(b"1234567999999999999999999999999999999"))]),
        ("null", vec![Frame::Null]),
        ("array", vec![Frame::Array(ints(3))]),
        ("set", vec![Frame::Set(ints(3))]),
        (
            "map",
            vec![Frame::Map(vec![
                (Frame::Integer(0), Frame::Boolean(false)),
                (Frame::Integer(1), Frame::Boolean(true)),
                (Frame::Integer(2), Frame::Boolean(false)),
            ])],
        ),
        (
            "attrib",
            vec![Frame::Attribute {
                attributes: vec![(
                    bulk(b"key-popularity"),
                    Frame::Array(vec![bulk(b"key:123"), Frame::Integer(90)]),
                )],
                value: Box::new(bulk(b"Some real reply following the attribute")),
            }],
        ),
        (
            "push",
            vec![
                Frame::Push(vec![bulk(b"server-cpu-usage"), Frame::Integer(42)]),
                bulk(b"Some real reply following the push reply"),
            ],
        ),
        (
            "verbatim",
            vec![Frame::Verbatim { format: *b"txt", text: Cow::Borrowed(b"This is a verbatim\nstring") }],
        ),
        ("true", vec![Frame::Boolean(true)]),
        ("false", vec![Frame::Boolean(false)]),
    ];
    for (name, expected) in cases {
        let bytes = vector(name);
        assert_eq!(frames(&bytes), expected, "{name}");
    }
}

#[test]
fn resp2_forms_from_redis_server() {
    assert_eq!(frames(&vector("resp2-null")), vec![Frame::Null]);
    assert_eq!(frames(&vector("resp2-true")), vec![Frame::Integer(1)]);
    let bytes = vector("resp2-map");
    let map = frames(&bytes);
    assert!(matches!(&map[..], [Frame::Array(items)] if items.len() == 6), "a map is a flat array in RESP2");
}

#[test]
fn hello_reply_is_a_map() {
    let hello = vector("hello3");
    let [Frame::Map(pairs)] = &frames(&hello)[..] else { panic!("HELLO 3 answers with one map") };
    assert!(pairs.contains(&(bulk(b"proto"), Frame::Integer(3))));
    assert!(pairs.contains(&(bulk(b"server"), bulk(b"redis"))));
}
