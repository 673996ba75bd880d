//! What every protocol machine shares, whatever its protocol: the bytes of a stream that do
//! not make a whole frame yet ([`Unframed`]).

/// The start of a frame that has not fully arrived: a machine frames what is complete and
/// keeps the tail here, until more bytes complete it. Input is framed where it lies whenever
/// nothing is held (the common case: no copy), and a large tail's memory is given back once
/// it is consumed. How large a frame may grow is the codec's to refuse (as soon as it reads a
/// length), so this holds at most one frame's worth.
#[derive(Debug, Default)]
pub struct Unframed {
    held: Vec<u8>,
}

/// Capacity kept once the held bytes are consumed; larger buffers are freed.
const KEEP: usize = 16 * 1024;

impl Unframed {
    /// Frames `input` after what is held: `frame` is given the bytes and returns how many of
    /// them it consumed (its whole frames); the rest is held for the next call.
    ///
    /// A machine keeps an `Unframed` in its state and takes it out for the call, so that
    /// `frame` may borrow the machine: `let mut tail = take(&mut self.tail); tail.feed(..);
    /// self.tail = tail;`.
    pub fn feed(&mut self, input: &[u8], frame: impl FnOnce(&[u8]) -> usize) {
        if self.held.is_empty() {
            let used = frame(input);
            self.held.extend_from_slice(&input[used.min(input.len())..]);
        } else {
            self.held.extend_from_slice(input);
            let used = frame(&self.held).min(self.held.len());
            self.held.drain(..used);
            if self.held.is_empty() && self.held.capacity() > KEEP {
                self.held = Vec::new();
            }
        }
    }

    /// How many bytes are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Drops what is held, and its memory (a connection ended).
    pub fn clear(&mut self) {
        self.held = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of the form `[len, bytes...]`; returns the frames and what they consumed.
    fn frames(bytes: &[u8], out: &mut Vec<Vec<u8>>) -> usize {
        let mut at = 0;
        while let Some(&len) = bytes.get(at) {
            let Some(frame) = bytes.get(at + 1..at + 1 + usize::from(len)) else { break };
            out.push(frame.to_vec());
            at += 1 + usize::from(len);
        }
        at
    }

    #[test]
    fn frames_come_out_whole_at_every_cut() {
        let stream = [3, b'a', b'b', b'c', 0, 2, b'x', b'y', 1, b'z'];
        for cut in 0..=stream.len() {
            let mut u = Unframed::default();
            let mut got = Vec::new();
            u.feed(&stream[..cut], |b| frames(b, &mut got));
            u.feed(&stream[cut..], |b| frames(b, &mut got));
            assert_eq!(got, [&b"abc"[..], b"", b"xy", b"z"], "cut at {cut}");
            assert!(u.is_empty());
        }
    }

    #[test]
    fn a_large_tail_gives_its_memory_back_once_consumed() {
        let mut u = Unframed::default();
        u.feed(&[255; 100], |_| 0);
        u.feed(&[0; 100_000], |b| b.len());
        assert!(u.is_empty() && u.held.capacity() == 0);
    }
}
