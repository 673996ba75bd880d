//! # zero-ftp
//!
//! FTP for zero (RFC 959, with RFC 2228 FTPS, RFC 2428 EPSV/EPRT, RFC 3659 SIZE, MDTM, REST,
//! MLSD/MLST, RFC 2389 FEAT/OPTS, RFC 7151 HOST).
//!
//! - [`codec`]: command lines, replies (written, and read by the client line by line), and
//!   listings (`ls -l` lines, MLSD facts).
//! - [`path`]: the names a client uses, normalized inside its virtual root.
//! - [`vfs`]: the root directory itself, reached only through `openat2(RESOLVE_BENEATH)`.
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard the server and client run on.
//! - `rustix`: `openat2` and the `*at` calls, safe, without `unsafe` of our own (the house
//!   rule keeps `unsafe` in zero-core's ring and pool); std has no `openat2`.
//! - `thiserror`, `tracing`: the house conventions.

pub mod codec;
pub mod path;
pub mod vfs;
