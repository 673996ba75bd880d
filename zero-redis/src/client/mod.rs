//! The Redis client: a sans-I/O [`machine`] (one multiplexed connection: set-up, pipelining,
//! pub/sub, reconnects, timeouts) and its drivers.

pub mod machine;

pub use machine::{Client, ClientConfig, Event, Message, Protocol, RequestId, RetryPolicy, SubKind};

#[cfg(test)]
mod tests;
