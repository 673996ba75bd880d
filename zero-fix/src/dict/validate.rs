//! Checking a received message against a dictionary, as configured per session: what a
//! session Reject (35=3) says when it fails (SessionRejectReason and RefTagID).

use super::{member_tag, Dictionary, FieldType, GroupDef, Member};
use crate::codec::{Field, Message, Timestamp};

/// What a session checks in the messages it receives, beyond framing. The default checks
/// everything but lets a counterparty's user-defined tags (5000 and up) through, so an
/// extra tag on a fill never turns it into a reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// Required fields (header, body, group entries) must be there (else reason 1).
    pub required_fields: bool,
    /// Values must have their field's type (else 6) and, if enumerated, one of its values
    /// (else 5).
    pub values: bool,
    /// Tags of 5000 and up that the dictionary does not define are accepted (else 3).
    pub user_defined_fields: bool,
    /// Tags under 5000 that the dictionary does not define are accepted (else 3).
    pub unknown_fields: bool,
    /// Tags the dictionary defines, but not for this message, are accepted (else 2).
    pub fields_outside_message: bool,
    /// Header fields come first and group entries keep the dictionary's order (else 14, 15).
    pub order: bool,
    /// MsgTypes the dictionary does not define are accepted (else 11).
    pub unknown_msg_types: bool,
}

impl Default for Validation {
    fn default() -> Validation {
        Validation {
            required_fields: true,
            values: true,
            user_defined_fields: true,
            unknown_fields: false,
            fields_outside_message: false,
            order: true,
            unknown_msg_types: false,
        }
    }
}

impl Validation {
    /// Only what the session layer needs: no type, value, order or unknown-field checks.
    pub fn lenient() -> Validation {
        Validation {
            required_fields: false,
            values: false,
            user_defined_fields: true,
            unknown_fields: true,
            fields_outside_message: true,
            order: false,
            unknown_msg_types: true,
        }
    }
}

/// Why a message failed: the SessionRejectReason (373), the RefTagID (371) if a tag is at
/// fault, and the reason's text from the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{text} (SessionRejectReason {reason}, tag {tag:?})")]
pub struct Reject {
    /// SessionRejectReason.
    pub reason: u32,
    /// RefTagID.
    pub tag: Option<u32>,
    /// The reason's name in the specification.
    pub text: &'static str,
}

impl Reject {
    fn new(reason: u32, tag: Option<u32>) -> Reject {
        let text = match reason {
            0 => "Invalid tag number",
            1 => "Required tag missing",
            2 => "Tag not defined for this message type",
            3 => "Undefined Tag",
            4 => "Tag specified without a value",
            5 => "Value is incorrect (out of range) for this tag",
            6 => "Incorrect data format for value",
            11 => "Invalid MsgType",
            13 => "Tag appears more than once",
            14 => "Tag specified out of required order",
            15 => "Repeating group fields out of order",
            16 => "Incorrect NumInGroup count for repeating group",
            _ => "Other",
        };
        Reject { reason, tag, text }
    }
}

/// Tags seen at one level: a bitset for the common range, a scan above it.
struct Seen {
    low: [u64; 16],
    high: Vec<u32>,
}

impl Seen {
    fn new() -> Seen {
        Seen { low: [0; 16], high: Vec::new() }
    }

    /// Records `tag`; false if it was there already.
    fn insert(&mut self, tag: u32) -> bool {
        if tag < 1024 {
            let (word, bit) = ((tag / 64) as usize, 1u64 << (tag % 64));
            let fresh = self.low[word] & bit == 0;
            self.low[word] |= bit;
            fresh
        } else if self.high.contains(&tag) {
            false
        } else {
            self.high.push(tag);
            true
        }
    }

    fn contains(&self, tag: u32) -> bool {
        if tag < 1024 {
            self.low[(tag / 64) as usize] & (1u64 << (tag % 64)) != 0
        } else {
            self.high.contains(&tag)
        }
    }
}

/// Framing fields: never fields of the body, never "missing".
const FRAMING: [u32; 3] = [8, 9, 10];

