//! Replies as Rust types: [`FromValue`] converts a [`Frame`] (borrowed or owned) into what
//! the caller asked for, and says clearly when it cannot. RESP2 and RESP3 spell some types
//! differently (a boolean is `:1` or `#t`, a map a flat array or `%`); the conversions accept
//! both, so code does not depend on the protocol the connection negotiated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

use crate::codec::Frame;
use crate::error::{Error, ServerError};

/// A reply that owns its payloads.
pub type Value = Frame<'static>;

/// A type a reply converts into.
pub trait FromValue: Sized {
    /// Converts `frame`. An error reply becomes [`Error::Server`]; a reply of the wrong shape
    /// becomes [`Error::Conversion`].
    fn from_value(frame: Frame<'_>) -> Result<Self, Error>;

    /// A blob as a list of `Self`: only `u8` says yes, so `Vec<u8>` reads a bulk string while
    /// `Vec<T>` reads an array (the stable-Rust stand-in for specialisation).
    #[doc(hidden)]
    fn from_blob(_blob: &[u8]) -> Option<Vec<Self>> {
        None
    }

    /// An aggregate's elements as a list of `Self`: one each, except that pairs also read
    /// RESP2's flat form (`ZRANGE ... WITHSCORES` is `[m, s, ...]` there, `[[m, s], ...]` in
    /// RESP3).
    #[doc(hidden)]
    fn from_elements(items: Vec<Frame<'_>>) -> Result<Vec<Self>, Error> {
        items.into_iter().map(Self::from_value).collect()
    }
}

/// The frame with error replies turned into errors and attributes set aside.
fn checked(frame: Frame<'_>) -> Result<Frame<'_>, Error> {
    match frame {
        Frame::Error(text) | Frame::BulkError(text) => {
            Err(Error::Server(ServerError(String::from_utf8_lossy(&text).into_owned())))
        }
        Frame::Attribute { value, .. } => checked(*value),
        other => Ok(other),
    }
}

/// The conversion error for `frame`.
fn mismatch(expected: &'static str, frame: &Frame<'_>) -> Error {
    let got = match frame {
        Frame::Simple(s) | Frame::Bulk(s) => format!("{:?}", String::from_utf8_lossy(s)),
        Frame::Integer(i) => format!("integer {i}"),
        Frame::Null => "nil".into(),
        Frame::Boolean(b) => format!("boolean {b}"),
        Frame::Double(d) => format!("double {d}"),
        Frame::BigNumber(n) => format!("big number {}", String::from_utf8_lossy(n)),
        Frame::Verbatim { text, .. } => format!("verbatim {:?}", String::from_utf8_lossy(text)),
        Frame::Array(v) => format!("an array of {}", v.len()),
        Frame::Map(v) => format!("a map of {}", v.len()),
        Frame::Set(v) => format!("a set of {}", v.len()),
        Frame::Push(v) => format!("a push of {}", v.len()),
        Frame::Error(_) | Frame::BulkError(_) | Frame::Attribute { .. } => "an error".into(),
    };
    Error::Conversion { expected, got }
}

/// The bytes of a string-like frame.
fn text<'f>(frame: &'f Frame<'_>) -> Option<&'f [u8]> {
    match frame {
        Frame::Simple(s) | Frame::Bulk(s) | Frame::BigNumber(s) => Some(s),
        Frame::Verbatim { text, .. } => Some(text),
        _ => None,
    }
}

/// The reply as it came, attributes included; only an error reply becomes an error.
impl FromValue for Value {
    fn from_value(frame: Frame<'_>) -> Result<Value, Error> {
        match frame {
            Frame::Attribute { attributes, value } => {
                let value = Box::new(Value::from_value(*value)?);
                Ok(Frame::Attribute { attributes, value }.into_owned())
            }
            other => checked(other).map(Frame::into_owned),
        }
    }
}

impl FromValue for () {
    fn from_value(frame: Frame<'_>) -> Result<(), Error> {
        checked(frame).map(drop)
    }
}

impl FromValue for String {
    fn from_value(frame: Frame<'_>) -> Result<String, Error> {
        let frame = checked(frame)?;
        match &frame {
            Frame::Integer(i) => return Ok(i.to_string()),
            Frame::Double(d) => return Ok(d.to_string()),
            _ => {}
        }
        let bytes = text(&frame).ok_or_else(|| mismatch("String", &frame))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| mismatch("String (UTF-8)", &frame))
    }
}

impl FromValue for bool {
    fn from_value(frame: Frame<'_>) -> Result<bool, Error> {
        match checked(frame)? {
            Frame::Boolean(b) => Ok(b),
            Frame::Integer(i) => Ok(i != 0),
            Frame::Simple(s) if &*s == b"OK" => Ok(true),
            Frame::Bulk(s) if &*s == b"1" || &*s == b"0" => Ok(&*s == b"1"),
            other => Err(mismatch("bool", &other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(frame: Frame<'_>) -> Result<f64, Error> {
        let frame = checked(frame)?;
        match &frame {
            Frame::Double(d) => Ok(*d),
            Frame::Integer(i) => Ok(*i as f64),
            _ => parse(&frame, "f64"),
        }
    }
}

/// A string-like frame parsed with `FromStr`.
fn parse<T: std::str::FromStr>(frame: &Frame<'_>, expected: &'static str) -> Result<T, Error> {
    text(frame)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| mismatch(expected, frame))
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(frame: Frame<'_>) -> Result<$t, Error> {
                let frame = checked(frame)?;
                match &frame {
                    Frame::Integer(i) => <$t>::try_from(*i).map_err(|_| mismatch(stringify!($t), &frame)),
                    Frame::Boolean(b) => Ok(<$t>::from(*b)),
                    _ => parse(&frame, stringify!($t)),
                }
            }
        }
    )*};
}
integers!(i64, u64, i32, u32, i16, u16, usize, isize);

impl FromValue for u8 {
    fn from_value(frame: Frame<'_>) -> Result<u8, Error> {
        let frame = checked(frame)?;
        match &frame {
            Frame::Integer(i) => u8::try_from(*i).map_err(|_| mismatch("u8", &frame)),
            _ => parse(&frame, "u8"),
        }
    }

