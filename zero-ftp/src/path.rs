//! Paths as the client names them, inside its virtual root: a path argument is read against
//! the working directory, and `.`, `..` and empty components are worked out here, so that
//! `..` at the root stays at the root (as vsftpd's `chroot_local_user` does). This is the
//! name the client sees; the file system itself is reached only through
//! [`crate::vfs::Root`], which resolves beneath the root directory in the kernel, symlinks
//! included: this module is not the security boundary, that one is.

use std::fmt;

/// A normalized path inside the root: its components, none of them empty, `.` or `..`, none
/// holding `/` or NUL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VPath {
    parts: Vec<String>,
}

/// A path argument that names nothing: it holds a NUL byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a path with a NUL byte")]
pub struct BadPath;

impl VPath {
    /// The root.
    pub fn root() -> VPath {
        VPath::default()
    }

    /// `arg` read against `self` (the working directory): absolute if it starts with `/`.
    pub fn join(&self, arg: &str) -> Result<VPath, BadPath> {
        if arg.contains('\0') {
            return Err(BadPath);
        }
        let mut parts = if arg.starts_with('/') { Vec::new() } else { self.parts.clone() };
        for part in arg.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                name => parts.push(name.to_string()),
            }
        }
        Ok(VPath { parts })
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last component (none for the root).
    pub fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// The directory holding it (the root's is the root).
    pub fn parent(&self) -> VPath {
        let mut parts = self.parts.clone();
        parts.pop();
        VPath { parts }
    }

    /// The path relative to the root, as the file system takes it (`.` for the root).
    pub fn relative(&self) -> String {
        if self.parts.is_empty() {
            ".".to_string()
        } else {
            self.parts.join("/")
        }
    }

    /// The path quoted for a `257` reply (RFC 959 appendix II): a `"` inside is doubled.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.to_string().replace('"', "\"\""))
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("/");
        }
        for part in &self.parts {
            write!(f, "/{part}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(cwd: &str, arg: &str) -> String {
        VPath::root().join(cwd).unwrap().join(arg).unwrap().to_string()
    }

    #[test]
    fn joins_and_normalizes() {
        assert_eq!(p("/", "a/b"), "/a/b");
        assert_eq!(p("/a", "b/../c/./d//"), "/a/c/d");
        assert_eq!(p("/a/b", "/x"), "/x");
        assert_eq!(p("/a/b", ".."), "/a");
        assert_eq!(VPath::root().join("a/b").unwrap().relative(), "a/b");
        assert_eq!(VPath::root().relative(), ".");
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert_eq!(p("/", "../../etc/passwd"), "/etc/passwd");
        assert_eq!(p("/a", "../../../.."), "/");
        assert_eq!(p("/a", "/../.."), "/");
        assert!(VPath::root().join("a\0b").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(VPath::root().join("say \"hi\"").unwrap().quoted(), "\"/say \"\"hi\"\"\"");
        assert_eq!(VPath::root().quoted(), "\"/\"");
    }
}
