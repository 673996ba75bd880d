//! The crate's one error type.

use std::time::Duration;

use zero_core::machine::Closed;

use crate::codec::DecodeError;

/// What went wrong with a command, a connection or a reply's conversion.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered the command with an error (`-ERR ...`, `!...`).
    #[error("the server replied with an error: {0}")]
    Server(ServerError),
    /// The connection failed while the command was outstanding. `sent: false`: the command
    /// never left the client, so it did not run; `sent: true`: it was written, so it may or
    /// may not have run, and the retry policy did not allow sending it again.
    #[error("the connection to the server was lost {}", if *sent { "after the command was sent: it may or may not have run" } else { "before the command was sent: it did not run" })]
    ConnectionLost {
        /// Whether the command had been written to the connection.
        sent: bool,
    },
    /// No reply within the command timeout. `sent: true`: it may still run (its reply, if
    /// one comes, is discarded); `sent: false`: it was never written and will not be.
    #[error("no reply within the command timeout {}", if *sent { "(the command was sent and may still run)" } else { "(the command was never sent)" })]
    Timeout {
        /// Whether the command had been written to the connection.
        sent: bool,
    },
    /// The connection could not be opened, or it ended: how, as the driver saw it.
    #[error("the connection to the server failed: {0}")]
    Connection(Closed),
    /// The server refused a step of the connection's set-up (`HELLO`, `AUTH`, `SELECT`, ...).
    #[error("the server refused the connection's {step}: {reply}")]
    SetupRefused {
        /// The step: `HELLO`, or `set-up` for the RESP2 steps and `SELECT`.
        step: &'static str,
        /// The server's error reply.
        reply: ServerError,
    },
    /// The connection was not ready (open and set up) in time.
    #[error("the connection was not ready within {0:?}")]
    ConnectTimeout(Duration),
    /// The server sent a reply when no command was waiting for one; the connection was
    /// closed.
    #[error("the server sent a reply to no command; the connection was closed")]
    UnexpectedReply,
    /// The client's shard thread could not be started.
    #[error("the client could not start: {0}")]
    Start(String),
    /// The server sent bytes that are not RESP, or broke a decoding limit; the connection
    /// was closed.
    #[error("the server sent a bad reply: {0}")]
    Protocol(#[from] DecodeError),
    /// A reply could not be converted into the type asked for.
    #[error("cannot convert the reply {got} into {expected}")]
    Conversion {
        /// The type asked for.
        expected: &'static str,
        /// What the reply was.
        got: String,
    },
    /// A `redis://` or `rediss://` URL that cannot be used.
    #[error("bad Redis URL: {0}")]
    Url(String),
    /// A call the client cannot make as asked.
    #[error("invalid request: {0}")]
    Usage(&'static str),
    /// The client was closed (or its thread ended) before the command completed.
    #[error("the client is closed")]
    Closed,
}

/// An error reply, e.g. `WRONGTYPE Operation against a key holding the wrong kind of value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError(pub String);

impl ServerError {
    /// The error's code: its first word (`ERR`, `WRONGTYPE`, `NOAUTH`, `MOVED`, ...).
    pub fn code(&self) -> &str {
        self.0.split(' ').next().unwrap_or("")
    }

    /// The text after the code.
    pub fn message(&self) -> &str {
        self.0.split_once(' ').map_or("", |(_, m)| m)
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
