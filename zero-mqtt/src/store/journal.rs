//! The journal file: one append-only file of records in the persistence directory, written
//! once per shard tick before that tick's replies leave, synced by the [`Fsync`] policy, and
//! compacted into a snapshot of the live state when it grows.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::record::Record;

/// Journals smaller than this are never compacted.
const COMPACT_MIN: u64 = 64 * 1024 * 1024;

/// When journal writes reach stable storage. Every policy writes a tick's records to the
/// file (the page cache) before the tick's acknowledgements are sent, so a crash of the
/// broker process (`kill -9`) loses nothing; the policy decides what a power loss or kernel
/// crash can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// `fdatasync` after every tick that wrote records, before its acknowledgements leave:
    /// nothing acknowledged is lost. Costs a disk flush per busy tick.
    Always,
    /// Group commit: at most one `fdatasync` per interval; a power loss can lose the
    /// acknowledged writes of the last interval.
    Every(Duration),
    /// Never sync; the kernel writes back when it likes (typically within 30 s).
    Never,
}

/// The open journal of a persistence directory (locked against a second broker).
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
    /// Held for the broker's lifetime: two brokers must not share a journal.
    _lock: File,
}

impl Journal {
    /// Opens (creating) `dir/journal` and returns it with its records. A torn or corrupt tail
    /// (a crash mid-write) is cut off, with a warning.
    pub fn open(dir: &Path, fsync: Fsync, now: Instant) -> io::Result<(Journal, Vec<u8>)> {
        std::fs::create_dir_all(dir)?;
        let lock = File::create(dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another broker", dir.display()),
            )
        })?;
        let path = dir.join("journal");
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let whole = whole_records(&bytes);
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

    /// Appends a tick's records in one write, then syncs if the policy says so.
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

    /// Whether the journal grew enough past its last snapshot to be worth compacting.
    pub fn wants_compaction(&self) -> bool {
        self.len > COMPACT_MIN.max(4 * self.snapshot_len)
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
        self.file = OpenOptions::new().append(true).open(&path)?;
        self.len = snapshot.len() as u64;
        self.snapshot_len = self.len;
        self.unsynced = false;
        self.last_sync = now;
        Ok(())
    }
}

/// Length of the prefix of `bytes` made of whole, intact records.
fn whole_records(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some((_, len)) = Record::decode(&bytes[at..]) {
        at += len;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = std::env::temp_dir().join(format!("zero-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = Instant::now();
        let mut batch = Vec::new();
        Record::Session { client: "a", expiry: 60 }.encode(&mut batch);
        Record::Subscribe { client: "a", filter: "t/#", options: 1, id: 0 }.encode(&mut batch);
        {
            let (mut j, old) = Journal::open(&dir, Fsync::Always, now).unwrap();
            assert!(old.is_empty());
            assert!(Journal::open(&dir, Fsync::Always, now).is_err(), "a second broker is refused");
            j.append(&batch, now).unwrap();
            // A crash mid-write leaves half a record.
            j.file.write_all(&batch[..5]).unwrap();
        }
        let (mut j, bytes) = Journal::open(&dir, Fsync::Never, now).unwrap();
        assert_eq!(bytes, batch);
        // Compaction keeps what the snapshot says: here, the first record alone.
        let first = Record::decode(&batch).unwrap().1;
        j.compact(&batch[..first], now).unwrap();
        drop(j);
        let (_, bytes) = Journal::open(&dir, Fsync::Never, now).unwrap();
        assert_eq!(Record::decode(&bytes).unwrap().0, Record::Session { client: "a", expiry: 60 });
        assert_eq!(whole_records(&bytes), bytes.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
