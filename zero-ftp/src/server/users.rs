//! The users file: one user a line, `name:hash:perms[:root[:quota]]`.
//!
//! - `hash` is a salted SHA-crypt hash as `/etc/shadow` holds them (`$6$salt$...` or
//!   `$5$salt$...`, `openssl passwd -6` makes one);
//! - `perms` is any of `r` (read: download, list), `w` (write: upload, append), `d` (delete
//!   and rename), `m` (make and remove directories), or `-` for none;
//! - `root`, the user's virtual root: a directory (relative to the server's root), the
//!   server's root itself without it (or when empty: `alice:$6$...:rw::1G`);
//! - `quota`, the most bytes of files it may keep under its root: bytes, or with `K`, `M`,
//!   `G` or `T` (powers of 1024). Users sharing a root share its tally ([`super::quota`]).
//!
//! Empty lines and lines starting with `#` are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha_crypt::{PasswordHashRef, PasswordVerifier, ShaCrypt};

pub use super::quota::Quota;
use super::quota::{parse_size, Usage};
pub use crate::Perms;

/// One user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Its name.
    pub name: String,
    hash: String,
    /// What it may do.
    pub perms: Perms,
    /// Its root directory.
    pub root: PathBuf,
    /// Its storage quota.
    pub quota: Option<Quota>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash stays out of logs.
        f.debug_struct("User")
            .field("name", &self.name)
            .field("perms", &self.perms)
            .field("root", &self.root)
            .field("quota", &self.quota.as_ref().map(|q| q.limit))
            .finish()
    }
}

impl User {
    /// Whether `password` is this user's.
    pub fn check(&self, password: &str) -> bool {
        PasswordHashRef::new(&self.hash)
            .is_ok_and(|hash| ShaCrypt::default().verify_password(password.as_bytes(), hash).is_ok())
    }
}

/// The users, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    users: HashMap<String, User>,
}

/// A line of the users file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("users file, line {line}: {reason}")]
pub struct UsersError {
    /// The line's number (from 1).
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl Users {
    /// Reads a users file's text; `server_root` is where relative roots start.
    pub fn parse(text: &str, server_root: &Path) -> Result<Users, UsersError> {
        let mut users = HashMap::new();
        let mut tallies: HashMap<PathBuf, Arc<Usage>> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| UsersError { line: n + 1, reason: reason.into() };
            let fields: Vec<&str> = line.splitn(5, ':').collect();
            let [name, hash, perms, rest @ ..] = fields.as_slice() else {
                return Err(bad("expected name:hash:perms[:root[:quota]]"));
            };
            if name.is_empty() {
                return Err(bad("an empty name"));
            }
            if PasswordHashRef::new(hash).is_err() || !(hash.starts_with("$6$") || hash.starts_with("$5$")) {
                return Err(bad("the hash is not SHA-crypt ($5$ or $6$; openssl passwd -6 makes one)"));
            }
            let mut p = Perms::default();
            for c in perms.chars() {
                match c {
                    'r' => p.read = true,
                    'w' => p.write = true,
                    'd' => p.delete = true,
                    'm' => p.mkdir = true,
                    '-' => {}
                    other => return Err(bad(&format!("unknown permission {other:?} (r, w, d, m)"))),
                }
            }
            let root = match rest.first().filter(|r| !r.is_empty()) {
                Some(r) => server_root.join(r.trim_start_matches('/')),
                None => server_root.to_path_buf(),
            };
            let quota = match rest.get(1) {
                None => None,
                Some(text) => {
                    let limit = parse_size(text).ok_or_else(|| bad("the quota is not a size (100M, 2G)"))?;
                    let usage =
                        tallies.entry(root.clone()).or_insert_with(|| Arc::new(Usage::new(root.clone())));
                    Some(Quota { limit, usage: usage.clone() })
                }
            };
            let user = User { name: name.to_string(), hash: hash.to_string(), perms: p, root, quota };
            if users.insert(name.to_string(), user).is_some() {
                return Err(bad("a user named twice"));
            }
        }
        Ok(Users { users })
    }

    /// A user by name.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl passwd -6 -salt abcdefgh secret`.
    const SECRET: &str =
        "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";

    #[test]
    fn reads_users_and_checks_passwords() {
        let text = format!("# users\n\nalice:{SECRET}:rwdm\nbob:{SECRET}:r:bob\n");
        let users = Users::parse(&text, Path::new("/srv/ftp")).unwrap();
        let alice = users.get("alice").unwrap();
        assert!(alice.check("secret") && !alice.check("Secret") && !alice.check(""));
        assert_eq!(alice.perms, Perms { read: true, write: true, delete: true, mkdir: true });
        assert_eq!(alice.root, Path::new("/srv/ftp"));
        assert_eq!(users.get("bob").unwrap().perms, Perms::READ);
        assert_eq!(users.get("bob").unwrap().root, Path::new("/srv/ftp/bob"));
        assert!(alice.quota.is_none());
        assert!(!format!("{alice:?}").contains("abcdefgh"), "the hash stays out of Debug");
    }

    #[test]
    fn bad_lines_are_named() {
        let root = Path::new("/");
        assert_eq!(Users::parse("alice", root).unwrap_err().line, 1);
        assert!(Users::parse("alice:plain:r", root).unwrap_err().reason.contains("SHA-crypt"));
        let e = Users::parse(&format!("\nalice:{SECRET}:rx"), root).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Users::parse(&format!("a:{SECRET}:r\na:{SECRET}:r"), root).is_err());
        assert!(Users::parse(&format!("a:{SECRET}:rw::lots"), root).unwrap_err().reason.contains("quota"));
    }

    #[test]
    fn quotas_share_their_root_tally() {
        let text = format!("a:{SECRET}:rw::1M\nb:{SECRET}:rw::2G\nc:{SECRET}:rw:c:10K\n");
        let users = Users::parse(&text, Path::new("/srv")).unwrap();
        let quota = |name: &str| users.get(name).unwrap().quota.clone().unwrap();
        assert_eq!((quota("a").limit, quota("b").limit, quota("c").limit), (1 << 20, 2 << 30, 10 << 10));
        assert!(Arc::ptr_eq(&quota("a").usage, &quota("b").usage), "one root, one tally");
        assert!(!Arc::ptr_eq(&quota("a").usage, &quota("c").usage));
    }
}
