//! A received message, parsed in place: its fields as borrowed slices in wire order, the
//! header fields found in O(1), repeating groups walked on demand.

use super::frame::{self, Frame, Garbled, Limits, SOH};
use super::tag;

/// One field of a message: its tag and where its value lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The tag number.
    pub tag: u32,
    start: u32,
    len: u32,
}

/// How many header fields are looked up in O(1) ([`header_slot`] names them).
const HEADER_SLOTS: usize = 12;

/// The slot in [`Message::get`]'s O(1) index of a header field: MsgSeqNum, the CompIDs,
/// SendingTime, the resend flags, OrigSendingTime, the SubIDs, ApplVerID, OnBehalfOfCompID and
/// DeliverToCompID.
fn header_slot(tag: u32) -> Option<usize> {
    // A match compiles to a jump table: no scan per field.
    Some(match tag {
        tag::MSG_SEQ_NUM => 0,
        tag::SENDER_COMP_ID => 1,
        tag::TARGET_COMP_ID => 2,
        tag::SENDING_TIME => 3,
        tag::POSS_DUP_FLAG => 4,
        tag::POSS_RESEND => 5,
        tag::ORIG_SENDING_TIME => 6,
        tag::SENDER_SUB_ID => 7,
        tag::TARGET_SUB_ID => 8,
        tag::APPL_VER_ID => 9,
        tag::ON_BEHALF_OF_COMP_ID => 10,
        tag::DELIVER_TO_COMP_ID => 11,
        _ => return None,
    })
}

/// "Not present" in the header index.
const ABSENT: u16 = u16::MAX;

/// Why a message that framed correctly could not be read: what a session Reject says
/// (SessionRejectReason, and RefTagID when there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A field without `=`, or a tag that is not a positive number.
    #[error("invalid tag number")]
    InvalidTag,
    /// A tag with an empty value.
    #[error("tag {0} specified without a value")]
    EmptyValue(u32),
    /// A data field's length field does not match it.
    #[error("the length field before tag {0} does not match its value")]
    DataLength(u32),
    /// More fields than the decoder takes in one message.
    #[error("too many fields")]
    TooManyFields,
}

impl Malformed {
    /// The SessionRejectReason (373) for it.
    pub fn reject_reason(&self) -> u32 {
        match self {
            Malformed::InvalidTag => 0,
            Malformed::EmptyValue(_) => 4,
            Malformed::DataLength(_) => 6,
            Malformed::TooManyFields => 99,
        }
    }

    /// The RefTagID (371) for it, if a tag is at fault.
    pub fn ref_tag(&self) -> Option<u32> {
        match self {
            Malformed::EmptyValue(t) | Malformed::DataLength(t) => Some(*t),
            _ => None,
        }
    }
}

/// What [`Decoder::decode`] found at the start of its input.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A message; it took `len` bytes of the input.
    Message(Message<'a>),
    /// A message that framed correctly (its checksum holds) but whose fields could not be
    /// read: the session rejects it (it took `len` bytes; `seq_num` if that much was read).
    Malformed {
        /// Why.
        why: Malformed,
        /// Its MsgSeqNum, if it was readable.
        seq_num: Option<u64>,
        /// How many bytes it took.
        len: usize,
    },
    /// Not enough bytes yet.
    Partial,
    /// Garbled: skip `skip` bytes and go on (the session ignores it, as the spec says).
    Garbled {
        /// Why.
        why: Garbled,
        /// How many bytes to drop.
        skip: usize,
    },
}

/// The pairs of (length field, data field) whose data may hold any byte, SOH included.
#[derive(Debug, Clone)]
pub struct DataFields {
    pairs: Vec<(u32, u32)>,
    /// Which tags under 1024 are length fields: one bit test per field, not a scan.
    lengths: [u64; 16],
}

impl Default for DataFields {
    /// The standard pairs of FIX 4.2 to 5.0 SP2.
    fn default() -> DataFields {
        let mut d = DataFields { pairs: Vec::new(), lengths: [0; 16] };
        for (length, data) in [
            (90, 91),
            (93, 89),
            (95, 96),
            (212, 213),
            (348, 349),
            (350, 351),
            (352, 353),
            (354, 355),
            (356, 357),
            (358, 359),
            (360, 361),
            (362, 363),
            (364, 365),
            (445, 446),
            (618, 619),
            (621, 622),
        ] {
            d.add(length, data);
        }
        d
    }
}

