//! An append-only journal of checksummed records in one file: what a protocol writes ahead
//! of answering (the MQTT broker's sessions and messages, a FIX session's sequence numbers
//! and sent messages), synced by an [`Fsync`] policy and compacted into a snapshot of the
//! live state when it grows.
//!
//! A record on disk is `[body length u32][crc32c of body u32][body]` (big-endian). A torn or
//! corrupt tail (a crash mid-write, a full disk) fails its length or checksum: opening the
//! journal cuts it back to the last whole record, so nothing after it is ever read as data.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The framing in front of a record's body.
pub const HEADER: usize = 8;

/// Journals smaller than this are never compacted.
const COMPACT_MIN: u64 = 64 * 1024 * 1024;

/// When journal writes reach stable storage. Every policy writes records to the file (the
/// page cache) before the replies they cover are sent, so a crash of the process (`kill -9`)
/// loses nothing; the policy decides what a power loss or kernel crash can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// `fdatasync` after every batch that wrote records, before its replies leave: nothing
    /// answered is lost. Costs a disk flush per busy batch.
    Always,
    /// Group commit: at most one `fdatasync` per interval; a power loss can lose the
    /// answered writes of the last interval.
    Every(Duration),
    /// Never sync; the kernel writes back when it likes (typically within 30 s).
    Never,
}

/// Appends a record to `out`: the framing, then the body `write` appends.
pub fn frame(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    write(out);
    let body = &out[start + HEADER..];
    let (len, crc) = ((body.len() as u32).to_be_bytes(), crc32c::crc32c(body).to_be_bytes());
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + HEADER].copy_from_slice(&crc);
}

/// The body of the record at the start of `buf` and the record's framed length; `None` if
/// `buf` does not start with a whole record whose checksum holds.
pub fn next_record(buf: &[u8]) -> Option<(&[u8], usize)> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(buf.get(4..HEADER)?.try_into().ok()?);
    let body = buf.get(HEADER..HEADER.checked_add(len)?)?;
    (crc32c::crc32c(body) == crc).then_some((body, HEADER + len))
}

/// Length of the prefix of `bytes` made of whole records whose bodies `valid` accepts.
pub fn whole_records(bytes: &[u8], valid: impl Fn(&[u8]) -> bool) -> usize {
    let mut at = 0;
    while let Some((body, len)) = next_record(&bytes[at..]).filter(|(body, _)| valid(body)) {
        let _ = body;
        at += len;
    }
    at
}

/// The open journal of a directory (locked against a second process).
#[derive(Debug)]
pub struct Journal {
    file: File,
    dir: PathBuf,
    fsync: Fsync,
    /// Bytes in the file.
    len: u64,
    /// Bytes of the last snapshot: the journal compacts when it grows well past it.
    snapshot_len: u64,
    /// Written but not yet synced.
    unsynced: bool,
    last_sync: Instant,
    /// Held for the journal's lifetime: two processes must not share it.
    _lock: File,
}

