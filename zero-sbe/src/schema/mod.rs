//! A message schema (FIX SBE 1.0 4): its types, resolved and laid out, and its messages.
//!
//! [`Schema::parse`] reads the XML; every type reference is resolved into the field that uses
//! it, and every offset and block length is computed (or taken from the schema and checked),
//! so decoders and generators never look anything up by name on the hot path.

mod parse;

use crate::primitive::{Primitive, Scalar};

/// The byte order of every field of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// `littleEndian` (the default).
    LittleEndian,
    /// `bigEndian`.
    BigEndian,
}

/// Whether a field must have a value, may be null, or is a constant not on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// `required`.
    Required,
    /// `optional`: the null value means absent.
    Optional,
    /// `constant`: not on the wire.
    Constant,
}

/// A schema error: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SBE schema: {0}")]
pub struct SchemaError(pub String);

/// A message schema.
#[derive(Debug, Clone)]
pub struct Schema {
    /// `package`.
    pub package: String,
    /// `id`: the schemaId every message header carries.
    pub id: u16,
    /// `version`.
    pub version: u16,
    /// `byteOrder`.
    pub byte_order: ByteOrder,
    /// The message header (`headerType`, `messageHeader` by default).
    pub header: Composite,
    /// The messages.
    pub messages: Vec<Message>,
}

/// A type, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// A primitive or an array of them.
    Encoded(Encoded),
    /// A composite of other types.
    Composite(Composite),
    /// An enum.
    Enum(Enum),
    /// A bit set.
    Set(Set),
}

/// An encoded type: a primitive, or a fixed-length array of one.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Its name.
    pub name: String,
    /// The primitive.
    pub primitive: Primitive,
    /// How many (1 for a single value; a char array is a string).
    pub length: usize,
    /// Presence.
    pub presence: Presence,
    /// The null value of an optional one.
    pub null: Scalar,
    /// A constant's value, as the schema writes it.
    pub constant: Option<String>,
    /// `characterEncoding`, for char arrays.
    pub character_encoding: Option<String>,
}

/// A composite: members at fixed offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Composite {
    /// Its name.
    pub name: String,
    /// The members.
    pub members: Vec<Member>,
    /// Its size on the wire.
    pub size: usize,
}

/// A member of a composite.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Its offset in the composite.
    pub offset: usize,
    /// Its type.
    pub ty: Type,
}

/// An enum: named values of one encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// Its name.
    pub name: String,
    /// The encoding (char or an unsigned integer).
    pub encoding: Primitive,
    /// The value that means none (for optional fields).
    pub null: Scalar,
    /// Presence of the encoding type.
    pub presence: Presence,
    /// The values.
    pub values: Vec<(String, Scalar)>,
}

/// A set: named bits of an unsigned integer.
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    /// Its name.
    pub name: String,
    /// The encoding.
    pub encoding: Primitive,
    /// The choices: name and bit position.
    pub choices: Vec<(String, u32)>,
}

/// A field of a message or group block.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its id (the FIX tag).
    pub id: u32,
    /// Its offset in the block.
    pub offset: usize,
    /// Its type.
    pub ty: Type,
    /// Presence (the field's, else its type's).
    pub presence: Presence,
    /// A constant field's `valueRef` (`Enum.Value`).
    pub value_ref: Option<String>,
    /// The schema version that added it.
    pub since_version: u16,
    /// The version that deprecated it, if any.
    pub deprecated: Option<u16>,
}

/// A repeating group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: u32,
    /// The block length of each entry.
    pub block_length: usize,
    /// The dimension composite (`blockLength`, `numInGroup`, and sometimes more).
    pub dimension: Composite,
    /// The fields of each entry.
    pub fields: Vec<Field>,
    /// Nested groups.
    pub groups: Vec<Group>,
    /// Variable-length data of each entry.
    pub data: Vec<Data>,
    /// The schema version that added it.
    pub since_version: u16,
}

/// A variable-length data field.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: u32,
    /// Its encoding composite (`length`, `varData`).
    pub encoding: Composite,
    /// The schema version that added it.
    pub since_version: u16,
}

/// A message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Its name.
    pub name: String,
    /// Its template id.
    pub id: u16,
    /// The root block's length.
    pub block_length: usize,
    /// The root block's fields.
    pub fields: Vec<Field>,
    /// Its groups, in order.
    pub groups: Vec<Group>,
    /// Its variable-length data, in order.
    pub data: Vec<Data>,
    /// The schema version that added it.
    pub since_version: u16,
    /// The version that deprecated it, if any.
    pub deprecated: Option<u16>,
}

impl Type {
    /// Its size on the wire (0 for a constant).
    pub fn size(&self) -> usize {
        match self {
            Type::Encoded(e) if e.presence == Presence::Constant => 0,
            Type::Encoded(e) => e.primitive.size() * e.length,
            Type::Composite(c) => c.size,
            Type::Enum(e) if e.presence == Presence::Constant => 0,
            Type::Enum(e) => e.encoding.size(),
            Type::Set(s) => s.encoding.size(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Type::Encoded(e) => &e.name,
            Type::Composite(c) => &c.name,
            Type::Enum(e) => &e.name,
            Type::Set(s) => &s.name,
        }
    }
}

impl Composite {
    /// The member named `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

impl Schema {
    /// Reads a schema from its XML text.
    pub fn parse(xml: &str) -> Result<Schema, SchemaError> {
        parse::schema(xml)
    }

    /// The message with template id `id`.
    pub fn message(&self, id: u16) -> Option<&Message> {
        self.messages.iter().find(|m| m.id == id)
    }
}