    fn from_blob(blob: &[u8]) -> Option<Vec<u8>> {
        Some(blob.to_vec())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(frame: Frame<'_>) -> Result<Option<T>, Error> {
        match checked(frame)? {
            Frame::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// The elements of an aggregate (a nil is an empty one, as RESP2 sends for a missing key).
fn elements<'a>(frame: Frame<'a>, expected: &'static str) -> Result<Vec<Frame<'a>>, Error> {
    match checked(frame)? {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => Ok(v),
        Frame::Map(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Frame::Null => Ok(Vec::new()),
        other => Err(mismatch(expected, &other)),
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(frame: Frame<'_>) -> Result<Vec<T>, Error> {
        let frame = checked(frame)?;
        if let Some(blob) = text(&frame) {
            return T::from_blob(blob).ok_or_else(|| mismatch("Vec", &frame));
        }
        T::from_elements(elements(frame, "Vec")?)
    }
}

impl<T: FromValue + Eq + Hash> FromValue for HashSet<T> {
    fn from_value(frame: Frame<'_>) -> Result<HashSet<T>, Error> {
        elements(frame, "HashSet")?.into_iter().map(T::from_value).collect()
    }
}

/// The pairs of a map: RESP3's `%`, or RESP2's flat array of keys and values.
fn pairs<'a>(frame: Frame<'a>, expected: &'static str) -> Result<Vec<(Frame<'a>, Frame<'a>)>, Error> {
    match checked(frame)? {
        Frame::Map(pairs) => Ok(pairs),
        Frame::Array(flat) if flat.len() % 2 == 0 => {
            let mut it = flat.into_iter();
            Ok(std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect())
        }
        Frame::Null => Ok(Vec::new()),
        other => Err(mismatch(expected, &other)),
    }
}

impl<K: FromValue + Eq + Hash, V: FromValue> FromValue for HashMap<K, V> {
    fn from_value(frame: Frame<'_>) -> Result<HashMap<K, V>, Error> {
        pairs(frame, "HashMap")?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }
}

impl<K: FromValue + Ord, V: FromValue> FromValue for BTreeMap<K, V> {
    fn from_value(frame: Frame<'_>) -> Result<BTreeMap<K, V>, Error> {
        pairs(frame, "BTreeMap")?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }
}

impl<A: FromValue, B: FromValue> FromValue for (A, B) {
    fn from_value(frame: Frame<'_>) -> Result<Self, Error> {
        let frame = checked(frame)?;
        match frame {
            Frame::Array(v) | Frame::Set(v) | Frame::Push(v) if v.len() == 2 => {
                let mut it = v.into_iter();
                Ok((
                    A::from_value(it.next().expect("length checked"))?,
                    B::from_value(it.next().expect("length checked"))?,
                ))
            }
            other => Err(mismatch("a tuple of 2", &other)),
        }
    }

    fn from_elements(items: Vec<Frame<'_>>) -> Result<Vec<Self>, Error> {
        let nested = items.iter().all(|f| matches!(f, Frame::Array(_)));
        if nested {
            return items.into_iter().map(Self::from_value).collect();
        }
        pairs(Frame::Array(items), "pairs")?
            .into_iter()
            .map(|(a, b)| Ok((A::from_value(a)?, B::from_value(b)?)))
            .collect()
    }
}

macro_rules! tuples {
    ($(($($t:ident),+) = $n:expr;)*) => {$(
        impl<$($t: FromValue),+> FromValue for ($($t,)+) {
            fn from_value(frame: Frame<'_>) -> Result<Self, Error> {
                let frame = checked(frame)?;
                let items = match frame {
                    Frame::Array(v) | Frame::Set(v) | Frame::Push(v) if v.len() == $n => v,
                    other => return Err(mismatch(concat!("a tuple of ", $n), &other)),
                };
                let mut it = items.into_iter();
                Ok(($($t::from_value(it.next().expect("length checked"))?,)+))
            }
        }
    )*};
}
tuples! {
    (A, B, C) = 3;
    (A, B, C, D) = 4;
}

impl Frame<'_> {
    /// The payload of a string-like frame (simple, bulk, verbatim, big number).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        text(self)
    }

    /// Converts into `T` (see [`FromValue`]).
    pub fn convert<T: FromValue>(self) -> Result<T, Error> {
        T::from_value(self)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn bulk(s: &str) -> Frame<'_> {
        Frame::Bulk(Cow::Borrowed(s.as_bytes()))
    }

    #[test]
    fn strings_and_numbers_from_either_protocol() {
        assert_eq!(String::from_value(bulk("hi")).unwrap(), "hi");
        assert_eq!(Vec::<u8>::from_value(bulk("hi")).unwrap(), b"hi");
        assert_eq!(i64::from_value(Frame::Integer(-3)).unwrap(), -3);
        assert_eq!(i64::from_value(bulk("42")).unwrap(), 42);
        assert_eq!(f64::from_value(bulk("1.5")).unwrap(), 1.5);
        assert_eq!(f64::from_value(Frame::Double(f64::INFINITY)).unwrap(), f64::INFINITY);
        assert!(bool::from_value(Frame::Integer(1)).unwrap());
        assert!(!bool::from_value(Frame::Boolean(false)).unwrap());
        assert_eq!(Option::<String>::from_value(Frame::Null).unwrap(), None);
    }

    #[test]
    fn maps_from_resp3_maps_and_resp2_flat_arrays() {
        let resp2 = Frame::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
        let resp3 = Frame::Map(vec![(bulk("a"), Frame::Integer(1)), (bulk("b"), Frame::Integer(2))]);
        let want: BTreeMap<String, i64> = [("a".into(), 1), ("b".into(), 2)].into();
        assert_eq!(BTreeMap::<String, i64>::from_value(resp2).unwrap(), want);
        assert_eq!(BTreeMap::<String, i64>::from_value(resp3).unwrap(), want);
    }

    #[test]
    fn errors_are_clear() {
        let e = String::from_value(Frame::Error(Cow::Borrowed(b"WRONGTYPE wrong kind"))).unwrap_err();
        match e {
            Error::Server(s) => assert_eq!((s.code(), s.message()), ("WRONGTYPE", "wrong kind")),
            other => panic!("{other:?}"),
        }
        let e = i64::from_value(bulk("nope")).unwrap_err();
        assert_eq!(e.to_string(), "cannot convert the reply \"nope\" into i64");
        let e = <(i64, i64)>::from_value(Frame::Array(vec![Frame::Integer(1)])).unwrap_err();
        assert!(e.to_string().contains("a tuple of 2"), "{e}");
        assert!(u8::from_value(Frame::Integer(300)).is_err());
    }

    #[test]
    fn attributes_are_set_aside() {
        let f = Frame::Attribute { attributes: vec![], value: Box::new(Frame::Integer(7)) };
        assert_eq!(u32::from_value(f).unwrap(), 7);
    }
}
