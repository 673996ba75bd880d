//! The SMTP server: a [`Session`] machine per connection (sans I/O), what it needs to know
//! ([`ServerConfig`], [`Peer`]) and what it hands its owner ([`Event`], [`Envelope`]).
//!
//! The owner stores each message a session hands it and answers with
//! [`Session::stored`]; only then does the client get its `250`. That is where durability
//! lives: a relay answers after its spool is on disk (see `crate::spool`).

mod auth;
mod machine;
mod shard;
#[cfg(test)]
mod tests;
pub mod trace;
mod verifier;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use auth::{Credentials, Mechanism};
pub use machine::Session;
pub use shard::{Authenticator, Network, Server, Sink, Store};

use crate::codec::command::{Body, Ret};
use crate::codec::BareLineEnding;

/// What every session of a server shares.
#[derive(Clone)]
pub struct ServerConfig {
    /// The name the server gives in its greeting and EHLO reply.
    pub hostname: String,
    /// The largest message accepted, in octets (advertised as `SIZE`).
    pub max_size: usize,
    /// Recipients per message; beyond, `452 4.5.3` (RFC 5321 4.5.3.1.8 asks for at least 100).
    pub max_recipients: usize,
    /// STARTTLS is offered when set (RFC 3207).
    pub tls: Option<Arc<zero_core::rustls::ServerConfig>>,
    /// AUTH (PLAIN, LOGIN) is offered when set; checking the credentials is the owner's
    /// ([`Event::Authenticate`]).
    pub auth: bool,
    /// Offer AUTH before TLS too (off by default: passwords in plaintext).
    pub auth_without_tls: bool,
    /// Offer XOAUTH2 (a bearer token as the secret).
    pub xoauth2: bool,
    /// Refuse MAIL until the client authenticated (a submission port).
    pub auth_required: bool,
    /// Recipient domains accepted from anyone; other recipients only from authenticated or
    /// trusted clients (no open relay).
    pub accept_domains: Vec<String>,
    /// What a bare CR or LF in message text means.
    pub bare_line_endings: BareLineEnding,
    /// Waiting for a command (RFC 5321 4.5.3.2.7: at least 5 minutes).
    pub command_timeout: Duration,
    /// Waiting for more message text (4.5.3.2.5: 3 minutes for each block).
    pub data_timeout: Duration,
    /// Refused commands a client may send before it is disconnected (`421 4.7.0`).
    pub max_errors: usize,
    /// DKIM signers: a message from an authenticated or trusted client whose `From:` domain
    /// has one is signed before it is stored.
    pub dkim: Vec<crate::dkim::Signer>,
}

impl ServerConfig {
    /// Defaults for `hostname`: 35 MiB messages, 100 recipients, no TLS, no AUTH, bare line
    /// endings refused, 5-minute command and 3-minute data timeouts, 10 errors.
    pub fn new(hostname: &str) -> ServerConfig {
        ServerConfig {
            hostname: hostname.to_string(),
            max_size: 35 << 20,
            max_recipients: 100,
            tls: None,
            auth: false,
            auth_without_tls: false,
            xoauth2: false,
            auth_required: false,
            accept_domains: Vec::new(),
            bare_line_endings: BareLineEnding::Reject,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            max_errors: 10,
            dkim: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("hostname", &self.hostname)
            .field("max_size", &self.max_size)
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Who is on the other end of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// From a trusted network: may relay to any domain without authenticating.
    pub trusted: bool,
    /// The connection is TLS from the start (a port-465 listener).
    pub tls: bool,
}

/// A message's recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address (`user@example.com`, or `Postmaster`).
    pub address: String,
    /// `NOTIFY=` (DSN).
    pub notify: Option<String>,
    /// `ORCPT=` (DSN).
    pub orcpt: Option<String>,
}

/// A message's envelope: what the session learned besides the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The client: its address, whether trusted, and so on.
    pub peer: Peer,
    /// What it said in EHLO/HELO.
    pub helo: String,
    /// Whether it said EHLO (ESMTP).
    pub esmtp: bool,
    /// Whether the session was TLS when the message came.
    pub tls: bool,
    /// Who it authenticated as.
    pub authenticated: Option<String>,
    /// The reverse-path (empty for a bounce).
    pub from: String,
    /// The recipients, in order.
    pub recipients: Vec<Recipient>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
    /// `REQUIRETLS` (RFC 8689): every later hop must use TLS too.
    pub requiretls: bool,
    /// `RET=` (DSN).
    pub ret: Option<Ret>,
    /// `ENVID=` (DSN).
    pub envid: Option<String>,
}

/// What a session asks of its owner.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A whole message: store it, then answer with [`Session::stored`] (the client waits
    /// for its `250` until then, and the session reads nothing more).
    Message {
        /// Its envelope.
        envelope: Box<Envelope>,
        /// Its text: CRLF line ends, dot-unstuffed.
        body: Vec<u8>,
    },
    /// Credentials to check: answer with [`Session::authenticated`].
    Authenticate(Credentials),
}
