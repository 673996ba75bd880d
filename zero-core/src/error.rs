//! The one error type of `zero-core`.

use std::io;

use crate::socks5::Socks5Error;
use crate::tls::TlsError;

/// Everything that can go wrong in a shard. Each message names the operation, the cause and,
/// where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The kernel refused to create an io_uring instance.
    #[error("io_uring_setup failed: {cause}. {advice}")]
    RingUnavailable {
        /// The error returned by `io_uring_setup(2)`.
        cause: io::Error,
        /// What to do about it.
        advice: &'static str,
    },
    /// The kernel's io_uring lacks an operation zero-core needs.
    #[error(
        "io_uring lacks {feature} (kernel {kernel}); zero-core needs Linux 6.0 or newer with \
         multishot receive and provided buffer rings: upgrade the kernel"
    )]
    Unsupported {
        /// The missing operation or feature.
        feature: &'static str,
        /// The running kernel's release string.
        kernel: String,
    },
    /// A system call failed.
    #[error("{op} failed: {cause}")]
    Syscall {
        /// The operation that failed, e.g. `bind 127.0.0.1:80`.
        op: String,
        /// The operating system's error.
        cause: io::Error,
    },
    /// The id refers to a connection that is closed (its slot may hold a newer connection).
    #[error("stale id {0}: that connection or socket is closed; ids are never reused")]
    Stale(String),
    /// The id is valid but names a socket of another kind (e.g. a datagram send on a stream).
    #[error("wrong socket kind: {0}")]
    WrongKind(&'static str),
    /// The connection's bounded send queue cannot take the data; wait for `Event::Writable`.
    #[error(
        "send queue of connection {conn} is full ({queued} bytes queued, limit {limit}): the peer \
         is not reading; wait for Event::Writable before sending more"
    )]
    SendQueueFull {
        /// The connection.
        conn: String,
        /// Bytes already queued.
        queued: usize,
        /// The configured limit (`Config::send_queue_limit`).
        limit: usize,
    },
    /// The connection is closing or half-closed for writing; nothing more can be sent.
    #[error("connection {0} is closing: no more data can be sent on it")]
    Closing(String),
    /// The connection table is full (`Config::max_connections`).
    #[error("connection table full ({0} slots): raise Config::max_connections or close idle connections")]
    TableFull(usize),
    /// An outbound connection attempt did not complete within its deadline.
    #[error("connect to {0} timed out")]
    ConnectTimeout(String),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A shard's handler panicked: a bug. The cluster stopped every shard rather than run on
    /// with one dead (see [`IoCluster`](crate::IoCluster)).
    #[error(
        "shard {shard} panicked ({message}); every shard was stopped: this is a bug, please          report it; restart the process (persisted state is intact)"
    )]
    ShardPanicked {
        /// The shard that panicked.
        shard: usize,
        /// The panic's message.
        message: String,
    },
    /// A TLS handshake failed, or a TLS configuration could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A WebSocket upgrade failed, or the peer broke the protocol.
    #[error(transparent)]
    WebSocket(#[from] crate::ws::WsError),
    /// A SOCKS5 proxy refused the request or broke the protocol.
    #[error(transparent)]
    Socks5(#[from] Socks5Error),
    /// The socket is not ready for this yet.
    #[error("not ready: {0}")]
    NotReady(&'static str),
    /// The connection was lost before its handshake (TLS or SOCKS5) finished.
    #[error("the connection was lost during its handshake ({0})")]
    HandshakeLost(String),
    /// The shard this handle belongs to has stopped.
    #[error("the shard has stopped; its handle can no longer reach it")]
    ShardGone,
}

impl IoError {
    /// Wraps an OS error with the name of the operation that produced it.
    pub(crate) fn sys(op: impl Into<String>, cause: io::Error) -> Self {
        IoError::Syscall { op: op.into(), cause }
    }

    /// The underlying OS error number, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            IoError::Syscall { cause, .. } | IoError::RingUnavailable { cause, .. } => cause.raw_os_error(),
            _ => None,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = IoError> = std::result::Result<T, E>;
