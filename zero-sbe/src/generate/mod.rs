//! Rust flyweight decoders from a schema, for a user's `build.rs` or `zero sbe generate`.
//!
//! ```ignore
//! // build.rs
//! let xml = std::fs::read_to_string("schema.xml").unwrap();
//! let schema = zero_sbe::Schema::parse(&xml).unwrap();
//! let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("schema.rs");
//! std::fs::write(out, zero_sbe::generate::rust(&schema)).unwrap();
//! // lib.rs: mod schema { include!(concat!(env!("OUT_DIR"), "/schema.rs")); }
//! ```
//!
//! What comes out, per message: a module with `Decoder<'a>`, a view over the bytes (nothing is
//! copied, nothing allocated), and `Encoder<'a>`, which appends one message to a `Vec<u8>`
//! (header, block with optional fields null, then groups and data in schema order). Its field getters read in place: a required field gives its
//! value; an optional one, or one newer than version 0, gives an `Option` (absent when the
//! message's version or block length lacks it); enums and sets are newtypes over their
//! encoding with named constants, so an unknown value is kept, not lost; composites are views
//! too. Groups are iterators of entries; var data is a byte slice. Groups and data follow the
//! root block in order: each accessor skips what comes before it (entry by entry only where
//! entries hold groups or data of their own). `decode()` reads the header and dispatches on
//! the template id. Every bound is checked once where a block is wrapped; getters of fields
//! every version has cannot fail.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::primitive::{Primitive, Scalar};
use crate::schema::{ByteOrder, Data, Field, Group, Presence, Schema, Type};

mod encoder;

/// The Rust source of the schema's flyweights.
pub fn rust(schema: &Schema) -> String {
    let mut g = Gen { out: String::new(), order: schema.byte_order, named: BTreeMap::new() };
    g.prelude(schema);
    g.header_writer(&schema.header);
    for m in &schema.messages {
        collect(&mut g.named, m.fields.iter().map(|f| &f.ty).collect(), &m.groups);
    }
    for ty in g.named.values().cloned().collect::<Vec<_>>() {
        g.named_type(&ty);
    }
    for m in &schema.messages {
        let doc = format!("{} (template {}).", m.name, m.id);
        let _ = writeln!(g.out, "\n/// {doc}\npub mod {} {{\n    use super::*;\n", snake(&m.name));
        let _ = writeln!(g.out, "    /// The template id.\n    pub const TEMPLATE_ID: u16 = {};", m.id);
        let _ = writeln!(
            g.out,
            "    /// The root block's length in this schema.\n    pub const BLOCK_LENGTH: usize = {};",
            m.block_length
        );
        g.entry("Decoder", &m.name, &m.fields, &m.groups, &m.data);
        let root = Some((m.id, schema.id, schema.version));
        g.entry_encoder("Encoder", &m.name, m.block_length, (&m.fields, &m.groups, &m.data), root);
        let _ = writeln!(g.out, "}}");
    }
    g.dispatch(schema);
    g.out
}

/// Every enum, set and composite the fields use, by name.
fn collect(named: &mut BTreeMap<String, Type>, types: Vec<&Type>, groups: &[Group]) {
    for ty in types {
        match ty {
            Type::Composite(c) => {
                collect(named, c.members.iter().map(|m| &m.ty).collect(), &[]);
                named.insert(c.name.clone(), ty.clone());
            }
            Type::Enum(_) | Type::Set(_) => {
                named.insert(ty.name().to_string(), ty.clone());
            }
            Type::Encoded(_) => {}
        }
    }
    for g in groups {
        collect(named, g.fields.iter().map(|f| &f.ty).collect(), &g.groups);
    }
}

struct Gen {
    out: String,
    order: ByteOrder,
    named: BTreeMap<String, Type>,
}

fn rust_type(p: Primitive) -> &'static str {
    match p {
        Primitive::Char | Primitive::Uint8 => "u8",
        Primitive::Int8 => "i8",
        Primitive::Int16 => "i16",
        Primitive::Uint16 => "u16",
        Primitive::Int32 => "i32",
        Primitive::Uint32 => "u32",
        Primitive::Int64 => "i64",
        Primitive::Uint64 => "u64",
        Primitive::Float => "f32",
        Primitive::Double => "f64",
    }
}

