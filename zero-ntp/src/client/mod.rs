//! The NTP client: the [`Client`] machine, and its driver on a zero-core shard.

mod machine;
mod shard;
#[cfg(test)]
mod tests;

pub use machine::{Client, ClientConfig, Event, Selection, Source, Standing, Transmit};
pub use shard::{query_blocking, ClientDriver};
