//! A blocking client: the shard driver on a thread of its own (`client::thread`), with
//! calls that wait for the server's answer. Any number of threads may share one client (it
//! is `Sync`); their commands are pipelined on its one connection.

use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use zero_core::IoHandle;

use super::cache::SharedCache;
use super::commands::Commands;
use super::driver::Target;
use super::machine::{ClientConfig, Message, Protocol, SubKind};
use super::thread::{self, Command, Delivery};
use crate::cmd::{Cmd, Pipeline};
use crate::error::Error;
use crate::value::{FromValue, Value};

/// A Redis client whose calls block until the server answers. It reconnects by itself (see
/// [`super::machine`] for what happens to commands meanwhile).
pub struct BlockingClient {
    handle: IoHandle,
    thread: Option<JoinHandle<()>>,
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
        let sink = Box::new(move |delivery| match delivery {
            Delivery::Message(m) => drop(messages_tx.send(m)),
            Delivery::Push(p) => drop(pushes_tx.send(p)),
        });
        let ready = Box::new(move |r| drop(ready_tx.send(r)));
        let (handle, thread, cache) = thread::spawn(target, config, sink, ready)?;
        let mut client = BlockingClient {
            handle,
            thread: Some(thread),
            messages: Mutex::new(messages),
            pushes: Mutex::new(pushes),
            protocol: Protocol::Resp3,
            cache,
        };
        client.protocol = match ready_rx.recv_timeout(wait) {
            Ok(result) => result?,
            Err(_) => return Err(Error::ConnectTimeout(wait)),
        };
        Ok(client)
    }

    /// The protocol the connection speaks (RESP3, or RESP2 if the server has no `HELLO`).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The client-side cache, if [`ClientConfig::cache`] turned it on.
    pub fn cache(&self) -> Option<&SharedCache> {
        self.cache.as_ref()
    }

    fn call(&self, make: impl FnOnce(thread::Done) -> Command) -> Result<Vec<Result<Value, Error>>, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let done: thread::Done = Box::new(move |results| drop(tx.send(results)));
        self.handle.post(make(done)).map_err(|_| Error::Closed)?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// Sends the pipeline's commands together and returns their replies (as an array), or
    /// for a transaction `EXEC`'s reply.
    pub fn pipeline<T: FromValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let results = self.call(|done| Command::Query(pipeline.commands().collect(), done))?;
        thread::convert(results, pipeline.is_atomic(), false)
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
        let results = self.call(|done| Command::Subscribe { kind, channels, on, done })?;
        thread::convert(results, false, true)
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
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self
            .handle
            .post(Command::Close(Box::new(move || {
                let _ = tx.send(());
            })))
            .is_ok()
        {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
        let _ = self.handle.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Commands for BlockingClient {
    fn query<T: FromValue>(&self, cmd: Cmd) -> Result<T, Error> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&cmd)) {
            return T::from_value(hit);
        }
        let results = self.call(|done| Command::Query(vec![cmd], done))?;
        thread::convert(results, false, true)
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shut();
        }
    }
}
