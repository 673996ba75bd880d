//! Data dictionaries in the QuickFIX XML format (the de-facto standard for custom ones): which
//! fields exist, their types and values, and which fields, groups and components make up
//! each message. The standard FIX 4.2, FIX 4.4, FIXT 1.1 and FIX 5.0 SP2 dictionaries are
//! built in ([`Dictionary::fix44`], ...); [`Dictionary::from_xml`] reads a custom one.
//! Components are expanded where they are used, so a message is a tree of fields and groups.

mod model;
mod validate;

use std::sync::OnceLock;

pub use model::{DictError, Dictionary, FieldDef, FieldType, GroupDef, Member, MessageDef};
pub use validate::{Reject, Validation};

use crate::codec::DataFields;

/// The tag a member stands for where it appears: a field's own, a group's count.
pub fn member_tag(member: &Member) -> u32 {
    match member {
        Member::Field { tag, .. } => *tag,
        Member::Group(g) => g.count_tag,
    }
}

macro_rules! builtin {
    ($(#[$doc:meta])* $name:ident, $file:literal $(, over $transport:ident)?) => {
        $(#[$doc])*
        pub fn $name() -> &'static Dictionary {
            static DICT: OnceLock<Dictionary> = OnceLock::new();
            DICT.get_or_init(|| {
                let dict = Dictionary::from_xml(include_str!(concat!("../../dict/", $file)))
                    .expect("the built-in dictionary reads");
                $(let dict = dict.over_transport(Dictionary::$transport());)?
                dict
            })
        }
    };
}

impl Dictionary {
    builtin!(
        /// FIX 4.2.
        fix42,
        "FIX42.xml"
    );
    builtin!(
        /// FIX 4.4.
        fix44,
        "FIX44.xml"
    );
    builtin!(
        /// FIXT 1.1: the session layer under FIX 5.0.
        fixt11,
        "FIXT11.xml"
    );
    builtin!(
        /// FIX 5.0 SP2: application messages, with FIXT 1.1's header and trailer.
        fix50sp2,
        "FIX50SP2.xml",
        over fixt11
    );

    /// The built-in dictionary for a BeginString (`FIX.4.2`, `FIX.4.4`, `FIXT.1.1`).
    pub fn for_begin_string(begin_string: &str) -> Option<&'static Dictionary> {
        match begin_string {
            "FIX.4.2" => Some(Dictionary::fix42()),
            "FIX.4.4" => Some(Dictionary::fix44()),
            "FIXT.1.1" => Some(Dictionary::fixt11()),
            _ => None,
        }
    }

    /// The built-in dictionary that defines messages of `msg_type` under `begin_string`: under
    /// FIXT 1.1 the session's own messages are FIXT 1.1's and application messages FIX 5.0
    /// SP2's (QuickFIX's TransportDataDictionary and AppDataDictionary).
    pub fn for_message(begin_string: &str, msg_type: &[u8]) -> Option<&'static Dictionary> {
        match begin_string {
            "FIXT.1.1" if !is_admin(msg_type) => Some(Dictionary::fix50sp2()),
            _ => Dictionary::for_begin_string(begin_string),
        }
    }

    /// The (length, data) field pairs the decoder must know to read DATA fields: each DATA
    /// field and the LENGTH field named after it (`RawDataLength` / `RawData`,
    /// `SecureDataLen` / `SecureData`, ...), with the standard pairs.
    pub fn data_fields(&self) -> DataFields {
        let mut pairs = DataFields::default();
        for data in self.fields().filter(|f| f.kind == FieldType::Data) {
            for suffix in ["Len", "Length"] {
                if let Some(length) = self.tag(&format!("{}{suffix}", data.name)) {
                    pairs.add(length, data.tag);
                }
            }
        }
        pairs
    }
}

/// Whether `msg_type` is one of the session layer's own messages (Heartbeat, TestRequest,
/// ResendRequest, Reject, SequenceReset, Logout, Logon).
pub fn is_admin(msg_type: &[u8]) -> bool {
    matches!(msg_type, b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_dictionaries_read() {
        for (d, version, messages) in [
            (Dictionary::fix42(), "FIX.4.2", 46),
            (Dictionary::fix44(), "FIX.4.4", 93),
            (Dictionary::fixt11(), "FIXT.1.1", 7),
            (Dictionary::fix50sp2(), "FIX.5.0SP2", 100),
        ] {
            assert_eq!(d.version, version);
            assert!(d.messages().count() >= messages, "{version}: {}", d.messages().count());
        }
        let d = Dictionary::fix44();
        let nos = d.message(b"D").unwrap();
        assert_eq!(nos.name, "NewOrderSingle");
        assert!(!nos.admin);
        assert!(nos.members.contains(&Member::Field { tag: 11, required: true }));
        // Side is required; Instrument is a required component whose Symbol is optional
        // (SecurityID may stand for it); Parties is an optional component.
        assert!(nos.members.contains(&Member::Field { tag: 54, required: true }));
        assert!(nos.members.contains(&Member::Field { tag: 55, required: false }));
        let parties = nos.members.iter().find_map(|m| match m {
            Member::Group(g) if g.count_tag == 453 => Some(g),
            _ => None,
        });
        let parties = parties.unwrap();
        assert!(!parties.required);
        assert_eq!(parties.delimiter, 448);
        assert!(parties.tags.contains(&802) && parties.tags.contains(&523));
        assert_eq!(d.field(54).unwrap().values.iter().find(|v| &*v.0 == b"1").unwrap().1, "BUY");
        assert_eq!(d.tag("ClOrdID"), Some(11));
        assert!(d.message(b"0").unwrap().admin);
    }

    #[test]
    fn data_fields_pair_by_name() {
        let pairs = format!("{:?}", Dictionary::fix44().data_fields());
        for pair in ["(95, 96)", "(90, 91)", "(93, 89)", "(354, 355)"] {
            assert!(pairs.contains(pair), "{pair} in {pairs}");
        }
    }

    #[test]
    fn a_custom_dictionary_and_its_errors() {
        let xml = "<fix type='FIX' major='4' minor='4' servicepack='0'><header/><trailer/>\
                   <messages><message name='Ping' msgtype='U1' msgcat='app'>\
                   <field name='Note' required='Y'/></message></messages>\
                   <components/><fields><field number='5001' name='Note' type='STRING'/></fields></fix>";
        let d = Dictionary::from_xml(xml).unwrap();
        assert_eq!(d.message(b"U1").unwrap().members, [Member::Field { tag: 5001, required: true }]);
        let bad = xml.replace("name='Note' required", "name='Nope' required");
        assert!(matches!(Dictionary::from_xml(&bad), Err(DictError::Format(e)) if e.contains("Nope")));
        assert!(matches!(Dictionary::from_xml("<fix"), Err(DictError::Xml(_))));
    }
}
