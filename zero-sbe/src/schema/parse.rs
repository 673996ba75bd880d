//! Reading a schema's XML (FIX SBE 1.0 4): types resolved by name (cycles refused), offsets
//! computed where the schema leaves them out and checked where it gives them.

use std::collections::HashMap;

use roxmltree::{Document, Node};

use super::{
    ByteOrder, Composite, Data, Encoded, Enum, Field, Group, Member, Message, Presence, Schema, SchemaError,
    Set, Type,
};
use crate::primitive::{Primitive, Scalar};

fn err<T>(what: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError(what.into()))
}

fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

fn name_of(node: Node<'_, '_>) -> Result<String, SchemaError> {
    match node.attribute("name") {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => err(format!("a <{}> without a name", node.tag_name().name())),
    }
}

fn number<T: std::str::FromStr>(node: Node<'_, '_>, attr: &str) -> Result<Option<T>, SchemaError> {
    match node.attribute(attr) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            SchemaError(format!("{}: {attr}={v:?} is not a number", node.attribute("name").unwrap_or("?")))
        }),
    }
}

fn presence(node: Node<'_, '_>) -> Result<Option<Presence>, SchemaError> {
    Ok(match node.attribute("presence") {
        None => None,
        Some("required") => Some(Presence::Required),
        Some("optional") => Some(Presence::Optional),
        Some("constant") => Some(Presence::Constant),
        Some(p) => return err(format!("{}: presence={p:?}", node.attribute("name").unwrap_or("?"))),
    })
}

