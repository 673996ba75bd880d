//! The encoder half of the generated code: per message an `Encoder` appending to a
//! `Vec<u8>`, setters writing in place, groups and data appended in schema order.

use std::fmt::Write as _;

use super::{camel, literal, rust_type, snake, Gen};
use crate::primitive::{Primitive, Scalar};
use crate::schema::{ByteOrder, Composite, Data, Field, Group, Presence, Type};

/// `base + offset`, simplified.
fn plus(base: &str, offset: usize) -> String {
    match (base, offset) {
        ("0", o) => o.to_string(),
        (b, 0) => b.to_string(),
        (b, o) => format!("{b} + {o}"),
    }
}

impl Gen {
    fn bytes_to(&self) -> &'static str {
        match self.order {
            ByteOrder::LittleEndian => "to_le_bytes",
            ByteOrder::BigEndian => "to_be_bytes",
        }
    }

    /// A statement writing `value` (an expression of primitive `p`) at `base + offset` of
    /// `buf` (`base` an expression, or "0").
    fn write(&self, p: Primitive, buf: &str, base: &str, offset: usize, value: &str) -> String {
        let value = if value.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            value.to_string()
        } else {
            format!("({value})")
        };
        let (start, end) = (plus(base, offset), plus(base, offset + p.size()));
        format!("{buf}[{start}..{end}].copy_from_slice(&{value}.{}());", self.bytes_to())
    }

    /// A composite's mutable view: setters for its members.
    pub(super) fn composite_mut(&mut self, c: &Composite) {
        let name = camel(&c.name);
        let _ = writeln!(
            self.out,
            "\n/// {} (a composite of {} bytes), to write in place.\n#[derive(Debug)]\npub struct {name}Mut<'a>(&'a mut [u8]);\n\nimpl {name}Mut<'_> {{",
            c.name, c.size
        );
        for m in &c.members {
            self.setter(&m.name, &m.ty, Presence::Required, m.offset, "self.0", "0");
        }
        let _ = writeln!(self.out, "}}");
    }

    /// A setter for a field (or member) of type `ty` at `block + at` of `buf`.
    fn setter(&mut self, name: &str, ty: &Type, presence: Presence, at: usize, buf: &str, block: &str) {
        let f = snake(name);
        let at_expr = plus(block, at);
        let (arg, body) = match ty {
            Type::Encoded(e) if presence == Presence::Constant || e.presence == Presence::Constant => return,
            Type::Enum(_) if presence == Presence::Constant => return,
            Type::Encoded(e) if e.primitive == Primitive::Char && e.length > 1 => (
                "v: &[u8]".to_string(),
                format!(
                    "let n = v.len().min({n});\n        let at = {at_expr};\n        {buf}[at..at + n].copy_from_slice(&v[..n]);\n        {buf}[at + n..at + {n}].fill(0);",
                    n = e.length
                ),
            ),
            Type::Encoded(e) if e.length > 1 => (
                format!("v: [{}; {}]", rust_type(e.primitive), e.length),
                format!(
                    "for (i, x) in v.iter().enumerate() {{\n            let at = {at_expr} + i * {};\n            {}\n        }}",
                    e.primitive.size(),
                    self.write(e.primitive, buf, "at", 0, "*x")
                ),
            ),
            Type::Encoded(e) if presence == Presence::Optional || e.presence == Presence::Optional => (
                format!("v: Option<{}>", rust_type(e.primitive)),
                self.write(e.primitive, buf, block, at, &format!("v.unwrap_or({})", literal(e.primitive, e.null))),
            ),
            Type::Encoded(e) => (format!("v: {}", rust_type(e.primitive)), self.write(e.primitive, buf, block, at, "v")),
            Type::Enum(e) if presence == Presence::Optional || e.presence == Presence::Optional => (
                format!("v: Option<{}>", camel(&e.name)),
                self.write(e.encoding, buf, block, at, &format!("v.map_or({}, |v| v.0)", literal(e.encoding, e.null))),
            ),
            Type::Enum(e) => (format!("v: {}", camel(&e.name)), self.write(e.encoding, buf, block, at, "v.0")),
            Type::Set(s) => (format!("v: {}", camel(&s.name)), self.write(s.encoding, buf, block, at, "v.0")),
            Type::Composite(c) => {
                let _ = writeln!(
                    self.out,
                    "    /// `{name}`, to write.\n    pub fn {f}(&mut self) -> {}Mut<'_> {{\n        let at = {at_expr};\n        {}Mut(&mut {buf}[at..at + {}])\n    }}",
                    camel(&c.name),
                    camel(&c.name),
                    c.size
                );
                return;
            }
        };
        let _ = writeln!(self.out, "    /// Sets `{name}`.\n    pub fn set_{f}(&mut self, {arg}) -> &mut Self {{\n        {body}\n        self\n    }}");
    }

    /// Statements that put the null value in every optional field of a fresh block at
    /// `block` of `buf` (an unset optional field reads as absent).
    fn nulls(&self, fields: &[Field], buf: &str, block: &str) -> String {
        let mut out = String::new();
        for f in fields.iter().filter(|f| f.presence == Presence::Optional) {
            let line = match &f.ty {
                Type::Encoded(e) if e.length == 1 && !matches!(e.null, Scalar::Int(0) | Scalar::Uint(0)) => {
                    self.write(e.primitive, buf, block, f.offset, &literal(e.primitive, e.null))
                }
                Type::Enum(e) if !matches!(e.null, Scalar::Int(0) | Scalar::Uint(0)) => {
                    self.write(e.encoding, buf, block, f.offset, &literal(e.encoding, e.null))
                }
                _ => continue,
            };
            let _ = write!(out, "\n        {line}");
        }
        out
    }

    /// The encoder of a message root (`Encoder`, `root` true: the header first) or of a group
    /// entry (`EntryEncoder`).
    pub(super) fn entry_encoder(
        &mut self,
        name: &str,
        owner: &str,
        block_length: usize,
        (fields, groups, data): (&[Field], &[Group], &[Data]),
        root: Option<(u16, u16, u16)>,
    ) {
        let start = match root {
            Some((template, schema, version)) => format!(
                "let at = buf.len();\n        buf.resize(at + HEADER_SIZE, 0);\n        write_header(&mut buf[at..], [{}, {template}, {schema}, {version}]);\n        ",
                u16::try_from(block_length).unwrap_or(u16::MAX)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            self.out,
            "\n    /// Writes one {owner} at the end of a buffer: fields by setter, then its groups and\n    \
             /// data in schema order.\n    #[derive(Debug)]\n    pub struct {name}<'a> {{\n        buf: &'a mut Vec<u8>,\n        block: usize,\n    }}\n\n    \
             impl<'a> {name}<'a> {{\n    /// Appends the {owner}'s zeroed block (optional fields null) to `buf`.\n    \
             pub fn new(buf: &'a mut Vec<u8>) -> Self {{\n        {start}let block = buf.len();\n        buf.resize(block + {block_length}, 0);{nulls}\n        Self {{ buf, block }}\n    }}",
            nulls = self.nulls(fields, "buf", "block"),
        );
        for f in fields {
            self.setter(&f.name, &f.ty, f.presence, f.offset, "self.buf", "self.block");
        }
        for g in groups {
            let m = snake(&g.name);
            let _ = writeln!(
                self.out,
                "    /// Starts the `{}` group with `count` entries (after the groups before it).\n    \
                 pub fn {m}(&mut self, count: usize) -> {m}::Encoder<'_> {{\n        {m}::Encoder::new(self.buf, count)\n    }}",
                g.name
            );
        }
        for d in data {
            let f = snake(&d.name);
            let len = d.encoding.member("length").expect("checked");
            let var = d.encoding.member("varData").expect("checked");
            let Type::Encoded(e) = &len.ty else { continue };
            let t = rust_type(e.primitive);
            let _ = writeln!(
                self.out,
                "    /// Appends `{name}` (after the groups and data before it).\n    \
                 pub fn set_{f}(&mut self, v: &[u8]) -> &mut Self {{\n        let at = self.buf.len();\n        self.buf.resize(at + {var_at}, 0);\n        \
                 let len = {t}::try_from(v.len()).expect(\"the data fits its length field\");\n        {write}\n        self.buf.extend_from_slice(v);\n        self\n    }}",
                name = d.name,
                var_at = var.offset,
                write = self.write(e.primitive, "self.buf", "at", len.offset, "len"),
            );
        }
        let _ = writeln!(self.out, "    }}");
    }

    /// The prelude's header writer.
    pub(super) fn header_writer(&mut self, h: &Composite) {
        let mut body = String::new();
        for (i, name) in ["blockLength", "templateId", "schemaId", "version"].iter().enumerate() {
            let m = h.member(name).expect("checked");
            let Type::Encoded(e) = &m.ty else { continue };
            let value = if e.primitive == Primitive::Uint16 {
                format!("v[{i}]")
            } else {
                format!("v[{i}] as {}", rust_type(e.primitive))
            };
            let _ = write!(body, "\n    {}", self.write(e.primitive, "h", "0", m.offset, &value));
        }
        let _ = writeln!(
            self.out,
            "\n/// The header's size.\npub const HEADER_SIZE: usize = {};\n\n\
             /// Writes a header: blockLength, templateId, schemaId, version.\nfn write_header(h: &mut [u8], v: [u16; 4]) {{{body}\n}}",
            h.size
        );
    }

    /// A group's encoder: the dimension written with the count, entries appended.
    pub(super) fn group_encoder(&mut self, g: &Group) {
        let dim = &g.dimension;
        let member = |gen: &Gen, name: &str, value: &str| {
            let m = dim.member(name).expect("checked");
            let Type::Encoded(e) = &m.ty else { return String::new() };
            let t = rust_type(e.primitive);
            gen.write(
                e.primitive,
                "buf",
                "at",
                m.offset,
                &format!("{t}::try_from({value}).expect(\"fits the dimension\")"),
            )
        };
        let _ = writeln!(
            self.out,
            "\n    /// Appends the `{name}` group: its dimension, then each entry by [`Encoder::entry`].\n    \
             #[derive(Debug)]\n    pub struct Encoder<'a> {{\n        buf: &'a mut Vec<u8>,\n        remaining: usize,\n    }}\n\n    \
             impl<'a> Encoder<'a> {{\n    /// Writes the dimension for `count` entries.\n    pub fn new(buf: &'a mut Vec<u8>, count: usize) -> Self {{\n        \
             let at = buf.len();\n        buf.resize(at + {dim_size}, 0);\n        {bl}\n        {n}\n        Self {{ buf, remaining: count }}\n    }}\n\n    \
             /// Appends the next entry (no more than the count given).\n    pub fn entry(&mut self) -> EntryEncoder<'_> {{\n        \
             assert!(self.remaining > 0, \"more {name} entries than its count\");\n        self.remaining -= 1;\n        EntryEncoder::new(self.buf)\n    }}\n    }}",
            name = g.name,
            dim_size = dim.size,
            bl = member(self, "blockLength", "BLOCK_LENGTH"),
            n = member(self, "numInGroup", "count"),
        );
        self.entry_encoder("EntryEncoder", &g.name, g.block_length, (&g.fields, &g.groups, &g.data), None);
    }
}
