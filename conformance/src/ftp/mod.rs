//! The FTP suite: [`checks::CHECKS`] against a server at a socket address, this suite playing
//! the client with exactly the commands each check needs (escapes, bounces, a data
//! connection stolen from another address, ABOR mid-transfer).
//!
//! The server must let `user` log in, serve `file` (whose content the suite is given) and
//! `big` (large enough that a transfer is still running when ABOR comes) from the user's
//! root, and have a directory `dir`; with `writable`, the user may store, delete, rename and
//! make directories in `dir`. The data-theft check connects from `thief` (127.0.0.2 on Linux's
//! loopback) when given.

pub mod checks;
pub mod raw;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::Outcome;

/// What the checks need.
pub struct Ctx {
    /// The server.
    pub target: SocketAddr,
    /// A user and its password.
    pub user: String,
    /// Its password.
    pub password: String,
    /// A file in the user's root, and its content.
    pub file: (String, Vec<u8>),
    /// A large file in the root (a few MB at least).
    pub big: String,
    /// A directory in the root.
    pub dir: String,
    /// The user may write (store, delete, rename, make directories).
    pub writable: bool,
    /// Another local address of this machine, for the data-theft check.
    pub thief: Option<IpAddr>,
    /// For the FTPS checks: a client configuration that trusts the server's certificate, and
    /// the name to check it for. Without, they are not run.
    pub tls: Option<(Arc<zero_core::rustls::ClientConfig>, String)>,
}

/// Runs every check (those whose name contains `filter`, if given), in order: the FTPS
/// ones too when `cx.tls` is given.
pub fn run(cx: &Ctx, filter: Option<&str>) -> Vec<Outcome> {
    let mut outcomes = crate::run_checks(checks::CHECKS, cx, filter);
    if cx.tls.is_some() {
        outcomes.extend(crate::run_checks(tls::CHECKS, cx, filter));
    }
    outcomes
}
