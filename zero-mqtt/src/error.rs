//! The crate's error type.

use std::path::PathBuf;

/// What went wrong setting up or running MQTT.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A broker configuration file has a line zero-mqtt cannot use.
    #[error("{}: line {line}: {reason}", file.display())]
    Config {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A password or ACL file is wrong.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The persistence directory's journal could not be opened, written or compacted.
    #[error("journal in {}: {source}", dir.display())]
    Journal {
        /// The persistence directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A client command was refused.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The server refused the connection (CONNACK).
    #[error("the server refused the connection: {0}")]
    Refused(crate::codec::ReasonCode),
    /// The server refused a publish (PUBACK, PUBREC or PUBCOMP with a failure reason).
    #[error("the server refused the publish: {0}")]
    Rejected(crate::codec::ReasonCode),
    /// The server did not answer in time.
    #[error("no {0} from the server in time")]
    Timeout(&'static str),
    /// A host name did not resolve to an address.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// The client's shard thread is gone.
    #[error("the client has stopped")]
    Stopped,
    /// A bridge could not be set up (see [`crate::bridge`]).
    #[error("bridge: {0}")]
    Bridge(String),
    /// The transport failed (listening, the ring, TLS set-up).
    #[error(transparent)]
    Io(#[from] zero_core::IoError),
}
