//! Generates the typed views of the common order-entry messages (`src/messages.rs` includes
//! them) from the FIX 4.4 dictionary, with the same reader the crate uses at run time.

use std::collections::BTreeMap;
use std::fmt::Write;

#[allow(dead_code)]
#[path = "src/dict/model.rs"]
mod model;

use model::{Dictionary, FieldType, Member};

/// The messages that get a typed view.
const MESSAGES: [&str; 6] = [
    "NewOrderSingle",
    "ExecutionReport",
    "OrderCancelRequest",
    "OrderCancelReplaceRequest",
    "OrderCancelReject",
    "BusinessMessageReject",
];

fn main() {
    println!("cargo:rerun-if-changed=dict/FIX44.xml");
    println!("cargo:rerun-if-changed=src/dict/model.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string("dict/FIX44.xml").expect("dict/FIX44.xml");
    let dict = Dictionary::from_xml(&text).expect("the FIX 4.4 dictionary reads");
    let mut out = String::new();
    let mut enumerated = BTreeMap::new();
    for name in MESSAGES {
        let def = dict.messages().find(|m| m.name == name).expect("a standard message");
        let msg_type = String::from_utf8(def.msg_type.to_vec()).expect("ASCII");
        writeln!(
            out,
            "/// `{name}` (MsgType `{msg_type}`), as FIX 4.4 defines it: a typed view of a received message."
        )
        .unwrap();
        writeln!(out, "#[derive(Debug, Clone, Copy)]\npub struct {name}<'a>(Message<'a>);\n").unwrap();
        writeln!(out, "impl<'a> {name}<'a> {{").unwrap();
        writeln!(out, "    /// Its MsgType.\n    pub const MSG_TYPE: &'static [u8] = b\"{msg_type}\";\n")
            .unwrap();
        writeln!(out, "    /// `message` as a {name}, if that is its MsgType.").unwrap();
        writeln!(out, "    pub fn new(message: Message<'a>) -> Option<Self> {{\n        (message.msg_type() == Self::MSG_TYPE).then_some(Self(message))\n    }}\n").unwrap();
        writeln!(
            out,
            "    /// The message.\n    pub fn message(&self) -> Message<'a> {{\n        self.0\n    }}\n"
        )
        .unwrap();
        for member in &def.members {
            match member {
                Member::Field { tag, required } => {
                    let field = dict.field(*tag).expect("defined");
                    let need = if *required { ", required" } else { "" };
                    let (ty, read) = match field.kind {
                        FieldType::Int => ("i64", format!("self.0.get({tag}).and_then(parse_int)")),
                        FieldType::Float => {
                            ("Decimal", format!("self.0.get({tag}).and_then(Decimal::parse)"))
                        }
                        FieldType::Char => {
                            ("u8", format!("self.0.get({tag}).and_then(|v| (v.len() == 1).then(|| v[0]))"))
                        }
                        FieldType::Boolean => ("bool", format!("self.0.get({tag}).map(|v| v == b\"Y\")")),
                        FieldType::UtcTimestamp => {
                            ("Timestamp", format!("self.0.get({tag}).and_then(Timestamp::parse)"))
                        }
                        _ => ("&'a [u8]", format!("self.0.get({tag})")),
                    };
                    writeln!(out, "    /// {} ({tag}{need}).", field.name).unwrap();
                    writeln!(
                        out,
                        "    pub fn {}(&self) -> Option<{ty}> {{\n        {read}\n    }}\n",
                        snake(&field.name)
                    )
                    .unwrap();
                    if !field.values.is_empty() {
                        enumerated.insert(field.name.clone(), *tag);
                    }
                }
                Member::Group(group) => {
                    let count = dict.field(group.count_tag).expect("defined");
                    let need = if group.required { ", required" } else { "" };
                    let tags = group.tags.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
                    writeln!(
                        out,
                        "    /// The {} ({}{need}) group's entries (`None` if absent).",
                        count.name, group.count_tag
                    )
                    .unwrap();
                    writeln!(
                        out,
                        "    pub fn {}(&self) -> Option<Result<Group<'a>, GroupError>> {{",
                        snake(&count.name)
                    )
                    .unwrap();
                    writeln!(
                        out,
                        "        self.0.group({}, {}, &[{tags}])\n    }}\n",
                        group.count_tag, group.delimiter
                    )
                    .unwrap();
                }
            }
        }
        writeln!(out, "}}\n").unwrap();
    }
    writeln!(
        out,
        "/// The enumerated values of the fields above, by field, as FIX 4.4 names them.\npub mod values {{"
    )
    .unwrap();
    for (name, tag) in enumerated {
        let field = dict.field(tag).expect("defined");
        writeln!(out, "    /// {name} ({tag}).\n    pub mod {} {{", snake(&name)).unwrap();
        let mut used = Vec::new();
        for (value, description) in &field.values {
            let mut ident = constant(description);
            if used.contains(&ident) {
                ident = format!("{ident}_{}", constant(&String::from_utf8_lossy(value)));
            }
            used.push(ident.clone());
            let text = String::from_utf8_lossy(value).replace('\\', "\\\\").replace('"', "\\\"");
            match field.kind {
                FieldType::Char if value.len() == 1 => {
                    writeln!(out, "        /// `{text}`.\n        pub const {ident}: u8 = b'{text}';")
                        .unwrap()
                }
                _ => writeln!(out, "        /// `{text}`.\n        pub const {ident}: &[u8] = b\"{text}\";")
                    .unwrap(),
            }
        }
        writeln!(out, "    }}").unwrap();
    }
    writeln!(out, "}}").unwrap();
    let path = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("messages.rs");
    std::fs::write(path, out).expect("writes the generated views");
}

/// `ClOrdID` -> `cl_ord_id`, `NoPartyIDs` -> `no_party_ids`.
fn snake(name: &str) -> String {
    let chars: Vec<char> = name.replace("IDs", "Ids").chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    const KEYWORDS: &str = "as async await abstract become box break const continue crate do dyn else enum extern \
                            false final fn for gen if impl in let loop macro match mod move mut override priv pub \
                            ref return self static struct super trait true try type typeof unsafe unsized use \
                            virtual where while yield";
    if KEYWORDS.split_whitespace().any(|k| k == out) {
        out.push('_');
    }
    out
}

/// A description as a constant's name: `BUY`, `PARTIAL_FILL`, `V_1`.
fn constant(description: &str) -> String {
    let mut out: String = description
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let mut out = out.trim_matches('_').to_string();
    // Some descriptions are sentences: keep the first words (a name, not a file-name-breaking
    // essay; a clash gets the value appended).
    if out.len() > 40 {
        let cut = out[..40].rfind('_').unwrap_or(40);
        out.truncate(cut);
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V_{out}")
    } else {
        out
    }
}