impl Validation {
    /// Checks `message` against `dict`.
    pub fn check(&self, dict: &Dictionary, message: &Message) -> Result<(), Reject> {
        let Some(def) = dict.message(message.msg_type()) else {
            return if self.unknown_msg_types { Ok(()) } else { Err(Reject::new(11, Some(35))) };
        };
        let fields = message.fields();
        let mut seen = Seen::new();
        seen.insert(35);
        let mut in_body = false;
        let mut at = 1;
        while at < fields.len() {
            let field = fields[at];
            let tag = field.tag;
            let header = find(dict.header(), tag);
            let member = header.or_else(|| find(&def.members, tag)).or_else(|| find(dict.trailer(), tag));
            match member {
                Some(member) => {
                    if !seen.insert(tag) {
                        return Err(Reject::new(13, Some(tag)));
                    }
                    if header.is_some() && in_body && self.order {
                        return Err(Reject::new(14, Some(tag)));
                    }
                    in_body |= header.is_none();
                    self.value(dict, message, &field)?;
                    at += 1;
                    if let Member::Group(group) = member {
                        at = self.group(dict, message, group, at - 1)?;
                    }
                }
                None => {
                    self.outside(dict, tag)?;
                    in_body = true;
                    at += 1;
                }
            }
        }
        if self.required_fields {
            for members in [dict.header(), &def.members[..]] {
                required(members, &seen)?;
            }
        }
        Ok(())
    }

    /// A tag that is not a member where it stands: undefined (3) or defined elsewhere (2).
    fn outside(&self, dict: &Dictionary, tag: u32) -> Result<(), Reject> {
        if dict.field(tag).is_none() {
            let allowed = if tag >= 5000 { self.user_defined_fields } else { self.unknown_fields };
            if !allowed {
                return Err(Reject::new(3, Some(tag)));
            }
        } else if !self.fields_outside_message {
            return Err(Reject::new(2, Some(tag)));
        }
        Ok(())
    }

    /// Checks the group counted at `count_at`; returns the index after it.
    fn group(
        &self,
        dict: &Dictionary,
        m: &Message,
        group: &GroupDef,
        count_at: usize,
    ) -> Result<usize, Reject> {
        let fields = m.fields();
        let count = crate::codec::message::parse_uint(m.value(&fields[count_at]))
            .ok_or(Reject::new(6, Some(group.count_tag)))? as usize;
        let mut at = count_at + 1;
        let mut entries = 0;
        while fields.get(at).is_some_and(|f| f.tag == group.delimiter) {
            entries += 1;
            let mut seen = Seen::new();
            let mut last = 0;
            while let Some(field) = fields.get(at).copied() {
                let Some(position) = group.members.iter().position(|m| member_tag(m) == field.tag) else {
                    if group.tags.contains(&field.tag) {
                        return Err(Reject::new(15, Some(field.tag)));
                    }
                    break;
                };
                if !seen.insert(field.tag) {
                    if field.tag == group.delimiter {
                        break;
                    }
                    return Err(Reject::new(13, Some(field.tag)));
                }
                if self.order && position < last {
                    return Err(Reject::new(15, Some(field.tag)));
                }
                last = position;
                self.value(dict, m, &field)?;
                at += 1;
                if let Member::Group(nested) = &group.members[position] {
                    at = self.group(dict, m, nested, at - 1)?;
                }
            }
            if self.required_fields {
                required(&group.members, &seen)?;
            }
        }
        if entries != count {
            return Err(Reject::new(16, Some(group.count_tag)));
        }
        Ok(at)
    }

    /// Checks a value against its field's type and values.
    fn value(&self, dict: &Dictionary, m: &Message, field: &Field) -> Result<(), Reject> {
        if !self.values {
            return Ok(());
        }
        let Some(def) = dict.field(field.tag) else { return Ok(()) };
        let v = m.value(field);
        let well_formed = match def.kind {
            FieldType::Int => is_int(v),
            FieldType::Float => is_float(v),
            FieldType::Char => v.len() == 1,
            FieldType::Boolean => v == b"Y" || v == b"N",
            FieldType::UtcTimestamp => Timestamp::parse(v).is_some(),
            _ => true,
        };
        if !well_formed {
            return Err(Reject::new(6, Some(field.tag)));
        }
        if def.values.is_empty() {
            return Ok(());
        }
        let listed = |one: &[u8]| def.values.iter().any(|(e, _)| &**e == one);
        let ok = match def.kind {
            FieldType::MultipleValue => v.split(|&b| b == b' ').all(listed),
            _ => listed(v),
        };
        if ok {
            Ok(())
        } else {
            Err(Reject::new(5, Some(field.tag)))
        }
    }
}

