//! The client for Tokio (feature `tokio`): the client machine in a task of the caller's
//! runtime over Tokio's sockets (zero-core's [`Task`] serving the client's callers); TLS
//! through tokio-rustls with the same rustls configuration as the shard. It holds no protocol
//! logic. (Why a task rather than a shard thread: see `zero_redis::client::tokio`.)

use tokio::sync::{mpsc, oneshot};
use zero_core::machine::Task;

use super::driver::Target;
use super::machine::{Client, ClientConfig, Message};
use super::service::{Callers, Reply};
use super::Request;
use crate::codec::{QoS, ReasonCode, SubOptions};
use crate::Error;

/// An MQTT client for Tokio: calls wait for the server's answer; messages for its
/// subscriptions arrive through [`AsyncClient::recv`]. It reconnects by itself.
pub struct AsyncClient {
    task: Task<(Request, Reply)>,
    messages: mpsc::UnboundedReceiver<Message>,
    timeout: std::time::Duration,
}

impl AsyncClient {
    /// Connects to `target` (over TLS if it says so) and waits for CONNACK; returns the client
    /// and whether the server resumed a session. The client's task runs on the current Tokio
    /// runtime.
    pub async fn connect(target: Target, config: ClientConfig) -> Result<(AsyncClient, bool), Error> {
        let timeout = config.connect_timeout;
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (connack_tx, connack_rx) = oneshot::channel();
        let callers = Callers::new(
            Box::new(move |m| drop(messages_tx.send(m))),
            Box::new(move |result| drop(connack_tx.send(result))),
        );
        let task = Task::spawn(Client::new(config, std::time::Instant::now()), target, callers);
        let client = AsyncClient { task, messages, timeout };
        match tokio::time::timeout(timeout, connack_rx).await {
            Ok(Ok(result)) => Ok((client, result?)),
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Timeout("CONNACK")),
        }
    }

    async fn call(&self, request: Request) -> Result<Vec<ReasonCode>, Error> {
        let (tx, rx) = oneshot::channel();
        let reply: Reply = Box::new(move |result| drop(tx.send(result)));
        self.task.post((request, reply)).map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Publishes and, at QoS 1/2, waits for the server's acknowledgement.
    pub async fn publish(&self, topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Result<(), Error> {
        let (topic, payload) = (topic.to_string(), payload.to_vec());
        self.call(Request::Publish { topic, payload, qos, retain }).await.map(drop)
    }

    /// Subscribes and waits for SUBACK; returns its reason codes.
    pub async fn subscribe(&self, filters: &[(&str, SubOptions)]) -> Result<Vec<ReasonCode>, Error> {
        let filters = filters.iter().map(|(f, o)| (f.to_string(), *o)).collect();
        self.call(Request::Subscribe { filters }).await
    }

    /// The next message (`None` once the client stopped).
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// Sends DISCONNECT (no will) after what is queued, and waits for the task to end.
    pub async fn disconnect(self) {
        self.task.close(self.timeout).await;
    }
}
