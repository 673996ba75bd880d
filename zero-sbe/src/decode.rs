//! Decoding any message from the schema alone, into JSON for humans (`zero sbe decode`).
//!
//! Every read is bounds-checked: a truncated or hostile buffer is a [`DecodeError`], never a
//! panic or a read out of bounds. Schema evolution as FIX SBE 1.0 5 asks: a block is always
//! advanced by the blockLength on the wire; fields past it, or newer than the message's
//! version, are absent; unknown trailing fields are skipped.

use serde_json::{json, Map, Value};

use crate::primitive::{Primitive, Scalar};
use crate::schema::{ByteOrder, Composite, Data, Field, Group, Message, Presence, Schema, Type};

/// Why a buffer does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ends before something it must hold.
    #[error("{what} needs {need} bytes at offset {at}; the buffer has {have}")]
    Short {
        /// What was being read.
        what: String,
        /// Where.
        at: usize,
        /// How many bytes it needs.
        need: usize,
        /// How long the buffer is.
        have: usize,
    },
    /// The header names another schema.
    #[error("schema id {got}, not this schema's {want}")]
    OtherSchema {
        /// The header's.
        got: u16,
        /// This schema's.
        want: u16,
    },
    /// No message has the header's template id.
    #[error("no message with template id {0}")]
    UnknownTemplate(u16),
}

/// A message header's four standard fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The root block's length on the wire.
    pub block_length: u16,
    /// Which message.
    pub template_id: u16,
    /// Which schema.
    pub schema_id: u16,
    /// The schema version the message was encoded with.
    pub version: u16,
}

/// Bytes read from a buffer, with bounds checks.
struct Reader<'a> {
    buf: &'a [u8],
    order: ByteOrder,
}

impl<'a> Reader<'a> {
    fn bytes(&self, at: usize, len: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        at.checked_add(len).and_then(|end| self.buf.get(at..end)).ok_or_else(|| DecodeError::Short {
            what: what.to_string(),
            at,
            need: len,
            have: self.buf.len(),
        })
    }

    fn scalar(&self, p: Primitive, at: usize, what: &str) -> Result<Scalar, DecodeError> {
        Ok(p.read(self.bytes(at, p.size(), what)?, self.order))
    }

    /// An unsigned member of a composite at `at` (a header's or a dimension's).
    fn member(&self, c: &Composite, name: &str, at: usize) -> Result<u64, DecodeError> {
        let m = c.member(name).expect("the schema checked it has this member");
        let Type::Encoded(e) = &m.ty else { return Ok(0) };
        Ok(match self.scalar(e.primitive, at + m.offset, &format!("{}.{name}", c.name))? {
            Scalar::Uint(u) => u,
            Scalar::Int(i) => i.max(0) as u64,
            Scalar::Float(f) => f as u64,
        })
    }
}

/// Reads the message header at the start of `buf`.
pub fn header(schema: &Schema, buf: &[u8]) -> Result<Header, DecodeError> {
    let r = Reader { buf, order: schema.byte_order };
    let h = &schema.header;
    r.bytes(0, h.size, "the message header")?;
    let field = |name| r.member(h, name, 0).map(|v| v as u16);
    Ok(Header {
        block_length: field("blockLength")?,
        template_id: field("templateId")?,
        schema_id: field("schemaId")?,
        version: field("version")?,
    })
}

/// Decodes the message at the start of `buf` (header included) into JSON; also how many
/// bytes it took.
pub fn to_json(schema: &Schema, buf: &[u8]) -> Result<(Value, usize), DecodeError> {
    let h = header(schema, buf)?;
    if h.schema_id != schema.id {
        return Err(DecodeError::OtherSchema { got: h.schema_id, want: schema.id });
    }
    let message = schema.message(h.template_id).ok_or(DecodeError::UnknownTemplate(h.template_id))?;
    let d = Decoder { r: Reader { buf, order: schema.byte_order }, version: h.version };
    let mut out = Map::new();
    out.insert("$message".into(), json!(message.name));
    out.insert("$templateId".into(), json!(message.id));
    out.insert("$version".into(), json!(h.version));
    let at = schema.header.size;
    let end = d.entry(message_parts(message), at, usize::from(h.block_length), &mut out)?;
    Ok((Value::Object(out), end))
}

/// The parts of a message, as a group entry's are.
fn message_parts(m: &Message) -> (&[Field], &[Group], &[Data]) {
    (&m.fields, &m.groups, &m.data)
}

struct Decoder<'a> {
    r: Reader<'a>,
    version: u16,
}

