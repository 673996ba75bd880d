//! The FTP server: [`Session`], the control connection's machine, and what it asks of its
//! owner ([`Event`]): file-system work, data connections and transfers. The owner answers
//! with the session's `*_done` methods; until it does, the session reads no further command
//! (but `ABOR`, `STAT` and `QUIT` while a transfer runs, RFC 959 4.1.3).

mod machine;
pub mod quota;
mod shard;
pub mod users;
pub mod xferlog;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use machine::Session;
pub use shard::Server;
pub use users::{Perms, User, Users};

use crate::path::VPath;
use crate::vfs::Write;

/// The server's settings, shared by its sessions.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The `220` greeting's text.
    pub banner: String,
    /// Who may log in.
    pub users: Users,
    /// Read-only anonymous access (`anonymous` or `ftp`, any password), rooted here.
    pub anonymous: Option<PathBuf>,
    /// Failed logins before the connection is closed (vsftpd's `max_login_fails`).
    pub max_login_fails: u32,
    /// A client silent this long is disconnected (`421`), except while a transfer runs.
    pub idle_timeout: Duration,
    /// The address `PASV` advertises (behind NAT); the control connection's own without it.
    pub advertised: Option<std::net::Ipv4Addr>,
    /// How long a transfer waits for its data connection (the client's, after `PASV`, or
    /// ours, after `PORT`) before `425` (vsftpd's `accept_timeout`, `connect_timeout`).
    pub accept_timeout: Duration,
    /// A transfer that moves no byte for this long is broken off: `426` (vsftpd's
    /// `data_connection_timeout`).
    pub data_timeout: Duration,
    /// TLS (FTPS, RFC 4217): `AUTH TLS` is offered, and implicit FTPS listeners can be had.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Users (but anonymous) must log in and transfer under TLS (vsftpd's
    /// `force_local_logins_ssl` and `force_local_data_ssl`).
    pub require_tls: bool,
    /// Log each transfer here, in the xferlog format.
    pub xferlog: Option<PathBuf>,
    /// A transfer moves at most this many bytes a second (vsftpd's `local_max_rate`).
    pub max_rate: Option<u64>,
    /// All transfers together move at most this many bytes a second: each shard of a
    /// cluster takes its share ([`Server::with_rate_share`]).
    pub max_total_rate: Option<u64>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            banner: "zero FTP server ready.".into(),
            users: Users::default(),
            anonymous: None,
            max_login_fails: 3,
            idle_timeout: Duration::from_secs(300),
            advertised: None,
            accept_timeout: Duration::from_secs(60),
            data_timeout: Duration::from_secs(300),
            tls: None,
            require_tls: false,
            xferlog: None,
            max_rate: None,
            max_total_rate: None,
        }
    }
}

/// The TLS configuration of an FTPS server from a certificate chain and its key (PEM files):
/// zero-core's, made for data connections that resume the control connection's session (RFC
/// 4217 10.2), as many times as the session has transfers:
/// - TLS 1.3 tickets are stateless (encrypted by a rotating key): one ticket resumes any
///   number of times, as OpenSSL's do. rustls's default tickets live in a cache and serve
///   once, so a client that keeps its first ticket (Python's ftplib, `session=`) would be
///   refused from its second transfer on;
/// - TLS 1.2 session ids are kept for 65,536 sessions (rustls keeps 256 by default).
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> zero_core::Result<Arc<rustls::ServerConfig>> {
    let (mut config, _) = zero_core::tls::ServerTls::from_pem_files(cert, key)?.build()?;
    let ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| zero_core::IoError::Config(format!("TLS session tickets: {e}")))?;
    if let Some(c) = Arc::get_mut(&mut config) {
        c.session_storage = rustls::server::ServerSessionMemoryCache::new(65_536);
        c.ticketer = ticketer;
    }
    Ok(config)
}

/// Where the control connection is, for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub remote: SocketAddr,
    /// The server's address the client reached.
    pub local: SocketAddr,
    /// The control connection is TLS from the start (implicit FTPS).
    pub tls: bool,
}

/// How a transfer's data connection is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// The client connects to the listener a `PASV`/`EPSV` opened; only a connection from the
    /// control connection's address is taken (no data theft).
    Passive,
    /// The server connects to the client (`PORT`/`EPRT`, already checked: the control
    /// connection's address, a port of 1024 or more, no bounce).
    Active(SocketAddr),
}

