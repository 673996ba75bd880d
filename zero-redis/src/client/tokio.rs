//! The async client for Tokio (feature `tokio`): the shard driver on a thread of its own
//! (`client::thread`), with calls that are futures. It needs no particular runtime flavour
//! and is `Clone`: every clone shares the one connection, so concurrent tasks' commands are
//! pipelined on it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use zero_core::IoHandle;

use super::cache::SharedCache;
use super::commands::AsyncCommands;
use super::driver::Target;
use super::machine::{ClientConfig, Message, Protocol, SubKind};
use super::thread::{self, Command, Delivery};
use crate::cmd::{Cmd, Pipeline};
use crate::error::Error;
use crate::value::{FromValue, Value};

/// A Redis client for async code. It reconnects by itself (see [`super::machine`]).
#[derive(Clone)]
pub struct AsyncClient {
    inner: Arc<Inner>,
}

struct Inner {
    handle: IoHandle,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
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
        let sink = Box::new(move |delivery| {
            if let Delivery::Message(m) = delivery {
                let _ = messages_tx.send(m);
            }
        });
        let ready = Box::new(move |r| drop(ready_tx.send(r)));
        let (handle, thread, cache) = thread::spawn(target, config, sink, ready)?;
        let mut inner = Inner {
            handle,
            thread: std::sync::Mutex::new(Some(thread)),
            messages: Mutex::new(messages),
            protocol: Protocol::Resp3,
            cache,
        };
        inner.protocol = match tokio::time::timeout(wait, ready_rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(Error::Closed),
            Err(_) => return Err(Error::ConnectTimeout(wait)),
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
        command: impl FnOnce(thread::Done) -> Command,
    ) -> Result<Vec<Result<Value, Error>>, Error> {
        let (tx, rx) = oneshot::channel();
        let done: thread::Done = Box::new(move |results| drop(tx.send(results)));
        self.inner.handle.post(command(done)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Sends the pipeline's commands together and returns their replies (as an array), or
    /// for a transaction `EXEC`'s reply.
    pub async fn pipeline<T: FromValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let cmds = pipeline.commands().collect();
        let results = self.call(|done| Command::Query(cmds, done)).await?;
        thread::convert(results, pipeline.is_atomic(), false)
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
        let results = self.call(|done| Command::Subscribe { kind, channels, on, done }).await?;
        thread::convert(results, false, true)
    }

    /// The next message on the subscriptions (`None` once the client is closed).
    pub async fn recv(&self) -> Option<Message<'static>> {
        self.inner.messages.lock().await.recv().await
    }

    /// Closes the client for every clone: outstanding commands fail with [`Error::Closed`].
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .handle
            .post(Command::Close(Box::new(move || {
                let _ = tx.send(());
            })))
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
        let _ = self.inner.handle.stop();
    }
}

impl AsyncCommands for AsyncClient {
    async fn query<T: FromValue + Send + 'static>(&self, cmd: Cmd) -> Result<T, Error> {
        if let Some(hit) = self.inner.cache.as_ref().and_then(|c| c.get(&cmd)) {
            return T::from_value(hit);
        }
        let results = self.call(|done| Command::Query(vec![cmd], done)).await?;
        thread::convert(results, false, true)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}
