//! The dictionary model and its reader, with no other dependency than roxmltree: the crate
//! uses it, and so does its build script (which generates the typed message accessors).

use std::collections::HashMap;

/// A data dictionary.
#[derive(Debug, Clone)]
pub struct Dictionary {
    /// `FIX.4.4`, `FIXT.1.1`, `FIX.5.0SP2`, ...
    pub version: String,
    fields: HashMap<u32, FieldDef>,
    names: HashMap<String, u32>,
    header: Vec<Member>,
    trailer: Vec<Member>,
    messages: HashMap<Box<[u8]>, MessageDef>,
}

/// A field's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// Its tag.
    pub tag: u32,
    /// Its name (e.g. `ClOrdID`).
    pub name: String,
    /// Its type.
    pub kind: FieldType,
    /// Its enumerated values and their descriptions; empty: any value of its type.
    pub values: Vec<(Box<[u8]>, String)>,
}

/// The FIX data types a value is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// INT, LENGTH, SEQNUM, NUMINGROUP, TAGNUM, DAYOFMONTH: an integer.
    Int,
    /// FLOAT, QTY, PRICE, PRICEOFFSET, AMT, PERCENTAGE: a decimal.
    Float,
    /// CHAR: one character.
    Char,
    /// BOOLEAN: `Y` or `N`.
    Boolean,
    /// MULTIPLEVALUESTRING, MULTIPLECHARVALUE, MULTIPLESTRINGVALUE: space-separated values.
    MultipleValue,
    /// UTCTIMESTAMP.
    UtcTimestamp,
    /// UTCTIMEONLY, UTCDATEONLY, LOCALMKTDATE, MONTHYEAR, TZ*: checked as text.
    DateTime,
    /// DATA, XMLDATA: any bytes.
    Data,
    /// STRING, CURRENCY, EXCHANGE, COUNTRY, LANGUAGE and the rest: text.
    String,
}

impl FieldType {
    fn parse(name: &str) -> FieldType {
        match name {
            "INT" | "LENGTH" | "SEQNUM" | "NUMINGROUP" | "TAGNUM" | "DAYOFMONTH" => FieldType::Int,
            "FLOAT" | "QTY" | "QUANTITY" | "PRICE" | "PRICEOFFSET" | "AMT" | "PERCENTAGE" => FieldType::Float,
            "CHAR" => FieldType::Char,
            "BOOLEAN" => FieldType::Boolean,
            "MULTIPLEVALUESTRING" | "MULTIPLECHARVALUE" | "MULTIPLESTRINGVALUE" => FieldType::MultipleValue,
            "UTCTIMESTAMP" => FieldType::UtcTimestamp,
            "UTCTIMEONLY" | "UTCDATEONLY" | "UTCDATE" | "LOCALMKTDATE" | "MONTHYEAR" | "TZTIMESTAMP"
            | "TZTIMEONLY" | "TIME" | "DATE" => FieldType::DateTime,
            "DATA" | "XMLDATA" => FieldType::Data,
            _ => FieldType::String,
        }
    }
}

/// A message's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDef {
    /// Its name (e.g. `NewOrderSingle`).
    pub name: String,
    /// Its MsgType (e.g. `D`).
    pub msg_type: Box<[u8]>,
    /// A session (admin) message rather than an application one.
    pub admin: bool,
    /// Its body, components expanded.
    pub members: Vec<Member>,
}

/// A field or a repeating group, in a message, a group or the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// A field.
    Field {
        /// Its tag.
        tag: u32,
        /// Whether it must be present.
        required: bool,
    },
    /// A repeating group.
    Group(GroupDef),
}

/// A repeating group's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDef {
    /// The NumInGroup field that counts its entries.
    pub count_tag: u32,
    /// Whether it must be present.
    pub required: bool,
    /// The tag every entry starts with (its first member).
    pub delimiter: u32,
    /// An entry's members, in order.
    pub members: Vec<Member>,
    /// Every tag an entry may hold, nested groups' included.
    pub tags: Vec<u32>,
}

/// A dictionary that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DictError {
    /// Not well-formed XML.
    #[error("not XML: {0}")]
    Xml(#[from] roxmltree::Error),
    /// Well-formed, but not a dictionary as the QuickFIX format has it.
    #[error("{0}")]
    Format(String),
}

fn format(what: impl Into<String>) -> DictError {
    DictError::Format(what.into())
}

