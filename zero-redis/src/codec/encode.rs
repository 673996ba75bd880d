//! Writing frames. A command is an array of bulk strings, written straight into the send
//! buffer: its arguments are copied once, into the bytes that go on the wire.

use std::io::Write;

use super::Frame;

/// Appends the command `args` (name first) to `out`, as RESP's array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    header(out, b'*', args.len());
    for arg in args {
        blob(out, b'$', arg.as_ref());
    }
}

/// `kind`, a decimal count and CRLF.
pub(crate) fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn blob(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    header(out, kind, payload.len());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, without going through `fmt`.
pub(crate) fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl Frame<'_> {
    /// Appends the frame to `out` in RESP3 (RESP2 frames keep their RESP2 form; `Null` is
    /// written as RESP3's `_`). Simple strings and errors must not contain CR or LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(s) => line(out, b'+', s),
            Frame::Error(s) => line(out, b'-', s),
            Frame::Integer(i) => {
                out.push(b':');
                if *i < 0 {
                    out.push(b'-');
                }
                decimal(out, i.unsigned_abs());
                out.extend_from_slice(b"\r\n");
            }
            Frame::Bulk(b) => blob(out, b'$', b),
            Frame::Null => out.extend_from_slice(b"_\r\n"),
            Frame::Boolean(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Double(d) => {
                out.push(b',');
                match *d {
                    d if d.is_nan() => out.extend_from_slice(b"nan"),
                    f64::INFINITY => out.extend_from_slice(b"inf"),
                    f64::NEG_INFINITY => out.extend_from_slice(b"-inf"),
                    // `{:?}` writes the shortest form that reads back as the same double.
                    d => write!(out, "{d:?}").expect("writing to a Vec cannot fail"),
                }
                out.extend_from_slice(b"\r\n");
            }
            Frame::BigNumber(digits) => line(out, b'(', digits),
            Frame::BulkError(b) => blob(out, b'!', b),
            Frame::Verbatim { format, text } => {
                header(out, b'=', text.len() + 4);
                out.extend_from_slice(format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Array(items) => elements(out, b'*', items),
            Frame::Set(items) => elements(out, b'~', items),
            Frame::Push(items) => elements(out, b'>', items),
            Frame::Map(pairs) => self::pairs(out, b'%', pairs),
            Frame::Attribute { attributes, value } => {
                self::pairs(out, b'|', attributes);
                value.encode(out);
            }
        }
    }
}

fn elements(out: &mut Vec<u8>, kind: u8, items: &[Frame<'_>]) {
    header(out, kind, items.len());
    for item in items {
        item.encode(out);
    }
}

fn pairs(out: &mut Vec<u8>, kind: u8, pairs: &[(Frame<'_>, Frame<'_>)]) {
    header(out, kind, pairs.len());
    for (k, v) in pairs {
        k.encode(out);
        v.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;

    use super::*;
    use crate::codec::{decode, Limits};

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &["SET", "key", ""]);
        encode_command(&mut out, &[&b"GET"[..], &[0xff, b'\r', b'\n']]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$3\r\n\xff\r\n\r\n");
    }

    #[test]
    fn numbers() {
        let encoded = |f: Frame<'_>| {
            let mut out = Vec::new();
            f.encode(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(encoded(Frame::Integer(i64::MIN)), ":-9223372036854775808\r\n");
        assert_eq!(encoded(Frame::Integer(0)), ":0\r\n");
        assert_eq!(encoded(Frame::Double(f64::NEG_INFINITY)), ",-inf\r\n");
        assert_eq!(encoded(Frame::Double(1e300)), ",1e300\r\n");
    }

    fn text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..16)
    }

    fn frame() -> impl Strategy<Value = Frame<'static>> {
        let leaf = prop_oneof![
            text().prop_map(|t| Frame::Simple(Cow::Owned(t))),
            text().prop_map(|t| Frame::Error(Cow::Owned(t))),
            any::<i64>().prop_map(Frame::Integer),
            proptest::collection::vec(any::<u8>(), 0..32).prop_map(|b| Frame::Bulk(Cow::Owned(b))),
            Just(Frame::Null),
            any::<bool>().prop_map(Frame::Boolean),
            any::<f64>().prop_filter("nan never equals", |d| !d.is_nan()).prop_map(Frame::Double),
            "-?[1-9][0-9]{0,40}".prop_map(|d| Frame::BigNumber(Cow::Owned(d.into_bytes()))),
            proptest::collection::vec(any::<u8>(), 0..32).prop_map(|b| Frame::BulkError(Cow::Owned(b))),
            (proptest::array::uniform3(b'a'..=b'z'), proptest::collection::vec(any::<u8>(), 0..32))
                .prop_map(|(format, text)| Frame::Verbatim { format, text: Cow::Owned(text) }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            let list = proptest::collection::vec(inner.clone(), 0..8);
            let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..4);
            prop_oneof![
                list.clone().prop_map(Frame::Array),
                list.clone().prop_map(Frame::Set),
                list.prop_map(Frame::Push),
                pairs.clone().prop_map(Frame::Map),
                (pairs, inner)
                    .prop_map(|(attributes, value)| Frame::Attribute { attributes, value: Box::new(value) }),
            ]
        })
    }

    proptest! {
        #[test]
        fn frames_round_trip(f in frame()) {
            let mut out = Vec::new();
            f.encode(&mut out);
            let (back, used) = decode(&out, &Limits::default()).unwrap().expect("complete");
            prop_assert_eq!(used, out.len());
            prop_assert_eq!(back, f);
            let mut state = crate::codec::Scan::default();
            for cut in 0..out.len() {
                prop_assert_eq!(decode(&out[..cut], &Limits::default()), Ok(None));
                prop_assert_eq!(crate::codec::scan(&out[..cut], &Limits::default(), &mut state), Ok(None));
            }
            prop_assert_eq!(crate::codec::scan(&out, &Limits::default(), &mut state), Ok(Some(out.len())));
        }
    }
}
