//! Writing a message straight into a send buffer: the header's BeginString, BodyLength and
//! MsgType first, the fields in the caller's order, and BodyLength and CheckSum filled in at
//! the end. Nothing is allocated beyond the buffer's own growth.

use std::ops::Range;

use super::decimal::Decimal;
use super::frame::{checksum, SOH};
use super::time::{Precision, Timestamp};

/// The BodyLength digits reserved up front; a body of another width is moved once at the end.
const RESERVED: usize = 3;

/// A message being written at the end of a buffer.
#[derive(Debug)]
pub struct Builder<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    /// Where BodyLength's digits are.
    length_at: usize,
}

impl<'b> Builder<'b> {
    /// Starts a message of `msg_type` at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>, begin_string: &[u8], msg_type: &[u8]) -> Builder<'b> {
        let start = buf.len();
        buf.extend_from_slice(b"8=");
        buf.extend_from_slice(begin_string);
        buf.extend_from_slice(b"\x019=");
        let length_at = buf.len();
        buf.extend_from_slice(&[b'0'; RESERVED]);
        buf.push(SOH);
        let mut b = Builder { buf, start, length_at };
        b.str(super::tag::MSG_TYPE, msg_type);
        b
    }

    /// Appends `tag=value`.
    pub fn str(&mut self, tag: u32, value: &[u8]) -> &mut Self {
        push_uint(self.buf, u64::from(tag));
        self.buf.push(b'=');
        self.buf.extend_from_slice(value);
        self.buf.push(SOH);
        self
    }

    /// Appends a non-negative integer.
    pub fn uint(&mut self, tag: u32, value: u64) -> &mut Self {
        push_uint(self.buf, u64::from(tag));
        self.buf.push(b'=');
        push_uint(self.buf, value);
        self.buf.push(SOH);
        self
    }

    /// Appends an integer.
    pub fn int(&mut self, tag: u32, value: i64) -> &mut Self {
        push_uint(self.buf, u64::from(tag));
        self.buf.push(b'=');
        if value < 0 {
            self.buf.push(b'-');
        }
        push_uint(self.buf, value.unsigned_abs());
        self.buf.push(SOH);
        self
    }

    /// Appends a one-character value.
    pub fn char(&mut self, tag: u32, value: u8) -> &mut Self {
        self.str(tag, &[value])
    }

    /// Appends a Boolean (`Y` or `N`).
    pub fn bool(&mut self, tag: u32, value: bool) -> &mut Self {
        self.char(tag, if value { b'Y' } else { b'N' })
    }

    /// Appends a decimal, exactly as given (`Decimal::new(1025, 2)` is `10.25`).
    pub fn decimal(&mut self, tag: u32, value: Decimal) -> &mut Self {
        push_uint(self.buf, u64::from(tag));
        self.buf.push(b'=');
        value.write(self.buf);
        self.buf.push(SOH);
        self
    }

    /// Appends a UTCTimestamp at `precision`.
    pub fn timestamp(&mut self, tag: u32, at: Timestamp, precision: Precision) -> &mut Self {
        push_uint(self.buf, u64::from(tag));
        self.buf.push(b'=');
        at.write(self.buf, precision);
        self.buf.push(SOH);
        self
    }

    /// Fills in BodyLength and appends CheckSum; returns where the message lies in the buffer.
    pub fn finish(self) -> Range<usize> {
        // The SOH after BodyLength, then the body.
        let rest = self.length_at + RESERVED;
        let body_len = self.buf.len() - rest - 1;
        let digits = count_digits(body_len as u64);
        if digits != RESERVED {
            // Rare (bodies under 100 or over 999 bytes): move the body to fit the digits.
            let old = self.buf.len();
            if digits > RESERVED {
                self.buf.resize(old + digits - RESERVED, 0);
                self.buf.copy_within(rest..old, rest + digits - RESERVED);
            } else {
                self.buf.copy_within(rest.., rest - (RESERVED - digits));
                self.buf.truncate(old - (RESERVED - digits));
            }
        }
        let mut n = body_len;
        for i in (0..digits).rev() {
            self.buf[self.length_at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let sum = checksum(&self.buf[self.start..]);
        self.buf.extend_from_slice(&[
            b'1',
            b'0',
            b'=',
            b'0' + sum / 100,
            b'0' + sum / 10 % 10,
            b'0' + sum % 10,
            SOH,
        ]);
        self.start..self.buf.len()
    }
}

fn count_digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// `n` in decimal, written into `buf`.
pub(crate) fn uint_text(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends `n` in decimal (tags and small numbers without a loop).
#[inline]
pub(crate) fn push_uint(buf: &mut Vec<u8>, n: u64) {
    let d = |x: u64| b'0' + (x % 10) as u8;
    match n {
        0..=9 => buf.push(d(n)),
        10..=99 => buf.extend_from_slice(&[d(n / 10), d(n)]),
        100..=999 => buf.extend_from_slice(&[d(n / 100), d(n / 10), d(n)]),
        1000..=9999 => buf.extend_from_slice(&[d(n / 1000), d(n / 100), d(n / 10), d(n)]),
        _ => buf.extend_from_slice(uint_text(n, &mut [0; 20])),
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{frame, Frame, Limits};
    use super::*;

    #[test]
    fn builds_a_message_that_frames() {
        for extra in [0usize, 10, 100, 1000, 5000] {
            let mut buf = b"leading".to_vec();
            let mut b = Builder::new(&mut buf, b"FIX.4.4", b"D");
            b.str(49, b"CLIENT").str(56, b"BROKER").uint(34, 215).str(58, &vec![b'x'; extra + 1]);
            b.decimal(44, Decimal::new(1025, 2))
                .decimal(38, Decimal::new(-5, 3))
                .int(99, -42)
                .bool(43, false);
            let range = b.finish();
            assert_eq!(range.start, 7);
            let m = &buf[range.clone()];
            let Frame::Message(f) = frame(m, &Limits::default()) else {
                panic!("{extra}: {:?}", String::from_utf8_lossy(m))
            };
            assert_eq!(f.len, m.len());
            let text = String::from_utf8_lossy(m).replace('\x01', "|");
            assert!(text.starts_with("8=FIX.4.4|9="), "{text}");
            assert!(text.contains("|35=D|49=CLIENT|56=BROKER|34=215|"), "{text}");
            assert!(text.contains("|44=10.25|38=-0.005|99=-42|43=N|10="), "{text}");
        }
    }
}