impl Decoder<'_> {
    /// A block of `block_length` at `at` and what follows it (groups, data) into `out`;
    /// returns where it ends.
    fn entry(
        &self,
        (fields, groups, data): (&[Field], &[Group], &[Data]),
        at: usize,
        block_length: usize,
        out: &mut Map<String, Value>,
    ) -> Result<usize, DecodeError> {
        let block = self.r.bytes(at, block_length, "a block")?;
        for f in fields {
            if let Some(v) = self.field(f, block)? {
                out.insert(f.name.clone(), v);
            }
        }
        let mut at = at + block_length;
        for g in groups.iter().filter(|g| g.since_version <= self.version) {
            let (entries, end) = self.group(g, at)?;
            out.insert(g.name.clone(), Value::Array(entries));
            at = end;
        }
        for d in data.iter().filter(|d| d.since_version <= self.version) {
            let len_member = d.encoding.member("length").expect("checked");
            let Type::Encoded(len_type) = &len_member.ty else { continue };
            let len = self.r.scalar(len_type.primitive, at + len_member.offset, &d.name)?;
            let len = match len {
                Scalar::Uint(u) => usize::try_from(u).unwrap_or(usize::MAX),
                Scalar::Int(i) => usize::try_from(i).unwrap_or(usize::MAX),
                Scalar::Float(_) => 0,
            };
            let start = at + d.encoding.member("varData").expect("checked").offset;
            let bytes = self.r.bytes(start, len, &d.name)?;
            let value = match std::str::from_utf8(bytes) {
                Ok(s) => json!(s),
                Err(_) => json!({ "hex": hex(bytes) }),
            };
            out.insert(d.name.clone(), value);
            at = start + len;
        }
        Ok(at)
    }

    fn group(&self, g: &Group, at: usize) -> Result<(Vec<Value>, usize), DecodeError> {
        let block_length = self.r.member(&g.dimension, "blockLength", at)?;
        let count = self.r.member(&g.dimension, "numInGroup", at)?;
        let mut at = at + g.dimension.size;
        let mut entries = Vec::new();
        for _ in 0..count {
            let mut out = Map::new();
            let block = usize::try_from(block_length).unwrap_or(usize::MAX);
            at = self.entry((&g.fields, &g.groups, &g.data), at, block, &mut out)?;
            entries.push(Value::Object(out));
        }
        Ok((entries, at))
    }

    /// A field's value, `None` when absent (newer than the message, past its block) and
    /// `null` when an optional one holds its null value.
    fn field(&self, f: &Field, block: &[u8]) -> Result<Option<Value>, DecodeError> {
        if f.since_version > self.version {
            return Ok(None);
        }
        if f.presence == Presence::Constant {
            return Ok(Some(constant(f)));
        }
        let size = f.ty.size();
        let Some(bytes) = block.get(f.offset..f.offset + size) else { return Ok(None) };
        let r = Reader { buf: bytes, order: self.r.order };
        Ok(Some(value(&r, &f.ty, 0, f.presence == Presence::Optional)?))
    }
}

/// A constant field's value: its type's constant, or its `valueRef`'s name.
fn constant(f: &Field) -> Value {
    match (&f.ty, &f.value_ref) {
        (_, Some(r)) => json!(r.rsplit('.').next().unwrap_or(r)),
        (Type::Encoded(e), None) => {
            let text = e.constant.clone().unwrap_or_default();
            match e.primitive.parse(&text) {
                Some(s) if e.length == 1 && e.primitive != Primitive::Char => scalar_json(s),
                _ => json!(text),
            }
        }
        _ => Value::Null,
    }
}

/// The value of a type at `at` in `r`.
fn value(r: &Reader<'_>, ty: &Type, at: usize, optional: bool) -> Result<Value, DecodeError> {
    Ok(match ty {
        Type::Encoded(e) if e.presence == Presence::Constant => {
            let text = e.constant.clone().unwrap_or_default();
            e.primitive
                .parse(&text)
                .filter(|_| e.primitive != Primitive::Char)
                .map_or(json!(text), scalar_json)
        }
        Type::Encoded(e) if e.primitive == Primitive::Char && e.length > 1 => {
            let bytes = r.bytes(at, e.length, &e.name)?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            json!(String::from_utf8_lossy(&bytes[..end]))
        }
        Type::Encoded(e) if e.length == 1 => {
            let s = r.scalar(e.primitive, at, &e.name)?;
            if (optional || e.presence == Presence::Optional) && s.is(e.null) {
                Value::Null
            } else if e.primitive == Primitive::Char {
                json!(char::from(s.as_f64() as u8).to_string())
            } else {
                scalar_json(s)
            }
        }
        Type::Encoded(e) => {
            let size = e.primitive.size();
            let items: Result<Vec<Value>, DecodeError> = (0..e.length)
                .map(|i| r.scalar(e.primitive, at + i * size, &e.name).map(scalar_json))
                .collect();
            Value::Array(items?)
        }
        Type::Composite(c) => {
            let mut out = Map::new();
            for m in &c.members {
                out.insert(m.name.clone(), value(r, &m.ty, at + m.offset, false)?);
            }
            Value::Object(out)
        }
        Type::Enum(e) => {
            let s = r.scalar(e.encoding, at, &e.name)?;
            match e.values.iter().find(|(_, v)| s.is(*v)) {
                Some((name, _)) => json!(name),
                None if (optional || e.presence == Presence::Optional) && s.is(e.null) => Value::Null,
                None => json!({ "unknown": scalar_json(s) }),
            }
        }
        Type::Set(set) => {
            let bits = match r.scalar(set.encoding, at, &set.name)? {
                Scalar::Uint(u) => u,
                Scalar::Int(i) => i as u64,
                Scalar::Float(_) => 0,
            };
            let on: Vec<Value> =
                set.choices.iter().filter(|(_, bit)| bits >> bit & 1 == 1).map(|(n, _)| json!(n)).collect();
            Value::Array(on)
        }
    })
}

fn scalar_json(s: Scalar) -> Value {
    match s {
        Scalar::Int(i) => json!(i),
        Scalar::Uint(u) => json!(u),
        Scalar::Float(f) if f.is_finite() => json!(f),
        Scalar::Float(f) => json!(f.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
