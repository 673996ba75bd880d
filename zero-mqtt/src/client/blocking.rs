//! A blocking client: the client machine on a shard of its own thread (zero-core's
//! [`Background`] serving the client's callers), with calls that wait for the server's
//! answer. It holds no protocol logic; the machine does.

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use zero_core::machine::Background;

use super::driver::Target;
use super::machine::{Client, ClientConfig, Message};
use super::service::{Callers, Reply};
use super::Request;
use crate::codec::{QoS, ReasonCode, SubOptions};
use crate::Error;

/// An MQTT client whose calls block until the server answers. Messages for its
/// subscriptions are read with [`BlockingClient::recv`]. It reconnects by itself; calls made
/// meanwhile wait (QoS 1/2) or fail (QoS 0).
pub struct BlockingClient {
    runner: Background<(Request, Reply)>,
    messages: Receiver<Message>,
    timeout: Duration,
}

impl BlockingClient {
    /// Connects to `target` and waits for CONNACK (up to the configuration's connect
    /// timeout). Returns the client and whether the server resumed a session.
    pub fn connect(target: Target, config: ClientConfig) -> Result<(BlockingClient, bool), Error> {
        let timeout = config.connect_timeout;
        let (connack_tx, connack_rx) = mpsc::channel();
        let (messages_tx, messages) = mpsc::channel();
        let callers = Callers::new(
            Box::new(move |m| drop(messages_tx.send(m))),
            Box::new(move |result| drop(connack_tx.send(result))),
        );
        let client = Client::new(config, Instant::now());
        let runner = Background::spawn("zero-mqtt-client", client, target, callers)?;
        let client = BlockingClient { runner, messages, timeout };
        let session_present = match connack_rx.recv_timeout(timeout) {
            Ok(result) => result?,
            Err(_) => return Err(Error::Timeout("CONNACK")),
        };
        Ok((client, session_present))
    }

    fn call(&self, request: Request) -> Result<Vec<ReasonCode>, Error> {
        let (tx, rx) = mpsc::channel();
        let reply: Reply = Box::new(move |result| drop(tx.send(result)));
        self.runner.post((request, reply)).map_err(|_| Error::Stopped)?;
        rx.recv().map_err(|_| Error::Stopped)?
    }

    /// Publishes and, at QoS 1/2, waits until the server acknowledged (PUBACK or PUBCOMP).
    pub fn publish(&self, topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Result<(), Error> {
        let (topic, payload) = (topic.to_string(), payload.to_vec());
        self.call(Request::Publish { topic, payload, qos, retain }).map(drop)
    }

    /// Subscribes and waits for SUBACK; returns its reason codes (granted QoS or failure).
    pub fn subscribe(&self, filters: &[(&str, SubOptions)]) -> Result<Vec<ReasonCode>, Error> {
        let filters = filters.iter().map(|(f, o)| (f.to_string(), *o)).collect();
        self.call(Request::Subscribe { filters })
    }

    /// The next message, waiting up to `timeout` (`None`: forever).
    pub fn recv(&self, timeout: Option<Duration>) -> Option<Message> {
        match timeout {
            Some(t) => self.messages.recv_timeout(t).ok(),
            None => self.messages.recv().ok(),
        }
    }

    /// Sends DISCONNECT (so no will is published) after what is queued, and ends the client.
    pub fn disconnect(self) {
        self.runner.close(self.timeout);
    }
}

impl Drop for BlockingClient {
    /// A dropped client disconnects as [`BlockingClient::disconnect`] does.
    fn drop(&mut self) {
        self.runner.close(self.timeout);
    }
}
