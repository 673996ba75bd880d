//! A blocking client: the client machine on a shard of its own thread (zero-core's
//! [`Background`] serving `service::Callers`), with calls that wait for the server's
//! answer. Any number of threads may share one client (it is `Sync`); their commands are
//! pipelined on its one connection.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use zero_core::machine::Background;

use super::cache::SharedCache;
use super::commands::Commands;
use super::driver::Target;
use super::machine::{ClientConfig, Message, Protocol, SubKind};
use super::service::{self, Callers, Command, Delivery, Done, Sink};
use crate::cmd::{Cmd, Pipeline};
use crate::error::Error;
use crate::value::{FromValue, Value};

/// A Redis client whose calls block until the server answers. It reconnects by itself (see
/// [`super::machine`] for what happens to commands meanwhile).
pub struct BlockingClient {
    commands: Background<Command>,
    /// Over RESP2: the connection subscriptions go on, opened on the first.
    subscriber: OnceLock<Background<Command>>,
    target: Target,
    config: ClientConfig,
    sink: Sink,
    messages: Mutex<Receiver<Message<'static>>>,
    pushes: Mutex<Receiver<Value>>,
    protocol: Protocol,
    cache: Option<SharedCache>,
}

impl BlockingClient {
    /// Connects to a `redis://` or `rediss://` URL (see [`super::url`]).
    pub fn open(url: &str) -> Result<BlockingClient, Error> {
        let (target, config) = super::url::parse(url)?;
        BlockingClient::connect(target, config)
    }

    /// Connects to `target` and waits (up to the connect timeout) until the connection is
    /// ready; the first failure is returned rather than retried.
    pub fn connect(target: Target, config: ClientConfig) -> Result<BlockingClient, Error> {
        let wait = config.connect_timeout + Duration::from_secs(1);
        let (messages_tx, messages) = mpsc::channel();
        let (pushes_tx, pushes) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let sink: Sink = Arc::new(move |delivery| match delivery {
            Delivery::Message(m) => drop(messages_tx.send(m)),
            Delivery::Push(p) => drop(pushes_tx.send(p)),
        });
        let ready = Box::new(move |r| drop(ready_tx.send(r)));
        let machine = service::machine(config.clone());
        let cache = machine.cache().cloned();
        let callers = Callers::new(sink.clone(), Some(ready));
        let commands = Background::spawn("zero-redis", machine, target.clone(), callers).map_err(start)?;
        let protocol = match ready_rx.recv_timeout(wait) {
            Ok(result) => result?,
            Err(_) => return Err(Error::ConnectTimeout(wait)),
        };
        Ok(BlockingClient {
            commands,
            subscriber: OnceLock::new(),
            target,
            config,
            sink,
            messages: Mutex::new(messages),
            pushes: Mutex::new(pushes),
            protocol,
            cache,
        })
    }

    /// The protocol the connection speaks (RESP3, or RESP2 if the server has no `HELLO`).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The client-side cache, if [`ClientConfig::cache`] turned it on.
    pub fn cache(&self) -> Option<&SharedCache> {
        self.cache.as_ref()
    }

    fn call(
        &self,
        to: &Background<Command>,
        make: impl FnOnce(Done) -> Command,
    ) -> Result<Vec<Result<Value, Error>>, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let done: Done = Box::new(move |results| drop(tx.send(results)));
        to.post(make(done)).map_err(|_| Error::Closed)?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// The connection subscriptions go on: the command connection over RESP3, a dedicated
    /// one over RESP2.
    fn subscriber(&self) -> Result<&Background<Command>, Error> {
        if self.protocol == Protocol::Resp3 {
            return Ok(&self.commands);
        }
        if let Some(subscriber) = self.subscriber.get() {
            return Ok(subscriber);
        }
        let machine = service::machine(service::subscriber_config(&self.config));
        let callers = Callers::new(self.sink.clone(), None);
        let started =
            Background::spawn("zero-redis-sub", machine, self.target.clone(), callers).map_err(start)?;
        Ok(self.subscriber.get_or_init(|| started))
    }

    /// Sends the pipeline's commands together and returns their replies (as an array), or
    /// for a transaction `EXEC`'s reply.
    pub fn pipeline<T: FromValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let results =
            self.call(&self.commands, |done| Command::Query(pipeline.commands().collect(), done))?;
        service::convert(results, pipeline.is_atomic(), false)
    }

    /// Subscribes to `channels`; their messages come through [`Self::recv`]. Over RESP3 the
    /// subscriptions share the command connection; over RESP2 the client opens a second
    /// connection for them, as a subscribed RESP2 connection takes no other commands.
    pub fn subscribe(&self, kind: SubKind, channels: &[&str]) -> Result<(), Error> {
        self.subscription(kind, channels, true)
    }

    /// Unsubscribes from `channels`.
    pub fn unsubscribe(&self, kind: SubKind, channels: &[&str]) -> Result<(), Error> {
        self.subscription(kind, channels, false)
    }

    fn subscription(&self, kind: SubKind, channels: &[&str], on: bool) -> Result<(), Error> {
        let channels = channels.iter().map(|c| c.as_bytes().to_vec()).collect();
        let results =
            self.call(self.subscriber()?, |done| Command::Subscribe { kind, channels, on, done })?;
        service::convert(results, false, true)
    }

    /// The next message on the subscriptions, waiting up to `timeout` (`None`: forever).
    pub fn recv(&self, timeout: Option<Duration>) -> Option<Message<'static>> {
        let messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        match timeout {
            Some(t) => messages.recv_timeout(t).ok(),
            None => messages.recv().ok(),
        }
    }

    /// The next push that is not a subscription message (e.g. a `CLIENT TRACKING`
    /// invalidation), waiting up to `timeout`.
    pub fn recv_push(&self, timeout: Duration) -> Option<Value> {
        self.pushes.lock().unwrap_or_else(|e| e.into_inner()).recv_timeout(timeout).ok()
    }

    /// Closes the client: outstanding commands fail with [`Error::Closed`].
    pub fn close(self) {
        if let Some(subscriber) = self.subscriber.get() {
            subscriber.close(CLOSE_WAIT);
        }
        self.commands.close(CLOSE_WAIT);
    }
}

/// How long a close may take before the client's threads are stopped where they stand.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A client's thread that did not start.
fn start(e: zero_core::IoError) -> Error {
    Error::Start(format!("its shard: {e}"))
}

impl Commands for BlockingClient {
    fn query<T: FromValue>(&self, cmd: Cmd) -> Result<T, Error> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&cmd)) {
            return T::from_value(hit);
        }
        let results = self.call(&self.commands, |done| Command::Query(vec![cmd], done))?;
        service::convert(results, false, true)
    }
}
