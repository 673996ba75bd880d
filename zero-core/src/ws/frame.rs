//! WebSocket frames (RFC 6455 section 5): the header, masking, and the rules a header must
//! keep. Pure functions over bytes.

use super::WsError;

/// Opcodes (section 5.2).
pub const CONTINUATION: u8 = 0x0;
/// A text frame.
pub const TEXT: u8 = 0x1;
/// A binary frame.
pub const BINARY: u8 = 0x2;
/// A close frame.
pub const CLOSE: u8 = 0x8;
/// A ping frame.
pub const PING: u8 = 0x9;
/// A pong frame.
pub const PONG: u8 = 0xA;

/// The largest control frame payload (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Close status codes (section 7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// A protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A data type the endpoint does not accept (text frames where binary is required).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
    /// The header's own length in bytes.
    pub header_len: usize,
}

impl Header {
    /// Whether it is a control frame (close, ping, pong).
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Parses the header at the start of `buf`: `Ok(None)` if more bytes are needed. Checks what
/// the header alone can show: reserved bits clear (no extension is negotiated), a known
/// opcode, control frames unfragmented and at most 125 bytes, the minimal length encoding's
/// top bit clear.
pub fn parse(buf: &[u8]) -> Result<Option<Header>, WsError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol("a reserved bit is set (no extension was negotiated)"));
    }
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(WsError::Protocol("unknown opcode"));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(WsError::Protocol("the payload length's top bit is set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let header = Header { fin, opcode, mask: None, len, header_len: at };
    if header.is_control() && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
        return Err(WsError::Protocol("a control frame is fragmented or longer than 125 bytes"));
    }
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else { return Ok(None) };
        at += 4;
        Some(key.try_into().expect("4 bytes"))
    } else {
        None
    };
    Ok(Some(Header { mask, header_len: at, ..header }))
}

/// Appends a frame header for a final frame of `len` payload bytes, masked with `mask` if
/// given (a client's frames must be, a server's must not).
pub fn write_header(out: &mut Vec<u8>, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push(0x80 | opcode);
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(bit | len as u8),
        126..=0xFFFF => {
            out.push(bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// XORs `data` with the masking key, starting `offset` bytes into the payload (masking and
/// unmasking are the same operation).
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
    let shift = (offset % 4) as usize;
    let key = [key[shift], key[(shift + 1) % 4], key[(shift + 2) % 4], key[(shift + 3) % 4]];
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes(chunk.try_into().expect("4 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// Appends a whole frame: header and `payload`, masked with `mask` if given.
pub fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    write_header(out, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_at_every_length_encoding() {
        for len in [0usize, 1, 125, 126, 65_535, 65_536, 1 << 20] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                write_header(&mut out, BINARY, len, mask);
                let h = parse(&out).unwrap().unwrap();
                assert_eq!(
                    (h.fin, h.opcode, h.mask, h.len, h.header_len),
                    (true, BINARY, mask, len as u64, out.len())
                );
                for cut in 0..out.len() {
                    assert_eq!(parse(&out[..cut]).unwrap(), None, "{len} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn the_rfc_examples_parse() {
        // Section 5.7: a single-frame unmasked text message, and a masked one, "Hello".
        assert_eq!(parse(&[0x81, 0x05]).unwrap().unwrap().len, 5);
        let masked = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let h = parse(&masked).unwrap().unwrap();
        let mut payload = masked[h.header_len..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        // Unmasking in pieces gives the same bytes.
        let mut split = masked[h.header_len..].to_vec();
        let (a, b) = split.split_at_mut(3);
        apply_mask(a, h.mask.unwrap(), 0);
        apply_mask(b, h.mask.unwrap(), 3);
        assert_eq!(split, b"Hello");
    }

    #[test]
    fn bad_headers_are_refused() {
        assert!(parse(&[0xC2, 0x00]).is_err(), "RSV1 without an extension");
        assert!(parse(&[0x83, 0x00]).is_err(), "reserved opcode");
        assert!(parse(&[0x09, 0x00]).is_err(), "fragmented ping");
        assert!(parse(&[0x89, 126, 0, 126]).is_err(), "ping over 125 bytes");
        assert!(parse(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]).is_err(), "length top bit");
    }
}
