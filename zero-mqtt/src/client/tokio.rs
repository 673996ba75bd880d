//! The client machine on Tokio (feature `tokio`): one task owns the socket and the machine;
//! [`AsyncClient`] talks to it through channels. It holds no protocol logic. TLS through
//! tokio-rustls, with the same rustls configuration as the other drivers.

use std::collections::HashMap;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use zero_core::machine::{Closed, Machine};
use zero_core::rustls::pki_types::ServerName;
use zero_core::CloseReason;

use super::driver::Target;
use super::machine::{Client, ClientConfig, Message};
use super::{Outcome, Request};
use crate::codec::{PacketId, QoS, ReasonCode, SubOptions};
use crate::Error;

/// Where a call's result goes.
type Reply = oneshot::Sender<Result<Vec<ReasonCode>, Error>>;

/// An MQTT client for Tokio: calls wait for the server's answer; messages for its
/// subscriptions arrive through [`AsyncClient::recv`]. It reconnects by itself.
pub struct AsyncClient {
    commands: mpsc::UnboundedSender<(Request, Reply)>,
    messages: mpsc::UnboundedReceiver<Message>,
    task: tokio::task::JoinHandle<()>,
}

impl AsyncClient {
    /// Connects to `target` (over TLS if it says so) and waits for CONNACK; returns the client
    /// and whether the server resumed a session. The client's task runs on the current Tokio
    /// runtime.
    pub async fn connect(target: Target, config: ClientConfig) -> Result<(AsyncClient, bool), Error> {
        let timeout = config.connect_timeout;
        let (commands, rx) = mpsc::unbounded_channel();
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (connack_tx, connack_rx) = oneshot::channel();
        let task =
            tokio::spawn(run(target, Client::new(config, Instant::now()), rx, messages_tx, connack_tx));
        let client = AsyncClient { commands, messages, task };
        match tokio::time::timeout(timeout, connack_rx).await {
            Ok(Ok(result)) => Ok((client, result?)),
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Timeout("CONNACK")),
        }
    }

    async fn call(&self, request: Request) -> Result<Vec<ReasonCode>, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands.send((request, reply)).map_err(|_| Error::Stopped)?;
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

    /// Sends DISCONNECT (no will) and waits for the task to end.
    pub async fn disconnect(self) {
        drop(self.commands);
        let _ = self.task.await;
    }
}

/// A byte stream to the server: TCP, or TLS over TCP.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Opens the connection `target` describes.
async fn dial(target: &Target) -> std::io::Result<Box<dyn Transport>> {
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let Some((name, tls)) = &target.tls else { return Ok(Box::new(tcp)) };
    let name = ServerName::try_from(name.clone())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok(Box::new(tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await?))
}

/// The task: the machine, the socket, the commands, the timer.
async fn run(
    target: Target,
    mut client: Client,
    mut commands: mpsc::UnboundedReceiver<(Request, Reply)>,
    messages: mpsc::UnboundedSender<Message>,
    connack: oneshot::Sender<Result<bool, Error>>,
) {
    let mut connack = Some(connack);
    let mut waiting: HashMap<PacketId, Reply> = HashMap::new();
    let mut stream: Option<Box<dyn Transport>> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut closing = false;
    loop {
        let now = Instant::now();
        if stream.is_none() && !closing && client.wants_connect(now) {
            match dial(&target).await {
                Ok(s) => {
                    stream = Some(s);
                    client.handle_connected(Instant::now());
                }
                Err(e) => {
                    tracing::debug!(%e, addr = %target.addr, "MQTT connect failed");
                    client.handle_closed(Instant::now(), Closed::ConnectFailed(e.to_string().into()));
                }
            }
        }
        if let Some(s) = stream.as_mut() {
            while let Some(bytes) = client.poll_transmit() {
                if let Err(e) = s.write_all(bytes).await {
                    stream = None;
                    client.handle_closed(Instant::now(), Closed::SendFailed(e.to_string().into()));
                    break;
                }
            }
        }
        if client.poll_close() {
            stream = None;
            client.handle_closed(Instant::now(), Closed::Requested);
        }
        while let Some(event) = client.poll_event() {
            match Outcome::of(event) {
                Some(Outcome::Connack(result)) => {
                    if let Some(tx) = connack.take() {
                        let _ = tx.send(result);
                    }
                }
                Some(Outcome::Message(m)) => drop(messages.send(m)),
                Some(Outcome::Done(id, result)) => {
                    if let Some(tx) = waiting.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                None => {}
            }
        }
        if closing {
            return;
        }
        let sleep = client.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            read = async { stream.as_mut().expect("guarded").read(&mut buf).await }, if stream.is_some() => {
                match read {
                    Ok(0) | Err(_) => {
                        stream = None;
                        client.handle_closed(Instant::now(), Closed::Lost(CloseReason::PeerClosed));
                    }
                    Ok(n) => client.handle_input(Instant::now(), &buf[..n]),
                }
            }
            command = commands.recv() => match command {
                None => {
                    client.disconnect();
                    closing = true;
                }
                Some((request, reply)) => match request.issue(&mut client, Instant::now()) {
                    Ok(Some(id)) => drop(waiting.insert(id, reply)),
                    Ok(None) => drop(reply.send(Ok(Vec::new()))),
                    Err(e) => drop(reply.send(Err(e.into()))),
                },
            },
            _ = async { tokio::time::sleep_until(sleep.expect("guarded")).await }, if sleep.is_some() => {
                client.handle_timeout(Instant::now());
            }
        }
    }
}
