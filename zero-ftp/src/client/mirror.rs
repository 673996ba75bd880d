//! [`mirror`]: a remote directory tree copied down, the way `lftp mirror` does: missing and
//! changed files downloaded, unchanged ones left alone.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::{Connection, Error, Progress};
use crate::codec::list::Kind;

/// What a mirror did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mirrored {
    /// Directories visited.
    pub dirs: u64,
    /// Files downloaded.
    pub files: u64,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Files left alone (same size, and not older than the server's).
    pub unchanged: u64,
}

/// Copies the remote directory `remote` (and everything under it) into `local`, creating
/// it. A file is downloaded unless the local copy has the same size and a modification time
/// no older than the server's; a downloaded file takes the server's modification time.
/// Symbolic links and special files are not followed. `progress` hears each file's name and
/// progress.
pub fn mirror(
    conn: &mut Connection,
    remote: &str,
    local: &Path,
    progress: &mut dyn FnMut(&str, Progress),
) -> Result<Mirrored, Error> {
    let mut done = Mirrored::default();
    let mut dirs = vec![(remote.trim_end_matches('/').to_string(), local.to_path_buf())];
    let join =
        |dir: &str, name: &str| if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
    while let Some((dir, into)) = dirs.pop() {
        std::fs::create_dir_all(&into).map_err(|e| Error::Local(format!("{}: {e}", into.display())))?;
        done.dirs += 1;
        let listed = if dir.is_empty() { None } else { Some(dir.as_str()) };
        for entry in conn.entries(listed)? {
            let path = join(&dir, &entry.name);
            let to = into.join(&entry.name);
            match entry.kind {
                Kind::Dir => dirs.push((path, to)),
                Kind::File => {
                    let local_meta = std::fs::metadata(&to).ok();
                    let unchanged = local_meta.is_some_and(|m| {
                        let mtime = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
                        m.len() == entry.size && mtime.is_some_and(|t| t.as_secs() as i64 >= entry.modified)
                    });
                    if unchanged {
                        done.unchanged += 1;
                        continue;
                    }
                    done.bytes += conn.get(&path, &to, false, &mut |p| progress(&path, p))?;
                    done.files += 1;
                    if entry.modified > 0 {
                        let when = UNIX_EPOCH + Duration::from_secs(entry.modified as u64);
                        let file = std::fs::File::options().write(true).open(&to);
                        let set = file.and_then(|f| f.set_modified(when));
                        set.map_err(|e| Error::Local(format!("{}: {e}", to.display())))?;
                    }
                }
                Kind::Link | Kind::Other => {}
            }
        }
    }
    Ok(done)
}
