//! zero-redis: a Redis client for zero.
//!
//! - [`codec`]: RESP2 and RESP3, sans-I/O. Replies decode into [`codec::Frame`]s that borrow
//!   their payloads from the receive buffer; commands encode straight into a send buffer.
//!   Limits on bulk length, nesting depth and aggregate size keep a broken or hostile server
//!   from making the client allocate or recurse without bound.
//! - [`mod@cmd`]: commands ([`cmd()`]), their arguments ([`ToArg`]) and [`Pipeline`]s.
//! - [`FromValue`]: replies into Rust types, for RESP2 and RESP3 alike.
//! - [`client`]: the client machine and its drivers.
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard the drivers run on (TCP, TLS, timers, cross-thread handles).
//! - `thiserror`, `tracing`: the house error and logging conventions.
//! - `lru`: the least-recently-used order of the client-side cache ([`client::cache`]); a
//!   well-kept O(1) list-in-a-map that would otherwise be written here with `unsafe`.
//! - `tokio` (feature `tokio`, only its `sync` and `time` parts): the async client's
//!   channels and connect timeout, so it works from any Tokio runtime.

pub mod client;
pub mod cmd;
pub mod codec;
mod error;
mod value;

pub use cmd::{cmd, Cmd, Pipeline, ToArg};
pub use error::{Error, ServerError};
pub use value::{FromValue, Value};