impl DataFields {
    /// Adds a pair (a custom dictionary's LENGTH and DATA fields).
    pub fn add(&mut self, length: u32, data: u32) {
        if !self.pairs.contains(&(length, data)) {
            self.pairs.push((length, data));
            if length < 1024 {
                self.lengths[(length / 64) as usize] |= 1 << (length % 64);
            }
        }
    }

    fn data_for(&self, length: u32) -> Option<u32> {
        if length < 1024 && self.lengths[(length / 64) as usize] & (1 << (length % 64)) == 0 {
            return None;
        }
        self.pairs.iter().find(|p| p.0 == length).map(|p| p.1)
    }
}

/// Tags below this are classified by one table lookup per field ([`Decoder`]'s `marks`).
const MARKED: usize = 1024;

/// In `marks`: the tag is a data field's length field.
const LENGTH: u8 = 0x80;

/// Reads messages out of a byte stream. It keeps one field table that every message reuses,
/// so decoding allocates nothing once the table has grown to the largest message seen.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    data: DataFields,
    /// Per tag below [`MARKED`]: its header slot + 1 (0: none), and [`LENGTH`]. One load tells
    /// the common field (neither) from the few that need more work.
    marks: Box<[u8; MARKED]>,
    fields: Vec<Field>,
    /// The last message read: its length, BeginString and header index.
    last: (usize, std::ops::Range<usize>, [u16; HEADER_SLOTS]),
    /// The most fields one message may have.
    max_fields: usize,
}

impl Default for Decoder {
    /// The default limits and the standard data fields.
    fn default() -> Decoder {
        Decoder::new(Limits::default(), DataFields::default())
    }
}

impl Decoder {
    /// A decoder with these limits and data fields.
    pub fn new(limits: Limits, data: DataFields) -> Decoder {
        let mut marks = Box::new([0u8; MARKED]);
        for (tag, mark) in marks.iter_mut().enumerate() {
            let tag = tag as u32;
            *mark = header_slot(tag).map_or(0, |slot| slot as u8 + 1);
            if data.data_for(tag).is_some() {
                *mark |= LENGTH;
            }
        }
        Decoder {
            limits,
            data,
            marks,
            fields: Vec::with_capacity(64),
            last: (0, 0..0, [ABSENT; HEADER_SLOTS]),
            max_fields: 10_000,
        }
    }

