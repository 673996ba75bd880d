//! The stub resolver: the [`Resolver`] machine, and its driver on a zero-core shard.

mod answer;
mod machine;
mod shard;
#[cfg(test)]
mod tests;

pub use answer::Answer;
pub use machine::{AttemptId, Close, Event, LookupId, Resolver, StreamId, Transmit, STREAM_IDLE};
pub use shard::{lookup_blocking, ResolverDriver};
