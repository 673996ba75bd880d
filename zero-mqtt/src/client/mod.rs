//! The MQTT 3.1.1 / 5.0 client: a sans-I/O [`machine`] (sessions, QoS flows, reconnects) and
//! its drivers: inline on a zero-core shard ([`driver`]) and a blocking API ([`blocking`]).

pub mod blocking;
pub mod driver;
pub mod machine;

pub use machine::{Client, ClientConfig, ClientError, Event, LastWill, Message};

#[cfg(test)]
mod tests;
