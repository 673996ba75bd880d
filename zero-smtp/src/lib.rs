//! # zero-smtp
//!
//! SMTP for zero (RFC 5321 and its extensions), in the codec / machine / driver split of
//! zero-core.
//!
//! - [`codec`]: command lines, replies, and the message text of `DATA` (only `CRLF.CRLF` ends
//!   it: the SMTP smuggling defence lives there).
//! - [`server`]: the server session machine (every command of RFC 5321, PIPELINING, SIZE,
//!   8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, DSN, STARTTLS, AUTH, REQUIRETLS).
//! - [`spool`]: accepted messages on disk before their `250`, one fsync per shard batch.
//! - [`client`]: the client machine (pipelining, BDAT, STARTTLS by policy, AUTH), one
//!   connection delivering many messages.
//! - [`relay`]: the queue manager delivering the spool onward (routes, MX through zero-dns,
//!   retries, bounces).

pub mod client;
pub mod codec;
pub mod relay;
pub mod server;
pub mod spool;