/// How a listing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// `LIST`: `ls -l` lines.
    Long,
    /// `NLST`: names.
    Names,
    /// `MLSD`: facts (RFC 3659 7).
    Facts,
}

/// What a transfer moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferKind {
    /// `LIST`, `NLST`, `MLSD` of a directory (or `LIST` of one file).
    List(VPath, ListFormat),
    /// `RETR` from an offset (`REST`).
    Retrieve(VPath, u64),
    /// `STOR`, `APPE`, `STOU` (and `STOR` after `REST`).
    Store(VPath, Write),
}

/// A transfer the owner is to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// What it moves.
    pub kind: TransferKind,
    /// Its data connection.
    pub mode: DataMode,
    /// The data connection is TLS (`PROT P`), the server its TLS server (RFC 4217 7), and
    /// its handshake must resume the control connection's session (10.2).
    pub tls: bool,
}

/// A file-system request, answered by [`Session::fs_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fs {
    /// `CWD`: is it a directory?
    ChangeDir(VPath),
    /// `MKD`.
    MakeDir(VPath),
    /// `RMD`.
    RemoveDir(VPath),
    /// `DELE`.
    Delete(VPath),
    /// `RNFR`: does it exist?
    RenameFrom(VPath),
    /// `RNTO`.
    Rename(VPath, VPath),
    /// `SIZE`, `MDTM`, `MLST`: its facts.
    Stat(VPath),
    /// `STAT path`: its listing, on the control connection.
    List(VPath),
}

/// What the owner found, for [`Session::fs_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsDone {
    /// Done (a change made, a directory found).
    Ok,
    /// An entry's facts.
    Stat(crate::codec::list::Entry),
    /// A listing.
    List(Vec<crate::codec::list::Entry>),
}

/// Why a file-system request or transfer failed, for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// No such file or directory (`550`).
    NotFound,
    /// Refused: permissions, outside the root, a directory not empty (`550`).
    Refused,
    /// The file exists (`STOU`, `MKD`) (`550`).
    Exists,
    /// Out of space (`552`).
    NoSpace,
    /// Over the user's quota (`552`).
    OverQuota,
    /// Any other local error (`451`).
    Local,
}

impl From<&std::io::Error> for FsError {
    fn from(e: &std::io::Error) -> FsError {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => FsError::NotFound,
            K::AlreadyExists => FsError::Exists,
            K::PermissionDenied
            | K::InvalidInput
            | K::DirectoryNotEmpty
            | K::IsADirectory
            | K::NotADirectory => FsError::Refused,
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => FsError::NoSpace,
            // EXDEV: openat2 refused a path leaving the root.
            _ if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => FsError::Refused,
            _ => FsError::Local,
        }
    }
}

/// How a transfer ended, for [`Session::transfer_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEnd {
    /// Every byte moved (`226`).
    Complete(u64),
    /// The data connection could not be made (`425`).
    NoConnection,
    /// The data connection broke, or `ABOR` stopped it (`426`).
    Broken,
    /// The data connection's TLS handshake did not resume the control connection's session
    /// (`522`, RFC 4217 10.2: no data connection from whoever merely knows the port).
    NoSessionReuse,
    /// The file could not be read or written (`451`, or `552` when out of space).
    Fs(FsError),
}

/// What the session asks of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The user logged in: open its root (`Session::root_done` when it cannot be).
    LoggedIn {
        /// The user name.
        user: String,
        /// Its root directory.
        root: PathBuf,
        /// What it may do.
        perms: Perms,
        /// It is the anonymous user.
        anonymous: bool,
    },
    /// Open a passive listener (closing any before): [`Session::passive_done`]. `tls`: the
    /// connection it takes is to be TLS at once (`PROT P` is in force).
    Passive {
        /// Whether the data connection is TLS.
        tls: bool,
    },
    /// Close the data listener or connection prepared (a new mode chosen, or the session
    /// ending).
    DropData,
    /// A file-system request: [`Session::fs_done`].
    Fs(Fs),
    /// A transfer: [`Session::transfer_opened`] once the file and the data connection are
    /// ready (or [`Session::transfer_done`] with why not), then `transfer_done`.
    Transfer(Transfer),
    /// Stop the running transfer (`ABOR`); `transfer_done(Broken)` follows.
    Abort,
}
