//! # zero-fix
//!
//! FIX 4.2, 4.4 and FIXT 1.1 for zero, in the codec / machine / driver split of zero-core:
//!
//! - [`codec`]: the tag=value codec, sans I/O. A zero-copy parser (messages framed by
//!   BodyLength and verified by CheckSum, fields as borrowed slices in wire order, header
//!   fields in O(1), repeating groups on demand, garbled frames skipped up to the next
//!   `8=FIX`) and a builder that writes straight into a send buffer and fills in BodyLength and
//!   CheckSum at the end. Steady state allocates nothing.
//! - [`dict`]: data dictionaries in the QuickFIX XML format (FIX 4.2, 4.4, FIXT 1.1 and 5.0 SP2
//!   built in), and the per-session [`dict::Validation`] whose failures carry the
//!   SessionRejectReason a Reject needs. [`messages`] has typed views of the common
//!   order-entry messages, generated from the FIX 4.4 dictionary at build time.
//! - [`session`]: the session machine (a zero-core `Machine`), its message stores and the
//!   write-ahead log [`session::Wal`].
//! - [`acceptor`]: many sessions on one port on a zero-core shard, the application called
//!   inline; [`acceptor::Echo`] is the built-in counterparty.
//! - [`client`]: a session for callers off the shard, on zero-core's runner kit: blocking
//!   (`Background`) and Tokio (`Task`, feature `tokio`).
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard, the machine contract and its runners, the journal the
//!   write-ahead log is written in.
//! - `thiserror`, `tracing`: the house error and logging conventions.
//! - `roxmltree`: reads the QuickFIX XML dictionaries (the de-facto format for custom ones):
//!   small, no dependencies of its own, read-only, which is all a dictionary needs. The build
//!   script uses it too, through the same reader (`src/dict/model.rs`).
//! - `jiff`: time zones for session schedules (a window opens at 08:00 in New York, DST and
//!   all). It reads the system's tz database and carries a bundled copy for machines without
//!   one; a schedule is evaluated only at its boundaries, never per message.

pub mod acceptor;
pub mod client;
pub mod codec;
pub mod dict;
pub mod messages;
pub mod session;
