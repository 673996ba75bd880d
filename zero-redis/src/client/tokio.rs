//! The async client for Tokio (feature `tokio`), with calls that are futures: the client
//! machine in a task of the caller's runtime over Tokio's sockets (zero-core's [`Task`]
//! serving `service::Callers`). It is `Clone`: every clone shares the one connection, so
//! concurrent tasks' commands are pipelined on it.
//!
//! Why a task and not a zero-core shard on a thread of its own behind channels (as the
//! blocking client runs): measured with `bench/redis.sh` (redis-server on CPU 0, the Tokio
//! client on CPU 1), the task did 2.2x (50 callers) and 2.5x (500 callers) the operations per
//! client CPU-second of the shard thread, and more operations per second: every call crossing
//! to another thread and back costs two wakeups, which io_uring's cheaper I/O does not repay.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use zero_core::machine::Task;

use super::cache::SharedCache;
use super::commands::AsyncCommands;
use super::driver::Target;
use super::machine::{ClientConfig, Message, Protocol, SubKind};
use super::service::{self, Callers, Command, Delivery, Done, Sink};
use crate::cmd::{Cmd, Pipeline};
use crate::error::Error;
use crate::value::{FromValue, Value};

/// A Redis client for async code. It reconnects by itself (see [`super::machine`]).
#[derive(Clone)]
pub struct AsyncClient {
    inner: Arc<Inner>,
}

/// How long a close may take before the client is stopped where it stands.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

struct Inner {
    commands: Task<Command>,
    /// Over RESP2: the connection subscriptions go on, opened on the first.
    subscriber: OnceLock<Task<Command>>,
    target: Target,
    config: ClientConfig,
    sink: Sink,
    messages: Mutex<mpsc::UnboundedReceiver<Message<'static>>>,
    protocol: Protocol,
    cache: Option<SharedCache>,
}

impl AsyncClient {
    /// Connects to a `redis://` or `rediss://` URL (see [`super::url`]; the host is
    /// resolved before the future is first polled).
    pub async fn open(url: &str) -> Result<AsyncClient, Error> {
        let (target, config) = super::url::parse(url)?;
        AsyncClient::connect(target, config).await
    }

    /// Connects to `target` and waits until the connection is ready; the first failure is
    /// returned rather than retried.
    pub async fn connect(target: Target, config: ClientConfig) -> Result<AsyncClient, Error> {
        let wait = config.connect_timeout + Duration::from_secs(1);
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let sink: Sink = Arc::new(move |delivery| {
            if let Delivery::Message(m) = delivery {
                let _ = messages_tx.send(m);
            }
        });
        let ready = Box::new(move |r| drop(ready_tx.send(r)));
        let machine = service::machine(config.clone());
        let cache = machine.cache().cloned();
        let callers = Callers::new(sink.clone(), Some(ready));
        let commands = Task::spawn(machine, target.clone(), callers);
        let protocol = match tokio::time::timeout(wait, ready_rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(Error::Closed),
            Err(_) => return Err(Error::ConnectTimeout(wait)),
        };
        let inner = Inner {
            commands,
            subscriber: OnceLock::new(),
            target,
            config,
            sink,
            messages: Mutex::new(messages),
            protocol,
            cache,
        };
        Ok(AsyncClient { inner: Arc::new(inner) })
    }

    /// The protocol the connection speaks.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    /// The client-side cache, if [`ClientConfig::cache`] turned it on.
    pub fn cache(&self) -> Option<&SharedCache> {
        self.inner.cache.as_ref()
    }

    async fn call(
        &self,
        to: &Task<Command>,
        command: impl FnOnce(Done) -> Command,
    ) -> Result<Vec<Result<Value, Error>>, Error> {
        let (tx, rx) = oneshot::channel();
        let done: Done = Box::new(move |results| drop(tx.send(results)));
        to.post(command(done)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// The connection subscriptions go on: the command connection over RESP3, a dedicated
    /// one over RESP2.
    fn subscriber(&self) -> &Task<Command> {
        let inner = &*self.inner;
        if inner.protocol == Protocol::Resp3 {
            return &inner.commands;
        }
        inner.subscriber.get_or_init(|| {
            let machine = service::machine(service::subscriber_config(&inner.config));
            Task::spawn(machine, inner.target.clone(), Callers::new(inner.sink.clone(), None))
        })
    }

    /// Sends the pipeline's commands together and returns their replies (as an array), or
    /// for a transaction `EXEC`'s reply.
    pub async fn pipeline<T: FromValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let cmds = pipeline.commands().collect();
        let results = self.call(&self.inner.commands, |done| Command::Query(cmds, done)).await?;
        service::convert(results, pipeline.is_atomic(), false)
    }

    /// Subscribes to `channels`; their messages come through [`Self::recv`].
    pub async fn subscribe(&self, kind: SubKind, channels: &[&str]) -> Result<(), Error> {
        self.subscription(kind, channels, true).await
    }

    /// Unsubscribes from `channels`.
    pub async fn unsubscribe(&self, kind: SubKind, channels: &[&str]) -> Result<(), Error> {
        self.subscription(kind, channels, false).await
    }

    async fn subscription(&self, kind: SubKind, channels: &[&str], on: bool) -> Result<(), Error> {
        let channels = channels.iter().map(|c| c.as_bytes().to_vec()).collect();
        let results =
            self.call(self.subscriber(), |done| Command::Subscribe { kind, channels, on, done }).await?;
        service::convert(results, false, true)
    }

    /// The next message on the subscriptions (`None` once the client is closed).
    pub async fn recv(&self) -> Option<Message<'static>> {
        self.inner.messages.lock().await.recv().await
    }

    /// Closes the client for every clone: outstanding commands fail with [`Error::Closed`].
    pub async fn close(&self) {
        if let Some(subscriber) = self.inner.subscriber.get() {
            subscriber.close(CLOSE_WAIT).await;
        }
        self.inner.commands.close(CLOSE_WAIT).await;
    }
}

impl AsyncCommands for AsyncClient {
    async fn query<T: FromValue + Send + 'static>(&self, cmd: Cmd) -> Result<T, Error> {
        if let Some(hit) = self.inner.cache.as_ref().and_then(|c| c.get(&cmd)) {
            return T::from_value(hit);
        }
        let results = self.call(&self.inner.commands, |done| Command::Query(vec![cmd], done)).await?;
        service::convert(results, false, true)
    }
}
