//! SBE's primitive types (FIX SBE 1.0 2.2): sizes, null values, and reading them from bytes in
//! either byte order.

use crate::schema::ByteOrder;

/// A primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `char`: one byte, US-ASCII unless a character encoding says otherwise.
    Char,
    /// `int8`.
    Int8,
    /// `uint8`.
    Uint8,
    /// `int16`.
    Int16,
    /// `uint16`.
    Uint16,
    /// `int32`.
    Int32,
    /// `uint32`.
    Uint32,
    /// `int64`.
    Int64,
    /// `uint64`.
    Uint64,
    /// `float` (IEEE 754 binary32).
    Float,
    /// `double` (IEEE 754 binary64).
    Double,
}

/// A primitive value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// A signed integer (or a char's code).
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A float or double.
    Float(f64),
}

impl Primitive {
    /// The type named `name` in a schema.
    pub fn named(name: &str) -> Option<Primitive> {
        Some(match name {
            "char" => Primitive::Char,
            "int8" => Primitive::Int8,
            "uint8" => Primitive::Uint8,
            "int16" => Primitive::Int16,
            "uint16" => Primitive::Uint16,
            "int32" => Primitive::Int32,
            "uint32" => Primitive::Uint32,
            "int64" => Primitive::Int64,
            "uint64" => Primitive::Uint64,
            "float" => Primitive::Float,
            "double" => Primitive::Double,
            _ => return None,
        })
    }

    /// Its size in bytes.
    pub fn size(self) -> usize {
        match self {
            Primitive::Char | Primitive::Int8 | Primitive::Uint8 => 1,
            Primitive::Int16 | Primitive::Uint16 => 2,
            Primitive::Int32 | Primitive::Uint32 | Primitive::Float => 4,
            Primitive::Int64 | Primitive::Uint64 | Primitive::Double => 8,
        }
    }

    /// The default null value of an optional field (FIX SBE 1.0 2.4): the type's minimum for
    /// signed integers, its maximum for unsigned ones, 0 for char, NaN for floats.
    pub fn default_null(self) -> Scalar {
        match self {
            Primitive::Char => Scalar::Int(0),
            Primitive::Int8 => Scalar::Int(i8::MIN.into()),
            Primitive::Int16 => Scalar::Int(i16::MIN.into()),
            Primitive::Int32 => Scalar::Int(i32::MIN.into()),
            Primitive::Int64 => Scalar::Int(i64::MIN),
            Primitive::Uint8 => Scalar::Uint(u8::MAX.into()),
            Primitive::Uint16 => Scalar::Uint(u16::MAX.into()),
            Primitive::Uint32 => Scalar::Uint(u32::MAX.into()),
            Primitive::Uint64 => Scalar::Uint(u64::MAX),
            Primitive::Float | Primitive::Double => Scalar::Float(f64::NAN),
        }
    }

    /// Whether it is a signed integer type (or char).
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            Primitive::Char | Primitive::Int8 | Primitive::Int16 | Primitive::Int32 | Primitive::Int64
        )
    }

    /// Parses a value of this type written in a schema (a null value, a constant, a valid
    /// value); a char may be written as the character itself.
    pub fn parse(self, text: &str) -> Option<Scalar> {
        let text = text.trim();
        match self {
            Primitive::Char if text.chars().count() == 1 => Some(Scalar::Int(text.chars().next()? as i64)),
            Primitive::Float | Primitive::Double => text.parse().ok().map(Scalar::Float),
            p if p.is_signed() => text.parse().ok().map(Scalar::Int),
            _ => text.parse().ok().map(Scalar::Uint),
        }
    }

    /// Reads one value from `bytes` (exactly [`Primitive::size`] of them).
    pub fn read(self, bytes: &[u8], order: ByteOrder) -> Scalar {
        let mut b = [0u8; 8];
        let n = self.size();
        b[..n].copy_from_slice(&bytes[..n]);
        if order == ByteOrder::BigEndian {
            b[..n].reverse();
        }
        let raw = u64::from_le_bytes(b);
        match self {
            Primitive::Char
            | Primitive::Uint8
            | Primitive::Uint16
            | Primitive::Uint32
            | Primitive::Uint64 => {
                if self == Primitive::Char {
                    Scalar::Int(raw as i64)
                } else {
                    Scalar::Uint(raw)
                }
            }
            Primitive::Int8 => Scalar::Int(i64::from(raw as u8 as i8)),
            Primitive::Int16 => Scalar::Int(i64::from(raw as u16 as i16)),
            Primitive::Int32 => Scalar::Int(i64::from(raw as u32 as i32)),
            Primitive::Int64 => Scalar::Int(raw as i64),
            Primitive::Float => Scalar::Float(f64::from(f32::from_bits(raw as u32))),
            Primitive::Double => Scalar::Float(f64::from_bits(raw)),
        }
    }

    /// Writes `value` into `out` (exactly [`Primitive::size`] bytes); integers wrap to the
    /// type's width.
    pub fn write(self, value: Scalar, out: &mut [u8], order: ByteOrder) {
        let raw: u64 = match (self, value) {
            (Primitive::Float, v) => u64::from(f32::to_bits(v.as_f64() as f32)),
            (Primitive::Double, v) => v.as_f64().to_bits(),
            (_, Scalar::Int(i)) => i as u64,
            (_, Scalar::Uint(u)) => u,
            (_, Scalar::Float(f)) => f as i64 as u64,
        };
        let n = self.size();
        let mut b = raw.to_le_bytes();
        if order == ByteOrder::BigEndian {
            b[..n].reverse();
        }
        out[..n].copy_from_slice(&b[..n]);
    }
}

impl Scalar {
    /// As a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Int(i) => i as f64,
            Scalar::Uint(u) => u as f64,
            Scalar::Float(f) => f,
        }
    }

    /// Whether it equals `null` (NaN equals NaN here, as SBE's null float is NaN).
    pub fn is(self, null: Scalar) -> bool {
        match (self, null) {
            (Scalar::Float(a), Scalar::Float(b)) => (a.is_nan() && b.is_nan()) || a == b,
            (a, b) => a == b,
        }
    }
}
