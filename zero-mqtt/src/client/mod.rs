//! The MQTT 3.1.1 / 5.0 client: a sans-I/O [`machine`] (sessions, QoS flows, reconnects) and
//! its drivers: inline on a zero-core shard ([`driver`]), a blocking API ([`blocking`]) and
//! Tokio ([`tokio`], feature `tokio`). The blocking and Tokio drivers share [`Request`] and
//! [`Outcome`], so they differ only in how they wait.

pub mod blocking;
pub mod driver;
pub mod machine;
#[cfg(feature = "tokio")]
pub mod tokio;

use std::time::Instant;

pub use machine::{Client, ClientConfig, ClientError, Event, LastWill, Message};

use crate::codec::{PacketId, Properties, Publish, QoS, ReasonCode, SubOptions};
use crate::Error;

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

/// A machine event as the blocking and Tokio drivers pass it on.
pub(crate) enum Outcome {
    /// The answer to CONNECT: session present, or the refusal.
    Connack(Result<bool, Error>),
    /// A message for the application.
    Message(Message),
    /// A call completed: SUBACK's reasons (none for a publish), or the server's refusal.
    Done(PacketId, Result<Vec<ReasonCode>, Error>),
}

impl Outcome {
    /// What `event` means to a caller, if anything.
    pub(crate) fn of(event: Event) -> Option<Outcome> {
        Some(match event {
            Event::Connected { session_present } => Outcome::Connack(Ok(session_present)),
            Event::Refused(reason) => Outcome::Connack(Err(Error::Refused(reason))),
            Event::Message(m) => Outcome::Message(m),
            Event::Published { packet_id, reason } if reason.is_error() => {
                Outcome::Done(packet_id, Err(Error::Rejected(reason)))
            }
            Event::Published { packet_id, .. } => Outcome::Done(packet_id, Ok(Vec::new())),
            Event::Subscribed { packet_id, reasons } => Outcome::Done(packet_id, Ok(reasons)),
            Event::Unsubscribed { .. } | Event::Disconnected { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests;
