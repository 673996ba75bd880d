//! The callers' half of the MQTT client machine, shared by the blocking and Tokio clients: a
//! zero-core [`Service`] that issues their calls and hands each its outcome. It holds no
//! protocol logic (the machine does) and no I/O (the runner does).

use std::collections::HashMap;
use std::time::Instant;

use zero_core::machine::Service;

use super::machine::{Client, Event, Message};
use super::Request;
use crate::codec::{PacketId, ReasonCode};
use crate::Error;

/// Where a call's outcome goes: SUBACK's reasons (none for a publish), or why it failed.
pub(crate) type Reply = Box<dyn FnOnce(Result<Vec<ReasonCode>, Error>) + Send>;

/// Told once: the first CONNACK (session present), or the refusal.
pub(crate) type Connack = Box<dyn FnOnce(Result<bool, Error>) + Send>;

/// Where messages for the subscriptions go.
pub(crate) type Sink = Box<dyn FnMut(Message) + Send>;

/// The callers of one client: the calls waiting for an acknowledgement, where messages go,
/// and who waits for the first CONNACK.
pub(crate) struct Callers {
    waiting: HashMap<PacketId, Reply>,
    messages: Sink,
    connack: Option<Connack>,
}

impl Callers {
    /// The callers of a new client.
    pub(crate) fn new(messages: Sink, connack: Connack) -> Callers {
        Callers { waiting: HashMap::new(), messages, connack: Some(connack) }
    }
}

impl Service for Callers {
    type Machine = Client;
    type Command = (Request, Reply);

    fn command(&mut self, client: &mut Client, now: Instant, (request, reply): (Request, Reply)) {
        match request.issue(client, now) {
            Ok(Some(id)) => drop(self.waiting.insert(id, reply)),
            Ok(None) => reply(Ok(Vec::new())),
            Err(e) => reply(Err(e.into())),
        }
    }

    fn serve(&mut self, client: &mut Client) {
        while let Some(event) = client.poll_event() {
            let (id, outcome) = match event {
                Event::Connected { session_present } => {
                    if let Some(tell) = self.connack.take() {
                        tell(Ok(session_present));
                    }
                    continue;
                }
                Event::Refused(reason) => {
                    if let Some(tell) = self.connack.take() {
                        tell(Err(Error::Refused(reason)));
                    }
                    continue;
                }
                Event::Message(m) => {
                    (self.messages)(m);
                    continue;
                }
                Event::Published { packet_id, reason } if reason.is_error() => {
                    (packet_id, Err(Error::Rejected(reason)))
                }
                Event::Published { packet_id, .. } => (packet_id, Ok(Vec::new())),
                Event::Subscribed { packet_id, reasons } => (packet_id, Ok(reasons)),
                Event::Unsubscribed { .. } | Event::Disconnected { .. } => continue,
            };
            if let Some(reply) = self.waiting.remove(&id) {
                reply(outcome);
            }
        }
    }

    /// DISCONNECT (so no will is published), sent after what is queued.
    fn close(&mut self, client: &mut Client) {
        client.disconnect();
    }
}
