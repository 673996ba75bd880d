//! The bytes of a transfer on a data connection, for both sides' drivers: a [`Source`] sends
//! a file (spliced by the kernel, or read into the send queue under TLS) or bytes in memory;
//! a [`Sink`] gathers what arrives into large writes.

use std::io::{Read, Seek, SeekFrom, Write};

use zero_core::{ConnId, IoError, Ops};

/// How much is put in a send queue at a time (listings, and files under TLS).
const CHUNK: usize = 256 * 1024;

/// How much is gathered before a write: large, page-aligned writes rather than one per
/// received segment.
pub(crate) const WRITE_CHUNK: usize = 1024 * 1024;

/// What a transfer sends.
pub(crate) enum Source {
    /// A file, from `offset`, `len` bytes: spliced by the kernel (`Ops::send_file`; `spliced`
    /// bytes are in its hands until `Event::FileSent`), or read into the send queue when the
    /// data connection is TLS.
    File { file: std::fs::File, offset: u64, len: u64, spliced: u64, started: bool },
    /// Bytes in memory (a listing), through the send queue.
    Bytes(Vec<u8>, usize),
}

/// Where a [`Source`] stands after [`Source::pump`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// More to send: on `Event::Writable`, or (a spliced file) `Event::FileSent` ends it.
    Waiting,
    /// The last byte is queued: close the connection.
    Done,
    /// The connection refused the bytes.
    Broken,
    /// The file could not be read.
    Unreadable,
}

impl Source {
    /// Moves the bytes on, at most `budget` of them (a rate limit's; `u64::MAX` without): a
    /// plain file is handed to the kernel (whole, without a limit), anything else fills
    /// `conn`'s send queue to its limit. `sent` counts what was queued.
    pub(crate) fn pump(
        &mut self,
        ops: &mut Ops,
        conn: ConnId,
        tls: bool,
        sent: &mut u64,
        budget: u64,
    ) -> Pumped {
        let stop = sent.saturating_add(budget);
        match self {
            Source::File { spliced, .. } if !tls && *spliced > 0 => Pumped::Waiting,
            Source::File { file, offset, len, spliced, .. } if !tls => {
                let chunk = (*len - *sent).min(budget);
                if *sent == *len {
                    return Pumped::Done;
                }
                if chunk == 0 {
                    return Pumped::Waiting;
                }
                match ops.send_file(conn, file, *offset + *sent, chunk) {
                    Ok(()) => {
                        *spliced = chunk;
                        Pumped::Waiting
                    }
                    Err(_) => Pumped::Broken,
                }
            }
            // TLS encrypts in user space: the file is read into the send queue.
            Source::File { file, offset, len, started, .. } => loop {
                if !*started {
                    *started = true;
                    if file.seek(SeekFrom::Start(*offset)).is_err() {
                        return Pumped::Unreadable;
                    }
                }
                if *sent == *len {
                    return Pumped::Done;
                }
                let want = (*len - *sent).min(CHUNK as u64).min(stop - *sent) as usize;
                if want == 0 {
                    return Pumped::Waiting;
                }
                let buf = match ops.send_buffer(conn) {
                    Ok(buf) => buf.into_vec(),
                    Err(IoError::SendQueueFull { .. }) => return Pumped::Waiting,
                    Err(_) => return Pumped::Broken,
                };
                let start = buf.len();
                buf.resize(start + want, 0);
                match file.read(&mut buf[start..]) {
                    Ok(n) if n > 0 => {
                        buf.truncate(start + n);
                        *sent += n as u64;
                    }
                    _ => {
                        buf.truncate(start);
                        return Pumped::Unreadable;
                    }
                }
            },
            Source::Bytes(bytes, at) => loop {
                if *at == bytes.len() {
                    return Pumped::Done;
                }
                let n = (bytes.len() - *at).min(CHUNK).min((stop - *sent).min(CHUNK as u64) as usize);
                if n == 0 {
                    return Pumped::Waiting;
                }
                match ops.send_buffer(conn) {
                    Ok(buf) => buf.into_vec().extend_from_slice(&bytes[*at..*at + n]),
                    Err(IoError::SendQueueFull { .. }) => return Pumped::Waiting,
                    Err(_) => return Pumped::Broken,
                }
                *at += n;
                *sent += n as u64;
            },
        }
    }

    /// `Event::FileSent`: the spliced bytes are in the socket's buffer (`sent` counts them);
    /// [`Source::pump`] goes on.
    pub(crate) fn file_sent(&mut self, sent: &mut u64) {
        if let Source::File { spliced, .. } = self {
            *sent += std::mem::take(spliced);
        }
    }

    /// Bytes in the kernel's hands (spliced, not yet reported sent).
    pub(crate) fn spliced(&self) -> u64 {
        match self {
            Source::File { spliced, .. } => *spliced,
            Source::Bytes(..) => 0,
        }
    }
}

/// Where a transfer's bytes go, written in `WRITE_CHUNK`s.
pub(crate) struct Sink<W: Write> {
    pub(crate) to: W,
    buf: Vec<u8>,
}

impl<W: Write> Sink<W> {
    /// A sink writing to `to`.
    pub(crate) fn new(to: W) -> Sink<W> {
        Sink { to, buf: Vec::with_capacity(WRITE_CHUNK * 2) }
    }

    /// Takes `data`, writing whole chunks.
    pub(crate) fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_CHUNK {
            let whole = self.buf.len() / WRITE_CHUNK * WRITE_CHUNK;
            self.to.write_all(&self.buf[..whole])?;
            self.buf.drain(..whole);
        }
        Ok(())
    }

    /// Drops what is not written yet.
    pub(crate) fn discard(&mut self) {
        self.buf.clear();
    }

    /// Writes what is left.
    pub(crate) fn finish(&mut self) -> std::io::Result<()> {
        self.to.write_all(&self.buf)?;
        self.buf.clear();
        self.to.flush()
    }
}
