//! The SMTP client: a [`Client`] machine delivers messages over one connection (sans I/O),
//! under a [`ClientConfig`]; each message it is given ends in exactly one
//! [`Event::Outcome`], with a result per recipient.

mod machine;
mod shard;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use machine::Client;
pub use shard::{send_blocking, Outcomes};

use crate::codec::reply::Reply;

/// Whether and how the client uses STARTTLS (RFC 3207).
#[derive(Clone)]
pub enum TlsPolicy {
    /// Never (a test peer, a trusted local hop).
    Never,
    /// When the server offers it; plaintext otherwise (opportunistic, RFC 7435). A failed
    /// handshake fails the connection; it is not retried in plaintext by this machine.
    Opportunistic(TlsClient),
    /// Always: a server that does not offer it, or refuses it, gets nothing (never a silent
    /// downgrade); the messages fail as transient.
    Required(TlsClient),
}

/// The TLS client side: the name the certificate must carry, and the configuration.
#[derive(Clone)]
pub struct TlsClient {
    /// The server's name (checked in its certificate; sent as SNI).
    pub server_name: String,
    /// The rustls configuration (zero-core's `ClientTls`).
    pub config: Arc<zero_core::rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsPolicy::Never => f.write_str("Never"),
            TlsPolicy::Opportunistic(t) => write!(f, "Opportunistic({})", t.server_name),
            TlsPolicy::Required(t) => write!(f, "Required({})", t.server_name),
        }
    }
}

/// What a client session does.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name it gives in EHLO.
    pub helo: String,
    /// STARTTLS.
    pub tls: TlsPolicy,
    /// AUTH as (user, password), if set (PLAIN, or LOGIN where PLAIN is not offered). The
    /// server must offer one of them, or the messages fail.
    pub auth: Option<(String, String)>,
    /// Use BDAT when the server offers CHUNKING (RFC 3030).
    pub chunking: bool,
    /// Waiting for the greeting and for each command's reply (RFC 5321 4.5.3.2: 5 minutes).
    pub command_timeout: Duration,
    /// Waiting for the reply to the end of the message text (4.5.3.2.6: 10 minutes).
    pub data_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for EHLO name `helo`: no TLS, no AUTH, BDAT when offered, the RFC's
    /// timeouts.
    pub fn new(helo: &str) -> ClientConfig {
        ClientConfig {
            helo: helo.to_string(),
            tls: TlsPolicy::Never,
            auth: None,
            chunking: true,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
        }
    }
}

/// A recipient of an outgoing message, with its DSN parameters (RFC 3461).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct To {
    /// The address.
    pub address: String,
    /// `NOTIFY=`.
    pub notify: Option<String>,
    /// `ORCPT=`.
    pub orcpt: Option<String>,
}

impl To {
    /// A recipient without DSN parameters.
    pub fn new(address: &str) -> To {
        To { address: address.to_string(), notify: None, orcpt: None }
    }
}

/// A message to deliver.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The reverse-path (empty for a bounce).
    pub from: String,
    /// The recipients.
    pub to: Vec<To>,
    /// The text: CRLF line ends (the spool stores it so).
    pub text: Arc<[u8]>,
    /// The text has 8-bit octets: `BODY=8BITMIME` (the server must offer it).
    pub eight_bit: bool,
    /// The addresses are UTF-8: `SMTPUTF8` (the server must offer it).
    pub smtputf8: bool,
    /// `REQUIRETLS` (RFC 8689): only over TLS to a server that offers it.
    pub requiretls: bool,
    /// `RET=` (DSN), as sent.
    pub ret: Option<&'static str>,
    /// `ENVID=` (DSN).
    pub envid: Option<String>,
}

/// A message's handle in a client session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendId(pub u64);

/// Why a recipient was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server's reply, if it gave one.
    pub reply: Option<Reply>,
    /// Permanent (5xx, or a rule the message breaks): bounce it. Otherwise: try again later.
    pub permanent: bool,
    /// What happened, for logs and bounces.
    pub why: String,
}

impl Failure {
    /// A failure that is the server's reply.
    pub fn reply(reply: Reply) -> Failure {
        Failure { permanent: reply.is_permanent(), why: reply.to_string(), reply: Some(reply) }
    }

    /// A transient failure with no reply (a lost connection, a timeout, a TLS policy).
    pub fn transient(why: &str) -> Failure {
        Failure { reply: None, permanent: false, why: why.to_string() }
    }

    /// A permanent failure with no reply (the server cannot take the message as it is).
    pub fn permanent(why: &str) -> Failure {
        Failure { reply: None, permanent: true, why: why.to_string() }
    }
}

/// What a client session tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message is done with: for each recipient, in order, the server's acceptance (the
    /// reply to the message's text) or why not.
    Outcome {
        /// The message.
        id: SendId,
        /// Per recipient.
        recipients: Vec<Result<Reply, Failure>>,
    },
    /// The session is set up (greeting, EHLO, STARTTLS, AUTH done) and idle: more messages
    /// may be sent on it.
    Idle,
}
