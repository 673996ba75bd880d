//! zero-redis: a Redis client for zero.
//!
//! - [`codec`]: RESP2 and RESP3, sans-I/O. Replies decode into [`codec::Frame`]s that borrow
//!   their payloads from the receive buffer; commands encode straight into a send buffer.
//!   Limits on bulk length, nesting depth and aggregate size keep a broken or hostile server
//!   from making the client allocate or recurse without bound.
//! - [`cmd`]: commands ([`cmd()`]), their arguments ([`ToArg`]) and [`Pipeline`]s.
//! - [`FromValue`]: replies into Rust types, for RESP2 and RESP3 alike.
//! - [`client`]: the client machine and its drivers.
//!
//! ## Dependencies, and why
//! - `thiserror`: the house error convention.

#![deny(missing_docs)]

pub mod client;
pub mod cmd;
pub mod codec;
mod error;
mod value;

pub use cmd::{cmd, Cmd, Pipeline, ToArg};
pub use error::{Error, ServerError};
pub use value::{FromValue, Value};
