//! Encoding any message of a schema from JSON, the inverse of [`crate::decode::to_json`]:
//! the header, the root block at the schema's blockLength, groups with their dimensions, var
//! data. For tests, fixtures and tools; generated encoders are the fast path.

use serde_json::{Map, Value};

use crate::primitive::{Primitive, Scalar};
use crate::schema::{ByteOrder, Composite, Data, Field, Group, Presence, Schema, Type};

/// Why a JSON value does not encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SBE encode: {0}")]
pub struct EncodeError(pub String);

fn err<T>(what: impl Into<String>) -> Result<T, EncodeError> {
    Err(EncodeError(what.into()))
}

/// Encodes the message named by `value["$message"]` (fields by name, groups as arrays of
/// objects, var data as strings), header first; absent fields are written as their null
/// value (optional) or zero.
pub fn from_json(schema: &Schema, value: &Value) -> Result<Vec<u8>, EncodeError> {
    let obj = value.as_object().ok_or_else(|| EncodeError("a message is a JSON object".into()))?;
    let name =
        obj.get("$message").and_then(Value::as_str).ok_or_else(|| EncodeError("no $message".into()))?;
    let message = schema
        .messages
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| EncodeError(format!("no message {name}")))?;
    let w = Writer { order: schema.byte_order };
    let mut out = vec![0u8; schema.header.size];
    let header = [
        ("blockLength", message.block_length as u64),
        ("templateId", u64::from(message.id)),
        ("schemaId", u64::from(schema.id)),
        ("version", u64::from(schema.version)),
    ];
    for (member, v) in header {
        w.member(&schema.header, member, 0, v, &mut out)?;
    }
    w.entry((&message.fields, &message.groups, &message.data), message.block_length, obj, &mut out)?;
    Ok(out)
}

struct Writer {
    order: ByteOrder,
}

impl Writer {
    /// Writes an unsigned member of a composite placed at `at`.
    fn member(
        &self,
        c: &Composite,
        name: &str,
        at: usize,
        v: u64,
        out: &mut [u8],
    ) -> Result<(), EncodeError> {
        let m = c.member(name).expect("the schema checked it");
        let Type::Encoded(e) = &m.ty else { return err(format!("{}.{name} is not a number", c.name)) };
        if e.primitive.size() < 8 && v >> (e.primitive.size() * 8) != 0 {
            return err(format!("{}.{name}: {v} does not fit a {:?}", c.name, e.primitive));
        }
        let at = at + m.offset;
        e.primitive.write(Scalar::Uint(v), &mut out[at..at + e.primitive.size()], self.order);
        Ok(())
    }

    fn entry(
        &self,
        (fields, groups, data): (&[Field], &[Group], &[Data]),
        block_length: usize,
        obj: &Map<String, Value>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let at = out.len();
        out.resize(at + block_length, 0);
        for f in fields.iter().filter(|f| f.presence != Presence::Constant) {
            let optional = f.presence == Presence::Optional;
            let slot = &mut out[at + f.offset..at + f.offset + f.ty.size()];
            self.value(&f.ty, obj.get(&f.name).unwrap_or(&Value::Null), optional, slot, &f.name)?;
        }
        for g in groups {
            let entries = match obj.get(&g.name) {
                Some(Value::Array(a)) => a.as_slice(),
                None | Some(Value::Null) => &[],
                Some(_) => return err(format!("{} is an array of entries", g.name)),
            };
            let at = out.len();
            out.resize(at + g.dimension.size, 0);
            self.member(&g.dimension, "blockLength", at, g.block_length as u64, out)?;
            self.member(&g.dimension, "numInGroup", at, entries.len() as u64, out)?;
            for e in entries {
                let e = e
                    .as_object()
                    .ok_or_else(|| EncodeError(format!("an entry of {} is an object", g.name)))?;
                self.entry((&g.fields, &g.groups, &g.data), g.block_length, e, out)?;
            }
        }
        for d in data {
            let bytes = match obj.get(&d.name) {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(Value::Object(o)) if o.contains_key("hex") => unhex(o["hex"].as_str().unwrap_or(""))?,
                None | Some(Value::Null) => Vec::new(),
                Some(_) => return err(format!("{} is a string", d.name)),
            };
            let at = out.len();
            out.resize(at + d.encoding.member("varData").expect("checked").offset, 0);
            self.member(&d.encoding, "length", at, bytes.len() as u64, out).map_err(|_| {
                EncodeError(format!("{}: {} bytes do not fit its length", d.name, bytes.len()))
            })?;
            out.extend_from_slice(&bytes);
        }
        Ok(())
    }

