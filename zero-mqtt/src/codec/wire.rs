//! The data representations of section 1.5: integers, variable byte integers, UTF-8 strings and
//! binary data, read from a borrowed buffer and written into a `Vec<u8>`.

use super::{DecodeError, ReasonCode};

/// The largest value a variable byte integer holds (four bytes).
pub const VARINT_MAX: u32 = 268_435_455;

/// Reads a variable byte integer from the start of `buf`: `Ok(None)` if more bytes are needed,
/// else the value and the bytes it took.
pub fn read_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value = 0u32;
    for (i, &byte) in buf.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        return Err(DecodeError::malformed("variable byte integer longer than 4 bytes"));
    }
    Ok(None)
}

/// How many bytes `value` takes as a variable byte integer.
pub fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` as a variable byte integer. Values above [`VARINT_MAX`] are a caller bug.
pub fn write_varint(out: &mut Vec<u8>, mut value: u32) {
    debug_assert!(value <= VARINT_MAX, "variable byte integer out of range");
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a two-byte length and the bytes (a UTF-8 string or binary data).
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= usize::from(u16::MAX), "string or binary data over 65,535 bytes");
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Checks the UTF-8 rules of section 1.5.4 beyond well-formedness: no U+0000.
pub fn valid_mqtt_str(s: &str) -> bool {
    !s.as_bytes().contains(&0)
}

/// A cursor over a packet's bytes; every read checks bounds and reports a malformed packet
/// when the packet ends early.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::malformed(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Reads a byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a big-endian two-byte integer.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian four-byte integer.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a variable byte integer.
    pub fn varint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        match read_varint(self.buf)? {
            Some((value, used)) => {
                self.buf = &self.buf[used..];
                Ok(value)
            }
            None => Err(DecodeError::malformed(what)),
        }
    }

    /// Reads binary data (two-byte length, then the bytes).
    pub fn binary(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// Reads a UTF-8 string: well-formed and without U+0000, else a malformed packet.
    pub fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = self.binary(what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) if valid_mqtt_str(s) => Ok(s),
            _ => Err(DecodeError::new(ReasonCode::MALFORMED_PACKET, what, "is not valid MQTT UTF-8")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries() {
        for (value, bytes) in [
            (0u32, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (VARINT_MAX, &[0xff, 0xff, 0xff, 0x7f]),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out, bytes);
            assert_eq!(varint_len(value), bytes.len());
            assert_eq!(read_varint(bytes).unwrap(), Some((value, bytes.len())));
            assert_eq!(read_varint(&bytes[..bytes.len() - 1]).unwrap(), None);
        }
        let err = read_varint(&[0xff, 0xff, 0xff, 0xff, 0x01]).unwrap_err();
        assert_eq!(err.reason, ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn strings_reject_nul_and_bad_utf8() {
        assert!(Reader::new(&[0, 3, b'a', 0, b'b']).str("topic").is_err());
        assert!(Reader::new(&[0, 2, 0xc3, 0x28]).str("topic").is_err());
        assert!(Reader::new(&[0, 3, 0xed, 0xa0, 0x80]).str("topic").is_err(), "surrogate U+D800");
        assert!(Reader::new(&[0, 5, b'a']).str("topic").is_err(), "short");
        assert_eq!(Reader::new(&[0, 2, 0xc3, 0xa9]).str("topic").unwrap(), "é");
    }
}
