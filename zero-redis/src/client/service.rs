//! The callers' half of the Redis client machine, shared by the blocking and Tokio clients:
//! a zero-core [`Service`] that issues their commands and hands each call its replies. It
//! holds no protocol logic (the machine does) and no I/O (the runner does).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use zero_core::machine::Service;

use super::machine::{Client, ClientConfig, Event, Message, Protocol, RequestId, SubKind};
use crate::cmd::Cmd;
use crate::error::Error;
use crate::value::{FromValue, Value};

/// Where a call's replies go, one per command, in order.
pub(crate) type Done = Box<dyn FnOnce(Vec<Result<Value, Error>>) + Send>;

/// Where subscription messages and other pushes go (shared by the command connection and,
/// over RESP2, the subscriber connection).
pub(crate) type Sink = Arc<dyn Fn(Delivery) + Send + Sync>;

/// What arrives out of band.
pub(crate) enum Delivery {
    /// A message on a subscription.
    Message(Message<'static>),
    /// Another push (a `CLIENT TRACKING` invalidation, ...).
    Push(Value),
}

/// Told once: the first connection is ready (with its protocol), or it failed.
pub(crate) type Ready = Box<dyn FnOnce(Result<Protocol, Error>) + Send>;

/// What a caller asks.
pub(crate) enum Command {
    /// Commands to send together.
    Query(Vec<Cmd>, Done),
    /// (Un)subscribe.
    Subscribe { kind: SubKind, channels: Vec<Vec<u8>>, on: bool, done: Done },
}

/// The replies to one call, as they arrive.
struct Call {
    results: Vec<Option<Result<Value, Error>>>,
    left: usize,
    done: Done,
}

/// One connection's callers: the calls waiting on it (by their first request id; a call's ids
/// are consecutive), where pushes go, and who waits for the first connection.
pub(crate) struct Callers {
    calls: BTreeMap<u64, Call>,
    sink: Sink,
    ready: Option<Ready>,
}

impl Callers {
    /// The callers of a connection; `ready` (if any) hears about its first connection, and a
    /// failure there ends the machine rather than retrying.
    pub(crate) fn new(sink: Sink, ready: Option<Ready>) -> Callers {
        Callers { calls: BTreeMap::new(), sink, ready }
    }

    /// Files a reply (or failure) under its call; runs the call's callback once complete.
    fn settle(&mut self, id: RequestId, result: Result<Value, Error>) {
        let Some((&first, call)) = self.calls.range_mut(..=id.0).next_back() else { return };
        let Some(slot) = call.results.get_mut((id.0 - first) as usize) else { return };
        *slot = Some(result);
        call.left -= 1;
        if call.left == 0 {
            let call = self.calls.remove(&first).expect("found above");
            (call.done)(call.results.into_iter().map(|r| r.expect("every reply arrived")).collect());
        }
    }
}

impl Service for Callers {
    type Machine = Client;
    type Command = Command;

    fn command(&mut self, client: &mut Client, now: Instant, command: Command) {
        let (first, count, done) = match command {
            Command::Query(cmds, done) => {
                let ids: Vec<_> = cmds.iter().map(|c| client.send(c, now)).collect();
                (ids.first().map(|id| id.0), ids.len(), done)
            }
            Command::Subscribe { kind, channels, on, done } => {
                let id = match on {
                    true => client.subscribe(kind, &channels, now),
                    false => client.unsubscribe(kind, &channels, now),
                };
                (Some(id.0), 1, done)
            }
        };
        match first {
            Some(first) => {
                let call = Call { results: (0..count).map(|_| None).collect(), left: count, done };
                self.calls.insert(first, call);
            }
            None => done(Vec::new()),
        }
    }

    fn serve(&mut self, client: &mut Client) {
        while let Some(event) = client.poll_event() {
            let (id, result) = match event {
                Event::Reply { id, frame } => (id, Ok(frame.into_owned())),
                Event::Failed { id, error } => (id, Err(error)),
                Event::Message(m) => {
                    (self.sink)(Delivery::Message(m.into_owned()));
                    continue;
                }
                Event::Push(frame) => {
                    (self.sink)(Delivery::Push(frame.into_owned()));
                    continue;
                }
                Event::Connected { protocol } => {
                    if let Some(ready) = self.ready.take() {
                        ready(Ok(protocol));
                    }
                    continue;
                }
                Event::Disconnected { error } => {
                    tracing::debug!(%error, "Redis connection lost");
                    if let Some(ready) = self.ready.take() {
                        ready(Err(error));
                        client.close();
                    }
                    continue;
                }
            };
            self.settle(id, result);
        }
    }

    fn close(&mut self, client: &mut Client) {
        client.close();
    }
}

/// The configuration of the subscriber connection a RESP2 client opens on its first
/// subscription (a subscribed RESP2 connection takes no other commands).
pub(crate) fn subscriber_config(config: &ClientConfig) -> ClientConfig {
    ClientConfig { protocol: Protocol::Resp2, cache: None, ..config.clone() }
}

/// A new machine for `config`.
pub(crate) fn machine(config: ClientConfig) -> Client {
    Client::new(config, Instant::now())
}

/// A call's replies as the caller's type: one command's reply, or a pipeline's replies as an
/// array (a transaction's: `EXEC`'s reply). A failed command fails the call.
pub(crate) fn convert<T: FromValue>(
    results: Vec<Result<Value, Error>>,
    atomic: bool,
    single: bool,
) -> Result<T, Error> {
    let mut values = results.into_iter().collect::<Result<Vec<_>, Error>>()?;
    if single || atomic {
        return T::from_value(values.pop().ok_or(Error::Closed)?);
    }
    T::from_value(Value::Array(values))
}
