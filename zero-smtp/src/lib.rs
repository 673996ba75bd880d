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
//! - [`dkim`]: DKIM signing and verification (RFC 6376, Ed25519 of RFC 8463, RFC 8301's
//!   floor), and the Authentication-Results header.
//! - [`spf`]: SPF (RFC 7208), sans-I/O: the queries a check needs, then its result.
//! - [`results`]: the Authentication-Results header (RFC 8601).
//! - [`relay`]: the queue manager delivering the spool onward (routes, MX through zero-dns,
//!   retries, bounces).
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard, TCP, TLS, the journal under the spool.
//! - `zero-dns`: MX and address lookups for the relay, key records for DKIM.
//! - `lettre` (builder only): the messages zero composes (bounces, `zero smtp send`), MIME
//!   and header encoding done the way the Rust mail ecosystem does it.
//! - `rsa`, `ed25519-dalek`, `sha2`: DKIM's algorithms, from RustCrypto. `ring` (already in
//!   the build for rustls) cannot sign with an RSA key under 2048 bits, and RFC 8463's worked
//!   example, which must come out byte for byte, uses a 1024-bit one; RSA signing is blinded
//!   (RUSTSEC-2023-0071).
//! - `base64`, `jiff` (dates in trace headers and reports), `rand` (message ids),
//!   `thiserror`, `tracing`: the house conventions.

pub mod client;
pub mod codec;
pub mod dkim;
pub mod relay;
pub mod results;
pub mod server;
pub mod spf;
pub mod spool;
