//! A blocking client: the shard driver on a thread of its own, with calls that wait for the
//! server's answer. It holds no protocol logic; the machine does.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zero_core::{Config, ConnId, Event as IoEvent, Handler, Io, IoHandle, Ops};

use super::driver::{ClientDriver, Target};
use super::machine::{Client, ClientConfig, Message};
use super::{Outcome, Request};
use crate::codec::{PacketId, QoS, ReasonCode, SubOptions};
use crate::Error;

/// What the caller asks of the shard thread.
enum Command {
    Call(Request, Reply),
    Disconnect(Sender<()>),
}

/// Where a call's result goes.
type Reply = Sender<Result<Vec<ReasonCode>, Error>>;

/// The handler on the client's shard thread.
struct Runner {
    driver: ClientDriver,
    waiting: HashMap<PacketId, Reply>,
    messages: Sender<Message>,
    /// Told about the first CONNACK (or refusal).
    first_connack: Option<Sender<Result<bool, Error>>>,
    /// After DISCONNECT: the connection being closed (its queued bytes, DISCONNECT last, are
    /// sent first) and who to tell once it is gone.
    closing: Option<(Option<ConnId>, Sender<()>)>,
}

impl Runner {
    fn command(&mut self, ops: &mut Ops, command: Command) {
        let client = self.driver.machine();
        match command {
            Command::Call(request, reply) => match request.issue(client, ops.now()) {
                Ok(Some(id)) => drop(self.waiting.insert(id, reply)),
                Ok(None) => drop(reply.send(Ok(Vec::new()))),
                Err(e) => drop(reply.send(Err(e.into()))),
            },
            Command::Disconnect(reply) => {
                client.disconnect();
                self.closing = Some((self.driver.conn(), reply));
            }
        }
    }

    /// Hands the machine's events to whoever waits for them.
    fn events(&mut self) {
        while let Some(event) = self.driver.machine().poll_event() {
            match Outcome::of(event) {
                Some(Outcome::Connack(result)) => {
                    if let Some(tx) = self.first_connack.take() {
                        let _ = tx.send(result);
                    }
                }
                Some(Outcome::Message(m)) => drop(self.messages.send(m)),
                Some(Outcome::Done(id, result)) => {
                    if let Some(tx) = self.waiting.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                None => {}
            }
        }
    }
}

impl Handler for Runner {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        let closed = match event {
            IoEvent::Closed { conn, .. } => Some(conn),
            _ => None,
        };
        match event {
            IoEvent::Message(m) => {
                if let Ok(command) = m.downcast::<Command>() {
                    self.command(ops, *command);
                }
            }
            other => {
                self.driver.on_event(ops, &other);
            }
        }
        self.driver.pump(ops);
        self.events();
        if let Some((conn, _)) = &self.closing {
            if conn.is_none() || *conn == closed {
                let (_, tx) = self.closing.take().expect("checked");
                let _ = tx.send(());
                ops.stop();
            }
        }
    }
}

/// An MQTT client whose calls block until the server answers. Messages for its
/// subscriptions are read with [`BlockingClient::recv`]. It reconnects by itself; calls made
/// meanwhile wait (QoS 1/2) or fail (QoS 0).
pub struct BlockingClient {
    handle: IoHandle,
    messages: Receiver<Message>,
    thread: Option<JoinHandle<()>>,
    timeout: Duration,
}

impl BlockingClient {
    /// Connects to `target` and waits for CONNACK (up to the configuration's connect
    /// timeout). Returns the client and whether the server resumed a session.
    pub fn connect(target: Target, config: ClientConfig) -> Result<(BlockingClient, bool), Error> {
        let timeout = config.connect_timeout;
        let (ready_tx, ready_rx) = mpsc::channel();
        let (connack_tx, connack_rx) = mpsc::channel();
        let (messages_tx, messages) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("zero-mqtt-client".into())
            .spawn(move || {
                let io = Io::new(Config::default());
                let mut io = match io {
                    Ok(io) => io,
                    Err(e) => return drop(ready_tx.send(Err(Error::Io(e)))),
                };
                let _ = ready_tx.send(Ok(io.handle()));
                let client = Client::new(config, Instant::now());
                let mut runner = Runner {
                    driver: ClientDriver::new(client, target, 0),
                    waiting: HashMap::new(),
                    messages: messages_tx,
                    first_connack: Some(connack_tx),
                    closing: None,
                };
                runner.driver.pump(&mut io);
                if let Err(e) = io.run(&mut runner) {
                    tracing::error!(%e, "MQTT client shard failed");
                }
            })
            .map_err(|cause| {
                Error::Io(zero_core::IoError::Syscall { op: "spawning the client thread".into(), cause })
            })?;
        let handle = ready_rx.recv().map_err(|_| Error::Stopped)??;
        let client = BlockingClient { handle, messages, thread: Some(thread), timeout };
        let session_present = match connack_rx.recv_timeout(timeout) {
            Ok(result) => result?,
            Err(_) => return Err(Error::Timeout("CONNACK")),
        };
        Ok((client, session_present))
    }

    fn call(&self, request: Request) -> Result<Vec<ReasonCode>, Error> {
        let (tx, rx) = mpsc::channel();
        self.handle.post(Command::Call(request, tx)).map_err(|_| Error::Stopped)?;
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

    /// Sends DISCONNECT (so no will is published) and ends the client.
    pub fn disconnect(mut self) {
        self.close();
    }

    fn close(&mut self) {
        let (tx, rx) = mpsc::channel();
        if self.handle.post(Command::Disconnect(tx)).is_ok() {
            let _ = rx.recv_timeout(self.timeout);
        }
        let _ = self.handle.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.close();
        }
    }
}
