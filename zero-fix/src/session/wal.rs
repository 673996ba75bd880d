//! The write-ahead log: a session's [`MessageStore`] on disk, in a zero-core
//! [`Journal`] of its own directory.
//!
//! - **Records.** Every sent message (with its number), every change of either sequence
//!   number, and resets (with their time), each a CRC-32C-framed record. They collect in memory while the
//!   session works and are written in one `write` when its output is about to leave
//!   ([`MessageStore::flush`]), then synced as the [`Fsync`] policy says. So no byte leaves
//!   before the records that account for it are in the file.
//! - **Recovery.** [`Wal::open`] replays the journal; a torn tail (a crash or a full disk in
//!   the middle of a write) is cut off at the last whole record. A message written but never
//!   sent comes back as one the counterparty has not seen: it asks for it, and gets it once.
//! - **Resend.** An index maps each retained message's number to its place in the file; a
//!   ResendRequest reads just those bytes.
//! - **Bounded.** When the journal has grown past `compact_at` bytes and four times its last
//!   snapshot, it is rewritten (atomically) as the two numbers and the last `retain` messages;
//!   older ones are then gap-filled if asked for.
//! - **Full disk.** A failed write makes the log refuse everything after it, and the session
//!   stops sending before it could lose a number; reopening the log recovers.
//!
//! The fsync trade-off: [`Fsync::Always`] syncs every batch before its messages leave
//! (nothing sent is ever lost, at a disk flush per busy batch); [`Fsync::Every`] syncs at most
//! once per interval (a power loss, not a crash of the process, may lose the last interval's
//! sent messages, which then come back as a gap the counterparty asks about);
//! [`Fsync::Never`] leaves it to the kernel.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::Instant;

use zero_core::journal::{self, Fsync, Journal};

use super::store::MessageStore;
use crate::codec::Timestamp;

const MESSAGE: u8 = 1;
const NEXT_OUT: u8 = 2;
const NEXT_IN: u8 = 3;
const RESET: u8 = 4;

/// Bytes before a message's own bytes in its record: framing, kind, number.
const MESSAGE_AT: u64 = journal::HEADER as u64 + 1 + 8;

/// A FIX session's write-ahead log.
#[derive(Debug)]
pub struct Wal {
    journal: Journal,
    next_out: u64,
    next_in: u64,
    created: Option<Timestamp>,
    /// Retained sent messages: number -> (offset of the message's bytes, their length).
    index: BTreeMap<u64, (u64, u32)>,
    /// Records not written yet.
    batch: Vec<u8>,
    retain: usize,
    compact_at: u64,
    /// A write failed: the file may end in a partial batch; nothing more is accepted.
    failed: bool,
}

/// Whether `body` is a record of this log.
fn valid(body: &[u8]) -> bool {
    match body.split_first() {
        Some((&MESSAGE, rest)) => rest.len() > 8,
        Some((&NEXT_OUT | &NEXT_IN | &RESET, rest)) => rest.len() == 8,
        _ => false,
    }
}

fn u64_at(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes[..8].try_into().expect("checked by valid()"))
}

impl Wal {
    /// Opens (creating) the log in `dir` (one directory per session), replaying it. It keeps
    /// the last 100,000 sent messages for resends and compacts past 64 MiB (a compaction
    /// copies the retained messages, a pause of tens of milliseconds at these sizes).
    pub fn open(dir: &Path, fsync: Fsync) -> io::Result<Wal> {
        Wal::open_with(dir, fsync, 100_000, 64 << 20)
    }

    /// [`Wal::open`] keeping `retain` messages and compacting past `compact_at` bytes.
    pub fn open_with(dir: &Path, fsync: Fsync, retain: usize, compact_at: u64) -> io::Result<Wal> {
        let (journal, bytes) = Journal::open(dir, fsync, Instant::now(), valid)?;
        let mut wal = Wal {
            journal,
            next_out: 1,
            next_in: 1,
            created: None,
            index: BTreeMap::new(),
            batch: Vec::new(),
            retain: retain.max(1),
            compact_at,
            failed: false,
        };
        let mut at = 0;
        while let Some((body, len)) = journal::next_record(&bytes[at..]) {
            let (kind, rest) = body.split_first().expect("valid");
            match *kind {
                MESSAGE => {
                    let seq = u64_at(rest);
                    wal.index.insert(seq, (at as u64 + MESSAGE_AT, (rest.len() - 8) as u32));
                    wal.next_out = seq + 1;
                }
                NEXT_OUT => wal.next_out = u64_at(rest),
                NEXT_IN => wal.next_in = u64_at(rest),
                _ => {
                    wal.index.clear();
                    (wal.next_out, wal.next_in) = (1, 1);
                    wal.created = Some(Timestamp(u64_at(rest)));
                }
            }
            at += len;
        }
        wal.trim();
        Ok(wal)
    }

