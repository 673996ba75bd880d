//! A user's root directory, the server's only way to its files. Every path is opened
//! relative to the root's descriptor with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`:
//! the kernel resolves each component, symlinks included, and refuses (`EXDEV`) anything that
//! would leave the root, at the moment of the open. A symlink swapped in after some check
//! cannot help: there is no check, only the kernel's resolution. Changes to a directory
//! (`mkdirat`, `unlinkat`, `renameat`) act on a final component inside a parent directory
//! opened the same way, so they cannot leave the root either.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::codec::list::{Entry, Kind};
use crate::path::VPath;

/// How a file is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `STOR`: created, or emptied.
    Truncate,
    /// `STOR` after `REST n`: written from `n` on, what follows kept until overwritten.
    At(u64),
    /// `APPE`: added to the end.
    Append,
    /// `STOU`: created, and it must not exist yet.
    New,
}

/// A root directory.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    /// Opens `dir` as a root.
    pub fn open(dir: &Path) -> io::Result<Root> {
        let dir = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Root { dir })
    }

    fn resolve(&self, path: &VPath, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        Ok(rustix::fs::openat2(&self.dir, path.relative(), flags | OFlags::CLOEXEC, mode, RESOLVE)?)
    }

    /// The directory holding `path`, and `path`'s last component (an error for the root,
    /// which has no parent to change it in).
    fn parent<'p>(&self, path: &'p VPath) -> io::Result<(OwnedFd, &'p str)> {
        let name = path.name().ok_or_else(|| io::Error::from(io::ErrorKind::PermissionDenied))?;
        let parent = self.resolve(&path.parent(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        Ok((parent, name))
    }

    /// Opens a regular file to read.
    pub fn open_read(&self, path: &VPath) -> io::Result<File> {
        let fd = self.resolve(path, OFlags::RDONLY, Mode::empty())?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a plain file"));
        }
        Ok(File::from(fd))
    }

    /// Opens a file to write (created with mode 0644).
    pub fn open_write(&self, path: &VPath, how: Write) -> io::Result<File> {
        let flags = OFlags::WRONLY
            | match how {
                Write::Truncate => OFlags::CREATE | OFlags::TRUNC,
                Write::At(_) => OFlags::CREATE,
                Write::Append => OFlags::CREATE | OFlags::APPEND,
                Write::New => OFlags::CREATE | OFlags::EXCL,
            };
        // The final component must not be a symlink (one could point at a file the user may
        // read but was never given to overwrite elsewhere in the root); it is opened in its
        // parent with O_NOFOLLOW.
        let (parent, name) = self.parent(path)?;
        let fd = rustix::fs::openat2(
            &parent,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
            RESOLVE,
        )?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a plain file"));
        }
        Ok(File::from(fd))
    }

    /// Whether `path` is a directory one can enter.
    pub fn is_dir(&self, path: &VPath) -> bool {
        self.resolve(path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).is_ok()
    }

    /// An entry's facts, following a symlink (to within the root) as `SIZE`, `MDTM` and
    /// `MLST` do.
    pub fn stat(&self, path: &VPath) -> io::Result<Entry> {
        let fd = self.resolve(path, OFlags::PATH, Mode::empty())?;
        let name = path.name().unwrap_or("/").to_string();
        Ok(entry(name, &rustix::fs::fstat(&fd)?))
    }

    /// A directory's entries (symlinks shown as such), sorted by name; `.` and `..` left out.
    pub fn list(&self, dir: &VPath) -> io::Result<Vec<Entry>> {
        let fd = self.resolve(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let mut out = Vec::new();
        for item in rustix::fs::Dir::read_from(&fd)? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            // An entry gone meanwhile is left out.
            if let Ok(st) = rustix::fs::statat(fd.as_fd(), item.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
                out.push(entry(name, &st));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `MKD`.
    pub fn mkdir(&self, path: &VPath) -> io::Result<()> {
        let (parent, name) = self.parent(path)?;
        Ok(rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))?)
    }

    /// `RMD`: an empty directory.
    pub fn rmdir(&self, path: &VPath) -> io::Result<()> {
        let (parent, name) = self.parent(path)?;
        Ok(rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR)?)
    }

    /// `DELE`: a file (or a symlink itself, never what it points at). The bytes freed: the
    /// file's size, nothing for anything else.
    pub fn remove(&self, path: &VPath) -> io::Result<u64> {
        let (parent, name) = self.parent(path)?;
        let freed = file_size(&parent, name);
        rustix::fs::unlinkat(&parent, name, AtFlags::empty())?;
        Ok(freed)
    }

    /// `RNFR`/`RNTO`. The bytes freed: the size of a file `to` replaced.
    pub fn rename(&self, from: &VPath, to: &VPath) -> io::Result<u64> {
        let (from_parent, from_name) = self.parent(from)?;
        let (to_parent, to_name) = self.parent(to)?;
        let same = |a: &rustix::fs::Stat, b: &rustix::fs::Stat| a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        let replaced = match (
            rustix::fs::statat(&from_parent, from_name, AtFlags::SYMLINK_NOFOLLOW),
            rustix::fs::statat(&to_parent, to_name, AtFlags::SYMLINK_NOFOLLOW),
        ) {
            // Renaming a file onto itself (or a hard link of it) changes nothing.
            (Ok(a), Ok(b)) if same(&a, &b) => 0,
            _ => file_size(&to_parent, to_name),
        };
        rustix::fs::renameat(&from_parent, from_name, &to_parent, to_name)?;
        Ok(replaced)
    }

    /// The size of the plain file `path` names (not following a final symlink); 0 for
    /// anything else or nothing.
    pub fn file_size(&self, path: &VPath) -> u64 {
        self.parent(path).map_or(0, |(parent, name)| file_size(&parent, name))
    }
}

