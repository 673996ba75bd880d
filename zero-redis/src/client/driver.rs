//! The client machine inline on a zero-core shard: zero-core's generic [`Driver`] over the
//! Redis [`Client`]. A handler that owns a shard (or shares it with other work) passes its
//! events to [`Driver::on_event`], drains the machine's events from [`Driver::machine`],
//! issues commands there, and calls [`Driver::pump`] once per batch
//! (`Handler::on_batch_end`), so that everything issued in a tick leaves in one write.

pub use zero_core::machine::Driver;
pub use zero_core::Target;

use super::machine::Client;

/// The Redis client bound to a shard.
pub type ClientDriver = Driver<Client>;