/// The member `tag` names at this level (a field, or a group by its count).
fn find(members: &[Member], tag: u32) -> Option<&Member> {
    members.iter().find(|m| member_tag(m) == tag)
}

/// Every required member of `members` was seen.
fn required(members: &[Member], seen: &Seen) -> Result<(), Reject> {
    for m in members {
        let (tag, required) = match m {
            Member::Field { tag, required } => (*tag, *required),
            Member::Group(g) => (g.count_tag, g.required),
        };
        if required && !FRAMING.contains(&tag) && !seen.contains(tag) {
            return Err(Reject::new(1, Some(tag)));
        }
    }
    Ok(())
}

fn is_int(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn is_float(v: &[u8]) -> bool {
    let v = v.strip_prefix(b"-").unwrap_or(v);
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    (!int.is_empty() || !frac.is_empty()) && int.iter().chain(frac).all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{checksum, Decoded, Decoder};

    fn check(body: &str, validation: &Validation) -> Result<(), Reject> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let sum = checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        let mut decoder = Decoder::default();
        let Decoded::Message(message) = decoder.decode(&m) else { panic!("{body}") };
        validation.check(Dictionary::fix44(), &message)
    }

    const HEADER: &str = "49=CLIENT|56=BROKER|34=2|52=20261207-09:30:00.123|";

    fn nos(extra: &str) -> String {
        format!("35=D|{HEADER}11=ORD-1|{extra}55=ZERO|54=1|60=20261207-09:30:00.123|38=100|40=2|44=10.25|")
    }

    fn reason(r: Result<(), Reject>) -> Option<(u32, Option<u32>)> {
        r.err().map(|r| (r.reason, r.tag))
    }

    #[test]
    fn a_good_order_passes() {
        let v = Validation::default();
        assert_eq!(check(&nos(""), &v), Ok(()));
        assert_eq!(check(&nos("453=2|448=P1|447=D|452=1|448=P2|447=D|452=3|"), &v), Ok(()));
        // A counterparty's own tag passes by default.
        assert_eq!(check(&nos("9001=mine|"), &v), Ok(()));
    }

    #[test]
    fn each_rule_has_its_reason() {
        let v = Validation::default();
        let cases: [(String, (u32, Option<u32>)); 10] = [
            (nos("").replace("11=ORD-1|", ""), (1, Some(11))),
            (nos("").replace("49=CLIENT|", ""), (1, Some(49))),
            (nos("4999=x|"), (3, Some(4999))),
            (nos("108=30|"), (2, Some(108))),
            (nos("").replace("54=1", "54=Z"), (5, Some(54))),
            (nos("").replace("38=100", "38=1x0"), (6, Some(38))),
            (nos("1=A|1=B|"), (13, Some(1))),
            (format!("{}115=ON-BEHALF|", nos("")), (14, Some(115))),
            (nos("453=3|448=P1|447=D|448=P2|"), (16, Some(453))),
            (nos("453=1|447=D|448=P1|"), (16, Some(453))),
        ];
        for (body, want) in cases {
            assert_eq!(reason(check(&body, &v)), Some(want), "{body}");
        }
        assert_eq!(reason(check(&format!("35=ZZ|{HEADER}"), &v)), Some((11, Some(35))));
        assert_eq!(reason(check(&nos("453=1|448=P1|452=1|447=D|"), &v)), Some((15, Some(447))));
    }

    #[test]
    fn lenient_checks_structure_only() {
        let v = Validation::lenient();
        assert_eq!(check(&nos("4999=x|108=30|").replace("54=1", "54=Z"), &v), Ok(()));
        assert_eq!(reason(check(&nos("453=3|448=P1|"), &v)), Some((16, Some(453))));
    }
}