/// The size of the plain file `name` in `dir`; 0 for anything else.
fn file_size(dir: &OwnedFd, name: &str) -> u64 {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
            u64::try_from(st.st_size).unwrap_or(0)
        }
        _ => 0,
    }
}

fn entry(name: String, st: &rustix::fs::Stat) -> Entry {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Link,
        _ => Kind::Other,
    };
    Entry {
        name,
        kind,
        size: u64::try_from(st.st_size).unwrap_or(0),
        modified: st.st_mtime,
        mode: st.st_mode & 0o7777,
        links: st.st_nlink,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write as _};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("zero-ftp-vfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        std::fs::write(dir.join("secret"), b"outside").unwrap();
        std::fs::write(dir.join("root/a.txt"), b"inside").unwrap();
        dir
    }

    fn v(s: &str) -> VPath {
        VPath::root().join(s).unwrap()
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let dir = scratch("escape");
        let root = Root::open(&dir.join("root")).unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("root/abs")).unwrap();
        std::os::unix::fs::symlink("../secret", dir.join("root/rel")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("root/parent")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("root/sub/up")).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("root/inside")).unwrap();
        for path in ["abs", "rel", "parent/secret", "sub/up/parent/secret"] {
            let err = root.open_read(&v(path)).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc_exdev()), "{path}: {err}");
        }
        // A link that stays inside is followed; "sub/up" is the root itself.
        let mut s = String::new();
        root.open_read(&v("inside")).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "inside");
        assert!(root.open_read(&v("sub/up/a.txt")).is_ok());
        // Writing through a link is refused even inside; listing shows links as links.
        assert!(root.open_write(&v("inside"), Write::Truncate).is_err());
        assert!(root.open_write(&v("abs"), Write::Truncate).is_err());
        let kinds: Vec<(String, Kind)> =
            root.list(&VPath::root()).unwrap().into_iter().map(|e| (e.name, e.kind)).collect();
        assert!(kinds.contains(&("abs".into(), Kind::Link)) && kinds.contains(&("sub".into(), Kind::Dir)));
        assert_eq!(std::fs::read(dir.join("secret")).unwrap(), b"outside");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// EXDEV, the error openat2 gives for a path leaving the root.
    fn libc_exdev() -> i32 {
        rustix::io::Errno::XDEV.raw_os_error()
    }

    #[test]
    fn files_and_directories() {
        let dir = scratch("ops");
        let root = Root::open(&dir.join("root")).unwrap();
        root.open_write(&v("sub/new.bin"), Write::Truncate).unwrap().write_all(b"hello").unwrap();
        root.open_write(&v("sub/new.bin"), Write::Append).unwrap().write_all(b" world").unwrap();
        {
            use std::io::{Seek, SeekFrom};
            let mut f = root.open_write(&v("sub/new.bin"), Write::At(6)).unwrap();
            f.seek(SeekFrom::Start(6)).unwrap();
            f.write_all(b"W").unwrap();
        }
        assert_eq!(std::fs::read(dir.join("root/sub/new.bin")).unwrap(), b"hello World");
        assert!(root.open_write(&v("sub/new.bin"), Write::New).is_err(), "STOU never overwrites");
        assert_eq!(root.stat(&v("sub/new.bin")).unwrap().size, 11);
        root.mkdir(&v("made")).unwrap();
        assert!(root.is_dir(&v("made")) && !root.is_dir(&v("a.txt")));
        assert_eq!(root.file_size(&v("sub/new.bin")), 11);
        assert_eq!(root.rename(&v("sub/new.bin"), &v("made/moved.bin")).unwrap(), 0);
        assert!(root.rmdir(&v("made")).is_err(), "not empty");
        assert_eq!(root.rename(&v("a.txt"), &v("a.txt")).unwrap(), 0, "onto itself");
        std::fs::write(dir.join("root/c.txt"), b"abc").unwrap();
        assert_eq!(root.rename(&v("c.txt"), &v("a.txt")).unwrap(), 6, "a.txt replaced");
        assert_eq!(root.remove(&v("made/moved.bin")).unwrap(), 11);
        root.rmdir(&v("made")).unwrap();
        assert!(root.open_read(&v("sub")).is_err(), "a directory is not read as a file");
        assert!(root.rmdir(&VPath::root()).is_err(), "the root itself stays");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
