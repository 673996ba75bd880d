//! The client machine inline on a zero-core shard: zero-core's generic [`Driver`] over the
//! MQTT [`Client`]. A handler that owns a shard (or shares one with other work) passes its
//! events to [`Driver::on_event`], issues commands on [`Driver::machine`] and calls
//! [`Driver::pump`] after them.

pub use zero_core::machine::Driver;
pub use zero_core::Target;

use super::machine::Client;

/// The MQTT client bound to a shard.
pub type ClientDriver = Driver<Client>;