impl Dictionary {
    /// Reads a dictionary in the QuickFIX XML format.
    pub fn from_xml(text: &str) -> Result<Dictionary, DictError> {
        let doc = roxmltree::Document::parse(text)?;
        let root = doc.root_element();
        if root.tag_name().name() != "fix" {
            return Err(format("the root element is not <fix>"));
        }
        let attr = |n: &str| root.attribute(n).unwrap_or("");
        let version = match (attr("type"), attr("servicepack")) {
            (kind, "" | "0") => format!("{kind}.{}.{}", attr("major"), attr("minor")),
            (kind, sp) => format!("{kind}.{}.{}SP{sp}", attr("major"), attr("minor")),
        };
        let section = |name: &str| root.children().find(|n| n.has_tag_name(name));
        let mut fields = HashMap::new();
        let mut names = HashMap::new();
        for f in section("fields").into_iter().flat_map(|s| s.children().filter(|n| n.has_tag_name("field")))
        {
            let tag: u32 = f
                .attribute("number")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format("a field without a number"))?;
            let name = f.attribute("name").ok_or_else(|| format(format!("field {tag} has no name")))?;
            let values = f
                .children()
                .filter(|v| v.has_tag_name("value"))
                .filter_map(|v| {
                    let e = v.attribute("enum")?;
                    Some((e.as_bytes().into(), v.attribute("description").unwrap_or("").to_string()))
                })
                .collect();
            let kind = FieldType::parse(f.attribute("type").unwrap_or("STRING"));
            names.insert(name.to_string(), tag);
            fields.insert(tag, FieldDef { tag, name: name.to_string(), kind, values });
        }
        let components: HashMap<&str, roxmltree::Node> = section("components")
            .into_iter()
            .flat_map(|s| s.children().filter(|n| n.has_tag_name("component")))
            .filter_map(|c| Some((c.attribute("name")?, c)))
            .collect();
        let reader = Reader { names: &names, components: &components };
        let header = match section("header") {
            Some(h) => reader.members(h, true, 0)?,
            None => Vec::new(),
        };
        let trailer = match section("trailer") {
            Some(t) => reader.members(t, true, 0)?,
            None => Vec::new(),
        };
        let mut messages = HashMap::new();
        for m in
            section("messages").into_iter().flat_map(|s| s.children().filter(|n| n.has_tag_name("message")))
        {
            let name = m.attribute("name").ok_or_else(|| format("a message without a name"))?;
            let msg_type = m.attribute("msgtype").ok_or_else(|| format(format!("{name} has no msgtype")))?;
            let def = MessageDef {
                name: name.to_string(),
                msg_type: msg_type.as_bytes().into(),
                admin: m.attribute("msgcat") == Some("admin"),
                members: reader.members(m, true, 0)?,
            };
            messages.insert(msg_type.as_bytes().into(), def);
        }
        Ok(Dictionary { version, fields, names, header, trailer, messages })
    }

    /// This application dictionary (FIX 5.0's have an empty header) with the header and
    /// trailer of `transport` (FIXT 1.1's) and the definitions of their fields: messages
    /// under FIXT are checked as QuickFIX checks them with its transport and application
    /// dictionaries.
    pub fn over_transport(mut self, transport: &Dictionary) -> Dictionary {
        if self.header.is_empty() {
            self.header = transport.header.clone();
        }
        if self.trailer.is_empty() {
            self.trailer = transport.trailer.clone();
        }
        for (tag, def) in &transport.fields {
            if !self.fields.contains_key(tag) {
                self.names.insert(def.name.clone(), *tag);
                self.fields.insert(*tag, def.clone());
            }
        }
        self
    }

    /// The definition of `tag`.
    pub fn field(&self, tag: u32) -> Option<&FieldDef> {
        self.fields.get(&tag)
    }

    /// Every field's definition.
    pub fn fields(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields.values()
    }

    /// The tag of the field named `name`.
    pub fn tag(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    /// The definition of the message of `msg_type`.
    pub fn message(&self, msg_type: &[u8]) -> Option<&MessageDef> {
        self.messages.get(msg_type)
    }

    /// Every message's definition.
    pub fn messages(&self) -> impl Iterator<Item = &MessageDef> {
        self.messages.values()
    }

    /// The standard header's members.
    pub fn header(&self) -> &[Member] {
        &self.header
    }

    /// The standard trailer's members.
    pub fn trailer(&self) -> &[Member] {
        &self.trailer
    }
}

/// Expands members (fields, groups, components) of an XML element.
struct Reader<'d, 'x> {
    names: &'d HashMap<String, u32>,
    components: &'d HashMap<&'x str, roxmltree::Node<'x, 'x>>,
}

impl Reader<'_, '_> {
    /// The members of `node`; `required`: whether the enclosing component is required (an
    /// optional component's fields are optional). `depth` bounds nesting (a component that
    /// includes itself).
    fn members(&self, node: roxmltree::Node, required: bool, depth: usize) -> Result<Vec<Member>, DictError> {
        if depth > 32 {
            return Err(format("components nest more than 32 deep (a cycle?)"));
        }
        let mut out = Vec::new();
        for child in node.children().filter(|n| n.is_element()) {
            let name = child.attribute("name").unwrap_or("");
            let own = required && child.attribute("required") == Some("Y");
            match child.tag_name().name() {
                "field" => out.push(Member::Field { tag: self.tag(name)?, required: own }),
                "group" => {
                    let members = self.members(child, true, depth + 1)?;
                    let delimiter = match members.first() {
                        Some(Member::Field { tag, .. }) => *tag,
                        Some(Member::Group(g)) => g.count_tag,
                        None => return Err(format(format!("group {name} is empty"))),
                    };
                    let mut tags = Vec::new();
                    collect_tags(&members, &mut tags);
                    let count_tag = self.tag(name)?;
                    out.push(Member::Group(GroupDef { count_tag, required: own, delimiter, members, tags }));
                }
                "component" => {
                    let c =
                        self.components.get(name).ok_or_else(|| format(format!("no component {name}")))?;
                    out.extend(self.members(*c, own, depth + 1)?);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn tag(&self, name: &str) -> Result<u32, DictError> {
        self.names.get(name).copied().ok_or_else(|| format(format!("no field named {name}")))
    }
}

fn collect_tags(members: &[Member], out: &mut Vec<u32>) {
    for m in members {
        match m {
            Member::Field { tag, .. } => out.push(*tag),
            Member::Group(g) => {
                out.push(g.count_tag);
                collect_tags(&g.members, out);
            }
        }
    }
}