    fn record(&mut self, kind: u8, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("the write-ahead log failed earlier; reopen it"));
        }
        journal::frame(&mut self.batch, |out| {
            out.push(kind);
            write(out);
        });
        Ok(())
    }

    /// Forgets index entries beyond the retention.
    fn trim(&mut self) {
        while self.index.len() > self.retain {
            self.index.pop_first();
        }
    }

    /// Rewrites the journal as the numbers and the retained messages.
    fn compact(&mut self, now: Instant) -> io::Result<()> {
        let mut snapshot = Vec::new();
        if let Some(at) = self.created {
            journal::frame(&mut snapshot, |out| {
                out.push(RESET);
                out.extend_from_slice(&at.0.to_be_bytes());
            });
        }
        let mut index = BTreeMap::new();
        let mut message = Vec::new();
        for (&seq, &(offset, len)) in &self.index {
            message.resize(len as usize, 0);
            self.journal.read_at(offset, &mut message)?;
            let at = snapshot.len() as u64;
            journal::frame(&mut snapshot, |out| {
                out.push(MESSAGE);
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&message);
            });
            index.insert(seq, (at + MESSAGE_AT, len));
        }
        for (kind, n) in [(NEXT_OUT, self.next_out), (NEXT_IN, self.next_in)] {
            journal::frame(&mut snapshot, |out| {
                out.push(kind);
                out.extend_from_slice(&n.to_be_bytes());
            });
        }
        self.journal.compact(&snapshot, now)?;
        self.index = index;
        Ok(())
    }
}

impl MessageStore for Wal {
    fn next_out(&self) -> u64 {
        self.next_out
    }

    fn next_in(&self) -> u64 {
        self.next_in
    }

    fn save(&mut self, seq: u64, message: &[u8]) -> io::Result<()> {
        let at = self.journal.len() + self.batch.len() as u64 + MESSAGE_AT;
        self.record(MESSAGE, |out| {
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(message);
        })?;
        self.index.insert(seq, (at, message.len() as u32));
        self.trim();
        self.next_out = seq + 1;
        Ok(())
    }

    fn set_next_out(&mut self, next: u64) -> io::Result<()> {
        self.record(NEXT_OUT, |out| out.extend_from_slice(&next.to_be_bytes()))?;
        self.next_out = next;
        Ok(())
    }

    fn set_next_in(&mut self, next: u64) -> io::Result<()> {
        self.record(NEXT_IN, |out| out.extend_from_slice(&next.to_be_bytes()))?;
        self.next_in = next;
        Ok(())
    }

    fn load(&self, begin: u64, end: u64, each: &mut dyn FnMut(u64, &[u8])) -> io::Result<()> {
        let written = self.journal.len();
        let mut message = Vec::new();
        for (&seq, &(offset, len)) in self.index.range(begin..=end) {
            message.resize(len as usize, 0);
            if offset < written {
                self.journal.read_at(offset, &mut message)?;
            } else {
                let at = (offset - written) as usize;
                message.copy_from_slice(&self.batch[at..at + len as usize]);
            }
            each(seq, &message);
        }
        Ok(())
    }

    fn reset(&mut self, at: Timestamp) -> io::Result<()> {
        self.record(RESET, |out| out.extend_from_slice(&at.0.to_be_bytes()))?;
        self.index.clear();
        (self.next_out, self.next_in, self.created) = (1, 1, Some(at));
        Ok(())
    }

    fn created(&self) -> Option<Timestamp> {
        self.created
    }

    fn flush(&mut self, now: Instant) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("the write-ahead log failed earlier; reopen it"));
        }
        let batch = std::mem::take(&mut self.batch);
        if let Err(e) = self.journal.append(&batch, now) {
            self.failed = true;
            return Err(e);
        }
        self.batch = batch;
        self.batch.clear();
        if self.journal.wants_compaction(self.compact_at) {
            if let Err(e) = self.compact(now) {
                self.failed = true;
                return Err(e);
            }
        }
        Ok(())
    }
}
