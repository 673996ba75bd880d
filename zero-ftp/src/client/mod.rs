//! The FTP client: a [`Client`] machine runs one control connection (sans I/O) and tells its
//! owner which data connections to open; [`Connection`] runs it on a shard of its own behind
//! a blocking API (`get`, `put`, `list`, `mirror`), which is what `zero ftp` uses.
//!
//! Each [`Request`] ends in exactly one [`Event::Done`]: the server's final reply, or an
//! [`Error`] saying what failed.

mod blocking;
mod machine;
mod mirror;
#[cfg(test)]
mod tests;
mod url;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use blocking::{Connection, Progress};
pub use machine::Client;
pub use mirror::{mirror, Mirrored};
pub use url::{FtpUrl, UrlError};

use crate::codec::reply::Reply;

/// How the control connection is secured (RFC 4217).
#[derive(Clone)]
pub enum Security {
    /// Plain FTP.
    Plain,
    /// Explicit FTPS: `AUTH TLS` after the greeting, before the login; never a silent
    /// downgrade (a server that refuses it gets no password).
    Explicit(TlsClient),
    /// Implicit FTPS: TLS from the first byte (port 990 by custom; `ftps://`).
    Implicit(TlsClient),
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::Plain => f.write_str("Plain"),
            Security::Explicit(t) => write!(f, "Explicit({})", t.server_name),
            Security::Implicit(t) => write!(f, "Implicit({})", t.server_name),
        }
    }
}

/// The TLS client side: the name the server's certificate must carry, and the configuration
/// (whose session store lets data connections resume the control connection's session, as
/// servers that require it, vsftpd's `require_ssl_reuse` and ours, insist).
#[derive(Clone)]
pub struct TlsClient {
    /// The server's name (checked in its certificate; sent as SNI).
    pub server_name: String,
    /// The rustls configuration (zero-core's `ClientTls`).
    pub config: Arc<zero_core::rustls::ClientConfig>,
}

/// What a client session does.
#[derive(Clone)]
pub struct ClientConfig {
    /// The user name (`anonymous` for anonymous access).
    pub user: String,
    /// The password (hidden from `Debug`).
    pub password: String,
    /// TLS.
    pub security: Security,
    /// Passive data connections (`EPSV`, `PASV` where refused), the default; active (`EPRT`,
    /// or `PORT` on IPv4) otherwise.
    pub passive: bool,
    /// Waiting for the greeting and each reply.
    pub command_timeout: Duration,
    /// A transfer that moves no byte for this long fails.
    pub data_timeout: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("user", &self.user)
            .field("security", &self.security)
            .field("passive", &self.passive)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Defaults for `user`: plain FTP, passive, a minute for each reply and for a stalled
    /// transfer.
    pub fn new(user: &str, password: &str) -> ClientConfig {
        ClientConfig {
            user: user.to_string(),
            password: password.to_string(),
            security: Security::Plain,
            passive: true,
            command_timeout: Duration::from_secs(60),
            data_timeout: Duration::from_secs(60),
        }
    }

    /// Anonymous access (RFC 1635: the password is an e-mail address, or anything).
    pub fn anonymous() -> ClientConfig {
        ClientConfig::new("anonymous", "anonymous@")
    }
}

/// How a listing is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `LIST`: `ls -l` lines (or MS-DOS ones).
    Long,
    /// `NLST`: names.
    Names,
    /// `MLSD`: facts (RFC 3659 7).
    Facts,
}

