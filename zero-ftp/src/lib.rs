//! # zero-ftp
//!
//! FTP for zero (RFC 959, with RFC 2228 FTPS, RFC 2428 EPSV/EPRT, RFC 3659 SIZE, MDTM, REST,
//! MLSD/MLST, RFC 2389 FEAT/OPTS, RFC 7151 HOST).
//!
//! - [`codec`]: command lines, replies (written, and read by the client line by line), and
//!   listings (`ls -l` lines, MLSD facts).
//! - [`path`]: the names a client uses, normalized inside its virtual root.
//! - [`vfs`]: the root directory itself, reached only through `openat2(RESOLVE_BENEATH)`.
//! - [`server`]: the server session's machine, what it asks of its owner, and the owner on a
//!   zero-core shard ([`server::Server`]).
//! - [`client`]: the client's machine (the control connection; it asks its owner for data
//!   connections), and [`client::Connection`], which runs it on a shard of its own behind a
//!   blocking API (`get`, `put`, `list`, [`client::mirror`]).
//!
//! ## When a bug fires
//! The server runs on a zero-core cluster: a panic on one shard stops every shard, closes the
//! listeners, and `zero ftp serve` exits non-zero, for a supervisor to restart it. An upload's
//! `226` comes only after its last byte was written to the file (written, not fsync'ed: as
//! with vsftpd, `226` is not a promise of durability across a power loss).
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard the server and client run on.
//! - `rustix`: `openat2` and the `*at` calls, safe, without `unsafe` of our own (the house
//!   rule keeps `unsafe` in zero-core's ring and pool); std has no `openat2`.
//! - `rustls`: FTPS, through zero-core's TLS (its session cache and stateless tickets are set
//!   here, for data connections that resume the control connection's session).
//! - `sha-crypt` (RustCrypto): the users file's salted `$5$`/`$6$` hashes, the form
//!   `/etc/shadow` and `openssl passwd` use.
//! - `jiff`: the dates of listings, timevals and the transfer log (the workspace's date
//!   crate).
//! - `thiserror`, `tracing`: the house conventions.

pub mod client;
pub mod codec;
mod data;
pub mod path;
mod rate;
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