impl Journal {
    /// Opens (creating) `dir/journal` and returns it with its records. A tail that is not a
    /// whole record, or whose body `valid` refuses, is cut off with a warning.
    pub fn open(
        dir: &Path,
        fsync: Fsync,
        now: Instant,
        valid: impl Fn(&[u8]) -> bool,
    ) -> io::Result<(Journal, Vec<u8>)> {
        std::fs::create_dir_all(dir)?;
        let lock = File::create(dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another process", dir.display()),
            )
        })?;
        let path = dir.join("journal");
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let whole = whole_records(&bytes, valid);
        if whole < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = whole,
                cut = bytes.len() - whole,
                "journal ends in a torn or corrupt record; cutting it off"
            );
            file.set_len(whole as u64)?;
            bytes.truncate(whole);
        }
        let len = bytes.len() as u64;
        let journal = Journal {
            file,
            dir: dir.to_path_buf(),
            fsync,
            len,
            snapshot_len: len,
            unsynced: false,
            last_sync: now,
            _lock: lock,
        };
        Ok((journal, bytes))
    }

    /// How many bytes the journal holds (where the next record will start).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a batch of records in one write, then syncs if the policy says so. On an error
    /// (a full disk) the file may end in part of the batch: the journal must be reopened,
    /// which cuts it off.
    pub fn append(&mut self, batch: &[u8], now: Instant) -> io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.file.write_all(batch)?;
        self.len += batch.len() as u64;
        self.unsynced = true;
        match self.fsync {
            Fsync::Always => self.sync(now),
            Fsync::Every(every) if now >= self.last_sync + every => self.sync(now),
            _ => Ok(()),
        }
    }

    /// Reads `buf.len()` bytes written at `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// When a group commit is due (the driver keeps a timer for it).
    pub fn sync_due(&self) -> Option<Instant> {
        match self.fsync {
            Fsync::Every(every) if self.unsynced => Some(self.last_sync + every),
            _ => None,
        }
    }

    /// Flushes written records to stable storage.
    pub fn sync(&mut self, now: Instant) -> io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        self.last_sync = now;
        Ok(())
    }

    /// Whether the journal grew past `floor` and well past its last snapshot: worth
    /// compacting.
    pub fn wants_compaction(&self, floor: u64) -> bool {
        self.len > floor.max(4 * self.snapshot_len)
    }

    /// [`Journal::wants_compaction`] with the default floor (64 MiB).
    pub fn grown(&self) -> bool {
        self.wants_compaction(COMPACT_MIN)
    }

    /// Replaces the journal with `snapshot` (the live state as records) atomically: written
    /// to a new file, synced, renamed over the journal, and the directory synced.
    pub fn compact(&mut self, snapshot: &[u8], now: Instant) -> io::Result<()> {
        let path = self.dir.join("journal");
        let next = self.dir.join("journal.next");
        let mut file = File::create(&next)?;
        file.write_all(snapshot)?;
        file.sync_all()?;
        std::fs::rename(&next, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().read(true).append(true).open(&path)?;
        self.len = snapshot.len() as u64;
        self.snapshot_len = self.len;
        self.unsynced = false;
        self.last_sync = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(out: &mut Vec<u8>, body: &[u8]) {
        frame(out, |o| o.extend_from_slice(body));
    }

    #[test]
    fn appends_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = std::env::temp_dir().join(format!("zero-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = Instant::now();
        let mut batch = Vec::new();
        record(&mut batch, b"first");
        record(&mut batch, b"second");
        {
            let (mut j, old) = Journal::open(&dir, Fsync::Always, now, |_| true).unwrap();
            assert!(old.is_empty());
            assert!(
                Journal::open(&dir, Fsync::Always, now, |_| true).is_err(),
                "a second process is refused"
            );
            j.append(&batch, now).unwrap();
            let mut back = vec![0; 5];
            j.read_at(HEADER as u64, &mut back).unwrap();
            assert_eq!(back, b"first");
            // A crash mid-write leaves half a record.
            j.file.write_all(&batch[..5]).unwrap();
        }
        let (mut j, bytes) = Journal::open(&dir, Fsync::Never, now, |_| true).unwrap();
        assert_eq!(bytes, batch);
        let first = next_record(&batch).unwrap().1;
        j.compact(&batch[..first], now).unwrap();
        drop(j);
        let (_, bytes) = Journal::open(&dir, Fsync::Never, now, |_| true).unwrap();
        assert_eq!(next_record(&bytes).unwrap().0, b"first");
        // A body the owner cannot read is cut like a torn one.
        drop(bytes);
        let (_, bytes) = Journal::open(&dir, Fsync::Never, now, |b| b != b"first").unwrap();
        assert!(bytes.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_cut_and_every_flipped_bit_is_refused() {
        let mut buf = Vec::new();
        record(&mut buf, b"a body of some length");
        for cut in 0..buf.len() {
            assert!(next_record(&buf[..cut]).is_none(), "cut at {cut}");
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(next_record(&bad).is_none_or(|(_, len)| len != buf.len()), "flip at {i}");
        }
    }
}