/// A Rust literal of `s` as primitive `p`.
fn literal(p: Primitive, s: Scalar) -> String {
    match (p, s) {
        (Primitive::Float | Primitive::Double, Scalar::Float(f)) if f.is_nan() => {
            format!("{}::NAN", rust_type(p))
        }
        (Primitive::Float | Primitive::Double, v) => format!("{:?}_{}", v.as_f64(), rust_type(p)),
        (_, Scalar::Int(i)) => format!("{i}_{}", rust_type(p)),
        (_, Scalar::Uint(u)) => format!("{u}_{}", rust_type(p)),
        (_, Scalar::Float(f)) => format!("{}_{}", f as i64, rust_type(p)),
    }
}

/// `camelCase` or `CamelCase` as `snake_case` (a Rust keyword gets a trailing `_`).
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase())) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if",
        "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static",
        "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await",
        "dyn", "box", "yield",
    ];
    if KEYWORDS.contains(&out.as_str()) || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out
}

/// `name` as `CamelCase`.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl Gen {
    fn bytes_fn(&self) -> &'static str {
        match self.order {
            ByteOrder::LittleEndian => "from_le_bytes",
            ByteOrder::BigEndian => "from_be_bytes",
        }
    }

    /// An expression reading primitive `p` at `at` (an expression) of `buf`.
    fn read(&self, p: Primitive, buf: &str, at: &str) -> String {
        format!("{}::{}(read::<{}>({buf}, {at}))", rust_type(p), self.bytes_fn(), p.size())
    }

    fn prelude(&mut self, schema: &Schema) {
        let s = schema;
        let _ = writeln!(
            self.out,
            "// Generated by zero-sbe from the schema {:?} (id {}, version {}). Do not edit.\n\n\
             use ::zero_sbe::flyweight::Error;\n\n\
             /// The schema's id.\npub const SCHEMA_ID: u16 = {};\n\
             /// The schema's version.\npub const SCHEMA_VERSION: u16 = {};\n\n\
             /// `N` bytes of `b` at `at` (the caller has checked they are there).\n\
             #[inline(always)]\nfn read<const N: usize>(b: &[u8], at: usize) -> [u8; N] {{\n    let mut a = [0u8; N];\n    a.copy_from_slice(&b[at..at + N]);\n    a\n}}\n",
            s.package, s.id, s.version, s.id, s.version
        );
        let h = &s.header;
        let member = |name: &str| h.member(name).expect("the schema checked the header");
        let mut fields = String::new();
        for (name, rust) in [
            ("blockLength", "block_length"),
            ("templateId", "template_id"),
            ("schemaId", "schema_id"),
            ("version", "version"),
        ] {
            let m = member(name);
            let Type::Encoded(e) = &m.ty else { continue };
            let read = self.read(e.primitive, "buf", &m.offset.to_string());
            let read = if e.primitive == Primitive::Uint16 { read } else { format!("{read} as u16") };
            let _ = writeln!(fields, "        {rust}: {read},");
        }
        let _ = writeln!(
            self.out,
            "/// A message header.\n#[derive(Debug, Clone, Copy, PartialEq, Eq)]\npub struct Header {{\n    \
             /// The root block's length.\n    pub block_length: u16,\n    /// The message.\n    pub template_id: u16,\n    \
             /// The schema.\n    pub schema_id: u16,\n    /// The schema version it was encoded with.\n    pub version: u16,\n}}\n\n\
             /// Reads the header at the start of `buf`: the header, and the bytes after it.\n\
             pub fn header(buf: &[u8]) -> Result<(Header, &[u8]), Error> {{\n    if buf.len() < {size} {{\n        \
             return Err(Error::Short(\"message header\"));\n    }}\n    let h = Header {{\n{fields}    }};\n    Ok((h, &buf[{size}..]))\n}}",
            size = h.size
        );
    }

    fn named_type(&mut self, ty: &Type) {
        match ty {
            Type::Enum(e) => {
                let name = camel(&e.name);
                let t = rust_type(e.encoding);
                let _ = writeln!(
                    self.out,
                    "\n/// {} (an enum over {t}; a value it does not name is kept as it is).\n\
                     #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub struct {name}(pub {t});\n\nimpl {name} {{",
                    e.name
                );
                for (v, value) in &e.values {
                    let _ = writeln!(
                        self.out,
                        "    /// `{v}`.\n    pub const {}: {name} = {name}({});",
                        snake(v).to_uppercase(),
                        literal(e.encoding, *value)
                    );
                }
                let _ = writeln!(self.out, "    /// The value's name in the schema, if it has one.\n    pub fn name(self) -> Option<&'static str> {{\n        match self {{");
                for (v, _) in &e.values {
                    let _ =
                        writeln!(self.out, "            {name}::{} => Some({v:?}),", snake(v).to_uppercase());
                }
                let _ = writeln!(self.out, "            _ => None,\n        }}\n    }}\n}}");
            }
            Type::Set(s) => {
                let name = camel(&s.name);
                let t = rust_type(s.encoding);
                let _ = writeln!(
                    self.out,
                    "\n/// {} (a set of bits over {t}).\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]\npub struct {name}(pub {t});\n\nimpl {name} {{",
                    s.name
                );
                for (c, bit) in &s.choices {
                    let mask = format!("{:#x}", 1u64 << bit);
                    let f = snake(c);
                    let _ = writeln!(
                        self.out,
                        "    /// Whether `{c}` (bit {bit}) is set.\n    pub fn {f}(self) -> bool {{\n        self.0 & {mask} != 0\n    }}\n    \
                         /// With `{c}` set or cleared.\n    pub fn with_{f}(self, on: bool) -> Self {{\n        if on {{ Self(self.0 | {mask}) }} else {{ Self(self.0 & !{mask}) }}\n    }}"
                    );
                }
                let _ = writeln!(self.out, "}}");
            }
            Type::Composite(c) => {
                let name = camel(&c.name);
                let _ = writeln!(
                    self.out,
                    "\n/// {} (a composite of {} bytes, read in place).\n#[derive(Debug, Clone, Copy)]\npub struct {name}<'a>(&'a [u8]);\n\nimpl<'a> {name}<'a> {{\n    \
                     /// A view of exactly its bytes.\n    pub fn wrap(bytes: &'a [u8]) -> Option<Self> {{\n        (bytes.len() >= {size}).then(|| Self(&bytes[..{size}]))\n    }}",
                    c.name,
                    c.size,
                    size = c.size
                );
                for m in &c.members {
                    let presence = match &m.ty {
                        Type::Encoded(e) => e.presence,
                        Type::Enum(e) => e.presence,
                        _ => Presence::Required,
                    };
                    self.getter(&m.name, &m.name, &m.ty, presence, None, m.offset, "self.0", None);
                }
                let _ = writeln!(self.out, "}}");
                self.composite_mut(c);
            }
            Type::Encoded(_) => {}
        }
    }

    /// A getter for a field of type `ty` at `at` in `buf`. `guard`: (since version, whether the
    /// block might lack it) for fields newer than version 0 or past the first version's block.
    #[allow(clippy::too_many_arguments)]
    fn getter(
        &mut self,
        name: &str,
        doc: &str,
        ty: &Type,
        presence: Presence,
        value_ref: Option<&str>,
        at: usize,
        buf: &str,
        guard: Option<u16>,
    ) {
        let f = snake(name);
        let size = ty.size();
        let (ret, body, optional) = match ty {
            Type::Encoded(e) if presence == Presence::Constant || e.presence == Presence::Constant => {
                let text = e.constant.clone().unwrap_or_default();
                if e.primitive == Primitive::Char && (e.length > 1 || text.len() != 1) {
                    ("&'static [u8]".to_string(), format!("b{text:?}"), false)
                } else if e.primitive == Primitive::Char {
                    ("u8".to_string(), format!("b'{}'", text), false)
                } else {
                    let v = e.primitive.parse(&text).unwrap_or(Scalar::Int(0));
                    (rust_type(e.primitive).to_string(), literal(e.primitive, v), false)
                }
            }
            Type::Enum(e) if presence == Presence::Constant => {
                let v = value_ref.and_then(|r| r.rsplit('.').next()).unwrap_or("");
                (camel(&e.name), format!("{}::{}", camel(&e.name), snake(v).to_uppercase()), false)
            }
            Type::Encoded(e) if e.primitive == Primitive::Char && e.length > 1 => (
                "&'a [u8]".to_string(),
                format!("let v = &{buf}[{at}..{}];\n        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());\n        &v[..end]", at + size),
                false,
            ),
            Type::Encoded(e) if e.length > 1 => {
                let t = rust_type(e.primitive);
                (
                    format!("[{t}; {}]", e.length),
                    format!(
                        "let mut v = [0 as {t}; {n}];\n        for (i, x) in v.iter_mut().enumerate() {{\n            *x = {};\n        }}\n        v",
                        self.read(e.primitive, buf, &format!("{at} + i * {}", e.primitive.size())),
                        n = e.length
                    ),
                    false,
                )
            }
            Type::Encoded(e) => {
                let read = self.read(e.primitive, buf, &at.to_string());
                if presence == Presence::Optional {
                    let test = if matches!(e.null, Scalar::Float(n) if n.is_nan()) {
                        "v.is_nan()".to_string()
                    } else {
                        format!("v == {}", literal(e.primitive, e.null))
                    };
                    (format!("Option<{}>", rust_type(e.primitive)), format!("let v = {read};\n        if {test} {{ None }} else {{ Some(v) }}"), true)
                } else {
                    (rust_type(e.primitive).to_string(), read, false)
                }
            }
            Type::Enum(e) => {
                let name = camel(&e.name);
                let read = self.read(e.encoding, buf, &at.to_string());
                if presence == Presence::Optional {
                    (
                        format!("Option<{name}>"),
                        format!("let v = {read};\n        if v == {} {{ None }} else {{ Some({name}(v)) }}", literal(e.encoding, e.null)),
                        true,
                    )
                } else {
                    (name.clone(), format!("{name}({read})"), false)
                }
            }
            Type::Set(s) => {
                let name = camel(&s.name);
                (name.clone(), format!("{name}({})", self.read(s.encoding, buf, &at.to_string())), false)
            }
            Type::Composite(c) => {
                let name = camel(&c.name);
                (format!("{name}<'a>"), format!("{name}(&{buf}[{at}..{}])", at + size), false)
            }
        };
        let (ret, body) = match guard {
            None => (ret, body),
            Some(since) => {
                let check = format!(
                    "if self.version < {since} || {buf}.len() < {} {{\n            return None;\n        }}\n        ",
                    at + size
                );
                if optional {
                    (ret, format!("{check}{body}"))
                } else {
                    let body = if body.contains(';') { format!("{{ {body} }}") } else { body };
                    (format!("Option<{ret}>"), format!("{check}Some({body})"))
                }
            }
        };
        let _ = writeln!(
            self.out,
            "    /// `{doc}`.\n    #[inline]\n    pub fn {f}(&self) -> {ret} {{\n        {body}\n    }}"
        );
    }

    /// A message root (`Decoder`) or group entry (`Entry`): its struct, getters, groups and
    /// data.
    fn entry(&mut self, name: &str, owner: &str, fields: &[Field], groups: &[Group], data: &[Data]) {
        // The fields every version has: the block must hold them.
        let first = fields
            .iter()
            .filter(|f| f.since_version == 0 && f.presence != Presence::Constant)
            .map(|f| f.offset + f.ty.size())
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            self.out,
            "\n    /// A view of one {owner}: its block, and the bytes after it (its groups and data).\n    \
             #[derive(Debug, Clone, Copy)]\n    pub struct {name}<'a> {{\n        block: &'a [u8],\n        rest: &'a [u8],\n        version: u16,\n    }}\n\n    \
             impl<'a> {name}<'a> {{\n    \
             /// Wraps a block of `block_length` at the start of `buf` (what follows is its groups and data).\n    \
             pub fn wrap(buf: &'a [u8], block_length: usize, version: u16) -> Result<Self, Error> {{\n        \
             if block_length < {first} {{\n            return Err(Error::Block({owner:?}));\n        }}\n        \
             let block = buf.get(..block_length).ok_or(Error::Short({owner:?}))?;\n        \
             Ok(Self {{ block, rest: &buf[block_length..], version }})\n    }}\n\n    \
             /// The version it was encoded with.\n    pub fn version(&self) -> u16 {{\n        self.version\n    }}"
        );
        for f in fields {
            let guard = (f.since_version > 0 && f.presence != Presence::Constant).then_some(f.since_version);
            self.getter(
                &f.name,
                &format!("{} (id {})", f.name, f.id),
                &f.ty,
                f.presence,
                f.value_ref.as_deref(),
                f.offset,
                "self.block",
                guard,
            );
        }
        // Groups and data, each after those before it.
        let mut before: Vec<String> = Vec::new();
        for g in groups {
            let m = snake(&g.name);
            let _ = writeln!(
                self.out,
                "    /// The `{}` group (id {}).\n    pub fn {m}(&self) -> Result<{m}::Group<'a>, Error> {{\n        let at = self.rest;\n{}        {m}::Group::wrap(at, self.version)\n    }}",
                g.name,
                g.id,
                before.iter().map(|s| format!("        let at = {s};\n")).collect::<String>()
            );
            before.push(format!("{m}::Group::wrap(at, self.version)?.skip()?"));
        }
        for d in data {
            let f = snake(&d.name);
            let _ = writeln!(
                self.out,
                "    /// The `{}` data (id {}).\n    pub fn {f}(&self) -> Result<&'a [u8], Error> {{\n        let at = self.rest;\n{}        Ok({f}_data(at, self.version)?.0)\n    }}",
                d.name,
                d.id,
                before.iter().map(|s| format!("        let at = {s};\n")).collect::<String>()
            );
            before.push(format!("{f}_data(at, self.version)?.1"));
        }
        let _ = writeln!(
            self.out,
            "    /// The bytes after it: its groups and data skipped.\n    pub fn end(&self) -> Result<&'a [u8], Error> {{\n        let at = self.rest;\n{}        Ok(at)\n    }}\n    }}",
            before.iter().map(|s| format!("        let at = {s};\n")).collect::<String>()
        );
        for d in data {
            self.data_reader(d);
        }
        for g in groups {
            self.group(g);
        }
    }

    fn data_reader(&mut self, d: &Data) {
        let f = snake(&d.name);
        let len = d.encoding.member("length").expect("checked");
        let var = d.encoding.member("varData").expect("checked");
        let Type::Encoded(e) = &len.ty else { return };
        let read = self.read(e.primitive, "buf", &len.offset.to_string());
        let _ = writeln!(
            self.out,
            "    /// `{name}`'s bytes, and what follows them (nothing if it is newer than `version`).\n    \
             fn {f}_data(buf: &[u8], version: u16) -> Result<(&[u8], &[u8]), Error> {{\n        \
             {since_check}\
             if buf.len() < {var_at} {{\n            return Err(Error::Short({name:?}));\n        }}\n        \
             let len = {read} as usize;\n        \
             let end = {var_at}usize.checked_add(len).filter(|&e| e <= buf.len()).ok_or(Error::Short({name:?}))?;\n        \
             Ok((&buf[{var_at}..end], &buf[end..]))\n    }}",
            name = d.name,
            since_check = if d.since_version > 0 {
                format!("if version < {} {{\n            return Ok((&[], buf));\n        }}\n        ", d.since_version)
            } else {
                "let _ = version;\n        ".to_string()
            },
            var_at = var.offset
        );
    }

    fn group(&mut self, g: &Group) {
        let m = snake(&g.name);
        let dim = &g.dimension;
        let read_member = |gen: &Gen, name: &str| {
            let mm = dim.member(name).expect("checked");
            let Type::Encoded(e) = &mm.ty else { return "0".to_string() };
            format!("{} as usize", gen.read(e.primitive, "buf", &mm.offset.to_string()))
        };
        let block = read_member(self, "blockLength");
        let count = read_member(self, "numInGroup");
        let simple = g.groups.is_empty() && g.data.is_empty();
        let _ = writeln!(
            self.out,
            "\n    /// The `{name}` group.\n    pub mod {m} {{\n        use super::*;\n\n    \
             /// Its entries' block length in this schema.\n    pub const BLOCK_LENGTH: usize = {bl};\n\n    \
             /// The entries, in order.\n    #[derive(Debug, Clone)]\n    pub struct Group<'a> {{\n        rest: &'a [u8],\n        block_length: usize,\n        remaining: usize,\n        version: u16,\n    }}\n\n    \
             impl<'a> Group<'a> {{\n    \
             /// Reads the group's dimension at the start of `buf` (an empty group if it is newer than `version`).\n    \
             pub fn wrap(buf: &'a [u8], version: u16) -> Result<Self, Error> {{\n        \
             {since_check}\
             if buf.len() < {dim_size} {{\n            return Err(Error::Short({name:?}));\n        }}\n        \
             Ok(Self {{ block_length: {block}, remaining: {count}, rest: &buf[{dim_size}..], version }})\n    }}\n\n    \
             /// How many entries are left.\n    pub fn len(&self) -> usize {{\n        self.remaining\n    }}\n\n    \
             /// Whether none are left.\n    pub fn is_empty(&self) -> bool {{\n        self.remaining == 0\n    }}\n\n    \
             /// The bytes after the whole group (the entries left are skipped).\n    pub fn skip({receiver}) -> Result<&'a [u8], Error> {{\n{skip}    }}\n    }}\n\n    \
             impl<'a> Iterator for Group<'a> {{\n        type Item = Result<Entry<'a>, Error>;\n\n        \
             fn next(&mut self) -> Option<Self::Item> {{\n            if self.remaining == 0 {{\n                return None;\n            }}\n            self.remaining -= 1;\n            \
             let entry = Entry::wrap(self.rest, self.block_length, self.version).and_then(|e| e.end().map(|end| (e, end)));\n            \
             match entry {{\n                Ok((e, end)) => {{\n                    self.rest = end;\n                    Some(Ok(e))\n                }}\n                \
             Err(err) => {{\n                    self.remaining = 0;\n                    Some(Err(err))\n                }}\n            }}\n        }}\n    }}",
            name = g.name,
            bl = g.block_length,
            since_check = if g.since_version > 0 {
                format!("if version < {} {{\n            return Ok(Self {{ rest: buf, block_length: 0, remaining: 0, version }});\n        }}\n        ", g.since_version)
            } else {
                String::new()
            },
            dim_size = dim.size,
            receiver = if simple { "self" } else { "mut self" },
            skip = if simple {
                "        let len = self.remaining.checked_mul(self.block_length).filter(|&l| l <= self.rest.len());\n        \
                 let len = len.ok_or(Error::Short(\"group entries\"))?;\n        Ok(&self.rest[len..])\n"
                    .to_string()
            } else {
                "        for entry in self.by_ref() {\n            entry?;\n        }\n        Ok(self.rest)\n".to_string()
            },
        );
        self.entry("Entry", &g.name, &g.fields, &g.groups, &g.data);
        self.group_encoder(g);
        let _ = writeln!(self.out, "    }}");
    }

    fn dispatch(&mut self, schema: &Schema) {
        let mut variants = String::new();
        let mut arms = String::new();
        for m in &schema.messages {
            let v = camel(&m.name);
            let md = snake(&m.name);
            let _ = writeln!(variants, "    /// {}.\n    {v}({md}::Decoder<'a>),", m.name);
            let _ = writeln!(arms, "        {} => Message::{v}({md}::Decoder::wrap(body, usize::from(h.block_length), h.version)?),", m.id);
        }
        let _ = writeln!(
            self.out,
            "\n/// A message of this schema.\n#[derive(Debug, Clone, Copy)]\npub enum Message<'a> {{\n{variants}    /// A template this schema does not have.\n    Unknown(Header),\n}}\n\n\
             /// Decodes the message at the start of `buf` (header first).\npub fn decode(buf: &[u8]) -> Result<Message<'_>, Error> {{\n    \
             let (h, body) = header(buf)?;\n    if h.schema_id != SCHEMA_ID {{\n        return Err(Error::OtherSchema(h.schema_id));\n    }}\n    \
             Ok(match h.template_id {{\n{arms}        _ => Message::Unknown(h),\n    }})\n}}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::snake;

    #[test]
    fn names() {
        for (from, to) in [
            ("orderId", "order_id"),
            ("MDEntryPx", "md_entry_px"),
            ("NoMDEntries", "no_md_entries"),
            ("type", "type_"),
            ("SecurityID", "security_id"),
            ("fills", "fills"),
        ] {
            assert_eq!(snake(from), to);
        }
    }
}
