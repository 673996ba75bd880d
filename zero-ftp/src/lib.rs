//! # zero-ftp
//!
//! FTP for zero (RFC 959, with RFC 2228 FTPS, RFC 2428 EPSV/EPRT, RFC 3659 SIZE, MDTM, REST,
//! MLSD/MLST, RFC 2389 FEAT/OPTS, RFC 7151 HOST).
//!
//! - [`codec`]: command lines, replies (written, and read by the client line by line), and
//!   listings (`ls -l` lines, MLSD facts).
//! - [`path`]: the names a client uses, normalized inside its virtual root.
//! - [`vfs`]: the root directory itself, reached only through `openat2(RESOLVE_BENEATH)`.
//! - [`server`]: the server session's machine and what it asks of its owner.
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard the server and client run on.
//! - `rustix`: `openat2` and the `*at` calls, safe, without `unsafe` of our own (the house
//!   rule keeps `unsafe` in zero-core's ring and pool); std has no `openat2`.
//! - `sha-crypt` (RustCrypto): the users file's salted `$5$`/`$6$` hashes, the form
//!   `/etc/shadow` and `openssl passwd` use.
//! - `thiserror`, `tracing`: the house conventions.

pub mod codec;
pub mod path;
pub mod server;
pub mod vfs;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    /// Download and list.
    pub read: bool,
    /// Upload and append.
    pub write: bool,
    /// Delete and rename.
    pub delete: bool,
    /// Make and remove directories.
    pub mkdir: bool,
}

impl Perms {
    /// Read only (anonymous users).
    pub const READ: Perms = Perms { read: true, write: false, delete: false, mkdir: false };
}
