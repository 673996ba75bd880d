//! Framing: where a FIX message starts and ends in a byte stream.
//!
//! A message is `8=BeginString<SOH>9=BodyLength<SOH>` + `BodyLength` bytes of body (from the
//! byte after that SOH up to and including the SOH before the trailer) + `10=NNN<SOH>`, where
//! NNN is the sum of every byte before `10=`, modulo 256, in three digits. A frame that breaks
//! any of this is *garbled*: it is reported with how many bytes to skip, up to the next
//! `8=FIX` (where the next message may start), and the stream goes on from there.

use std::ops::Range;

/// The field separator.
pub const SOH: u8 = 0x01;

/// Where the next message may start after a garbled one.
const RESYNC: &[u8] = b"8=FIX";

/// The most digits accepted in BodyLength (up to 99,999,999 bytes; the limit is
/// [`Limits::max_message`]).
const MAX_LENGTH_DIGITS: usize = 8;

/// How large a message may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes one message may take, header and trailer included.
    pub max_message: usize,
}

impl Default for Limits {
    /// 1 MiB: far above any order-entry message, low enough that a bad BodyLength cannot
    /// make a session buffer much.
    fn default() -> Limits {
        Limits { max_message: 1 << 20 }
    }
}

/// A whole message found at the start of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// Its length in bytes (from `8=` to the SOH after the checksum).
    pub len: usize,
    /// The BeginString value (e.g. `FIX.4.4`).
    pub begin_string: Range<usize>,
    /// The body: from the field after BodyLength up to and including the SOH before `10=`.
    pub body: Range<usize>,
}

/// Why the bytes at the start of the input are not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Garbled {
    /// It does not start with `8=`, or BeginString is empty or unterminated.
    #[error("the message does not start with 8=BeginString")]
    BeginString,
    /// `9=` does not follow BeginString, or its value is not a number.
    #[error("BodyLength (9) is missing or not a number")]
    BodyLength,
    /// BodyLength is over [`Limits::max_message`].
    #[error("BodyLength (9) is over the limit")]
    TooLong,
    /// BodyLength does not end where `10=` starts.
    #[error("BodyLength (9) does not end at the checksum")]
    BodyLengthMismatch,
    /// The trailer is not `10=NNN<SOH>`.
    #[error("the checksum field (10) is malformed")]
    Trailer,
    /// The checksum does not match the bytes.
    #[error("the checksum (10) is {got}, the bytes sum to {want}")]
    CheckSum {
        /// What the message says.
        got: u8,
        /// What its bytes sum to.
        want: u8,
    },
}

/// What the start of the input holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message.
    Message(Framed),
    /// Not enough bytes yet to tell.
    Partial,
    /// A garbled message: skip `skip` bytes (up to where the next message may start) and try
    /// again.
    Garbled {
        /// Why.
        why: Garbled,
        /// How many bytes to drop.
        skip: usize,
    },
}

/// Finds the message at the start of `input`.
pub fn frame(input: &[u8], limits: &Limits) -> Frame {
    match try_frame(input, limits) {
        Ok(Some(framed)) => Frame::Message(framed),
        Ok(None) => Frame::Partial,
        Err(why) => Frame::Garbled { why, skip: resync(input) },
    }
}

