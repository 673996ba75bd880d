//! # zero-sbe
//!
//! SBE (FIX Simple Binary Encoding 1.0) for zero.
//!
//! - [`schema`]: the XML message schema, read and laid out: types, composites, enums, sets,
//!   messages, groups, variable-length data, `sinceVersion`, `deprecated`, byte order,
//!   constants, null values.
//! - [`primitive`]: SBE's primitive types, their sizes and null values.
//! - [`decode`]: any message of a schema decoded without generated code (bounds-checked,
//!   version-aware), into JSON for humans.
//! - [`encode`]: the inverse, any message from JSON (fixtures, tools, round-trip tests).
//! - [`generate`]: Rust flyweight decoders from a schema (for a `build.rs`, or
//!   `zero sbe generate`); [`flyweight`] is what they share.
//! - [`capture`]: UDP datagrams from pcap and pcapng files, for replaying a feed.
//! - [`mdp3`]: CME MDP 3.0: packet framing, A/B arbitration, books by price and by order,
//!   and the channel (recovery from the snapshot loops, trades, statistics, definitions),
//!   with a multicast driver and a simulated exchange for tests and benchmarks.
//!
//! The MDP 3.0 channel is a sans-I/O machine in zero-core's style (time handed in, events and
//! a deadline out), but not a zero-core `Machine`: that contract is one connection-oriented
//! client, and a channel reads datagrams from up to five multicast groups. Its driver
//! (`mdp3::driver`) is therefore its own, on zero-core's UDP sockets and timers.
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard the feed driver runs on (multicast UDP, timers).
//! - `roxmltree`: reading the XML schema (read-only, no allocation per node beyond the
//!   document; zero-fix reads its data dictionaries with it too).
//! - `serde_json`: the JSON dump.
//! - `thiserror`: the house error convention.

// Generated code names this crate `zero_sbe`, as a user's crate would.
extern crate self as zero_sbe;

pub mod capture;
pub mod decode;
pub mod encode;
pub mod flyweight;
pub mod generate;
pub mod mdp3;
pub mod primitive;
pub mod schema;

pub use decode::{to_json, DecodeError, Header};
pub use encode::{from_json, EncodeError};
pub use schema::{Schema, SchemaError};
