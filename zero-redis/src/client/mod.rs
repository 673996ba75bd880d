//! The Redis client: a sans-I/O [`machine`] (one multiplexed connection: set-up, pipelining,
//! pub/sub, reconnects, timeouts, the [`cache`]) and its drivers: inline on a zero-core shard
//! ([`driver`]), blocking ([`blocking`]) and Tokio (`tokio`, feature `tokio`). The blocking and
//! Tokio clients run the shard driver on a thread of their own and differ only in how they
//! wait.

pub mod blocking;
pub mod cache;
mod commands;
pub mod driver;
pub mod machine;
mod service;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod url;

pub use blocking::BlockingClient;
pub use cache::{Cache, CacheConfig, CacheStats, SharedCache, Store};
#[cfg(feature = "tokio")]
pub use commands::AsyncCommands;
pub use commands::Commands;
pub use driver::{ClientDriver, Target};
pub use machine::{Client, ClientConfig, Event, Message, Protocol, RequestId, RetryPolicy, SubKind};

#[cfg(test)]
mod tests;