/// How many bytes to drop after a garbled start: up to the next `8=FIX`, or everything but
/// a tail that could be the start of one.
pub fn resync(input: &[u8]) -> usize {
    let from = 1.min(input.len());
    if let Some(at) = find(&input[from..], RESYNC) {
        return from + at;
    }
    // Keep the longest tail that is a prefix of `8=FIX`: the rest of it may be on its way.
    let keep = (1..RESYNC.len().min(input.len() - from + 1))
        .rev()
        .find(|&n| input.ends_with(&RESYNC[..n]))
        .unwrap_or(0);
    input.len() - keep
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn try_frame(input: &[u8], limits: &Limits) -> Result<Option<Framed>, Garbled> {
    // 8=BeginString<SOH>
    match input {
        [] | [b'8'] => return Ok(None),
        [b'8', b'=', ..] => {}
        _ => return Err(Garbled::BeginString),
    }
    let Some(soh) = input[2..].iter().position(|&b| b == SOH).map(|i| i + 2) else {
        // A BeginString is a few bytes (FIX.4.4, FIXT.1.1): no SOH in 16 is garbage.
        return if input.len() > 16 { Err(Garbled::BeginString) } else { Ok(None) };
    };
    if soh == 2 {
        return Err(Garbled::BeginString);
    }
    let begin_string = 2..soh;
    // 9=BodyLength<SOH>
    let mut at = soh + 1;
    match input.get(at..at + 2) {
        None if input.len() == at || input[at..] == [b'9'][..] => return Ok(None),
        Some([b'9', b'=']) => {}
        _ => return Err(Garbled::BodyLength),
    }
    at += 2;
    let mut body_len = 0usize;
    let digits_at = at;
    loop {
        match input.get(at) {
            None => return Ok(None),
            Some(&SOH) if at > digits_at => break,
            Some(&d @ b'0'..=b'9') if at - digits_at < MAX_LENGTH_DIGITS => {
                body_len = body_len * 10 + usize::from(d - b'0');
                at += 1;
            }
            Some(_) => return Err(Garbled::BodyLength),
        }
    }
    let body_start = at + 1;
    let trailer = body_start + body_len;
    let len = trailer + 7;
    if len > limits.max_message {
        return Err(Garbled::TooLong);
    }
    if input.len() < len {
        // What is there already must still be able to become this message.
        return Ok(None);
    }
    // The body ends with a SOH and the trailer is 10=NNN<SOH>.
    if body_len == 0 || input[trailer - 1] != SOH || &input[trailer..trailer + 3] != b"10=" {
        return Err(Garbled::BodyLengthMismatch);
    }
    let digits = &input[trailer + 3..trailer + 6];
    if input[trailer + 6] != SOH || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Garbled::Trailer);
    }
    let got = digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let want = checksum(&input[..trailer]);
    if got != u32::from(want) {
        return Err(Garbled::CheckSum { got: got as u8, want });
    }
    Ok(Some(Framed { len, begin_string, body: body_start..trailer }))
}

/// The FIX checksum of `bytes`: their sum modulo 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    // A plain sum the compiler vectorises; a u32 cannot overflow below 16 MiB.
    bytes.iter().fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b))) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with a correct BodyLength and checksum around `body` (fields joined by `|`).
    pub(crate) fn message(begin: &str, body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8={begin}\x019={}\x01{body}", body.len()).into_bytes();
        let sum = checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        m
    }

    #[test]
    fn frames_a_message() {
        let m = message("FIX.4.4", "35=0|49=A|56=B|34=1|52=20261207-01:02:03.456|");
        let Frame::Message(f) = frame(&m, &Limits::default()) else { panic!() };
        assert_eq!(f.len, m.len());
        assert_eq!(&m[f.begin_string], b"FIX.4.4");
        assert!(m[f.body].starts_with(b"35=0\x01"));
    }

    #[test]
    fn every_prefix_is_partial() {
        let m = message("FIX.4.2", "35=A|49=A|56=B|34=1|98=0|108=30|");
        for cut in 0..m.len() {
            assert_eq!(frame(&m[..cut], &Limits::default()), Frame::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn a_bad_checksum_is_skipped_up_to_the_next_message() {
        let mut bad = message("FIX.4.4", "35=0|");
        let at = bad.len() - 2;
        bad[at] = if bad[at] == b'9' { b'0' } else { bad[at] + 1 };
        let good = message("FIX.4.4", "35=1|112=x|");
        let stream = [&bad[..], &good[..]].concat();
        match frame(&stream, &Limits::default()) {
            Frame::Garbled { why: Garbled::CheckSum { .. }, skip } => assert_eq!(skip, bad.len()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_keeps_a_tail_that_may_start_a_message() {
        assert_eq!(resync(b"xxxx8=FI"), 4);
        assert_eq!(resync(b"xxxx"), 4);
        assert_eq!(resync(b"8=FIX"), 5);
        assert_eq!(resync(b"x8=FIX.4.4"), 1);
    }

    #[test]
    fn body_length_must_end_at_the_trailer() {
        let m = message("FIX.4.4", "35=0|");
        let text = String::from_utf8(m).unwrap().replace("9=5\x01", "9=4\x01");
        assert!(matches!(
            frame(text.as_bytes(), &Limits::default()),
            Frame::Garbled { why: Garbled::BodyLengthMismatch, .. }
        ));
    }

    #[test]
    fn too_long_is_refused_before_it_arrives() {
        let limits = Limits { max_message: 100 };
        assert!(matches!(
            frame(b"8=FIX.4.4\x019=5000\x0135=", &limits),
            Frame::Garbled { why: Garbled::TooLong, .. }
        ));
    }

    #[test]
    fn checksum_matches_a_plain_sum() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in [0, 1, 63, 64, 65, 200, 1000] {
            let plain = bytes[..n].iter().fold(0u32, |s, &b| s + u32::from(b)) as u8;
            assert_eq!(checksum(&bytes[..n]), plain);
        }
    }
}