    /// The message at the start of `input`.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<'a> {
        let framed = match frame::frame(input, &self.limits) {
            Frame::Message(f) => f,
            Frame::Partial => return Decoded::Partial,
            Frame::Garbled { why, skip } => return Decoded::Garbled { why, skip },
        };
        // The body, up to and including its last SOH: every field read lies in it.
        let body = &input[..framed.body.end];
        self.fields.clear();
        let mut header = [ABSENT; HEADER_SLOTS];
        let mut seq_num = None;
        let mut at = framed.body.start;
        let mut data_tag = None;
        // Every field takes at least four bytes (`1=x<SOH>`): only a body that could hold more
        // than the limit needs counting.
        let counted = framed.body.len() / 4 >= self.max_fields;
        let malformed = |why, seq_num| Decoded::Malformed { why, seq_num, len: framed.len };
        while at < body.len() {
            let field = match read_field(body, at, data_tag.take()) {
                Ok(f) => f,
                Err(why) => return malformed(why, seq_num),
            };
            if counted && self.fields.len() >= self.max_fields {
                return malformed(Malformed::TooManyFields, seq_num);
            }
            let mark = if (field.tag as usize) < MARKED { self.marks[field.tag as usize] } else { 0 };
            if mark != 0 {
                let value = &body[field.start as usize..(field.start + field.len) as usize];
                if mark & LENGTH != 0 {
                    let data = self.data.data_for(field.tag).expect("marked as a length field");
                    match parse_uint(value) {
                        Some(n) if n <= body.len() as u64 => data_tag = Some((data, n as usize)),
                        _ => return malformed(Malformed::DataLength(data), seq_num),
                    }
                }
                let slot = usize::from(mark & !LENGTH);
                if slot != 0 && header[slot - 1] == ABSENT {
                    header[slot - 1] = self.fields.len() as u16;
                    if field.tag == tag::MSG_SEQ_NUM {
                        seq_num = parse_uint(value);
                    }
                }
            }
            at = (field.start + field.len) as usize + 1;
            self.fields.push(field);
        }
        if let Some((data, _)) = data_tag {
            return malformed(Malformed::DataLength(data), seq_num);
        }
        // MsgType must be the first field of the body.
        if self.fields.first().is_none_or(|f| f.tag != tag::MSG_TYPE) {
            return Decoded::Garbled { why: Garbled::BodyLength, skip: framed.len };
        }
        self.last = (framed.len, framed.begin_string, header);
        Decoded::Message(self.message(input))
    }

    /// The message [`Decoder::decode`] last returned, again, from the same `input`: a view
    /// rebuilt without reading anything twice (for a caller that must let go of the first
    /// one before it can hand the message on).
    pub fn message<'a>(&'a self, input: &'a [u8]) -> Message<'a> {
        let (len, begin_string, header) = &self.last;
        Message {
            bytes: &input[..*len],
            begin_string: &input[begin_string.clone()],
            fields: &self.fields,
            header: *header,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The index of the first byte of `word` (little-endian) equal to `byte`: the lowest byte the
/// zero-byte trick flags is exact (borrows only run upwards from it).
#[inline(always)]
fn first_in_word(word: u64, byte: u8) -> Option<usize> {
    let x = word ^ (ONES * u64::from(byte));
    let found = x.wrapping_sub(ONES) & !x & HIGHS;
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

/// Reads the field at `at` of `body` (which ends with a SOH); `data`: it must be this data
/// field, of this length.
#[inline(always)]
fn read_field(body: &[u8], at: usize, data: Option<(u32, usize)>) -> Result<Field, Malformed> {
    let rest = &body[at..];
    // The tag: one to nine digits, no leading zero, then `=`; its `=` is found eight bytes at
    // a time.
    let eq = match rest.get(..8) {
        Some(word) => first_in_word(u64::from_le_bytes(word.try_into().expect("eight bytes")), b'='),
        None => None,
    }
    .or_else(|| rest.iter().take(10).position(|&c| c == b'='))
    .ok_or(Malformed::InvalidTag)?;
    let digits = &rest[..eq];
    if digits.is_empty() || digits.len() > 9 || digits[0] == b'0' {
        return Err(Malformed::InvalidTag);
    }
    let mut tag = 0u32;
    for &c in digits {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return Err(Malformed::InvalidTag);
        }
        tag = tag * 10 + u32::from(digit);
    }
    let value = &rest[eq + 1..];
    let len = match data {
        Some((want, len)) => {
            if tag != want || value.get(len) != Some(&SOH) {
                return Err(Malformed::DataLength(want));
            }
            len
        }
        None => match find_soh(value) {
            Some(0) => return Err(Malformed::EmptyValue(tag)),
            Some(n) => n,
            None => return Err(Malformed::InvalidTag),
        },
    };
    Ok(Field { tag, start: (at + eq + 1) as u32, len: len as u32 })
}

/// The first SOH in `s`, eight bytes at a time.
#[inline(always)]
fn find_soh(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        if let Some(i) = first_in_word(u64::from_le_bytes(chunk.try_into().expect("eight bytes")), SOH) {
            return Some(at + i);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == SOH).map(|p| at + p)
}

/// A non-negative integer value (no sign, digits only).
pub fn parse_uint(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    value.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// An integer value (`-?digits`).
pub fn parse_int(value: &[u8]) -> Option<i64> {
    match value.split_first() {
        Some((b'-', digits)) => parse_uint(digits).and_then(|n| i64::try_from(n).ok()).map(|n| -n),
        _ => parse_uint(value).and_then(|n| i64::try_from(n).ok()),
    }
}

/// A message, borrowed from the receive buffer until the decoder reads the next one.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    begin_string: &'a [u8],
    fields: &'a [Field],
    header: [u16; HEADER_SLOTS],
}

impl<'a> Message<'a> {
    /// The whole message, as it arrived.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// BeginString (8).
    pub fn begin_string(&self) -> &'a [u8] {
        self.begin_string
    }

    /// MsgType (35).
    pub fn msg_type(&self) -> &'a [u8] {
        self.value(&self.fields[0])
    }

    /// The value of `field`.
    pub fn value(&self, field: &Field) -> &'a [u8] {
        &self.bytes[field.start as usize..(field.start + field.len) as usize]
    }

    /// The body's fields in wire order (from MsgType on; BeginString, BodyLength and CheckSum
    /// are not fields here).
    pub fn fields(&self) -> &'a [Field] {
        self.fields
    }

    /// The first value of `tag`: O(1) for the header fields (MsgSeqNum, the CompIDs, SendingTime, the
    /// resend flags, OrigSendingTime, the SubIDs, ApplVerID, OnBehalfOf- and DeliverToCompID),
    /// else a scan.
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        match header_slot(tag) {
            Some(slot) => {
                let i = self.header[slot];
                (i != ABSENT).then(|| self.value(&self.fields[usize::from(i)]))
            }
            None => self.fields.iter().find(|f| f.tag == tag).map(|f| self.value(f)),
        }
    }

    /// The first value of `tag` as a non-negative integer.
    pub fn get_uint(&self, tag: u32) -> Option<u64> {
        self.get(tag).and_then(parse_uint)
    }

    /// MsgSeqNum (34).
    pub fn seq_num(&self) -> Option<u64> {
        self.get_uint(tag::MSG_SEQ_NUM)
    }

    /// PossDupFlag (43) is `Y`.
    pub fn poss_dup(&self) -> bool {
        self.get(tag::POSS_DUP_FLAG) == Some(b"Y")
    }

    /// The entries of the repeating group whose count is `count_tag`: each entry starts with
    /// `delimiter` and holds the fields up to the next `delimiter` or the first field that is
    /// not in `members` (the group's tags, nested groups' included). `None` if the count is
    /// absent; an error if the entries do not match the count.
    pub fn group(
        &self,
        count_tag: u32,
        delimiter: u32,
        members: &[u32],
    ) -> Option<Result<Group<'a>, GroupError>> {
        let at = self.fields.iter().position(|f| f.tag == count_tag)?;
        Some(self.group_at(at, delimiter, members))
    }

    /// [`Message::group`] for the count field at index `at` of [`Message::fields`] (a nested
    /// group's count, inside an entry).
    pub fn group_at(&self, at: usize, delimiter: u32, members: &[u32]) -> Result<Group<'a>, GroupError> {
        let count_tag = self.fields[at].tag;
        let count = parse_uint(self.value(&self.fields[at])).ok_or(GroupError::Count(count_tag))? as usize;
        let mut starts = Vec::new();
        let mut i = at + 1;
        while let Some(f) = self.fields.get(i) {
            if f.tag == delimiter {
                starts.push(i);
            } else if starts.is_empty() || !members.contains(&f.tag) {
                break;
            }
            i += 1;
        }
        if starts.len() != count {
            return Err(GroupError::Entries { count_tag, declared: count, found: starts.len() });
        }
        if self.fields.get(at + 1).is_some_and(|f| f.tag != delimiter) && count > 0 {
            return Err(GroupError::Delimiter { count_tag, delimiter });
        }
        Ok(Group { message: *self, starts, end: i })
    }
}