    /// Writes `v` as `ty` into `slot` (exactly the type's size).
    fn value(
        &self,
        ty: &Type,
        v: &Value,
        optional: bool,
        slot: &mut [u8],
        name: &str,
    ) -> Result<(), EncodeError> {
        match ty {
            Type::Encoded(e) if e.presence == Presence::Constant => Ok(()),
            Type::Encoded(e) if e.primitive == Primitive::Char && e.length > 1 => {
                let s = v.as_str().unwrap_or("");
                if s.len() > e.length {
                    return err(format!("{name}: {s:?} is longer than {}", e.length));
                }
                slot[..s.len()].copy_from_slice(s.as_bytes());
                slot[s.len()..].fill(0);
                Ok(())
            }
            Type::Encoded(e) if e.length == 1 => {
                let s = match v {
                    Value::Null if optional || e.presence == Presence::Optional => e.null,
                    Value::Null => Scalar::Uint(0),
                    Value::String(c) if e.primitive == Primitive::Char && c.len() == 1 => {
                        Scalar::Int(i64::from(c.as_bytes()[0]))
                    }
                    v => scalar(e.primitive, v, name)?,
                };
                e.primitive.write(s, slot, self.order);
                Ok(())
            }
            Type::Encoded(e) => {
                let items = v.as_array().map(Vec::as_slice).unwrap_or(&[]);
                let size = e.primitive.size();
                for i in 0..e.length {
                    let s = match items.get(i) {
                        Some(item) => scalar(e.primitive, item, name)?,
                        None => Scalar::Uint(0),
                    };
                    e.primitive.write(s, &mut slot[i * size..(i + 1) * size], self.order);
                }
                Ok(())
            }
            Type::Composite(c) => {
                let empty = Map::new();
                let obj = v.as_object().unwrap_or(&empty);
                for m in &c.members {
                    let sub = &mut slot[m.offset..m.offset + m.ty.size()];
                    self.value(&m.ty, obj.get(&m.name).unwrap_or(&Value::Null), false, sub, &m.name)?;
                }
                Ok(())
            }
            Type::Enum(e) => {
                let s = match v {
                    Value::Null => e.null,
                    Value::String(n) => match e.values.iter().find(|(name, _)| name == n) {
                        Some((_, value)) => *value,
                        None => return err(format!("{name}: {n} is not a {}", e.name)),
                    },
                    Value::Object(o) if o.contains_key("unknown") => scalar(e.encoding, &o["unknown"], name)?,
                    v => scalar(e.encoding, v, name)?,
                };
                e.encoding.write(s, slot, self.order);
                Ok(())
            }
            Type::Set(set) => {
                let mut bits = 0u64;
                for choice in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    let n = choice.as_str().unwrap_or("");
                    let Some((_, bit)) = set.choices.iter().find(|(c, _)| c == n) else {
                        return err(format!("{name}: {n} is not a choice of {}", set.name));
                    };
                    bits |= 1 << bit;
                }
                set.encoding.write(Scalar::Uint(bits), slot, self.order);
                Ok(())
            }
        }
    }
}

/// A JSON number as a primitive's value (range-checked for integers).
fn scalar(p: Primitive, v: &Value, name: &str) -> Result<Scalar, EncodeError> {
    let bad = || EncodeError(format!("{name}: {v} is not a {p:?}"));
    match p {
        Primitive::Float | Primitive::Double => match v {
            Value::String(s) => s.parse().map(Scalar::Float).map_err(|_| bad()),
            v => v.as_f64().map(Scalar::Float).ok_or_else(bad),
        },
        _ => {
            let bits = p.size() * 8;
            if p.is_signed() {
                let i = v.as_i64().ok_or_else(bad)?;
                let fits = bits == 64 || (i >= -(1i64 << (bits - 1)) && i < (1i64 << (bits - 1)));
                fits.then_some(Scalar::Int(i)).ok_or_else(bad)
            } else {
                let u = v.as_u64().ok_or_else(bad)?;
                (bits == 64 || u >> bits == 0).then_some(Scalar::Uint(u)).ok_or_else(bad)
            }
        }
    }
}

fn unhex(s: &str) -> Result<Vec<u8>, EncodeError> {
    if !s.len().is_multiple_of(2) {
        return err("odd hex");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| EncodeError("bad hex".into())))
        .collect()
}
