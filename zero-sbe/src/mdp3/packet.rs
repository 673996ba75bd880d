//! An MDP 3.0 packet (CME "Binary Packet Header"): MsgSeqNum (u32) and SendingTime (u64, ns
//! since the epoch), then messages, each after its size (u16, the size field included).

/// The packet header's size.
pub const HEADER: usize = 12;

/// Why a packet does not frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than its header.
    #[error("a packet of {0} bytes is shorter than its 12-byte header")]
    Short(usize),
    /// A message size below 2 or past the packet's end.
    #[error("the message at byte {0} has a size that does not fit the packet")]
    BadSize(usize),
}

/// A packet, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// MsgSeqNum.
    pub seq: u32,
    /// SendingTime.
    pub sending_time: u64,
    body: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Reads a packet's header; its messages are read by [`Packet::messages`].
    pub fn parse(bytes: &'a [u8]) -> Result<Packet<'a>, FrameError> {
        let head = bytes.get(..HEADER).ok_or(FrameError::Short(bytes.len()))?;
        Ok(Packet {
            seq: u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
            sending_time: u64::from_le_bytes(head[4..12].try_into().expect("8 bytes")),
            body: &bytes[HEADER..],
        })
    }

    /// Its messages (each without its size field), in order; a bad size ends them with an
    /// error.
    pub fn messages(&self) -> Messages<'a> {
        Messages { body: self.body, at: 0 }
    }
}

/// The messages of a packet.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8], FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.body.len() {
            return None;
        }
        let at = self.at;
        let size = self.body.get(at..at + 2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
        match size.filter(|&s| s >= 2 && at + s <= self.body.len()) {
            Some(size) => {
                self.at = at + size;
                Some(Ok(&self.body[at + 2..at + size]))
            }
            None => {
                self.at = self.body.len();
                Some(Err(FrameError::BadSize(HEADER + at)))
            }
        }
    }
}

/// Writes a packet: the header, then each message after its size.
pub fn write(seq: u32, sending_time: u64, messages: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&sending_time.to_le_bytes());
    for m in messages {
        let size = u16::try_from(m.len() + 2).expect("a message fits a u16 size");
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_frame_and_refuse_bad_sizes() {
        let mut bytes = Vec::new();
        write(7, 99, &[b"abc", b"", b"defg"], &mut bytes);
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!((p.seq, p.sending_time), (7, 99));
        let m: Vec<&[u8]> = p.messages().map(Result::unwrap).collect();
        assert_eq!(m, [&b"abc"[..], b"", b"defg"]);
        for cut in 0..HEADER {
            assert_eq!(Packet::parse(&bytes[..cut]), Err(FrameError::Short(cut)));
        }
        let short = Packet::parse(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(short.messages().last(), Some(Err(FrameError::BadSize(HEADER + 5 + 2))));
        let mut zero = bytes.clone();
        zero[HEADER] = 0;
        assert_eq!(Packet::parse(&zero).unwrap().messages().next(), Some(Err(FrameError::BadSize(HEADER))));
    }
}