/// The entries of a repeating group.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    message: Message<'a>,
    /// The index in the message's fields where each entry starts.
    starts: Vec<usize>,
    /// The index after the group's last field.
    end: usize,
}

impl<'a> Group<'a> {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Entry `i`'s fields.
    pub fn entry(&self, i: usize) -> &'a [Field] {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.end);
        &self.message.fields()[self.starts[i]..end]
    }

    /// The first value of `tag` in entry `i`.
    pub fn get(&self, i: usize, tag: u32) -> Option<&'a [u8]> {
        self.entry(i).iter().find(|f| f.tag == tag).map(|f| self.message.value(f))
    }
}

/// A repeating group that does not match its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The count is not a number.
    #[error("the count of group {0} is not a number")]
    Count(u32),
    /// The entries found differ from the count (SessionRejectReason 16).
    #[error("group {count_tag} declares {declared} entries, {found} found")]
    Entries {
        /// The group's count tag.
        count_tag: u32,
        /// What the count says.
        declared: usize,
        /// What is there.
        found: usize,
    },
    /// The first field after the count is not the delimiter (SessionRejectReason 15).
    #[error("group {count_tag} does not start with its delimiter {delimiter}")]
    Delimiter {
        /// The group's count tag.
        count_tag: u32,
        /// The tag every entry starts with.
        delimiter: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::super::frame::checksum;
    use super::*;

    fn message(body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let sum = checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        m
    }

    const NOS: &str = "35=D|49=CLIENT|56=BROKER|34=215|52=20261207-09:30:00.123|11=ORD-1|21=1|55=ZERO|\
                       54=1|60=20261207-09:30:00.123|38=100|40=2|44=10.25|59=0|";

    #[test]
    fn fields_and_header_lookups() {
        let bytes = message(NOS);
        let mut d = Decoder::default();
        let Decoded::Message(m) = d.decode(&bytes) else { panic!() };
        assert_eq!(m.begin_string(), b"FIX.4.4");
        assert_eq!(m.msg_type(), b"D");
        assert_eq!(m.seq_num(), Some(215));
        assert_eq!(m.get(tag::SENDER_COMP_ID), Some(&b"CLIENT"[..]));
        assert_eq!(m.get(44), Some(&b"10.25"[..]));
        assert_eq!(m.get(9999), None);
        assert_eq!(m.fields().len(), 14);
        assert!(!m.poss_dup());
    }

    #[test]
    fn data_fields_may_hold_soh() {
        let bytes = message("35=B|148=x|95=5|96=a\x01b=c|10000=z|");
        let mut d = Decoder::default();
        let Decoded::Message(m) = d.decode(&bytes) else { panic!() };
        assert_eq!(m.get(96), Some(&b"a\x01b=c"[..]));
        assert_eq!(m.get(10000), Some(&b"z"[..]));
        let wrong = message("35=B|95=7|96=a\x01b=c|");
        assert!(matches!(
            Decoder::default().decode(&wrong),
            Decoded::Malformed { why: Malformed::DataLength(96), .. }
        ));
    }

    #[test]
    fn malformed_fields_are_session_rejects() {
        for (body, why) in [
            ("35=D|34=7|55=|", Malformed::EmptyValue(55)),
            ("35=D|34=7|x5=a|", Malformed::InvalidTag),
            ("35=D|34=7|055=a|", Malformed::InvalidTag),
            ("35=D|34=7|55a|", Malformed::InvalidTag),
        ] {
            match Decoder::default().decode(&message(body)) {
                Decoded::Malformed { why: got, seq_num, .. } => {
                    assert_eq!(got, why, "{body}");
                    assert_eq!(seq_num, Some(7));
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn find_soh_finds_the_first_at_every_position() {
        for len in 0..40 {
            for at in 0..=len {
                let mut s = vec![b'x'; len];
                if at < len {
                    s[at] = SOH;
                    if at + 1 < len {
                        s[at + 1] = SOH;
                    }
                }
                assert_eq!(find_soh(&s), (at < len).then_some(at), "len {len}, at {at}");
            }
        }
    }

    #[test]
    fn msg_type_must_come_first() {
        let bytes = message("49=A|35=0|");
        assert!(
            matches!(Decoder::default().decode(&bytes), Decoded::Garbled { skip, .. } if skip == bytes.len())
        );
    }

    #[test]
    fn groups_nest_and_are_counted() {
        // NoPartyIDs (453) with a nested NoPartySubIDs (802).
        let bytes = message("35=D|453=2|448=P1|447=D|452=1|802=1|523=S|803=1|448=P2|447=D|452=3|55=X|");
        let mut d = Decoder::default();
        let Decoded::Message(m) = d.decode(&bytes) else { panic!() };
        let parties = m.group(453, 448, &[448, 447, 452, 802, 523, 803]).unwrap().unwrap();
        assert_eq!(parties.len(), 2);
        assert_eq!(parties.get(1, 448), Some(&b"P2"[..]));
        assert_eq!(parties.get(0, 523), Some(&b"S"[..]));
        assert_eq!(m.get(55), Some(&b"X"[..]));
        let bad = message("35=D|453=3|448=P1|448=P2|55=X|");
        let mut d = Decoder::default();
        let Decoded::Message(m) = d.decode(&bad) else { panic!() };
        assert_eq!(
            m.group(453, 448, &[448]).unwrap().unwrap_err(),
            GroupError::Entries { count_tag: 453, declared: 3, found: 2 }
        );
    }
}
