//! Storage quotas: a user may keep at most so many bytes of files under its root.
//!
//! - **What counts**: the sizes of the regular files under the root, as `du --apparent-size`
//!   sees them (symbolic links are not followed, directories count nothing).
//! - **The tally** ([`Usage`]) is one per root directory, shared by every session on every
//!   shard (an atomic counter: a quota is the server's, not a shard's). It is counted by
//!   walking the root at the first login that needs it, then kept by the server's own
//!   changes: uploads, overwrites, deletes, renames over a file. Changes made by other means
//!   (or through another user's root that holds this one) are seen at the next start, as
//!   pure-ftpd's `.ftpquota` needs `pure-quotacheck`.
//! - **Uploads** are charged as their bytes arrive, before they are written, so sessions of
//!   the same user on different shards cannot together pass the limit. An upload that would
//!   pass it ends `552`: a new (or emptied) file is removed, as pure-ftpd does, and a resumed
//!   or appended one is cut back to its size before the upload, so no byte it held is lost.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The bytes stored under one root.
#[derive(Debug)]
pub struct Usage {
    root: PathBuf,
    used: OnceLock<AtomicU64>,
}

impl Usage {
    /// A tally for `root`, counted when first needed.
    pub fn new(root: PathBuf) -> Usage {
        Usage { root, used: OnceLock::new() }
    }

    fn counter(&self) -> &AtomicU64 {
        self.used.get_or_init(|| AtomicU64::new(stored(&self.root)))
    }

    /// The bytes stored now.
    pub fn used(&self) -> u64 {
        self.counter().load(Ordering::Relaxed)
    }

    /// Takes `n` more bytes if the total stays within `limit`.
    pub fn take(&self, n: u64, limit: u64) -> bool {
        let fits = |used: u64| used.checked_add(n).filter(|&total| total <= limit);
        self.counter().fetch_update(Ordering::Relaxed, Ordering::Relaxed, fits).is_ok()
    }

    /// Gives back `n` bytes (a file removed or shrunk).
    pub fn give_back(&self, n: u64) {
        let less = |used: u64| Some(used.saturating_sub(n));
        let _ = self.counter().fetch_update(Ordering::Relaxed, Ordering::Relaxed, less);
    }
}

/// A user's quota: its limit, on its root's tally.
#[derive(Debug, Clone)]
pub struct Quota {
    /// The most bytes the root may hold.
    pub limit: u64,
    /// The root's tally.
    pub usage: Arc<Usage>,
}

impl PartialEq for Quota {
    fn eq(&self, other: &Quota) -> bool {
        self.limit == other.limit && self.usage.root == other.usage.root
    }
}

impl Eq for Quota {}

impl Quota {
    /// Whether anything more fits.
    pub fn room(&self) -> bool {
        self.usage.used() < self.limit
    }
}

/// An upload's account: the file's size charged so far and where its next byte lands.
#[derive(Debug)]
pub(crate) struct Upload {
    quota: Quota,
    /// The file's size when the upload began (after `STOR` emptied it).
    base: u64,
    /// Its size with the upload's bytes so far.
    size: u64,
    /// Where the next byte is written.
    at: u64,
}

impl Upload {
    /// An upload into a file of `base` bytes, writing from `at`.
    pub(crate) fn new(quota: Quota, base: u64, at: u64) -> Upload {
        Upload { quota, base, size: base, at }
    }

    /// Charges `n` bytes arriving; false (nothing charged) when they do not fit.
    pub(crate) fn charge(&mut self, n: u64) -> bool {
        let end = self.at + n;
        if end > self.size {
            if !self.quota.usage.take(end - self.size, self.quota.limit) {
                return false;
            }
            self.size = end;
        }
        self.at = end;
        true
    }

    /// The file ended `actual` bytes long (a failed write leaves less than charged): the
    /// difference goes back.
    pub(crate) fn settle(&mut self, actual: u64) {
        if actual < self.size {
            self.quota.usage.give_back(self.size - actual);
            self.size = actual;
        }
    }

    /// The upload is undone: what it grew the file by goes back; the size to cut it to.
    pub(crate) fn undo(&mut self) -> u64 {
        self.settle(self.base);
        self.base
    }
}

/// The bytes of the regular files under `root` (symbolic links not followed; what cannot be
/// read counts nothing).
fn stored(root: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_file() => total += m.len(),
                Ok(m) if m.is_dir() => dirs.push(entry.path()),
                _ => {}
            }
        }
    }
    total
}

/// A size as the users file writes it: bytes, or with `K`, `M`, `G` or `T` (powers of 1024).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("4k"), Some(4096));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("3T"), Some(3 << 40));
        for bad in ["", "M", "1.5G", "10X", "-1", "99999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_tally_counts_files_and_keeps_within_the_limit() {
        let dir = std::env::temp_dir().join(format!("zero-ftp-quota-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("one"), [0; 100]).unwrap();
        std::fs::write(dir.join("a/b/two"), [0; 50]).unwrap();
        std::os::unix::fs::symlink(dir.join("one"), dir.join("a/link")).unwrap();
        let quota = Quota { limit: 200, usage: Arc::new(Usage::new(dir.clone())) };
        assert_eq!(quota.usage.used(), 150, "links are not followed");

        // Appending 40 to the 50-byte file, then 20 more than fits.
        let mut up = Upload::new(quota.clone(), 50, 50);
        assert!(up.charge(40));
        assert!(!up.charge(20), "150 + 40 + 20 > 200");
        assert!(up.charge(10));
        assert_eq!(quota.usage.used(), 200);
        assert!(!quota.room());
        assert_eq!(up.undo(), 50);
        assert_eq!(quota.usage.used(), 150);

        // Writing over existing bytes (REST) costs nothing until the file grows.
        let mut up = Upload::new(quota.clone(), 100, 0);
        assert!(up.charge(100));
        assert_eq!(quota.usage.used(), 150);
        assert!(up.charge(30));
        assert_eq!(quota.usage.used(), 180);
        up.settle(120);
        assert_eq!(quota.usage.used(), 170, "a short write gives back what it did not store");
        quota.usage.give_back(1000);
        assert_eq!(quota.usage.used(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
