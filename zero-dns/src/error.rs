//! What a lookup's failure says: which answer, from which server, after how many tries.

use std::net::SocketAddr;

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN), under every name the search list tried.
    #[error("{name}: no such name (NXDOMAIN from {server})")]
    NxDomain {
        /// The last name asked.
        name: String,
        /// Who said so (`cache` if it was remembered).
        server: Source,
    },
    /// The name exists but has no records of that type (NODATA).
    #[error("{name}: no {rtype} records (NODATA from {server})")]
    NoData {
        /// The name.
        name: String,
        /// The type asked for.
        rtype: String,
        /// Who said so.
        server: Source,
    },
    /// Every server failed; the last failure was a SERVFAIL or REFUSED from `server`.
    #[error("{name}: {rcode} from {server}")]
    ServerFailure {
        /// The name.
        name: String,
        /// SERVFAIL, REFUSED, NOTIMP, FORMERR, ...
        rcode: String,
        /// The last server that answered so.
        server: SocketAddr,
    },
    /// The last try's connection failed (TCP refused, a TLS certificate that does not check
    /// out, ...), and no server answered.
    #[error("{name}: {why} ({server})")]
    Connection {
        /// The name.
        name: String,
        /// What failed.
        why: String,
        /// The last server tried.
        server: SocketAddr,
    },
    /// No answer in time.
    #[error("{name}: timed out after {tries} tries of {servers} servers")]
    Timeout {
        /// The name.
        name: String,
        /// Queries sent.
        tries: u32,
        /// Servers configured.
        servers: usize,
    },
    /// A CNAME chain longer than the limit, or one that loops.
    #[error("{name}: CNAME chain too long or looping")]
    CnameLoop {
        /// The name asked.
        name: String,
    },
    /// The name is not a valid domain name.
    #[error("{0:?} is not a valid domain name: {1}")]
    BadName(String, String),
    /// No name server is configured.
    #[error("no name server configured (nameserver in /etc/resolv.conf)")]
    NoServers,
    /// The resolver was stopped.
    #[error("the resolver stopped")]
    Stopped,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A name server.
    Server(SocketAddr),
    /// The cache (the server's earlier answer, within its TTL).
    Cache,
    /// `/etc/hosts`.
    Hosts,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Server(addr) => write!(f, "{addr}"),
            Source::Cache => write!(f, "cache"),
            Source::Hosts => write!(f, "/etc/hosts"),
        }
    }
}