/// Reads the schema.
pub fn schema(xml: &str) -> Result<Schema, SchemaError> {
    let doc = Document::parse(xml).map_err(|e| SchemaError(format!("XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "messageSchema" {
        return err(format!("the root is <{}>, not <messageSchema>", root.tag_name().name()));
    }
    let byte_order = match root.attribute("byteOrder").unwrap_or("littleEndian") {
        "littleEndian" => ByteOrder::LittleEndian,
        "bigEndian" => ByteOrder::BigEndian,
        other => return err(format!("byteOrder={other:?}")),
    };
    let mut defs = HashMap::new();
    for types in elements(root).filter(|n| n.tag_name().name() == "types") {
        for t in elements(types) {
            if defs.insert(name_of(t)?, t).is_some() {
                return err(format!("the type {} is defined twice", name_of(t)?));
            }
        }
    }
    let mut types = Types { defs, done: HashMap::new(), resolving: Vec::new() };
    let header_name = root.attribute("headerType").unwrap_or("messageHeader");
    let Type::Composite(header) = types.named(header_name)? else {
        return err(format!("the header type {header_name} is not a composite"));
    };
    for member in ["blockLength", "templateId", "schemaId", "version"] {
        if header.member(member).is_none() {
            return err(format!("the header {header_name} has no {member}"));
        }
    }
    let mut messages: Vec<Message> = Vec::new();
    for m in elements(root).filter(|n| n.tag_name().name() == "message") {
        let message = message(&mut types, m)?;
        if messages.iter().any(|other| other.id == message.id) {
            return err(format!("two messages have the id {}", message.id));
        }
        messages.push(message);
    }
    Ok(Schema {
        package: root.attribute("package").unwrap_or("").to_string(),
        id: number(root, "id")?.unwrap_or(0),
        version: number(root, "version")?.unwrap_or(0),
        byte_order,
        header,
        messages,
    })
}

/// Type definitions by name, resolved once each.
struct Types<'a, 'i> {
    defs: HashMap<String, Node<'a, 'i>>,
    done: HashMap<String, Type>,
    resolving: Vec<String>,
}

impl<'a, 'i> Types<'a, 'i> {
    /// The type named `name`: a defined one, or a primitive's name.
    fn named(&mut self, name: &str) -> Result<Type, SchemaError> {
        if let Some(t) = self.done.get(name) {
            return Ok(t.clone());
        }
        let Some(node) = self.defs.get(name).copied() else {
            return match Primitive::named(name) {
                Some(p) => Ok(Type::Encoded(Encoded {
                    name: name.to_string(),
                    primitive: p,
                    length: 1,
                    presence: Presence::Required,
                    null: p.default_null(),
                    constant: None,
                    character_encoding: None,
                })),
                None => err(format!("no type named {name}")),
            };
        };
        if self.resolving.iter().any(|n| n == name) {
            return err(format!("the type {name} contains itself"));
        }
        self.resolving.push(name.to_string());
        let t = self.define(node);
        self.resolving.pop();
        let t = t?;
        self.done.insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// A type from its definition.
    fn define(&mut self, node: Node<'a, 'i>) -> Result<Type, SchemaError> {
        let name = name_of(node)?;
        match node.tag_name().name() {
            "type" => {
                let p = node.attribute("primitiveType").unwrap_or("");
                let primitive =
                    Primitive::named(p).ok_or_else(|| SchemaError(format!("{name}: primitiveType={p:?}")))?;
                let presence = presence(node)?.unwrap_or(Presence::Required);
                let null = match node.attribute("nullValue") {
                    Some(v) => {
                        primitive.parse(v).ok_or_else(|| SchemaError(format!("{name}: nullValue={v:?}")))?
                    }
                    None => primitive.default_null(),
                };
                let constant =
                    (presence == Presence::Constant).then(|| node.text().unwrap_or("").trim().to_string());
                let length = number(node, "length")?.unwrap_or(1);
                Ok(Type::Encoded(Encoded {
                    name,
                    primitive,
                    length,
                    presence,
                    null,
                    constant,
                    character_encoding: node.attribute("characterEncoding").map(str::to_string),
                }))
            }
            "composite" => {
                let mut members = Vec::new();
                let mut at = 0;
                for m in elements(node) {
                    let ty = match m.tag_name().name() {
                        "ref" => self.named(m.attribute("type").unwrap_or(""))?,
                        _ => self.define(m)?,
                    };
                    let offset = match number::<usize>(m, "offset")? {
                        Some(o) if o < at => {
                            return err(format!("{name}.{}: offset {o} overlaps", name_of(m)?))
                        }
                        Some(o) => o,
                        None => at,
                    };
                    at = offset + ty.size();
                    members.push(Member { name: name_of(m)?, offset, ty });
                }
                Ok(Type::Composite(Composite { name, members, size: at }))
            }
            "enum" => {
                let (encoding, null, presence) = self.encoding(node)?;
                let mut values = Vec::new();
                for v in elements(node).filter(|v| v.tag_name().name() == "validValue") {
                    let text = v.text().unwrap_or("");
                    let value = encoding.parse(text).ok_or_else(|| {
                        SchemaError(format!("{name}.{}: {text:?}", name_of(v).unwrap_or_default()))
                    })?;
                    values.push((name_of(v)?, value));
                }
                Ok(Type::Enum(Enum { name, encoding, null, presence, values }))
            }
            "set" => {
                let (encoding, _, _) = self.encoding(node)?;
                let mut choices = Vec::new();
                for c in elements(node).filter(|c| c.tag_name().name() == "choice") {
                    let bit: u32 = c.text().unwrap_or("").trim().parse().map_err(|_| {
                        SchemaError(format!("{name}.{}: not a bit number", name_of(c).unwrap_or_default()))
                    })?;
                    if bit as usize >= encoding.size() * 8 {
                        return err(format!("{name}: bit {bit} does not fit its encoding"));
                    }
                    choices.push((name_of(c)?, bit));
                }
                Ok(Type::Set(Set { name, encoding, choices }))
            }
            other => err(format!("<{other}> is not a type")),
        }
    }

    /// An enum's or set's `encodingType`: a primitive, or an encoded type (its null and
    /// presence carried over).
    fn encoding(&mut self, node: Node<'a, 'i>) -> Result<(Primitive, Scalar, Presence), SchemaError> {
        let name = node.attribute("encodingType").unwrap_or("");
        match self.named(name)? {
            Type::Encoded(e) if e.length == 1 => Ok((e.primitive, e.null, e.presence)),
            _ => err(format!("{}: encodingType={name:?}", node.attribute("name").unwrap_or("?"))),
        }
    }
}

/// A message.
fn message(types: &mut Types<'_, '_>, node: Node<'_, '_>) -> Result<Message, SchemaError> {
    let name = name_of(node)?;
    let id = number(node, "id")?.ok_or_else(|| SchemaError(format!("the message {name} has no id")))?;
    let block = block(types, node, &name)?;
    let block_length = checked_length(node, &name, block.length)?;
    Ok(Message {
        name,
        id,
        block_length,
        fields: block.fields,
        groups: block.groups,
        data: block.data,
        since_version: number(node, "sinceVersion")?.unwrap_or(0),
        deprecated: number(node, "deprecated")?,
    })
}

/// The `blockLength` the schema gives (at least what its fields need), or what they need.
fn checked_length(node: Node<'_, '_>, name: &str, needed: usize) -> Result<usize, SchemaError> {
    match number::<usize>(node, "blockLength")? {
        Some(given) if given < needed => {
            err(format!("{name}: blockLength {given} is less than its fields' {needed}"))
        }
        Some(given) => Ok(given),
        None => Ok(needed),
    }
}

struct Block {
    fields: Vec<Field>,
    groups: Vec<Group>,
    data: Vec<Data>,
    length: usize,
}

/// The fields, groups and data of a message or group, in that order (FIX SBE 1.0 4.4).
fn block(types: &mut Types<'_, '_>, node: Node<'_, '_>, owner: &str) -> Result<Block, SchemaError> {
    let mut b = Block { fields: Vec::new(), groups: Vec::new(), data: Vec::new(), length: 0 };
    for child in elements(node) {
        let name = name_of(child)?;
        let id = number(child, "id")?.unwrap_or(0);
        let since_version = number(child, "sinceVersion")?.unwrap_or(0);
        match child.tag_name().name() {
            "field" => {
                if !b.groups.is_empty() || !b.data.is_empty() {
                    return err(format!("{owner}.{name}: a field after a group or data"));
                }
                let ty = types.named(child.attribute("type").unwrap_or(""))?;
                let of_type = match &ty {
                    Type::Encoded(e) => e.presence,
                    Type::Enum(e) => e.presence,
                    _ => Presence::Required,
                };
                let presence = presence(child)?.unwrap_or(of_type);
                let size = if presence == Presence::Constant { 0 } else { ty.size() };
                let offset = match number::<usize>(child, "offset")? {
                    Some(o) if o < b.length => return err(format!("{owner}.{name}: offset {o} overlaps")),
                    Some(o) => o,
                    None => b.length,
                };
                b.length = offset + size;
                b.fields.push(Field {
                    name,
                    id,
                    offset,
                    ty,
                    presence,
                    value_ref: child.attribute("valueRef").map(str::to_string),
                    since_version,
                    deprecated: number(child, "deprecated")?,
                });
            }
            "group" => {
                if !b.data.is_empty() {
                    return err(format!("{owner}.{name}: a group after data"));
                }
                let dimension_name = child.attribute("dimensionType").unwrap_or("groupSizeEncoding");
                let Type::Composite(dimension) = types.named(dimension_name)? else {
                    return err(format!("{owner}.{name}: dimensionType {dimension_name} is not a composite"));
                };
                if dimension.member("blockLength").is_none() || dimension.member("numInGroup").is_none() {
                    return err(format!("{dimension_name} needs blockLength and numInGroup"));
                }
                let inner = block(types, child, &name)?;
                let block_length = checked_length(child, &name, inner.length)?;
                b.groups.push(Group {
                    name,
                    id,
                    block_length,
                    dimension,
                    fields: inner.fields,
                    groups: inner.groups,
                    data: inner.data,
                    since_version,
                });
            }
            "data" => {
                let type_name = child.attribute("type").unwrap_or("");
                let Type::Composite(encoding) = types.named(type_name)? else {
                    return err(format!("{owner}.{name}: {type_name} is not a composite"));
                };
                if encoding.member("length").is_none() || encoding.member("varData").is_none() {
                    return err(format!("{type_name} needs length and varData"));
                }
                b.data.push(Data { name, id, encoding, since_version });
            }
            other => return err(format!("{owner}: <{other}> in a message")),
        }
    }
    Ok(b)
}
