//! The MQTT 3.1.1 / 5.0 client: a sans-I/O [`machine`] (sessions, QoS flows, reconnects) and
//! its drivers: inline on a zero-core shard ([`driver`]), a blocking API ([`blocking`]) and
//! Tokio ([`tokio`], feature `tokio`). The blocking and Tokio drivers share `Request` and one
//! zero-core `Service` (`service`), so they differ only in how they wait.

pub mod blocking;
pub mod driver;
pub mod machine;
mod service;
#[cfg(feature = "tokio")]
pub mod tokio;

use std::time::Instant;

pub use machine::{Client, ClientConfig, ClientError, Event, LastWill, Message};

use crate::codec::{PacketId, Properties, Publish, QoS, SubOptions};

/// A call a driver's caller makes, owned so it can cross to the driver's thread or task.
pub(crate) enum Request {
    Publish { topic: String, payload: Vec<u8>, qos: QoS, retain: bool },
    Subscribe { filters: Vec<(String, SubOptions)> },
}

impl Request {
    /// Hands the call to the machine: the packet id whose acknowledgement completes it, or
    /// `None` if it is complete already (QoS 0).
    pub(crate) fn issue(self, client: &mut Client, now: Instant) -> Result<Option<PacketId>, ClientError> {
        match self {
            Request::Publish { topic, payload, qos, retain } => {
                let p = Publish {
                    dup: false,
                    qos,
                    retain,
                    topic: &topic,
                    packet_id: 0,
                    properties: Properties::default(),
                    payload: &payload,
                };
                client.publish(p, now).map(|id| (id != 0).then_some(id))
            }
            Request::Subscribe { filters } => {
                let list: Vec<(&str, SubOptions)> = filters.iter().map(|(f, o)| (f.as_str(), *o)).collect();
                client.subscribe(&list, None).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests;