/// What the client is asked to do. Paths are sent as given (relative to the working
/// directory, or absolute); one holding CR or LF is refused ([`Error::BadArgument`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `CWD`.
    ChangeDir(String),
    /// `PWD`: the path is in the reply ([`Reply::quoted`]).
    PrintDir,
    /// `MKD`.
    MakeDir(String),
    /// `RMD`.
    RemoveDir(String),
    /// `DELE`.
    Delete(String),
    /// `RNFR` then `RNTO`.
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// `SIZE` (RFC 3659 4).
    Size(String),
    /// `MDTM` (RFC 3659 3).
    ModTime(String),
    /// `MLST` (RFC 3659 7): one entry's facts, in the reply.
    Facts(String),
    /// Any other command line, sent as is (`SITE CHMOD 644 f`, `NOOP`).
    Quote(String),
    /// A listing of `path` (the working directory when `None`), on a data connection.
    List {
        /// What to list.
        path: Option<String>,
        /// How.
        format: Listing,
    },
    /// `RETR`, from `offset` (`REST` first when not 0).
    Retrieve {
        /// The file.
        path: String,
        /// Where to begin.
        offset: u64,
    },
    /// `STOR`, or `APPE` when `append` (to resume an upload).
    Store {
        /// The file.
        path: String,
        /// Append to what is there.
        append: bool,
    },
}

impl Request {
    /// Whether it moves bytes on a data connection.
    pub fn is_transfer(&self) -> bool {
        matches!(self, Request::List { .. } | Request::Retrieve { .. } | Request::Store { .. })
    }
}

/// A request's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// What the server offered in its `FEAT` reply (RFC 2389).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// `MLST` (and so `MLSD`).
    pub mlst: bool,
    /// `SIZE`.
    pub size: bool,
    /// `MDTM`.
    pub mdtm: bool,
    /// `REST STREAM`.
    pub rest_stream: bool,
    /// `EPSV`.
    pub epsv: bool,
    /// `UTF8` (RFC 2640): turned on with `OPTS UTF8 ON`.
    pub utf8: bool,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused it (a 4xx or 5xx reply).
    #[error("the server refused: {0}")]
    Refused(Reply),
    /// The login failed.
    #[error("login failed: {0}")]
    Login(Reply),
    /// `AUTH TLS` was refused: nothing more is sent (never a silent downgrade).
    #[error("the server refused TLS ({0}); nothing was sent in plaintext")]
    TlsRefused(Reply),
    /// The data connection ended before its last byte (a reset, or TLS without close_notify).
    #[error("the data connection broke before the transfer ended (the server said: {0})")]
    DataLost(Reply),
    /// The data connection could not be opened.
    #[error("no data connection: {0}")]
    DataConnection(String),
    /// Nothing came for too long.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The control connection is gone (or could not be made).
    #[error("the control connection ended: {0}")]
    Closed(String),
    /// The server's reply was not FTP, or not what the command allows.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// An argument holding CR or LF (it would smuggle a second command).
    #[error("{0:?}: an argument may not hold CR or LF")]
    BadArgument(String),
    /// A local file could not be read or written.
    #[error("local file: {0}")]
    Local(String),
}

/// What a client session tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Logged in and set up (TLS, `PROT P`, `FEAT`, `TYPE I`): requests run from here.
    Ready,
    /// A request is done with: the server's final reply, or why not.
    Done {
        /// The request.
        id: RequestId,
        /// Its result.
        result: Result<Reply, Error>,
    },
    /// Connect the data connection to `addr` (passive): [`Client::data_connected`] once it
    /// is up.
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Whether it will be TLS (`PROT P`; [`Event::Secure`] says when).
        tls: bool,
    },
    /// Listen for the server's data connection (active) on the control connection's local
    /// address: [`Client::listening`] with the address; take one connection, only from
    /// [`Client::is_server`], and report it [`Client::data_connected`].
    Listen {
        /// Whether it will be TLS (`PROT P`; [`Event::Secure`] says when).
        tls: bool,
    },
    /// Begin TLS on the data connection as its client (RFC 4217 7), resuming the control
    /// connection's session: [`Client::data_opened`] once the handshake is done.
    Secure,
    /// The server is ready for an upload: send the bytes, then close the data connection
    /// (with TLS close_notify) and report [`Client::data_closed`].
    Send,
    /// Close the data connection and listener at once (the transfer failed).
    DropData,
}
